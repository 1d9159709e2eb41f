"""The `--json` documents: a timing report or a comparison as one strict JSON document for scripts.

They are built from the same numeric DataFrames that the CSV tables hold and the Markdown shows formatted
(analysis/report_tables.py through timing_report.Report; the comparison table of studies/compare.py), so the
three cannot disagree. Numbers stay numbers; NaN, missing values and pandas' NA become null, and the text is
written with allow_nan=False, so any JSON parser reads it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmbench.config import BenchConfig
from lmbench.render.timing_report import Report

REPORT_SCHEMA = "lmbench.report/1"
COMPARISON_SCHEMA = "lmbench.comparison/1"
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(BenchConfig))


def jsonable(value: Any) -> Any:
    """`value` made of JSON types only: numpy scalars as Python numbers, non-finite numbers and NA as None,
    DataFrames as lists of row objects, paths as text."""
    if isinstance(value, pd.DataFrame):
        return [jsonable(row) for row in value.to_dict("records")]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (str, Path)):
        return str(value)
    raise TypeError(f"no JSON form for {type(value).__name__}: {value!r}")


def dumps(document: dict[str, Any]) -> str:
    """The document as strict JSON text (no NaN or Infinity), indented, UTF-8 characters kept."""
    return json.dumps(jsonable(document), allow_nan=False, indent=2, ensure_ascii=False)


def report_document(report: Report, run_dir: Path, files: list[Path]) -> dict[str, Any]:
    """A timing report as data: each configuration's fields and status, every table as rows of numbers (the CSV
    tables; rows name their configuration by `key`), the findings as text, and the files written."""
    configurations = [{"key": r.key, "label": r.label, "status": r.status, "oom_phase": r.oom_phase,
                       "profiler": r.profiler, "config": {f: r.config_value(f) for f in CONFIG_FIELDS}}
                      for r in report.records]
    found = [{"group": group, "topic": f.topic, "claim": f.claim, "basis": f.basis} for group, f in report.findings]
    return {"schema": REPORT_SCHEMA, "run_dir": run_dir, "files": files, "configurations": configurations,
            "tables": report.data, "findings": found}


def comparison_document(table: pd.DataFrame, side_a: str, side_b: str, changed: list[str], warnings: list[str],
                        alpha: float, gate: dict[str, Any] | None, files: list[Path]) -> dict[str, Any]:
    """A comparison as data: one row per paired configuration (Δ % with its CI bounds, p-values, verdict; the
    columns of the CSV that `compare --out` writes), what was compared, warnings, the regression gate's result
    (None without --fail-on-regression) and the files written."""
    return {"schema": COMPARISON_SCHEMA, "a": side_a, "b": side_b, "compared": changed, "alpha": alpha,
            "warnings": warnings, "rows": table, "gate": gate, "files": files}
