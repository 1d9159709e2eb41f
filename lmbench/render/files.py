"""Writing a report's files into its directory, each atomically and in an order that keeps them consistent: the
plots first (so the Markdown never links a plot that failed to draw), then the CSV tables, the LaTeX tables and
the Markdown last."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from lmbench.render.plots import PLOTS_DIR, write_pngs
from lmbench.results.store import atomic_write


def latex_table(table: pd.DataFrame, comment: str) -> str:
    """One table as LaTeX, after a `% comment` line naming it."""
    return f"% {comment}\n" + table.to_latex(index=False, escape=True)  # ±, – and × are plain UTF-8 text to LaTeX


def write_files(out: Path, figures: Iterable[tuple[str, Any]], owned: tuple[str, ...], csvs: dict[str, pd.DataFrame],
                tex_name: str, latex: list[str], markdown_name: str, markdown: str,
                owned_csvs: Iterable[str] = ()) -> list[Path]:
    """plots/<name>.png for each (name, matplotlib figure) (plots.write_pngs: the report's stale PNGs, those matching
    the `owned` globs, removed), each CSV (the report's stale ones, those of `owned_csvs` not written this time,
    removed), the LaTeX tables joined into `tex_name` and the Markdown; returns the files written, the Markdown
    first, then the CSVs, the LaTeX and the plots. `figures` may be a generator: each figure is drawn as it is
    written."""
    out.mkdir(parents=True, exist_ok=True)
    plots = write_pngs(out / PLOTS_DIR, figures, owned)
    for stale in set(owned_csvs) - csvs.keys():
        (out / stale).unlink(missing_ok=True)
    for name, table in csvs.items():
        atomic_write(out / name, table.to_csv(index=False).encode())
    atomic_write(out / tex_name, "\n".join(latex).encode())
    atomic_write(out / markdown_name, markdown.encode())
    return [out / markdown_name, *(out / name for name in csvs), out / tex_name,
            *(out / PLOTS_DIR / f"{name}.png" for name in plots)]
