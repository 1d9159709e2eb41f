"""The command line's options, generated from the option dataclasses' fields (config.py, measure/sampling.py,
measure/launch.py) so that the CLI and the Python API share one definition of every option; and the options that
several commands share (--run-dir, --json)."""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from lmbench.config import BenchConfig
from lmbench.options import cli_flag, field_type
from lmbench.errors import LmbenchError
from lmbench.measure.launch import LaunchOptions


def config_options(sweep: bool, defaults: dict[str, Any] | None = None, cls: type = BenchConfig) -> Callable:
    """Decorate a command with one option per field of the options dataclass `cls` (BenchConfig unless
    given); with `sweep`, sweepable fields take comma-separated lists (values are parsed and validated by
    the dataclass itself). `defaults` overrides a field's default for this command."""

    def decorate(command: Callable) -> Callable:
        for field in reversed(dataclasses.fields(cls)):
            meta, kind = field.metadata, field_type(cls, field.name)
            default = (defaults or {}).get(field.name, field.default)
            flag = cli_flag(field.name)
            help_text = meta["help"] + (f" [choices: {', '.join(meta['choices'])}]" if meta["choices"] else "")
            if kind is bool:
                option = click.option(f"{flag}/--no-{flag[2:]}", field.name, default=default, help=help_text,
                                      show_default=True)
            elif meta.get("percent"):
                option = click.option(flag, field.name, type=PERCENT, default=default, help=help_text)
            elif sweep and meta["sweep"]:
                option = click.option(flag, field.name, default=None if default is None else str(default),
                                      show_default=default is not None, help=help_text + "; comma-separated list to sweep")
            else:
                option = click.option(flag, field.name, type=kind, default=default, help=help_text,
                                      show_default=default is not None)
            command = option(command)
        return command

    return decorate


class Percent(click.ParamType):
    """A finite, non-negative percentage written as "5%" or "5"."""

    name = "percent"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            number = float(str(value).strip().removesuffix("%"))
        except ValueError:
            self.fail(f"{value!r} is not a percentage like 5%", param, ctx)
        if not math.isfinite(number) or number < 0:
            self.fail(f"{value!r} is not a finite, non-negative percentage", param, ctx)
        return number


PERCENT = Percent()


def parse_list(name: str, text: str, cls: type = BenchConfig) -> tuple[Any, ...]:
    """A comma-separated option value as a tuple of the `cls` field's type, each value once, in order."""
    kind = field_type(cls, name)
    values = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise LmbenchError(f"{cli_flag(name)} has an empty item in {text!r}")
        try:
            values.append(kind(item))
        except ValueError:
            raise LmbenchError(f"{cli_flag(name)}: {item!r} is not a valid {kind.__name__}") from None
    return tuple(dict.fromkeys(values))  # a value listed twice is measured once


def default_run_dir(command: str, root: Path = Path("runs")) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = root / f"{stamp}-{command}", 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{command}-{n}"
    return path


def run_dir_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A directory to measure into: not empty (that would be the current directory), not a results file."""
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("give a directory name (an empty name would write into the current directory)")
    if value.endswith(".jsonl"):
        raise click.BadParameter(f"{value} names a results file; give the directory that holds it")
    return Path(value)


json_option = click.option("--json", "as_json", is_flag=True,
                           help="print one JSON document (numbers as numbers) on stdout instead of the Markdown")
run_dir_option = click.option("--run-dir", type=click.Path(file_okay=False), default=None, callback=run_dir_path,
                              help="results directory (default: runs/<timestamp>-<command>)")


def resume_option(stored: str) -> Callable:
    """--resume of a command that stores results one by one in --run-dir: `stored` names what it skips."""
    return click.option("--resume", is_flag=True, help=f"skip the {stored} already stored in --run-dir")


def chosen_run_dir(run_dir: Path | None, resume: bool, command: str) -> Path:
    """--run-dir, else a new runs/<timestamp>-<command> (not made yet); --resume needs the run it continues."""
    if resume and run_dir is None:
        raise LmbenchError(f"--resume needs --run-dir pointing at the interrupted {command} run")
    return run_dir or default_run_dir(command)


T = TypeVar("T")


def take(cls: type[T], options: dict[str, Any]) -> T:
    """Take the fields of the options dataclass `cls` out of a command's options (the rest build its BenchConfig)."""
    return cls(**{f.name: options.pop(f.name) for f in dataclasses.fields(cls)})


def take_launch(options: dict[str, Any]) -> LaunchOptions:
    """Take the LaunchOptions fields (torchrun's) out of a command's options; refuse a per-rank --batch given beside
    --global-batch, which divides into it (only the command line says whether --batch was given)."""
    source = click.get_current_context().get_parameter_source("batch")
    if options.get("global_batch") is not None and source == click.core.ParameterSource.COMMANDLINE:
        raise LmbenchError("--batch is per rank and --global-batch divides across the ranks: give one of the two")
    return take(LaunchOptions, options)
