"""The front door: `import lmbench` is cheap, lists a curated API, and that API runs a whole flow end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lmbench
from helpers import TINY


def test_import_is_light_and_names_resolve() -> None:
    code = "import sys, lmbench; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    assert {"BenchConfig", "Sampling", "sweep", "bench", "report", "load_results", "load_samples", "compare",
            "kernel_report", "__version__"} <= set(lmbench.__all__)
    for name in lmbench.__all__:
        assert getattr(lmbench, name) is not None
    with pytest.raises(AttributeError):
        lmbench.no_such_name  # noqa: B018


def test_flow_through_the_front_door(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    config = lmbench.BenchConfig(**{**TINY, "mode": "forward"})
    lmbench.sweep([config], a)
    record = lmbench.bench(config, b)
    assert record.ok
    assert lmbench.report(a).name == "report.md" and (a / "report.md").exists()
    results, samples = lmbench.load_results(a), lmbench.load_samples(a)
    assert len(results) == 1 and len(samples) == config.warmup + config.steps
    table = lmbench.compare(str(a), str(b))
    assert list(table["verdict"]) and table["n_a"].iloc[0] == config.steps
    with pytest.raises(lmbench.LmbenchError, match="no lmbench results"):
        lmbench.report(tmp_path / "missing")


def test_profilers_from_python_return_what_they_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import lmbench.render.timing_report
    monkeypatch.setattr(lmbench.render.timing_report, "figures", lambda records: iter(()))  # seconds; untested
    config = lmbench.BenchConfig(**{**TINY, "annotate": "phases"})
    starts: list[str] = []
    run = lmbench.profile(config, tmp_path / "p", lmbench.ProfileOptions(), on_start=starts.append)
    assert run.record is not None and run.record.ok and run.report == tmp_path / "p" / "report.md"
    assert run.kernel_report == run.capture / "kernels.md"
    assert run.kernel_report.read_text().startswith("# CPU operator report")  # a CPU run: its operators
    assert starts == [f"tiny forward-backward fp32 batch 2 ctx 16 -> {run.capture}"]
    assert capsys.readouterr().out == ""  # the reports are the caller's to print
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("LMBENCH_NSYS", raising=False)
    with pytest.raises(lmbench.LmbenchError, match="nsys not found"):
        lmbench.nsys(config, tmp_path / "n")
    with pytest.raises(lmbench.LmbenchError, match="lmbench ncu measures one process"):
        lmbench.ncu(lmbench.BenchConfig(**{**TINY, "parallel": "ddp"}), tmp_path / "c")
    assert not (tmp_path / "n").exists() and not (tmp_path / "c").exists()  # refused before the run directory
