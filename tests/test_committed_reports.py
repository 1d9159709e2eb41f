"""Every committed report re-renders byte-identical from its committed results (reports/rerender.py's lists):
what the code renders today is what the reports say, text and plots. One test per share of rerender.py's list (each
run directory, then the comparisons), so that pytest-xdist spreads the drawing over its workers; every share renders
into a copy of the directories it reads and writes, compares every committed file of them, and makes no file that
is not committed."""

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


def _roots(share: str) -> list[Path]:
    """The directories under reports/ that a share reads and writes: its run directory, or every directory a
    comparison reads (`dir:selector`) and writes into."""
    runs, comparisons = SHARES[share]
    dirs = list(runs) + [spec.split(":")[0] for a, b, _ in comparisons for spec in (a, b)]
    dirs += [str(Path(out).parent) for _, _, out in comparisons]
    return [Path(d) for d in dict.fromkeys(dirs)]


def _rendered_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: str) -> Path:
    """A copy of the share's directories of reports/ in which rerender.py's own loop has rendered that share."""
    for root in _roots(share):
        shutil.copytree(ROOT / "reports" / root, tmp_path / "reports" / root, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    module = _rerender_module()
    runs, comparisons = SHARES[share]
    monkeypatch.setattr(module, "RUNS", runs)
    monkeypatch.setattr(module, "COMPARISONS", comparisons)
    monkeypatch.setattr(module, "KERNEL_CAPTURES", tuple(c for c in module.KERNEL_CAPTURES
                                                         if any(c.startswith(f"{run}/") for run in runs)))
    monkeypatch.setattr(module, "RUN_SUMMARIES", tuple(r for r in module.RUN_SUMMARIES if r in runs))
    module.rerender(calibration=False)
    return tmp_path / "reports"


@pytest.mark.slow  # redraws the share's committed plots
@pytest.mark.parametrize("share", list(SHARES))
def test_reports_rerender_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: str) -> None:
    rendered = _rendered_copy(tmp_path, monkeypatch, share)
    committed_tree = [p for root in _roots(share) for p in (ROOT / "reports" / root).rglob("*")]
    new = ({p.relative_to(rendered) for p in rendered.rglob("*") if p.is_file()}
           - {p.relative_to(ROOT / "reports") for p in committed_tree})
    assert not new, f"rendering made files that are not committed: {sorted(map(str, new))[:5]}"
    committed = [p for p in committed_tree if p.is_file() and p.suffix in {".md", ".csv", ".tex", ".png"}]
    assert committed
    assert [str(p.relative_to(ROOT)) for p in committed
            if not filecmp.cmp(p, rendered / p.relative_to(ROOT / "reports"), shallow=False)] == []


def test_every_kernel_capture_is_rendered_with_its_run() -> None:
    """A kernel capture or run summary outside every listed run would be re-rendered by rerender.py but held by no
    test."""
    assert all(any(c.startswith(f"{run}/") for run in RERENDER.RUNS) for c in RERENDER.KERNEL_CAPTURES)
    assert set(RERENDER.RUN_SUMMARIES) <= set(RERENDER.RUNS)


@pytest.mark.parametrize("kind", ["nsys", "trace"])
def test_kernel_reports_render_as_before_the_reorganisation(tmp_path: Path, kind: str) -> None:
    """Most committed kernel reports cannot be re-rendered (their raw captures are too large to commit), so their
    code path is held to the H200 fixture captures: tests/fixtures/kernel-reports/<kind>/ holds what the code
    before the package reorganisation (commit 63502af) rendered from them, and today's code must match it."""
    from lmbench.kernels.report import write_kernel_report

    shutil.copytree(ROOT / "tests" / "fixtures" / f"{kind}-h200-tiny", tmp_path / "run")
    capture = tmp_path / "run" / "tiny-train-step-bf16-naive-b4-ctx128-detail"
    write_kernel_report(capture)
    expected = sorted((ROOT / "tests" / "fixtures" / "kernel-reports" / kind).iterdir())
    assert sorted(p.name for p in capture.glob("kernels*")) == [p.name for p in expected]
    assert [p.name for p in expected if not filecmp.cmp(p, capture / p.name, shallow=False)] == []
