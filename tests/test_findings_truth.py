"""Findings against a known truth. Each test builds a synthetic result set whose answer is fixed by
construction (pure noise, exact power laws, a known offset between processes, a single slow step ...)
through the real record builder, and checks each finding's structured `numbers`, not its wording, against
that answer; wording is checked only where a word itself would be a false claim."""

from __future__ import annotations

import random
import shlex

import pytest

from test_findings import record, steady
from lmbench.analysis.findings import scaling, steps, variance
from lmbench.analysis.findings.caveats import HIGH_CV_PCT
from lmbench.analysis.findings.finding import CAVEAT
from lmbench.render.markdown import finding_lines
from lmbench.analysis.findings import findings, run_findings
from lmbench.analysis.findings.timing import flops_scaling
from lmbench.analysis.findings.overhead import HOST_BOUND_PCT, host_overhead
from lmbench.config import BenchConfig
from lmbench.measure.processes import merge_processes
from lmbench.measure.sampling import Sampling
from lmbench.results.stats import summarize

ALL_SIZES = ("tiny", "small", "medium", "large", "xl", "2.7B", "10B")  # seven points: chance R² ≥ 0.9 is ~0.1%
CTXS = (16, 32, 64, 128)
CUDA_WORDS = ("launch", "CUDA", "cuda", "--cuda-graph", "GPU", "nsys", "kernel")


def flops(size: str, ctx: int = 16) -> float:
    return record(size, [1.0] * 4, ctx=ctx).data["throughput"]["flops"]["total"]


def even(mean: float, n: int) -> list[float]:
    """n step totals spread evenly over ±1% of `mean` (in a shuffled order): no Tukey outlier among them."""
    values = [mean * (0.99 + 0.02 * k / (n - 1)) for k in range(n)]
    return random.Random(n).sample(values, n)


def merged(parts: list[list[float]], warmup: int = 2, **config: object) -> dict:
    """One record of `size` small measured in len(parts) processes with these per-process step totals."""
    return merge_processes([record("small", totals, warmup=warmup, **config) for totals in parts],
                           Sampling(repeats=len(parts)), "count")


def on_cuda(rec: dict, replay_ms: float | None = None) -> dict:
    """The record as if measured on a GPU, with a steady CUDA graph replay of `replay_ms` when given."""
    rec.data["environment"]["device_type"] = "cuda"
    if replay_ms is not None:
        replays = steady(replay_ms, n=10, cv=0.001, seed=99)
        rec.data["graph"] = {"samples_ms": replays, "stats": summarize(replays).as_dict()}
    return rec


def all_text(found: list) -> str:
    return " ".join(f"{f.claim} {f.basis}" for f in found)


@pytest.mark.parametrize("seed", range(3))
def test_pure_noise_gives_no_scaling_and_no_precision_claim(seed: int) -> None:
    rng = random.Random(seed)
    fp32 = [record(s, steady(10.0, cv=0.05, seed=rng.randrange(10**6)), params=int(flops(s) / 1e3)) for s in ALL_SIZES]
    bf16 = []
    for base in fp32:  # the same distribution: the very same step times, in another order
        times = [s["forward_ms"] for s in base.data["samples"]]
        shuffled = times[:2] + rng.sample(times[2:], len(times) - 2)
        bf16.append(record(base.data["config"]["size"], shuffled, params=base.data["model"]["params"], precision="bf16"))
    fit = flops_scaling(fp32).numbers
    assert not fit["clear"] and fit["reading"] is None
    assert not scaling.parameters(fp32).numbers["clear"] and scaling.deviations(fp32) is None
    precision = next(f for f in run_findings(fp32 + bf16) if f.topic == "precision")
    assert precision.numbers["slower"] == [] and precision.numbers["faster"] == []
    assert {p["verdict"] for p in precision.numbers["pairs"].values()} == {"no significant change"}
    by_ctx = [record("small", steady(10.0, cv=0.05, seed=rng.randrange(10**6)), ctx=c) for c in CTXS]
    context = scaling.context_scaling(by_ctx)
    assert not context.numbers["fits"]["small"]["clear"]
    assert context.numbers["slower_than_flops"] == context.numbers["faster_than_flops"] == []


@pytest.mark.parametrize("exponent", (0.5, 1.0, 1.3))
def test_exact_power_laws_are_recovered_and_clear(exponent: float) -> None:
    records = [record(s, steady(1e-6 * flops(s) ** exponent, cv=0.001, seed=i), params=int(flops(s) / 1e3))
               for i, s in enumerate(ALL_SIZES)]
    for fit in (flops_scaling(records).numbers, scaling.parameters(records).numbers):
        assert fit["clear"] and fit["exponent"] == pytest.approx(exponent, abs=0.02)
        assert fit["ci_low"] <= exponent <= fit["ci_high"]
    assert flops_scaling(records).numbers["reading"] == {0.5: "below", 1.0: "consistent", 1.3: "above"}[exponent]
    by_ctx = [record("small", steady(0.01 * c**exponent, cv=0.001, seed=c), ctx=c) for c in CTXS]
    context = scaling.context_scaling(by_ctx).numbers
    fit = context["fits"]["small"]
    assert fit["clear"] and fit["time_exponent"] == pytest.approx(exponent, abs=0.02)
    # The FLOPs of this shape grow about as ctx^1.0 over these contexts: 0.5 is slower, 1.3 faster, 1.0 neither.
    assert context["slower_than_flops"] == (["small"] if exponent == 0.5 else [])
    assert context["faster_than_flops"] == (["small"] if exponent == 1.3 else [])


@pytest.mark.parametrize("warmup", (0, 2))
def test_a_first_step_faster_than_the_rest_is_called_faster(warmup: int) -> None:
    found = steps.first_step([record("small", [5.0] + steady(10.0, n=11), warmup=warmup)])
    assert found.numbers["verdicts"] == {"small": "faster"}
    assert found.numbers["ratios"]["small"] == pytest.approx(0.5, rel=0.03)
    assert "slowest" not in found.claim and "slower" not in found.claim
    same = steps.first_step([record("small", steady(10.0, n=12), warmup=warmup)])
    assert same.numbers["verdicts"] == {"small": "about the same"}


def test_each_process_has_its_own_first_step() -> None:
    rec = merged([[30.0] + even(10.0, 11), [5.0] + even(10.0, 11)], warmup=1)
    assert steps.first_step([rec]).numbers["verdicts"] == {"small process 0": "slower", "small process 1": "faster"}


def test_a_tied_lowest_cv_is_not_called_the_lowest() -> None:
    cvs = (0.2, 0.1, 0.05, 0.01)
    records = [record(s, steady(10.0, cv=cv, seed=i)) for i, (s, cv) in enumerate(zip(ALL_SIZES, cvs))]
    assert "the lowest of all 4 is large forward" in variance.cv_ranking(records).claim
    records.append(record("xl", [s["forward_ms"] for s in records[3].data["samples"]]))  # large's steps again: a tie
    ranking = variance.cv_ranking(records)
    assert [r["label"] for r in ranking.numbers["ranking"]] == ["tiny", "small", "medium"]
    assert "lowest" not in ranking.claim


def test_scattered_slow_steps_are_jitter_not_unfinished_warm_up() -> None:
    totals = steady(10.0, n=16, cv=0.01, seed=3)
    totals[8] = totals[13] = 13.0  # measured steps 2..15; slow ones in the middle and near the end
    judged = steps.steady_state([record("small", totals, warmup=2)]).numbers["states"]["small"]
    assert judged["state"] == "jitter" and judged["jitter_steps"] == [8, 13] and judged["settling_steps"] == []
    assert judged["steady_from"] == 2


def test_slow_first_measured_steps_are_unfinished_warm_up() -> None:
    totals = [30.0, 20.0, 15.0, 13.0] + steady(10.0, n=12, cv=0.01, seed=4)
    judged = steps.steady_state([record("small", totals, warmup=2)]).numbers["states"]["small"]
    assert judged["state"] == "settling" and judged["settling_steps"] == [2, 3] and judged["steady_from"] == 4
    assert judged["jitter_steps"] == []


def test_a_run_that_keeps_drifting_never_settled() -> None:
    drifting = [40.0 - 2 * i for i in range(16)]  # falls 2 ms a step: no few steps in a row share a level
    judged = steps.steady_state([record("small", drifting, warmup=1)]).numbers["states"]["small"]
    assert judged["state"] == "unsettled" and judged["steady_from"] is None
    settled = steps.steady_state([record("small", [40.0] + steady(10.0, n=11), warmup=1)])
    assert settled.numbers["states"]["small"] == {**settled.numbers["states"]["small"], "state": "settled",
                                                  "outside": []}


def test_each_process_settles_on_its_own() -> None:
    rec = merged([[20.0, 15.0] + steady(10.0, n=10, seed=1), [20.0, 15.0, 14.0] + steady(10.0, n=9, seed=2)])
    states = steps.steady_state([rec]).numbers["states"]
    assert states["small process 0"]["state"] == "settled"
    assert states["small process 1"]["state"] == "settling" and states["small process 1"]["settling_steps"] == [2]


def test_a_single_slow_step_is_one_outlier_numbered_as_the_plots_number_it() -> None:
    totals = even(10.0, 14)
    totals[9] = 25.0
    rec = record("small", totals, warmup=3)
    found = variance.outlier_steps([rec]).numbers
    assert found["outliers"] == {"small": [{"process": 0, "step": 9, "tail": "slow", "total_ms": 25.0}]}
    assert rec.data["samples"][9]["step"] == 9  # the x the step plot draws it at
    noise = next(f for f in findings([rec]) if f.topic == "variance" and "outlier_steps" in f.numbers).numbers
    assert (noise["outlier_steps"], noise["slow"], noise["fast"], noise["fenced_steps"]) == (1, 1, 0, 11)
    fast = even(10.0, 14)
    fast[6] = 2.0
    assert variance.outlier_steps([record("small", fast, warmup=3)]).numbers["fast"] == 1
    several = merged([even(10.0, 8), even(10.0, 7)[:5] + [25.0] + even(10.0, 7)[5:]])
    assert [(o["process"], o["step"]) for o in variance.outlier_steps([several]).numbers["outliers"]["small"]] == [(1, 5)]
    assert "process 1 step 5" in variance.outlier_steps([several]).claim


def test_a_known_offset_between_processes_dominates() -> None:
    rng = random.Random(7)
    rec = merged([[rng.gauss(100.0, 0.1) for _ in range(12)], [rng.gauss(110.0, 0.1) for _ in range(12)]])
    row = variance.between_processes([rec]).numbers["processes"]["small"]
    assert row["dominant"] == "between" and row["p_anova"] < 0.05
    assert row["between_cv_pct"] == pytest.approx(100 * 7.0711 / 105, rel=0.01)  # std of (100, 110) / 105
    assert row["processes"] == 2 and row["steps_per_process"] == [10, 10]
    assert row["between_cv_pct"] > 10 * row["expected_cv_pct"]


def test_step_noise_dominates_when_processes_share_a_mean() -> None:
    rng = random.Random(8)
    first = [rng.gauss(100.0, 20.0) for _ in range(12)]
    rec = merged([first, first[:2] + rng.sample(first[2:], 10)])  # same steps, another order: equal means
    row = variance.between_processes([rec]).numbers["processes"]["small"]
    assert row["dominant"] == "within" and row["p_anova"] > 0.05 and row["within_cv_pct"] > 10
    assert variance.between_processes([record("small", steady(10.0))]) is None  # one process: no such finding


def test_cpu_runs_say_nothing_cuda_specific() -> None:
    busy = {"summary": {"other_load_pct": {"min": 0, "mean": 30, "max": 85}, "swap_used_mb": {"min": 0, "mean": 1, "max": 9},
                        "cpu_freq_mhz": {"min": 2000, "mean": 2500, "max": 3000}}}
    cpu = [record(s, steady(10.0, cv=0.3 if s == "tiny" else 0.01, seed=i), telemetry=busy)  # same time, 64x the FLOPs
           for i, s in enumerate(ALL_SIZES[:4])]
    cpu[1] = record("small", even(10.0, 10) + [30.0], telemetry=busy)  # one slow step
    found = findings(cpu) + run_findings(cpu + [record("small", steady(5.0), precision="bf16")])
    efficiency = next(f for f in found if f.topic == "efficiency").numbers
    assert efficiency["low_rate"] and efficiency["host_bound"] == [] and efficiency["commands"] == {}
    assert {"caveat", "machine", "steady state", "outliers"} <= {f.topic for f in found}
    text = all_text(found)
    assert not [word for word in CUDA_WORDS if word in text]


def test_a_graph_replay_with_most_of_the_step_on_the_host_is_host_bound() -> None:
    eager = 20.0
    bound = on_cuda(record("small", steady(eager, seed=1)), replay_ms=eager * (1 - (HOST_BOUND_PCT + 10) / 100))
    near = on_cuda(record("medium", steady(eager, seed=2)), replay_ms=eager * (1 - (HOST_BOUND_PCT - 5) / 100))
    best = on_cuda(record("large", steady(eager / 8, seed=3)))
    efficiency = scaling.efficiency([bound, near, best]).numbers
    assert efficiency["host_bound"] == ["small"] and efficiency["commands"] == {}
    assert efficiency["host_pct"]["small"] == pytest.approx(HOST_BOUND_PCT + 10, abs=1)
    assert host_overhead([bound, near])[0].numbers["host_bound"] == ["small"]
    assert "launch-bound" not in all_text(findings([bound, near, best]))


def test_without_a_graph_the_command_that_would_decide_is_named() -> None:
    records = [on_cuda(record(s, steady(10.0, seed=i), precision="bf16")) for i, s in enumerate(("small", "medium"))]
    found = scaling.efficiency(records)
    config = BenchConfig.from_dict({**records[0].data["config"], "cuda_graph": True})
    assert found.numbers["low_rate"] == ["small"] and found.numbers["host_bound"] == []
    assert found.numbers["commands"] == {"small": "lmbench bench " + shlex.join(config.to_args())}
    assert found.numbers["commands"]["small"].endswith("--cuda-graph") and "--precision bf16" in found.claim
    assert "launch-bound" not in found.claim and "host-bound" not in found.claim
    fp16 = on_cuda(record("small", steady(10.0), precision="fp16"))
    command = scaling.efficiency([fp16, records[1]]).numbers["commands"]["small"]
    assert command.startswith("lmbench nsys") and "--cuda-graph" not in command  # fp16 cannot be captured


def test_a_noisy_group_carries_a_visible_caveat() -> None:
    noisy = [record("small", steady(10.0, cv=0.3, seed=1)), record("medium", steady(20.0, seed=2))]
    caveats = [f for f in findings(noisy) if f.topic == CAVEAT]
    assert len(caveats) == 1 and list(caveats[0].numbers["high_cv_pct"]) == ["small forward"]
    assert caveats[0].numbers["high_cv_pct"]["small forward"] > HIGH_CV_PCT
    lines = finding_lines(findings(noisy))
    assert lines[0].startswith("**Caveat:**") and lines[2].startswith("1. **")
    quiet = [record("small", steady(10.0, cv=0.01, seed=1))]
    assert not [f for f in findings(quiet) if f.topic == CAVEAT]


def test_interference_and_a_profiler_are_caveats() -> None:
    busy = {"summary": {"other_load_pct": {"min": 0, "mean": 30, "max": 85}, "throttle_reasons": [0, 0x20]}}
    rec = record("small", steady(10.0), telemetry=busy)
    held = [f for f in findings([rec]) if f.topic == CAVEAT][0].numbers["interference"]["small"]
    assert held == {"other_load_pct": 85, "clock_events": ["software thermal slowdown"]}
    capped = record("2.7B", steady(10.0), telemetry={"summary": {"throttle_reasons": [0x4]}})
    [caveat] = [f for f in findings([capped]) if f.topic == CAVEAT]
    assert caveat.claim.startswith("Something held the measured steps back — 2.7B: clocks held back by software "
                                   "power cap.") and "the load itself can set it off" in caveat.claim
    profiled = record("small", steady(10.0))
    profiled.data["profiler"] = "nsys"
    assert [f.numbers for f in findings([profiled]) if f.topic == CAVEAT] == [{"profiler": {"small": "nsys"}}]


def test_the_report_shows_a_caveat_before_the_findings() -> None:
    from lmbench.render.timing_report import render_records

    text, _ = render_records([record("small", steady(10.0, cv=0.3, seed=1))], "run")
    section = text.split("### Findings", 1)[1]
    assert section.index("**Caveat:** Step times vary by more than 20%") < section.index("1. **")


def test_a_speedup_whose_ci_has_no_upper_bound_says_so() -> None:
    """Two processes a side, the baseline's far apart: the variant's time CI reaches zero, so the speedup's CI has no
    upper bound and reads ∞ (not 'inf')."""
    from lmbench.analysis.findings import variants
    base = merged([even(10.0, 8), even(20.0, 8)])
    fast = merged([even(5.0, 8), even(5.1, 8)], precision="bf16")
    found = variants.variant_speedups([base, fast], "precision")
    pair = next(iter(found.numbers["pairs"].values()))
    assert pair["unit"] == "process" and pair["verdict"] == "no significant change"
    assert pair["ci_high"] == float("inf") and f"{pair['ci_low']:.2f}–∞, no significant change)" in found.claim
