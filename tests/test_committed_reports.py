"""Every committed report re-renders byte-identical from its committed results (reports/rerender.py's list):
what the code renders today is what the reports say. The plots are redrawn and compared by their own test."""

from __future__ import annotations

import filecmp
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _rerender_module():
    spec = importlib.util.spec_from_file_location("rerender", ROOT / "reports" / "rerender.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rendered_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plots: bool) -> Path:
    shutil.copytree(ROOT / "reports", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    if not plots:
        import lmbench.render.timing_report  # the report still plans and links its plots; only drawing them is skipped
        monkeypatch.setattr(lmbench.render.timing_report, "write_plots", lambda records, out_dir: {})
    _rerender_module().rerender(calibration=False)
    return tmp_path / "reports"


def _differences(rendered: Path, suffixes: set[str]) -> list[str]:
    committed = [p for p in (ROOT / "reports").rglob("*") if p.is_file() and p.suffix in suffixes]
    assert committed, suffixes
    return [str(p.relative_to(ROOT)) for p in committed
            if not filecmp.cmp(p, rendered / p.relative_to(ROOT / "reports"), shallow=False)]


def test_text_reports_rerender_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = _rendered_copy(tmp_path, monkeypatch, plots=False)
    new = {p.relative_to(rendered) for p in rendered.rglob("*")} - {p.relative_to(ROOT / "reports")
                                                                     for p in (ROOT / "reports").rglob("*")}
    assert not new, f"rendering made files that are not committed: {sorted(map(str, new))[:5]}"
    assert _differences(rendered, {".md", ".csv", ".tex"}) == []


@pytest.mark.slow
def test_plots_rerender_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = _rendered_copy(tmp_path, monkeypatch, plots=True)
    assert _differences(rendered, {".png"}) == []
