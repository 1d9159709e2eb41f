"""The CPU trace analysis on a real CPU capture (tests/fixtures/trace-cpu-tiny: `lmbench profile --size tiny
--device cpu --mode train-step --ctx 32 --batch 2 --vocab-size 64 --warmup 1 --steps 4`, phase ranges): self CPU
time per operator against the raw trace JSON, attribution to phases and steps, the phases against lmbench's
timings, the slow-step analysis, and the report through `lmbench kernels`."""

from __future__ import annotations

import filecmp
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO_ROOT, render_copied_capture, run_main
from lmbench.analysis.findings.variance import slow_steps_in_cpu_trace
from lmbench.kernels import cpu_ops
from lmbench.kernels.report import CpuTrace
from lmbench.kernels.torch_trace import lmbench_ranges, read_trace, trace_files
from lmbench.results.record import Record
from lmbench.results.store import ResultsStore

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "trace-cpu-tiny"
CAPTURE = FIXTURE / "tiny-train-step-fp32-sdpa-b2-ctx32"
EXPECTED = REPO_ROOT / "tests" / "fixtures" / "kernel-reports" / "cpu"  # what the report of CAPTURE renders as


@pytest.fixture(scope="module")
def trace():
    return read_trace(trace_files(CAPTURE)[-1])


@pytest.fixture(scope="module")
def record() -> Record:
    return ResultsStore(FIXTURE).records()[-1]


@pytest.fixture(scope="module")
def tables(trace, record: Record) -> dict[str, pd.DataFrame]:
    return CpuTrace(trace).tables(record)


@pytest.fixture(scope="module")
def raw_ops() -> list[dict]:
    with gzip.open(trace_files(CAPTURE)[-1]) as f:
        return [e for e in json.load(f)["traceEvents"] if e.get("cat") == "cpu_op" and e.get("ph") == "X"]


def _direct_children(parent: dict, events: list[dict]) -> list[dict]:
    """From the raw JSON, in µs: the operators inside `parent` on its thread that no other such operator holds."""
    end = parent["ts"] + parent["dur"]
    inside = [e for e in events if e is not parent and e["tid"] == parent["tid"]
              and parent["ts"] <= e["ts"] and e["ts"] + e["dur"] <= end]
    return [e for e in inside if not any(o is not e and o["ts"] <= e["ts"] and e["ts"] + e["dur"] <= o["ts"] + o["dur"]
                                         and o["dur"] > e["dur"] for o in inside)]


@pytest.mark.parametrize("name", ["aten::linear", "autograd::engine::evaluate_function: MmBackward0", "aten::mm"])
def test_self_time_is_duration_minus_direct_children_from_the_raw_json(trace, raw_ops: list[dict], name: str) -> None:
    self_ns = cpu_ops.self_times(trace.ops)
    chosen = [e for e in raw_ops if e["name"] == name][:3]
    assert chosen
    for event in chosen:
        children = _direct_children(event, raw_ops)
        expected_us = event["dur"] - sum(c["dur"] for c in children)
        row = trace.ops.index[(trace.ops["name"] == name) & (trace.ops["start"] == round(event["ts"] * 1000))]
        assert len(row) == 1
        assert self_ns[row[0]] == pytest.approx(expected_us * 1000, abs=1 + len(children))  # ns rounding per event
        if name == "aten::linear":  # a parent of parents: only its direct children count
            assert {c["name"] for c in children} >= {"aten::t", "aten::matmul"}


def test_operators_land_in_the_measured_steps_phases(trace) -> None:
    ranges = lmbench_ranges(trace)
    ops = cpu_ops.operator_frame(trace.ops, ranges)
    assert set(ops["step"]) == {0, 1, 2, 3} and set(ops["phase"]) == {"forward", "backward", "optimizer"}
    assert (ops["self_ns"] >= 0).all()
    phases = ranges[ranges["level"] == 1]
    starts = trace.ops["start"]
    per_phase = [int(starts.between(r.start, r.end).sum()) for r in phases.itertuples()]
    assert len(ops) == sum(per_phase) and ops.groupby(["step", "phase"], sort=False).size().tolist() == per_phase
    assert ops.groupby("phase")["name"].apply(lambda n: (n == "aten::lerp_").any()).to_dict() == {
        "backward": False, "forward": False, "optimizer": True}  # AdamW's update runs in the optimizer phase only
    assert {"MmBackward0", "aten::silu_backward"} <= set(ops.loc[ops["phase"] == "backward", "name"])


def test_self_times_fit_inside_the_phase_ranges(trace) -> None:
    ranges = lmbench_ranges(trace)
    ops, spans = cpu_ops.operator_frame(trace.ops, ranges), cpu_ops.range_spans(ranges)
    per_range = spans.set_index(["step", "phase"])["range_ns"]
    self_sum = ops.groupby(["step", "phase"])["self_ns"].sum()
    assert (self_sum <= per_range.reindex(self_sum.index)).all()  # one thread: operators never overlap in self time
    measured = ranges[ranges["name"].str.startswith("measured_")]
    assert per_range.xs("step", level="phase").sort_index().tolist() == (measured["end"] - measured["start"]).tolist()


def test_phase_table_sets_the_ranges_against_lmbench(tables: dict[str, pd.DataFrame], record: Record) -> None:
    phases = tables["phases"].set_index("phase")
    assert list(phases.index) == ["forward", "backward", "optimizer"]
    for phase in phases.index:  # every measured step was traced, so lmbench's mean is the record's mean
        assert phases.at[phase, "lmbench_ms"] == pytest.approx(record.mean_ms(phase))
    # the range sits inside lmbench's perf_counter phase: slightly shorter, never by much on this capture
    assert phases["range_vs_lmbench_pct"].between(98, 100).all()
    assert (phases["op_self_ms"] + phases["outside_ms"] - phases["range_ms"]).abs().max() < 1e-9
    assert phases["in_ops_pct"].between(50, 100).all()


def test_top_operators_shares_add_up_to_the_time_inside_operators(trace, tables: dict[str, pd.DataFrame]) -> None:
    ranges = lmbench_ranges(trace)
    ops, spans = cpu_ops.operator_frame(trace.ops, ranges), cpu_ops.range_spans(ranges)
    phases = tables["phases"].set_index("phase")
    for phase in phases.index:
        every = cpu_ops.top_operators(ops, spans, phase, n=10_000)
        assert every["share_pct"].sum() == pytest.approx(phases.at[phase, "in_ops_pct"])
        assert every["ms_per_step"].sum() == pytest.approx(phases.at[phase, "op_self_ms"])
    top = tables["top"]
    assert top.loc[top["phase"] == "step", "operator"].iloc[0] == "aten::mm"  # matmuls dominate a train step
    assert top.loc[top["phase"] == "backward", "operator"].iloc[0] == "aten::mm"
    assert top.groupby("phase")["ms_per_step"].apply(lambda s: s.is_monotonic_decreasing).all()
    forward_mm = ops[(ops["phase"] == "forward") & (ops["name"] == "aten::mm")]
    row = top[(top["phase"] == "forward") & (top["operator"] == "aten::mm")].iloc[0]
    assert row["calls_per_step"] == len(forward_mm) / 4
    assert row["ms_per_step"] == pytest.approx(forward_mm["self_ns"].sum() / 4 / 1e6)


def test_step_table_and_slowest_step(tables: dict[str, pd.DataFrame], record: Record) -> None:
    steps = tables["steps"]
    assert steps["step"].tolist() == [0, 1, 2, 3]
    assert steps["lmbench_ms"].tolist() == pytest.approx(record.totals())
    assert (steps["op_self_ms"] + steps["outside_ms"] - steps["range_ms"]).abs().max() < 1e-9
    assert (steps[["forward_ms", "backward_ms", "optimizer_ms"]].sum(axis=1) <= steps["range_ms"]).all()
    slowest = tables["slowest"]
    assert set(slowest["step"]) == {int(steps.loc[steps["lmbench_ms"].idxmax(), "step"])}
    assert (slowest["excess_ms"] > 0).all() and slowest["excess_ms"].is_monotonic_decreasing
    assert (slowest["slowest_ms"] - slowest["median_ms"] - slowest["excess_ms"]).abs().max() < 1e-9


def test_slow_cpu_steps_are_matched_against_operator_time() -> None:
    steps = pd.DataFrame({"step": [0, 1, 2, 3], "lmbench_ms": [20.0, 20.0, 30.0, 26.0],
                          "range_ms": [20.0, 20.0, 30.0, 26.0], "op_self_ms": [15.0, 15.0, 24.0, 15.5],
                          "outside_ms": [5.0, 5.0, 6.0, 10.5], "forward_ms": [8.0, 8.0, 8.0, 13.0],
                          "backward_ms": [10.0, 10.0, 20.0, 11.0], "optimizer_ms": [2.0, 2.0, 2.0, 2.0]})
    found = slow_steps_in_cpu_trace(steps)  # medians: 23 ms, 15.25 ms in operators, 5.5 ms outside
    assert [(r["step"], r["side"], r["phase"]) for r in found.numbers["slow"]] == [
        (2, "inside operators", "backward"), (3, "outside operators", "forward")]
    assert ("step 2 +7.00 ms: operator self time +8.75 ms, outside operators +0.50 ms, most in backward (+9.50 ms)"
            in found.claim)
    assert "step 3 +3.00 ms: operator self time +0.25 ms, outside operators +5.00 ms" in found.claim
    calm = steps.assign(lmbench_ms=[20.0, 20.5, 20.2, 20.1])
    assert slow_steps_in_cpu_trace(calm).claim.startswith("No traced step is more than 10% slower")
    assert slow_steps_in_cpu_trace(steps.drop(columns="lmbench_ms")) is None
    assert slow_steps_in_cpu_trace(steps.head(2)) is None  # two steps have no median to speak of


def test_lmbench_kernels_renders_the_cpu_report(tmp_path: Path) -> None:
    capture, proc, report = render_copied_capture(FIXTURE, CAPTURE.name, tmp_path)
    assert proc.stdout.strip() == report.strip()
    for section in ("# CPU operator report", "## Phases (per measured step)", "## Top operators by self CPU time — "
                    "whole step", "## Top operators by self CPU time — optimizer", "## Captured steps",
                    "**slow steps** — Slow steps", "## Slowest step against the median step"):
        assert section in report
    assert "GPU" not in report and "CUDA" not in report  # nothing of the kernel report's GPU sections
    summary = pd.read_csv(capture.parent / "kernels_summary.csv")
    assert summary["phase"].tolist() == ["forward", "backward", "optimizer"]
    assert {"range_ms", "op_self_ms", "in_ops_pct"} <= set(summary.columns) and "kernel_ms" not in summary.columns
    assert "In operators (%)" in (capture.parent / "kernels.md").read_text()


def test_the_cpu_report_renders_as_committed(tmp_path: Path) -> None:
    """tests/fixtures/kernel-reports/cpu/ holds the fixture's report; a change to it that is meant is committed by
    `lmbench kernels tests/fixtures/trace-cpu-tiny/tiny-train-step-fp32-sdpa-b2-ctx32 --out
    tests/fixtures/kernel-reports/cpu`."""
    proc = run_main(["kernels", str(CAPTURE), "--out", str(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = sorted(p.name for p in EXPECTED.iterdir())
    assert sorted(p.name for p in tmp_path.glob("kernels*")) == expected
    assert [name for name in expected if not filecmp.cmp(EXPECTED / name, tmp_path / name, shallow=False)] == []


def test_profile_without_ranges_skips_the_report_and_kernels_says_why(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import lmbench.render.timing_report
    monkeypatch.setattr(lmbench.render.timing_report, "figures", lambda records: iter(()))  # seconds; untested
    proc = run_main(["profile", "--size", "tiny", "--device", "cpu", "--ctx", "16", "--batch", "2", "--vocab-size",
                     "64", "--warmup", "0", "--steps", "1", "--annotate", "off", "--trace-dir", "run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no kernel report: it needs lmbench's ranges (--annotate phases or detail)" in proc.stderr
    capture = tmp_path / "run" / "tiny-forward-backward-fp32-sdpa-b2-ctx16"
    assert trace_files(capture) and not (capture / "kernels.md").exists()
    proc = run_main(["kernels", str(capture)], cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "holds neither GPU activity nor CPU operators" in proc.stderr and "--annotate phases" in proc.stderr
