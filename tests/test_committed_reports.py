"""Every committed report re-renders byte-identical from its committed results (reports/rerender.py's list):
what the code renders today is what the reports say, text and plots. One test per share of rerender.py's list (each
run directory, then the comparisons), so that pytest-xdist spreads the drawing over its workers; every share renders
into a copy of reports/ and compares every committed file of it, and makes no file that is not committed."""

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


RERENDER = _rerender_module()
# The shares of rerender.py's list, each rendered by a test of its own: each run directory, then the comparisons.
SHARES = {run: ((run,), ()) for run in RERENDER.RUNS} | {"comparisons": ((), RERENDER.COMPARISONS)}


def _rendered_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: str) -> Path:
    """A copy of reports/ in which rerender.py's own loop has rendered one share of its list."""
    shutil.copytree(ROOT / "reports", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    module = _rerender_module()
    runs, comparisons = SHARES[share]
    monkeypatch.setattr(module, "RUNS", runs)
    monkeypatch.setattr(module, "COMPARISONS", comparisons)
    module.rerender(calibration=False)
    return tmp_path / "reports"


@pytest.mark.slow  # redraws the share's committed plots
@pytest.mark.parametrize("share", list(SHARES))
def test_reports_rerender_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: str) -> None:
    rendered = _rendered_copy(tmp_path, monkeypatch, share)
    new = {p.relative_to(rendered) for p in rendered.rglob("*")} - {p.relative_to(ROOT / "reports")
                                                                     for p in (ROOT / "reports").rglob("*")}
    assert not new, f"rendering made files that are not committed: {sorted(map(str, new))[:5]}"
    committed = [p for p in (ROOT / "reports").rglob("*") if p.is_file() and p.suffix in {".md", ".csv", ".tex", ".png"}]
    assert committed
    assert [str(p.relative_to(ROOT)) for p in committed
            if not filecmp.cmp(p, rendered / p.relative_to(ROOT / "reports"), shallow=False)] == []


@pytest.mark.parametrize("kind", ["nsys", "trace"])
def test_kernel_reports_render_as_before_the_reorganisation(tmp_path: Path, kind: str) -> None:
    """The committed kernel reports cannot be re-rendered (their raw captures are too large to commit), so their
    code path is held to the H200 fixture captures: tests/fixtures/kernel-reports/<kind>/ holds what the code
    before the package reorganisation (commit 63502af) rendered from them, and today's code must match it."""
    from lmbench.kernels.report import write_kernel_report

    shutil.copytree(ROOT / "tests" / "fixtures" / f"{kind}-h200-tiny", tmp_path / "run")
    capture = tmp_path / "run" / "tiny-train-step-bf16-naive-b4-ctx128-detail"
    write_kernel_report(capture)
    expected = sorted((ROOT / "tests" / "fixtures" / "kernel-reports" / kind).iterdir())
    assert sorted(p.name for p in capture.glob("kernels*")) == [p.name for p in expected]
    assert [p.name for p in expected if not filecmp.cmp(p, capture / p.name, shallow=False)] == []
