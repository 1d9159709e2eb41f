"""How an option is declared and checked: a dataclass field that carries its help text and CLI traits (`option`),
its flag and type, and the one-line refusals every options dataclass shares (config.py, measure/sampling.py,
measure/launch.py)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import typing
from dataclasses import field
from typing import Any

from lmbench.errors import LmbenchError


def option(default: Any, help: str, *, sweep: bool = False, choices: tuple[str, ...] | None = None,
           percent: bool = False) -> Any:
    """A dataclass field that is also a CLI option; `sweep` fields take comma-separated lists in `sweep`;
    `percent` fields accept "5%" as well as "5" on the command line."""
    return field(default=default, metadata={"help": help, "sweep": sweep, "choices": choices, "percent": percent})


def cli_flag(name: str) -> str:
    """The command-line flag of a field: `emit_nvtx` -> `--emit-nvtx`."""
    return "--" + name.replace("_", "-")


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # slow (it compiles every annotation): once per class


def field_type(cls: type, name: str) -> type:
    """The type of an options dataclass field, without its `| None`."""
    hint = _type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def check_types(options: Any) -> None:
    """Refuse a field whose value is not of its declared type, as one line (the Python API gets no type checks from
    the CLI's parsing): warmup=1.5, seed='abc' and tf32='no' are errors, not surprises later."""
    for f in dataclasses.fields(options):
        value, kind = getattr(options, f.name), field_type(type(options), f.name)
        if value is None and type(None) in typing.get_args(_type_hints(type(options))[f.name]):
            continue
        fits = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            fits = True  # an integer is a fine float
        if not fits:
            raise LmbenchError(f"{f.name} must be {'a' if kind is not int else 'an'} {kind.__name__}, got "
                               f"{repr(value)[:200]}")


def require_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise LmbenchError(f"{name} must be a positive integer, got {value!r}")


def require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise LmbenchError(f"unknown {name} {value!r} (choose from: {', '.join(choices)})")


def fields_key(fields: dict[str, Any]) -> str:
    """A measured configuration's key: 16 hex digits of the SHA-1 of its fields as sorted JSON (every store's)."""
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
