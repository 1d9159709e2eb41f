"""Markdown written once: tables from DataFrames and findings as lines, for every report lmbench renders (timing
report, kernel report, comparison, warm-up study)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lmbench.analysis.findings.finding import CAVEAT, Finding

COUNT_COLUMNS = ("kernels_per_step", "calls_per_step", "instances")  # shown as integers by titled_table


def table(frame: pd.DataFrame, align: list[str] | None = None) -> str:
    """A DataFrame of cells already formatted as text, as a Markdown table (no number re-parsing)."""
    return frame.to_markdown(index=False, disable_numparse=True, **({"colalign": align} if align else {}))


def titled_table(frame: pd.DataFrame, titles: dict[str, str]) -> str:
    """The `titles` columns of a numeric frame under their titles, each cell formatted by its column (_cell),
    numbers right-aligned; '(none)' for an empty frame."""
    columns = [c for c in titles if c in frame.columns]
    if frame.empty:
        return "(none)"
    shown = pd.DataFrame({titles[c]: [_cell(c, v) for v in frame[c]] for c in columns})
    return table(shown, ["right" if pd.api.types.is_numeric_dtype(frame[c]) else "left" for c in columns])


def _cell(column: str, value: Any) -> str:
    """Percentages to 0.1, counts as integers (one decimal when fractional), times to 4 significant digits."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if pd.isna(value):
        return "—"
    if column.endswith("_pct"):
        return f"{value:.1f}"
    if column in COUNT_COLUMNS:
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{value:.4g}"


def finding_line(found: Finding) -> str:
    """'**topic** — claim _(basis)_'."""
    return f"**{found.topic}** — {found.claim} _({found.basis})_"


def finding_lines(found: list[Finding]) -> list[str]:
    """A findings list: each caveat as its own bold-led paragraph, then the other findings numbered."""
    lines = []
    for f in found:
        if f.topic == CAVEAT:
            lines += [f"**Caveat:** {f.claim} _({f.basis})_", ""]
    listed = [f for f in found if f.topic != CAVEAT]
    return lines + [f"{i}. {finding_line(f)}" for i, f in enumerate(listed, 1)]
