"""`lmbench compare`: verdicts on samples with known differences, no false alarms on identical
distributions, pairing of configurations across result sets, warnings, and the CI-gating exit code."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest

from helpers import run_cli, run_main
from lmbench.analysis.decision import compare_samples
from lmbench.cli import main
from lmbench.studies.compare import Side, compare, compared_fields, regressions, render
from lmbench.errors import LmbenchError
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore


def normal(seed: int, mean: float, sd: float, n: int = 10) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_known_differences_give_the_right_verdict() -> None:
    a, b = normal(1, 100, 2), normal(2, 90, 2)
    result = compare_samples(a, b)
    assert result["verdict"] == "faster"
    assert result["ci_low_pct"] < result["delta_pct"] < result["ci_high_pct"] < 0
    assert result["delta_pct"] == pytest.approx(100 * (sum(b) / 10 - sum(a) / 10) / (sum(a) / 10))
    assert compare_samples(b, a)["verdict"] == "slower"
    assert compare_samples(a, [x * 1.001 for x in a])["verdict"] == "no significant change"


def test_ci_covers_the_true_difference() -> None:
    covered = sum(
        compare_samples(normal(s, 100, 5), normal(s + 10_000, 95, 5))["ci_low_pct"] <= -5
        <= compare_samples(normal(s, 100, 5), normal(s + 10_000, 95, 5))["ci_high_pct"]
        for s in range(200))
    assert 0.90 <= covered / 200 <= 0.99  # nominal 95%, relative to the sampled A mean


def test_no_false_alarm_on_identical_distributions() -> None:
    alarms = sum(compare_samples(normal(s, 50, 3), normal(s + 1_000_000, 50, 3))["verdict"] != "no significant change"
                 for s in range(400))
    assert alarms / 400 <= 0.075  # alpha 0.05; Mann-Whitney's exact test at n = 10 is a little conservative


def test_too_few_steps_is_an_error() -> None:
    with pytest.raises(LmbenchError, match="at least 2 samples on each side"):
        compare_samples([1.0], [1.0, 2.0])


def test_side_filters() -> None:
    side = Side.parse("runs/x:precision=bf16,ctx=512")
    assert side.run_dir == Path("runs/x") and side.filters == (("precision", "bf16"), ("ctx", "512"))
    with pytest.raises(LmbenchError, match="bad filter 'colour=red'"):
        Side.parse("runs/x:colour=red")


def _write(run_dir: Path, records: list[Record]) -> None:
    store = ResultsStore(run_dir)
    for record in records:
        store.append(record)


def _with_totals(record: Record, values: list[float], **config: object) -> Record:
    out = Record(copy.deepcopy(record.data))
    out.data["config"].update(config)
    out.data["key"] = f"{out.key}-{sorted(config.items())}"
    measured = [s for s in out.data["samples"] if not s["warmup"]]
    out.data["samples"] = [s for s in out.data["samples"] if s["warmup"]] + [
        {**s, **{k: 0.0 for k in s if k.endswith("_ms") and k != "step_ms"}, "forward_ms": v}
        for s, v in zip(measured * (len(values) // len(measured) + 1), values)]
    return out


@pytest.fixture
def two_sides(api_run_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A: fp32 forward and forward-backward; B: 'bf16' versions with known effects, minus one config."""
    forward, fwd_bwd = (r for r in ResultsStore(api_run_dir).records())
    _write(tmp_path / "a", [_with_totals(forward, normal(1, 10, 0.2), precision="fp32"),
                            _with_totals(fwd_bwd, normal(2, 20, 0.2), precision="fp32")])
    slower = _with_totals(forward, normal(3, 12, 0.2), precision="bf16")
    slower.data["environment"]["torch"] = "9.9.9"
    _write(tmp_path / "b", [slower])
    return tmp_path / "a", tmp_path / "b"


def test_pairs_across_result_sets(two_sides: tuple[Path, Path]) -> None:
    a, b = two_sides
    table, changed, warnings = compare(Side(a), Side(b))
    assert changed == ["precision"]
    rows = table.set_index("mode")
    assert rows.at["forward", "verdict"] == "slower" and rows.at["forward", "delta_pct"] == pytest.approx(20, abs=4)
    assert rows.at["forward-backward", "verdict"] == "only in A"
    assert any(w.startswith("torch version differs") and w.endswith("vs 9.9.9 (B)") for w in warnings)
    assert any("precision differs: fp32 (A) vs bf16 (B)" == w for w in warnings)
    assert list(regressions(table, 5)["mode"]) == ["forward"] and regressions(table, 50).empty
    assert ResultsStore(b).records()[0].totals()[0] == pytest.approx(normal(3, 12, 0.2)[0])


def test_compared_fields_ignores_fields_with_several_values(two_sides: tuple[Path, Path]) -> None:
    a, b = two_sides
    records_a, records_b = ResultsStore(a).records(), ResultsStore(b).records()
    assert compared_fields(records_a, records_b) == ["precision"]
    assert "mode" not in compared_fields(records_a, records_b)  # two modes on side A: an axis, not a change


def test_compare_cli_gates_on_regressions(two_sides: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_sides
    proc = run_cli(["compare", str(a), str(b), "--fail-on-regression", "5%", "--out", "cmp.md"],
                   cwd=tmp_path)  # compare's subprocess smoke test
    assert proc.returncode == 1, proc.stderr
    assert "| slower" in proc.stdout and "only in A" in proc.stdout
    assert (tmp_path / "cmp.md").read_text().strip() == proc.stdout.strip()
    assert (tmp_path / "cmp.csv").exists()
    assert run_main(["compare", str(a), str(b), "--fail-on-regression", "50%"], cwd=tmp_path).returncode == 0
    bad = run_main(["compare", str(a), str(b), "--fail-on-regression", "lots"], cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "lmbench: error: Invalid value for '--fail-on-regression': 'lots' is not a percentage like 5%")
    missing = run_main(["compare", str(a), f"{b}:ctx=4096"], cwd=tmp_path)
    assert missing.returncode == 2 and "no records in" in missing.stderr


@pytest.mark.parametrize("threshold", ["nan", "-1%", "inf"])
def test_the_gate_refuses_a_threshold_that_is_not_a_percentage(two_sides: tuple[Path, Path], threshold: str,
                                                               capsys: pytest.CaptureFixture) -> None:
    a, b = two_sides
    with pytest.raises(SystemExit) as exited:  # the CLI's own entry point, in this process (parsing only)
        main(["compare", str(a), str(b), "--fail-on-regression", threshold])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().endswith("is not a finite, non-negative percentage")


def test_the_verdict_is_read_from_the_printed_interval() -> None:
    rng = random.Random(5)
    for _ in range(300):
        n_a, n_b = rng.randint(2, 12), rng.randint(2, 12)
        a = [rng.gauss(100, rng.choice((0.5, 5, 30))) for _ in range(n_a)]
        b = [rng.gauss(rng.choice((95, 100, 104)), rng.choice((0.5, 5, 30))) for _ in range(n_b)]
        result = compare_samples(a, b)
        excludes_zero = result["ci_low_pct"] > 0 or result["ci_high_pct"] < 0
        assert (result["verdict"] != "no significant change") == excludes_zero
        if excludes_zero:
            assert result["verdict"] == ("slower" if result["ci_low_pct"] > 0 else "faster")


def test_a_large_change_on_three_steps_is_significant() -> None:
    """Mann–Whitney cannot reach p < 0.1 with 3 steps a side; the interval can, and it decides."""
    result = compare_samples([10.0, 10.2, 9.9], [51.0, 50.5, 51.4])
    assert result["verdict"] == "slower" and result["ci_low_pct"] > 300 and result["p_mannwhitney"] > 0.05


def _processes(template: dict, means: list[float], **config: object) -> dict:
    """A record merged from processes whose measured totals sit at `means` (tiny step noise)."""
    from lmbench.measure.processes import merge_processes
    from lmbench.measure.sampling import Sampling

    parts = [_with_totals(template, [m, m * 1.001, m * 0.999], **config) for m in means]
    return merge_processes(parts, Sampling(repeats=len(means)), "count")


def test_processes_are_the_unit_when_both_sides_repeat(api_run_dir: Path, tmp_path: Path) -> None:
    forward = ResultsStore(api_run_dir).records()[0]
    # Steps agree within 0.1% but the processes scatter by 5%: step-level noise would call 3% significant.
    _write(tmp_path / "a", [_processes(forward, [100, 105, 95], precision="fp32")])
    _write(tmp_path / "b", [_processes(forward, [103, 108, 98], precision="bf16")])
    table, _, _ = compare(Side(tmp_path / "a"), Side(tmp_path / "b"))
    row = table.iloc[0]
    assert row["unit"] == "process" and (row["n_a"], row["n_b"]) == (3, 3)
    assert row["verdict"] == "no significant change" and row["ci_low_pct"] < 0 < row["ci_high_pct"]
    steps_only = compare_samples(ResultsStore(tmp_path / "a").records()[0].totals(),
                                 ResultsStore(tmp_path / "b").records()[0].totals())
    assert steps_only["verdict"] == "no significant change" or steps_only["ci_low_pct"] > 0  # what steps alone say


def test_single_process_rows_say_they_cover_step_noise_only(api_run_dir: Path, tmp_path: Path) -> None:
    forward = ResultsStore(api_run_dir).records()[0]
    repeated = _processes(forward, [100, 110, 90], precision="fp32")
    single = _with_totals(forward, normal(4, 100, 1), precision="fp32")
    single.data["key"] = repeated.data["key"]  # the same configuration, measured once more in one process
    _write(tmp_path / "a", [repeated, single])
    _write(tmp_path / "b", [_with_totals(forward, normal(5, 100, 1), precision="bf16")])
    table, changed, warnings = compare(Side(tmp_path / "a"), Side(tmp_path / "b"))
    assert table.iloc[0]["unit"] == "step"
    assert table.iloc[0]["known_between_cv_pct"] == pytest.approx(10.0)
    text = render(table, Side(tmp_path / "a"), Side(tmp_path / "b"), changed, warnings, 0.05)
    assert "Covers step-to-step noise only" in text and "between-process CV of these configurations at 10.0–10.0%" in text
    header = next(line for line in text.splitlines() if line.startswith("| model")).split("|")
    assert not {"vocab_size", "seed", "mode"} & {cell.strip() for cell in header}  # constant fields


def test_the_gate_refuses_what_it_cannot_decide(two_sides: tuple[Path, Path], api_run_dir: Path,
                                                tmp_path: Path) -> None:
    a, _ = two_sides
    forward = ResultsStore(api_run_dir).records()[0]
    oom = _with_totals(forward, [1.0], precision="bf16")
    oom.data.update(status="oom", oom={"phase": "forward", "message": "out of memory."})
    _write(tmp_path / "oom", [oom])
    nothing = run_main(["compare", f"{a}:mode=forward", str(tmp_path / "oom"), "--fail-on-regression", "5%"],
                       cwd=tmp_path)
    assert nothing.returncode == 2 and nothing.stderr.strip().endswith("nothing was compared (no configuration "
                                                                       "finished on both sides)")
    for side, total in (("few-a", 10.0), ("few-b", 12.0)):  # one measured step a side: no interval exists
        record = _with_totals(forward, [total], precision="fp32" if side == "few-a" else "bf16")
        record.data["samples"] = [s for s in record.data["samples"] if s["warmup"]] + [
            next(s for s in record.data["samples"] if not s["warmup"])]
        _write(tmp_path / side, [record])
    few = run_main(["compare", str(tmp_path / "few-a"), str(tmp_path / "few-b"), "--fail-on-regression", "5%"],
                   cwd=tmp_path)
    assert few.returncode == 2 and few.stderr.count("\n") == 1 and "too few steps to reach significance" in few.stderr
    assert "too few samples" in few.stdout  # the comparison itself still renders, with that verdict


def test_profiler_pairing_is_warned(two_sides: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = two_sides
    profiled = [Record(copy.deepcopy(r.data)) for r in ResultsStore(a).records()]
    for record in profiled:
        record.data["profiler"] = "nsys"
        record.data["config"]["annotate"] = "phases"
    _write(tmp_path / "p", profiled)
    _, changed, warnings = compare(Side(a), Side(tmp_path / "p"))
    assert changed == ["annotate"]
    assert any(w.startswith("profiler differs: none (A) vs nsys (B)") for w in warnings)
