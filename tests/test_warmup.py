"""The warm-up study: its table and computed finding on synthetic runs, and `lmbench warmup` end to end."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from helpers import run_cli, run_main
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore
from lmbench.studies.warmup import finding, warmup_table


def _run(template: Record, warmup: int, totals: list[float]) -> Record:
    data = copy.deepcopy(template.data)
    data["config"]["warmup"] = warmup
    data["samples"] = [{"step": i, "warmup": False, "forward_ms": t, "step_ms": t} for i, t in enumerate(totals)]
    return Record(data)


@pytest.fixture(scope="module")
def template(api_run_dir: Path) -> Record:
    return ResultsStore(api_run_dir).records()[0]


def test_cold_start_is_found_and_quantified(template: Record) -> None:
    records = [_run(template, 0, [40.0, 10.0, 10.2, 9.8, 10.0]), _run(template, 2, [10.1, 10.0, 9.9, 10.0, 10.0]),
               _run(template, 5, [10.0, 10.1, 9.9, 10.0, 10.0])]
    table = warmup_table(records).set_index("warmup")
    assert table.at[0, "mean_ms"] == pytest.approx(16.0)
    assert table.at[0, "first_vs_median"] == pytest.approx(4.0)
    text = finding(warmup_table(records))
    assert "0 warm-up: mean +60.0% (95% CI" in text and "first measured step 4.00× its run's median" in text
    assert "From 2 warm-up step(s) on, the first measured step is within 5% of its run's median" in text
    assert "the first step takes 4.0× the median" in text and "run-to-run variation" not in text


def test_no_cold_start_no_cold_note(template: Record) -> None:
    records = [_run(template, 0, [10.0, 10.1, 9.9]), _run(template, 5, [10.0, 10.0, 10.0])]
    text = finding(warmup_table(records))
    assert "From 0 warm-up step(s) on" in text and "first step takes" not in text
    assert "no significant change" in text


def test_runs_that_differ_without_a_cold_start(template: Record) -> None:
    records = [_run(template, 1, [8.0, 8.1, 7.9, 8.0, 8.05, 7.95]), _run(template, 5, [10.0, 10.1, 9.9, 10.0, 10.05, 9.95])]
    table = warmup_table(records)
    assert table.at[0, "verdict"] == "faster" and table.at[0, "delta_pct"] == pytest.approx(-20.0)
    text = finding(table)
    assert "From 1 warm-up step(s) on" in text and "differ from the reference by up to 20.0%" in text
    cold = finding(warmup_table([_run(template, 5, [30.0, 10.0, 10.1, 9.9])]))  # one count: nothing to compare
    assert "Even with 5 warm-up steps the first measured step" in cold and "ms): " not in cold


@pytest.mark.slow  # each warm-up count runs in a real child process, `python -m lmbench bench`
def test_lmbench_warmup_end_to_end(tmp_path: Path) -> None:
    proc = run_main(["warmup", "--size", "tiny", "--ctx", "16", "--batch", "2", "--vocab-size", "128", "--steps", "3",
                     "--device", "cpu", "--counts", "0,2", "--run-dir", "wu"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = ResultsStore(tmp_path / "wu").records()
    assert sorted(r.config.warmup for r in records) == [0, 2]
    assert [s["warmup"] for s in records[1].samples].count(True) == 2
    report = (tmp_path / "wu" / "warmup.md").read_text()
    assert proc.stdout.strip() == report.strip() and "**Finding.** Against the run with 2 warm-up steps" in report
    bad = run_cli(["warmup", "--size", "tiny", "--counts", "-1"], cwd=tmp_path)  # warmup's subprocess smoke test
    assert bad.returncode == 2 and bad.stderr.strip() == "lmbench: error: --counts must be zero or more, got '-1'"
