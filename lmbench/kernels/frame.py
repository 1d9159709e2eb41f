"""Kernel categories and kernel tables, whatever the source (nsys stats CSVs or torch.profiler traces).

Every source is first turned into one *kernel frame*, a row per GPU activity in the measured steps:

    name         str    kernel or memory-operation name as the profiler reports it
    duration_ns  int    GPU execution time
    start_ns     int    GPU start time (any clock, only differences are used)
    end_ns       int    start_ns + duration_ns
    step         int    measured step index (0..steps-1)
    phase        str    forward | backward | optimizer (the lmbench range the launch happened in)
    path         str    full range path below the step, e.g. 'forward/layer_3/attention/softmax'

The functions here are stateless and return DataFrames; report rendering lives in kernels/report.py.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from lmbench.config import PHASES, ModelConfig

# A collective's kernel (NCCL) is communication whatever else its name says (ncclDevKernel_AllReduce_Sum_... would
# otherwise read as a reduction); case-sensitive, as HTA's is_comm_kernel is.
COMM_KERNEL = re.compile(r"^nccl.*Kernel")
# First match wins, so the specific names come before the generic ones: flash attention kernels use
# GEMM instructions (wgmma) and optimizer kernels are elementwise, but they are counted as what they do.
CATEGORY_RULES: tuple[tuple[str, str], ...] = (
    ("attention", r"flash|fmha|sdpa|attention|cudnn::fusion"),
    ("optimizer", r"multi_tensor_apply|adam|sgd_|_foreach"),
    ("gemm", r"gemm|nvjet|cutlass|xmma|cublas|gemv|splitkreduce|matmul|_tst_|ampere_|sm\d\d_"),
    ("softmax", r"softmax"),
    ("copy/memset", r"\[cuda mem|memcpy|memset|copy_kernel|direct_copy|catarray|fillfunctor|\bfill_kernel|gather"),
    ("reduction/norm", r"reduce_kernel|reduce|norm|nll_loss|cross_entropy|embedding_backward"),
    ("elementwise", r"elementwise|pointwise|functor"),
)
# Communication last: summed after the others, a capture without collectives keeps its shares bit for bit as before
# the category existed (one with collectives moves NCCL's time out of reduction/norm and other).
CATEGORIES = tuple(name for name, _ in CATEGORY_RULES) + ("other", "communication")
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in CATEGORY_RULES)
# torch.compile's Triton kernels name what they fused, not what they are: triton_<kind>_fused_<aten ops>_<n>, kind
# poi (pointwise), red/per (a reduction, looped or persistent), tem (a template: under max-autotune, a GEMM with its
# prologue and epilogue fused), for (foreach). Their names match none of the eager kernels' rules ("other" held 24% of
# a compiled 2.7B step on the H200), so they get their own: a pointwise kernel that only casts and moves data (the
# fp32-to-bf16 casts of autocast's parameters, transposes) is copy/memset, as eager's copy kernels are.
# The trailing _<n> (or an older Triton's signature suffix, _0d1d2de) numbers the kernel and is not an op.
_INDUCTOR = re.compile(r"^triton_(poi|red|per|tem|for)_(?:fused_)?(\w*?)(?:_\d\w*)?$")
_LAYOUT_WORDS = frozenset("to copy unsafe view t clone transpose permute expand slice split stack cat squeeze "
                          "unsqueeze reshape select as strided alias contiguous constant pad nd index gather embedding "
                          "narrow unbind roll repeat type detach lift fresh zeros ones full fill new empty".split())
# ...unless the name says what the kernel is for (a flex-attention template, a compiled optimizer's foreach kernel).
_NAMED_BY_PURPOSE = tuple(pattern for name, pattern in _COMPILED if name in ("attention", "optimizer"))

KERNEL_COLUMNS = ("name", "duration_ns", "start_ns", "end_ns", "step", "phase", "path")


@functools.lru_cache(maxsize=None)  # a trace repeats a few hundred distinct names across millions of kernels
def categorize(name: str) -> str:
    """The category of one kernel name: communication for a collective's, a torch.compile Triton kernel's from
    what it fused, else the first rule that matches (case-insensitive); 'other' when none does."""
    if COMM_KERNEL.search(name):
        return "communication"
    lowered = name.lower()
    inductor = _INDUCTOR.match(lowered)
    if inductor and not any(pattern.search(lowered) for pattern in _NAMED_BY_PURPOSE):
        return _inductor_category(*inductor.groups())
    for category, pattern in _COMPILED:
        if pattern.search(lowered):
            return category
    return "other"


def _inductor_category(kind: str, ops: str) -> str:
    """The category of a torch.compile Triton kernel from its kind and the aten ops its name lists."""
    words = {word for word in ops.split("_") if word and not word.isdigit()}
    if kind == "tem":
        return "gemm"
    if "softmax" in words:
        return "softmax"
    if kind in ("red", "per"):
        return "reduction/norm"
    return "copy/memset" if words and words <= _LAYOUT_WORDS else "elementwise"  # no ops named: not known to copy


_OP = re.compile(r"(\w+(?:Functor\w*|_kernel_cuda|_kernel_impl|_kernel(?=\())(?:<[\w:, ]*>)?)")
_WRAPPERS = {"BinaryFunctor", "UnaryFunctor", "AUnaryFunctor", "BUnaryFunctor", "gpu_kernel_impl",
             "gpu_kernel_impl_nocast"}


def short_name(name: str, width: int = 90) -> str:
    """A readable kernel name: no 'void', no at::native / anonymous namespaces, cut at `width`.
    PyTorch's generic elementwise and multi-tensor kernels are named by the operation they carry
    (`vectorized_elementwise_kernel[MulFunctor<float>]`), which is what tells them apart."""
    text = re.sub(r"^void\s+", "", name)
    text = re.sub(r"(at::native::|<unnamed>::|\(anonymous namespace\)::|c10::)", "", text)
    outer = re.match(r"[\w:]*", text).group(0)
    if "elementwise_kernel" in outer or "multi_tensor_apply" in outer:
        rest = text[len(outer):]
        ops = [op for op in _OP.findall(rest) if op.split("<")[0] not in _WRAPPERS]
        if ops:  # keep the launch shape (leading int template arguments): it separates otherwise equal names
            shape = re.findall(r"\(int\)(\d+)", re.match(r"<(?:\(int\)\d+,\s*)*", rest).group(0))
            text = f"{outer}{'<' + ','.join(shape) + '>' if shape else ''}[{ops[-1]}]"
    return text if len(text) <= width else text[: width - 1] + "…"


def with_categories(kernels: pd.DataFrame) -> pd.DataFrame:
    out = kernels.copy()
    out["category"] = out["name"].map(categorize)
    return out


def steps_in(kernels: pd.DataFrame) -> int:
    """The measured steps a kernel frame covers (at least 1, so per-step figures never divide by zero)."""
    return max(int(kernels["step"].nunique()), 1)


def top_kernels(kernels: pd.DataFrame, phase: str | None = None, n: int = 10) -> pd.DataFrame:
    """The `n` kernels with most GPU time (in `phase`, or overall): calls and ms per measured step,
    mean µs per call, share of the time considered, category."""
    steps = steps_in(kernels)
    chosen = kernels if phase is None else kernels[kernels["phase"] == phase]
    total = chosen["duration_ns"].sum()
    table = chosen.groupby("name", sort=False)["duration_ns"].agg(["count", "sum", "mean"])
    table = table.sort_values("sum", ascending=False).head(n)
    return pd.DataFrame({
        "kernel": [short_name(k) for k in table.index],
        "category": [categorize(k) for k in table.index],
        "calls_per_step": table["count"].to_numpy() / steps,
        "ms_per_step": table["sum"].to_numpy() / steps / 1e6,
        "mean_us": table["mean"].to_numpy() / 1e3,
        "share_pct": 100 * table["sum"].to_numpy() / total if total else 0.0,
        "name": table.index,
    })


def category_table(kernels: pd.DataFrame) -> pd.DataFrame:
    """GPU time per category and phase, in ms per measured step, with each phase's shares (%).

    Columns: `<phase>_ms` and `<phase>_pct` for each phase present, then `step_ms` / `step_pct` for the
    whole step; one row per category (categories with no time are dropped)."""
    steps = steps_in(kernels)
    frame = with_categories(kernels)
    phases = [p for p in PHASES if p in set(frame["phase"])]
    table = pd.DataFrame(index=pd.Index(CATEGORIES, name="category"))
    for phase, chosen in [(p, frame[frame["phase"] == p]) for p in phases] + [("step", frame)]:
        ms = chosen.groupby("category")["duration_ns"].sum().reindex(CATEGORIES, fill_value=0) / steps / 1e6
        table[f"{phase}_ms"] = ms
        table[f"{phase}_pct"] = 100 * ms / ms.sum() if ms.sum() else 0.0
    return table[table["step_ms"] > 0].reset_index()


def merged(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of [start, end) intervals as sorted disjoint intervals (touching ones joined)."""
    if not len(starts):
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.empty(len(starts), dtype=bool)
    new[0], new[1:] = True, starts[1:] > reach[:-1]
    firsts = np.flatnonzero(new)
    lasts = np.append(firsts[1:] - 1, len(starts) - 1)
    return starts[firsts], reach[lasts]


def union_ns(starts: np.ndarray, ends: np.ndarray) -> int:
    s, e = merged(starts, ends)
    return int((e - s).sum())


def phase_table(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per phase, per measured step: kernel count, summed kernel time, and the GPU span from the first
    kernel's start to the last kernel's end (what a CUDA-event timer around the phase sees, minus
    launch latency); `busy_pct` = the time some activity runs (the union of their intervals, so kernels running
    side by side on several streams, as NCCL's do beside the computation, count once) / span."""
    rows = []
    for phase in [p for p in PHASES if p in set(kernels["phase"])]:
        chosen = kernels[kernels["phase"] == phase]
        steps = chosen.groupby("step")
        per_step = steps.agg(
            kernels=("duration_ns", "size"), kernel_ns=("duration_ns", "sum"), first=("start_ns", "min"),
            last=("end_ns", "max"),
        )
        span = per_step["last"] - per_step["first"]
        busy = sum(union_ns(step["start_ns"].to_numpy(), step["end_ns"].to_numpy()) for _, step in steps)
        rows.append({
            "phase": phase,
            "kernels_per_step": per_step["kernels"].mean(),
            "kernel_ms": per_step["kernel_ns"].mean() / 1e6,
            "span_ms": span.mean() / 1e6,
            "busy_pct": 100 * busy / span.sum() if span.sum() else float("nan"),
        })
    return pd.DataFrame(rows)


def step_table(kernels: pd.DataFrame) -> pd.DataFrame:
    """Per captured measured step: summed kernel time, GPU span (first start to last end), the idle
    time inside the span and the longest single gap between consecutive GPU activities, in ms."""
    rows = []
    for step, chosen in kernels.sort_values("start_ns").groupby("step"):
        starts, ends = chosen["start_ns"].to_numpy(), chosen["end_ns"].to_numpy()
        span = ends.max() - starts.min()
        gaps = starts[1:] - pd.Series(ends).cummax().to_numpy()[:-1]  # time no activity was running
        rows.append({"step": int(step), "kernel_ms": chosen["duration_ns"].sum() / 1e6, "span_ms": span / 1e6,
                     "idle_ms": gaps.clip(min=0).sum() / 1e6, "largest_gap_ms": max(gaps.max(), 0) / 1e6 if len(gaps) else 0.0})
    return pd.DataFrame(rows)


LAUNCH_BOUND_BUSY_PCT = 50.0  # below this GPU busy share of a phase's span, the host sets the phase's time
# Above this share of a phase's span in which a collective runs alone (no computation beside it, waiting for the other
# ranks included), the collectives set the phase's time.
COLLECTIVE_BOUND_PCT = 50.0


def launch_bound(phases: pd.DataFrame, exposed_ms: dict[str, float] | None = None) -> pd.DataFrame:
    """Per phase of a phase_table: GPU idle share of the span, the share in which a collective runs alone
    (`exposed_ms`, the Communication table's per phase, when the capture has collectives) and a verdict:
    collective-bound when that share passes COLLECTIVE_BOUND_PCT (a rank waiting in an all-reduce for a slower one
    runs an NCCL kernel all the while: counted as busy, it would read as GPU-bound), else launch-bound when the GPU
    is busy less than LAUNCH_BOUND_BUSY_PCT of the span, else GPU-bound; 'no GPU work' without a span."""
    alone = 100 * phases["phase"].map(exposed_ms or {}).fillna(0.0) / phases["span_ms"]
    verdicts = ["no GPU work" if busy != busy else "collective-bound" if a > COLLECTIVE_BOUND_PCT else
                "launch-bound" if busy < LAUNCH_BOUND_BUSY_PCT else "GPU-bound"
                for a, busy in zip(alone, phases["busy_pct"])]
    return pd.DataFrame({"phase": phases["phase"], "idle_pct": 100 - phases["busy_pct"], "alone_pct": alone,
                         "verdict": verdicts})


def exposed_by_phase(communication: pd.DataFrame | None) -> dict[str, float] | None:
    """Per phase, the time a collective runs alone in the rank a kernel report's sections describe (the lowest in
    its Communication table: a torch.profiler job's report shows rank 0, a per-rank nsys capture its own rank)."""
    if communication is None or communication.empty:
        return None
    mine = communication[communication["rank"] == communication["rank"].min()]
    return dict(zip(mine["phase"], mine["exposed_ms"]))


def verdict_line(verdicts: pd.DataFrame) -> str:
    """The kernel report's Verdict: each phase's (launch_bound), then what the verdicts mean."""
    collectives = bool((verdicts["alone_pct"] > 0).any())
    parts = [f"{r.phase} {r.verdict} (GPU idle {r.idle_pct:.0f}% of its span"
             + (f", a collective alone {r.alone_pct:.0f}%)" if collectives else ")") for r in verdicts.itertuples()]
    line = (f"Verdict: {'; '.join(parts)}. A phase is called launch-bound when its GPU is idle more than "
            f"{100 - LAUNCH_BOUND_BUSY_PCT:.0f}% of the span: the host, not the GPU, sets its time.")
    if collectives:
        line += (f" Collective-bound when a collective runs with no computation beside it more than "
                 f"{COLLECTIVE_BOUND_PCT:.0f}% of the span (its kernel runs while it waits for the other ranks). Busy "
                 f"counts the time any kernel runs once, so NCCL's kernels beside the computation can make the kernel "
                 f"sum exceed the span, not the busy share.")
    return line


def attention_parts(kernels: pd.DataFrame, cfg: ModelConfig, batch: int, ctx: int) -> pd.DataFrame:
    """Inside naive attention's forward ranges: GPU time of `scores`, `softmax` and `value` per measured
    step (all their kernels, and the GEMM kernels alone: scores also scales and masks, and under autocast
    softmax runs in fp32 between two casts), their share of the three, and the FLOPs each does, so
    softmax's time can be set against its small FLOP count. Empty unless the run used
    --attention naive --annotate detail."""
    columns = ["part", "ms_per_step", "gemm_ms_per_step", "time_pct", "gflop", "flop_pct"]
    parts = kernels["path"].str.extract(r"^forward/layer_\d+/attention/(scores|softmax|value)$")[0]
    chosen = kernels.assign(part=parts).dropna(subset=["part"])
    if chosen.empty:
        return pd.DataFrame(columns=columns)
    steps, order = steps_in(kernels), ["scores", "softmax", "value"]
    ms = chosen.groupby("part")["duration_ns"].sum().reindex(order, fill_value=0) / steps / 1e6
    gemm = chosen[chosen["name"].map(categorize) == "gemm"]
    gemm_ms = gemm.groupby("part")["duration_ns"].sum().reindex(order, fill_value=0) / steps / 1e6
    gflop = pd.Series(attention_part_flops(cfg, batch, ctx)).reindex(order) / 1e9
    return pd.DataFrame({
        "part": order,
        "ms_per_step": ms.to_numpy(),
        "gemm_ms_per_step": gemm_ms.to_numpy(),
        "time_pct": 100 * ms.to_numpy() / ms.sum(),
        "gflop": gflop.to_numpy(),
        "flop_pct": 100 * gflop.to_numpy() / gflop.sum(),
    })


def attention_part_flops(cfg: ModelConfig, batch: int, ctx: int) -> dict[str, float]:
    """Forward FLOPs of naive attention's parts over all layers, as the naive code computes them (full
    T×T scores, no causal skipping): QKᵀ is 2·T²·hd per head plus the scaling and mask (2·T²);
    softmax about 5·T² (max, subtract, exp, sum, divide); PV is 2·T²·hd."""
    pairs = batch * cfg.n_heads * ctx * ctx * cfg.n_layers
    return {
        "scores": pairs * (2 * cfg.head_dim + 2),
        "softmax": pairs * 5,
        "value": pairs * 2 * cfg.head_dim,
    }
