"""How a configuration is named in tables, findings and comparisons."""

from __future__ import annotations

from typing import Any

from lmbench.config import BenchConfig
from lmbench.results.record import Record

DESCRIBED_FIELDS = ("mode", "precision", "attention", "tf32", "batch", "ctx")  # what a configuration is named by


def varying(records: list[Record]) -> list[str]:
    """The configuration fields (besides the size) that take more than one value among `records`."""
    return [f for f in DESCRIBED_FIELDS if len({str(r.config_value(f)) for r in records}) > 1]


def describe(record: Record, fields: list[str]) -> str:
    """'small ctx 512 bf16 attention naive': the size label, then the named fields' values."""
    parts = [record.label]
    for field in fields:
        value = value_text(record.config_value(field))
        parts.append(f"{field} {value}" if field in ("ctx", "batch", "attention", "tf32") else str(value))
    return " ".join(parts)


def value_text(value: Any) -> Any:
    """A configuration value as tables and sentences show it: booleans as on/off."""
    return ("on" if value else "off") if isinstance(value, bool) else value


def capture_name(config: BenchConfig) -> str:
    """'small-train-step-bf16-sdpa-b4-ctx512', plus the annotation level when it is 'detail'."""
    parts = [config.label, config.mode, config.precision + ("-tf32" if config.tf32 else ""), config.attention,
             f"b{config.batch}", f"ctx{config.ctx}"]
    if config.annotate == "detail":
        parts.append("detail")
    if config.emit_nvtx:
        parts.append("opnvtx")
    return "-".join(parts).replace("(", "_").replace(")", "").replace(",", "_").replace("=", "")
