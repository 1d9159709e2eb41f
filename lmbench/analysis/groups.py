"""Grouping records and naming configurations, written once for tables, plots, findings, comparisons and captures.

A run's records are grouped by everything that changes a number except the model size (GROUP_FIELDS), so each
group is one seed-style table with a row per size. A configuration is named by field titles and value texts
defined here: report headings ("mode forward-backward, TF32 on"), plot legends ("forward-backward bf16 ctx
512"), finding subjects ("small bf16 ctx 512") and capture directories ("small-forward-bf16-sdpa-b4-ctx512").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lmbench.config import SIZES, BenchConfig
from lmbench.results.record import CONFIG_DEFAULTS, Record

GROUP_FIELDS = ("mode", "precision", "param_dtype", "tf32", "attention", "sdpa_backend", "compile", "optimizer",
                "batch", "ctx", "warmup", "steps", "vocab_size", "device", "annotate", "emit_nvtx", "parallel",
                "global_batch", "bucket_cap_mb", "reshard_after_forward")
RECORD_FIELDS = ("world_size", "device_name")  # group fields read from the record, not its configuration
GROUPED = (*GROUP_FIELDS, *RECORD_FIELDS)
DESCRIBED_FIELDS = ("mode", "precision", "param_dtype", "attention", "sdpa_backend", "compile", "optimizer", "tf32",
                    "batch", "ctx", "parallel")  # what a finding names
FIELD_TITLES = {"tf32": "TF32", "warmup": "warm-up", "vocab_size": "vocab", "device_name": "device",
                "emit_nvtx": "emit-nvtx", "world_size": "ranks", "global_batch": "global batch",
                "bucket_cap_mb": "bucket MiB", "reshard_after_forward": "reshard",
                "sdpa_backend": "SDPA", "param_dtype": "params"}  # else titled by its own name
# Values that say what they are.
SELF_NAMED = ("mode", "precision", "attention", "device", "device_name", "parallel", "optimizer")
_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(BenchConfig))


def config_key(record: Record, leave_out: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every configuration field's value (as text) and the ranks that measured it (`world_size`), but those left
    out: records equal on it pair up."""
    ranks = () if "world_size" in leave_out else (str(record.world_size),)
    return (*(str(record.config_value(f)) for f in _CONFIG_FIELDS if f not in leave_out), *ranks)


def group_key(record: Record) -> tuple:
    """What a record's group is: its GROUP_FIELDS values, then its RECORD_FIELDS (ranks, device): GROUPED's order."""
    return (*(record.config_value(f) for f in GROUP_FIELDS), *(getattr(record, f) for f in RECORD_FIELDS))


def group_records(records: list[Record]) -> list[tuple[dict[str, Any], list[Record]]]:
    """[(group fields, records sorted by model size)], groups in first-seen order."""
    groups: dict[tuple, list[Record]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    return [
        (dict(zip(GROUPED, key)), sorted(members, key=size_order))
        for key, members in groups.items()
    ]


def varying_fields(groups: list[dict[str, Any]]) -> tuple[str, ...]:
    """The group fields (ranks and device too) that take more than one value across `groups` (group_records' dicts)."""
    return tuple(f for f in GROUPED if len({str(g[f]) for g in groups}) > 1)


def size_rank(size: str) -> int:
    """A built-in size's place, smallest first; any other name after them all."""
    names = list(SIZES)
    return names.index(size) if size in names else len(names)


def size_order(record: Record) -> tuple[int, int, str]:
    return size_rank(record.config_value("size")), record.params or 0, record.label


def value_text(value: Any) -> Any:
    """A configuration value as tables and sentences show it: booleans as on/off."""
    return ("on" if value else "off") if isinstance(value, bool) else value


def field_text(field: str, value: Any, titled: bool = True) -> str:
    """'TF32 on', 'ctx 512', 'warm-up 5'; untitled, just the value ('bf16')."""
    return f"{FIELD_TITLES.get(field, field)} {value_text(value)}" if titled else str(value_text(value))


def group_title(group: dict[str, Any], varying: tuple[str, ...]) -> str:
    """A report section's heading: every varying field titled, comma-separated ('mode forward, ctx 512')."""
    return ", ".join(field_text(field, group[field]) for field in varying)


def group_label(fields: dict[str, Any], varying: tuple[str, ...], always: tuple[str, ...] = ()) -> str:
    """A plot legend's label: the `always` fields and the varying ones, self-naming values bare ('train-step bf16
    ctx 512')."""
    shown = [f for f in GROUPED if f in always or f in varying]
    return " ".join(field_text(f, fields[f], titled=f not in SELF_NAMED) for f in shown)


def varying(records: list[Record]) -> list[str]:
    """The DESCRIBED_FIELDS that take more than one value among `records`."""
    return [f for f in DESCRIBED_FIELDS if len({str(r.config_value(f)) for r in records}) > 1]


def describe(record: Record, fields: list[str]) -> str:
    """A finding's subject: 'small ctx 512 bf16 attention naive', the size label, then the named fields' values
    (mode and precision bare)."""
    return " ".join([record.label, *(field_text(f, record.config_value(f), titled=f not in ("mode", "precision"))
                                     for f in fields)])


def capture_name(config: BenchConfig, world_size: int = 1) -> str:
    """A capture directory's name: 'small-train-step-bf16-sdpa-b4-ctx512', plus the parameters' dtype, SDPA backend,
    compile mode and optimizer away from their defaults, the annotation level when it is 'detail', 'opnvtx' with
    --emit-nvtx, and a job's ranks ('2ranks') when it has several: the one-GPU run a job's weak scaling is measured
    against captures beside it, not over it."""
    parts = [config.label, config.mode, config.precision + ("-tf32" if config.tf32 else ""), config.attention,
             f"b{config.batch}", f"ctx{config.ctx}"]
    variants = (("param_dtype", "params-"), ("sdpa_backend", "sdpa-"), ("compile", "compile-"), ("optimizer", ""))
    for name, prefix in variants:
        if getattr(config, name) != CONFIG_DEFAULTS[name]:  # so variants of one configuration capture apart
            parts.append(prefix + getattr(config, name))
    if config.annotate == "detail":
        parts.append("detail")
    if config.emit_nvtx:
        parts.append("opnvtx")
    if world_size > 1:
        parts.append(f"{world_size}ranks")
    return "-".join(parts).replace("(", "_").replace(")", "").replace(",", "_").replace("=", "").replace(":", "_")


def capture_files(run_dir: Path, name: str) -> list[Path]:
    """Each capture's file `name` in a run directory, the built-in sizes smallest first (as a timing report orders
    them; a capture's name, capture_name, starts with its model's label), then by name."""
    return sorted(run_dir.glob(f"*/{name}"), key=lambda p: (size_rank(p.parent.name.split("-", 1)[0]), p.parent.name))
