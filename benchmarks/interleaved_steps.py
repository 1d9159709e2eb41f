"""The harness's step beside a bare loop over the same model, step by step in ABBA order (shared by the targets).

Eager steps on the H200 drift by 10-20% from block to block, so only adjacent steps compare fairly: both loops run
on one model instance and one input batch, alternating (harness, bare), (bare, harness), ... The harness side is
lmbench.measure.harness.Step (per-phase CUDA events, one synchronize), summed over its phases as the report's Total;
the bare side is two CUDA events around autocast forward, cross entropy and backward. Both free the previous
autograd graph inside a timed step (the harness in its backward phase, the bare loop when it rebinds `loss`).
With `config.compile` set, the model is compiled once (measure/compile.py) and both loops call the same compiled
module; the first call's time is the compile time, and graphs compiled after the warm-up pairs are counted.
"""

from __future__ import annotations

import gc
import time

import torch
import torch.nn.functional as F

from lmbench.config import BenchConfig
from lmbench.measure.compile import compile_model, dynamo_counts, release
from lmbench.measure.harness import AUTOCAST_DTYPES, Step
from lmbench.measure.model_factory import build
from lmbench.results.stats import paired_difference_pct, summarize


def pairs_per_size(sizes: list[str], pairs: str) -> list[int]:
    """--pairs of the targets: one count for every size, or one per size ('100,30')."""
    counts = [int(p) for p in pairs.split(",")]
    counts = counts * len(sizes) if len(counts) == 1 else counts
    if len(counts) != len(sizes):
        raise SystemExit(f"--pairs gives {len(counts)} counts for {len(sizes)} sizes")
    return counts


def within_target(rows: list[dict], target_pct: float) -> str:
    """The verdict on "within target_pct% of a bare loop" from each row's paired per-step difference and its 95% CI
    (`pair_diff_ci_pct`): met when every CI lies inside ±target, MISSED when some CI lies wholly outside it, and not
    resolved otherwise (a mean inside the target with a CI reaching past it says nothing yet: more pairs)."""
    cis = [row["pair_diff_ci_pct"] for row in rows]
    if all(-target_pct <= low and high <= target_pct for low, high in cis):
        return "met"
    if any(low > target_pct or high < -target_pct for low, high in cis):
        return "MISSED"
    return "not resolved (a CI reaches past the target: more pairs)"


def interleaved(config: BenchConfig, pairs: int, warmup: int = 5) -> dict:
    """Mean forward+backward step time of the harness's Step and of a bare event loop, alternating on one model."""
    h, b, first_call_s, recompiles = _steps(config, pairs, warmup)
    gc.collect()  # the model and its compiled graphs, before the next configuration is built
    release()
    torch.cuda.empty_cache()
    diffs, harness_ms, bare_ms = paired_difference_pct(h, b), summarize(h), summarize(b)
    return {"harness_ms": harness_ms.mean, "bare_ms": bare_ms.mean,
            "diff_pct": 100 * (harness_ms.mean / bare_ms.mean - 1), "pair_diff_ci_pct": [diffs.ci_low, diffs.ci_high],
            "pairs": pairs, "harness_cv_pct": harness_ms.cv_pct, "bare_cv_pct": bare_ms.cv_pct,
            "first_call_s": first_call_s, "recompiles_in_pairs": recompiles}


def _steps(config: BenchConfig, pairs: int, warmup: int) -> tuple[list[float], list[float], float, int]:
    """(harness ms, bare ms) per measured pair, the first call's seconds, and graphs compiled during the pairs."""
    device = torch.device("cuda")
    torch.manual_seed(config.seed)
    model = build(config, device)  # as the harness builds it: --param-dtype applies
    if config.compile != "off":
        model = compile_model(model, config.compile)
    step = Step(config, model, device)
    dtype = AUTOCAST_DTYPES[config.precision]
    # A plain `for` loop keeps `logits` and `loss` until the next step rebinds them, so each step frees
    # the previous step's autograd graph inside its timed region; `held` carries them the same way here
    # (a closure's locals would be freed after the end event, untimed, flattering the bare loop).
    held: dict[str, torch.Tensor] = {}

    def bare() -> float:
        model.zero_grad(set_to_none=True)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        with torch.autocast("cuda", dtype=dtype):
            held["logits"] = model(step.tokens)
            held["loss"] = F.cross_entropy(held["logits"].view(-1, held["logits"].size(-1)), step.targets.view(-1))
        held["loss"].backward()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def harness() -> float:
        return sum(step.run()[0].values())  # what lmbench reports as the step's total

    t0 = time.perf_counter()
    harness()  # the first call compiles, when compiling
    first_call_s = time.perf_counter() - t0
    for _ in range(warmup):
        harness(), bare()
    graphs = dynamo_counts()["graphs"]
    h, b = [], []
    for i in range(pairs):
        order = (harness, bare) if i % 2 == 0 else (bare, harness)
        for fn in order:
            (h if fn is harness else b).append(fn())
    return h, b, first_call_s, dynamo_counts()["graphs"] - graphs
