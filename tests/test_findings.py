"""Each finding on synthetic result sets built to trigger it, and built not to; the fit exponent
recovered from synthetic power-law data. Records are made by the real record builder from synthetic
per-step samples, so every derived field is computed as in a run."""

from __future__ import annotations

import random

import pytest
import torch

from helpers import tiny
from lmbench.analysis.findings import scaling, steps, variance, variants
from lmbench.analysis.findings import findings, run_findings
from lmbench.analysis.findings.timing import flops_scaling
from lmbench.measure.harness import Measurement
from lmbench.measure.recording import build_record

SIZES = ("tiny", "small", "medium", "large")


def record(size: str, totals: list[float], warmup: int = 2, params: int = 1000, precision: str = "fp32",
           telemetry: dict | None = None, **config: object) -> dict:
    """A record of `size` whose steps have the given totals (forward only), the first `warmup` warm-up."""
    cfg = tiny(size=size, mode="forward", warmup=warmup, steps=len(totals) - warmup, precision=precision, **config)
    samples = [{"step": i, "warmup": i < warmup, "forward_ms": t, "step_ms": t} for i, t in enumerate(totals)]
    measurement = Measurement(device=torch.device("cpu"), params=params, build_s=0.1, samples=samples,
                              telemetry=telemetry or {})
    return build_record(cfg, measurement, wall_s=1.0)


def steady(mean: float, n: int = 12, cv: float = 0.01, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, mean * cv) for _ in range(n)]


def flops_of(size: str) -> float:
    """The model FLOPs per step the record builder computes for `size` (same shape as record())."""
    return record(size, [1.0, 1.0, 1.0, 1.0]).data["throughput"]["flops"]["total"]


def law(exponent: float, **kwargs: object) -> list[dict]:
    """Records whose mean time follows time = c * FLOPs**exponent, parameters proportional to FLOPs."""
    return [record(s, steady(1e-6 * flops_of(s) ** exponent, seed=i), params=int(flops_of(s) / 1e3), **kwargs)
            for i, s in enumerate(SIZES)]


def test_fit_exponent_recovered_on_power_law_data() -> None:
    records = [record(s, steady(1e-7 * flops_of(s) ** 0.75, seed=i), params=int(flops_of(s) / 1e3))
               for i, s in enumerate(SIZES)]
    by_params = scaling.parameters(records)
    assert by_params.numbers["exponent"] == pytest.approx(0.75, abs=0.03) and by_params.numbers["r2"] > 0.99
    assert scaling.deviations(records).claim.endswith("none is more than 15% off the curve.")


def test_deviation_names_the_size_off_the_curve() -> None:
    records = law(1.0)
    records[2] = record("medium", steady(1.6e-6 * flops_of("medium"), seed=7))  # 60% above the linear law
    found = scaling.deviations(records)
    assert "medium" in found.claim.split(";")[1] and found.numbers["residual_pct"]["medium"] > 15


def test_low_rate_sizes_and_mfu_trend() -> None:
    flat = [record(s, steady(10.0, seed=i)) for i, s in enumerate(SIZES)]
    found = scaling.efficiency(flat)  # same time for 64x the FLOPs: the small sizes reach a low rate
    assert set(found.numbers["low_rate"]) == {"tiny", "small", "medium"}
    assert "rises with every size" in found.claim and "reach less than 50% of the best rate" in found.claim
    assert found.numbers["host_bound"] == [] and found.numbers["commands"] == {}  # a CPU run: rates only
    assert scaling.efficiency(law(1.0)).numbers["low_rate"] == []


def test_precision_speedup_pairs_only_matching_configurations() -> None:
    records = [record("small", steady(10.0)), record("small", steady(4.0, seed=1), precision="bf16"),
               record("medium", steady(20.0, seed=2), precision="bf16")]
    found = run_findings(records)[0]
    assert found.numbers["speedup"] == {"small bf16": pytest.approx(2.5, rel=0.03)}
    assert run_findings([record("small", steady(10.0))]) == []
    assert found.numbers["pairs"]["small bf16"]["verdict"] == "faster" and "slower" not in found.claim
    mixed = [record("small", steady(10.0)), record("small", steady(12.5, seed=1), precision="bf16"),
             record("medium", steady(20.0, seed=2)), record("medium", steady(5.0, seed=3), precision="bf16"),
             record("large", steady(40.0, seed=4)), record("large", steady(10.0, seed=5), precision="bf16")]
    found = run_findings(mixed)[0]
    assert found.numbers["slower"] == ["small bf16"] and found.numbers["faster"] == ["medium bf16", "large bf16"]
    assert "faster in 2; slower in 1 (small bf16)" in found.claim and "over 3 configurations" in found.claim
    pair = found.numbers["pairs"]["small bf16"]
    assert pair["speedup"] == pytest.approx(0.8, rel=0.02) and pair["ci_low"] < pair["speedup"] < pair["ci_high"] < 1


def test_attention_variant_against_naive() -> None:
    records = [record("small", steady(30.0), attention="naive"), record("small", steady(10.0, seed=1)),
               record("medium", steady(60.0, seed=2), precision="bf16", attention="naive")]
    found = variants.variant_speedups(records, "attention")
    assert found.numbers["speedup"] == {"small fp32 attention sdpa": pytest.approx(3.0, rel=0.03)}
    assert found.claim.startswith("Against attention naive (attention naive time / variant time, 95% CI with steps as "
                                  "the unit): small fp32 attention sdpa 3.0")
    tf32 = variants.variant_speedups([record("small", steady(10.0)), record("small", steady(5.0, seed=1), tf32=True)], "tf32")
    assert tf32.claim.startswith("Against TF32 off (TF32 off time / variant time, 95% CI with steps as the unit): "
                                 "small TF32 on 2.0")
    assert list(tf32.numbers["speedup"]) == ["small TF32 on"]
    assert variants.variant_speedups(records, "precision") is None  # no fp32/bf16 pair of one configuration


def test_context_length_growth_against_flops() -> None:
    flops = {c: record("small", [1.0] * 4, ctx=c).data["throughput"]["flops"]["total"] for c in (16, 32, 64)}
    linear = [record("small", steady(1e-6 * flops[c], seed=c), ctx=c) for c in flops]
    flat = [record("medium", steady(5.0, seed=c), ctx=c) for c in flops]
    found = scaling.context_scaling(linear + flat)
    fits = found.numbers["fits"]
    assert fits["small"]["time_exponent"] == pytest.approx(fits["small"]["flops_exponent"], abs=0.05)
    assert fits["small"]["clear"] and fits["small"]["ci_low"] <= fits["small"]["exponent"] <= fits["small"]["ci_high"]
    # Flat time with step noise: R² is low, so no power law and no slower-than-FLOPs claim
    assert not fits["medium"]["clear"] and "medium no clear power law" in found.claim
    assert found.numbers["slower_than_flops"] == [] and found.numbers["faster_than_flops"] == []
    assert "No clear fit reaches ctx^1.5" in found.claim
    assert scaling.context_scaling(linear[:2]) is None  # two contexts are not a fit


def test_a_poor_power_law_fit_is_not_read() -> None:
    clear = flops_scaling(law(0.5))
    assert clear.numbers["reading"] == "below" and "time rises less than proportionally" in clear.claim
    zigzag = [record(s, steady(t, seed=i), params=int(flops_of(s) / 1e3))
              for i, (s, t) in enumerate(zip(SIZES, (10.0, 40.0, 12.0, 35.0)))]
    found = flops_scaling(zigzag)
    assert found.numbers["r2"] < 0.9 and not found.numbers["clear"] and found.numbers["reading"] is None
    assert "no clear power law" in found.claim and "FLOPs^" not in found.claim
    assert scaling.deviations(zigzag) is None and "no clear power law" in scaling.parameters(zigzag).claim


def test_outlier_steps_are_named_as_the_plots_number_them() -> None:
    late = steady(10.0, n=12)
    late[-1] = 30.0
    found = variance.outlier_steps([record("small", late)])
    assert "small 1 of 10 measured steps — slow" in found.claim and "step 11 at 30.00 ms" in found.claim
    assert found.numbers["outliers"]["small"] == [{"process": 0, "step": 11, "tail": "slow", "total_ms": 30.0}]
    assert variance.outlier_steps([record("small", steady(10.0))]) is None


def test_steady_state_after_the_warm_up() -> None:
    slow_start = [50.0, 30.0, 20.0, 10.0] + steady(10.0, n=8)  # still settling after 2 warm-up steps
    found = steps.steady_state([record("small", slow_start, warmup=2)])
    judged = found.numbers["states"]["small"]
    assert judged["state"] == "settling" and judged["steady_from"] == 3 and judged["settling_steps"] == [2]
    assert "still settling" in found.claim and "measured step(s) 2 outside, in the band from step 3" in found.claim
    settled = steps.steady_state([record("small", [40.0] + steady(10.0, n=9), warmup=2)])
    assert settled.numbers["states"]["small"]["state"] == "settled" and "settling" not in settled.claim


def test_cv_ranking_orders_the_phases() -> None:
    found = variance.cv_ranking([record("small", steady(10.0, cv=0.2)), record("medium", steady(10.0, cv=0.01))])
    assert found.numbers["ranking"][0]["label"] == "small"
    assert variance.cv_ranking([record("small", steady(10.0))]) is None  # one phase: nothing to rank


def test_machine_telemetry_findings() -> None:
    busy = {"summary": {"sm_clock_mhz": {"min": 1500, "mean": 1700, "max": 1980},
                        "throttle_reasons": [0, 4], "other_load_pct": {"min": 0, "mean": 30, "max": 85},
                        "swap_used_mb": {"min": 0, "mean": 10, "max": 120}}}
    found = variance.machine([record("small", steady(10.0), telemetry=busy)])
    for text in ("SM clock 1500–1980 MHz (moved 24.2%)", "clocks held back by software power cap",
                 "other processes used up to 85% of the CPU", "120 MB of swap"):
        assert text in found.claim
    quiet = {"summary": {"sm_clock_mhz": {"min": 1980, "mean": 1980, "max": 1980}, "throttle_reasons": [0],
                         "other_load_pct": {"min": 0, "mean": 1, "max": 3}, "swap_used_mb": {"min": 0, "mean": 0, "max": 0}}}
    claim = variance.machine([record("small", steady(10.0), telemetry=quiet)]).claim
    assert "moved" not in claim and "held back" not in claim and "other processes" not in claim and "swap" not in claim
    assert variance.machine([record("small", steady(10.0))]) is None
    assert variance.clock_event_reasons([0, 1]) == []  # idle between launches is not throttling
    assert variance.clock_event_reasons([0x8, 0x40, 0x1000]) == ["hardware slowdown", "hardware thermal slowdown",
                                                                 "reason bits 0x1000"]


def test_group_findings_include_the_new_topics() -> None:
    topics = {f.topic for f in findings(law(1.0))}
    assert {"scaling", "scaling (parameters)", "scaling (per size)", "efficiency", "variance", "steady state"} <= topics


def test_host_overhead_split_and_host_jitter() -> None:
    from lmbench.analysis.findings.overhead import host_overhead
    from lmbench.results.stats import summarize

    eager = record("small", steady(47.0, cv=0.13))
    replays = steady(10.8, cv=0.001, seed=3)
    eager.data["graph"] = {"samples_ms": replays, "stats": summarize(replays).as_dict()}
    found = host_overhead([eager])[0]
    split = found.numbers["split"]["small"]
    assert split["host_ms"] == pytest.approx(eager.data["stats"]["total"]["mean"] - summarize(replays).mean)
    assert found.numbers["host_jitter"] == ["small"] and "host jitter" in found.claim
    calm = record("small", steady(12.0, cv=0.001))
    calm.data["graph"] = {"samples_ms": replays, "stats": summarize(replays).as_dict()}
    assert host_overhead([calm])[0].numbers["host_jitter"] == []
    failed = record("small", steady(12.0))
    failed.data["graph"] = {"error": "CUDA graph capture failed: operation not permitted when stream is capturing"}
    assert "operation not permitted" in host_overhead([failed])[0].claim
    assert host_overhead([record("small", steady(12.0))]) == []


def test_report_shows_the_eager_step_beside_its_graph_replay() -> None:
    from lmbench.render.timing_report import render_records
    from lmbench.results.stats import summarize

    eager, failed = record("small", steady(47.0, cv=0.13)), record("medium", steady(90.0))
    replays = steady(10.8, cv=0.001, seed=3)
    eager.data["graph"] = {"samples_ms": replays, "stats": summarize(replays).as_dict()}
    failed.data["graph"] = {"error": "CUDA graph capture failed: not capturable"}
    text, tables = render_records([eager, failed], "run")
    small, medium = tables["graph"].iloc[0], tables["graph"].iloc[1]
    assert small["Graph replay (ms)"] == f"{summarize(replays).mean:.2f}"
    assert small["Exposed host time (ms)"] == f"{eager.mean_ms() - summarize(replays).mean:.2f}"
    assert medium["Exposed host time (ms)"] == "CUDA graph capture failed: not capturable" and medium["Replay CV"] == "—"
    assert "### Eager Step against its CUDA Graph Replay" in text
    assert "Graph Replay" not in render_records([record("small", steady(47.0))], "run")[0]


def test_a_group_without_finished_records_has_no_computed_findings() -> None:
    assert findings([]) == []
