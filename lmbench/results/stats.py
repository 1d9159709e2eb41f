"""Exact summary statistics of timing samples. Pure Python + scipy's t quantile; no torch.

Quantiles use linear interpolation between order statistics (the 'inclusive' method of the statistics
module, numpy's default), so p5/p95 and the quartiles of small samples match a hand calculation.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import asdict, dataclass
from typing import NamedTuple, Sequence


NOISY_CV_PCT = 5.0  # a phase whose CV exceeds this is flagged noisy
NOISY_CI_PCT = 2.0  # ... or whose 95% CI half-width exceeds this share of the mean
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1)
    cv_pct: float
    median: float
    min: float
    max: float
    q1: float
    q3: float
    iqr: float
    p5: float
    p95: float
    ci_low: float  # 95% confidence interval of the mean (Student t)
    ci_high: float
    outliers: int  # Tukey: outside [q1 - 1.5 IQR, q3 + 1.5 IQR]
    noisy: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)

    @property
    def ci_half_width_pct(self) -> float:
        return 100.0 * (self.ci_high - self.mean) / self.mean if self.mean else math.nan


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted data, 0 <= q <= 1."""
    if not ordered:
        raise ValueError("quantile of no data")
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def t_quantile(q: float, dof: float) -> float:
    """Student's t quantile (dof may be fractional, as Welch–Satterthwaite gives)."""
    # scipy.special's stdtrit is what scipy.stats.t.ppf computes, bit for bit, without importing scipy.stats (about
    # a second on 2 cores, paid by every bench process and every rank of a job); imported on first use.
    from scipy.special import stdtrit

    return float(stdtrit(dof, q))


def tukey_fences(ordered: Sequence[float]) -> tuple[float, float]:
    """(Q1 − 1.5 IQR, Q3 + 1.5 IQR) of already sorted data: outside them a sample is a Tukey outlier."""
    q1, q3 = quantile(ordered, 0.25), quantile(ordered, 0.75)
    return q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)


def summarize(samples: Sequence[float]) -> Summary:
    """Summary of one phase's measured samples (warm-up samples must already be excluded)."""
    data = sorted(float(x) for x in samples)
    n = len(data)
    if n == 0:
        raise ValueError("no samples to summarize")
    mean = statistics.fmean(data)
    std = statistics.stdev(data) if n > 1 else 0.0
    q1, q3 = quantile(data, 0.25), quantile(data, 0.75)
    iqr = q3 - q1
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    lo_fence, hi_fence = tukey_fences(data)
    cv = 100.0 * std / mean if mean else math.nan
    noisy = cv > NOISY_CV_PCT or (n > 1 and mean > 0 and 100.0 * half / mean > NOISY_CI_PCT)
    return Summary(
        n=n,
        mean=mean,
        std=std,
        cv_pct=cv,
        median=statistics.median(data),
        min=data[0],
        max=data[-1],
        q1=q1,
        q3=q3,
        iqr=iqr,
        p5=quantile(data, 0.05),
        p95=quantile(data, 0.95),
        ci_low=mean - half,
        ci_high=mean + half,
        outliers=sum(1 for x in data if x < lo_fence or x > hi_fence),
        noisy=bool(noisy),
    )


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean(b) − mean(a), CI low, CI high) at `confidence`, Welch–Satterthwaite degrees of freedom."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        raise ValueError("a Welch interval needs at least 2 samples on each side")
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    se2 = va / na + vb / nb
    diff = mb - ma
    if se2 == 0:
        return diff, diff, diff
    dof = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    half = t_quantile(0.5 + confidence / 2, dof) * math.sqrt(se2)
    return diff, diff - half, diff + half


@dataclass(frozen=True)
class Difference:
    """B against A: the change of the mean in % of A's mean with its CI. The verdict is read from that
    interval and nothing else, so a printed interval and its verdict cannot disagree."""

    a_mean: float
    b_mean: float
    delta_pct: float
    ci_low_pct: float
    ci_high_pct: float
    confidence: float
    n_a: int
    n_b: int

    @property
    def significant(self) -> bool:
        return self.ci_low_pct > 0 or self.ci_high_pct < 0

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "no significant change"
        return "slower" if self.delta_pct > 0 else "faster"


def difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """B against A with Welch's CI at `confidence`: one sample per unit (a step, or a process's mean)."""
    diff, low, high = welch_interval(a, b, confidence)
    ma = statistics.fmean(a)
    return Difference(a_mean=ma, b_mean=ma + diff, delta_pct=100 * diff / ma, ci_low_pct=100 * low / ma,
                      ci_high_pct=100 * high / ma, confidence=confidence, n_a=len(a), n_b=len(b))


def between_processes(groups: Sequence[Sequence[float]]) -> dict[str, object]:
    """Statistics whose unit is the process: `groups` holds each process's measured samples. Gives the
    per-process means, their summary (n = processes; the CI uses t with R − 1 degrees of freedom; its cv_pct
    is the between-process CV, std of the process means / their mean), the within-process CV (pooled std of the
    steps around their own process's mean / grand mean), and the one-way ANOVA p-value of "all processes
    have the same mean" (None when a process has a single step)."""
    if len(groups) < 2:
        raise ValueError("between-process statistics need two or more processes")
    means = [statistics.fmean(g) for g in groups]
    summary = summarize(means)
    dof = sum(len(g) - 1 for g in groups)
    within_var = sum((x - m) ** 2 for g, m in zip(groups, means) for x in g) / dof if dof else math.nan
    p_anova = None
    if all(len(g) > 1 for g in groups):
        from scipy.stats import f_oneway  # imported on first use, as t_quantile does

        with warnings.catch_warnings():  # identical groups make scipy warn; p stays defined or nan
            warnings.simplefilter("ignore")
            p = float(f_oneway(*groups).pvalue)
        p_anova = None if math.isnan(p) else p
    return {**summary.as_dict(), "means": means,
            "within_cv_pct": 100 * math.sqrt(within_var) / summary.mean if summary.mean and dof else math.nan,
            "p_anova": p_anova}


class PowerLaw(NamedTuple):
    """y = prefactor · x**exponent fitted in log-log space over n points; the exponent's 95% CI uses t with
    n − 2 degrees of freedom (None with two points, where the fit is exact and says nothing)."""

    exponent: float
    prefactor: float
    r2: float
    n: int
    ci_low: float | None
    ci_high: float | None


def power_law_fit(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least-squares fit of y = a * x**b in log-log space."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("power-law fit needs two or more paired points")
    lx = [math.log(v) for v in x]
    ly = [math.log(v) for v in y]
    n = len(lx)
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    sxy = sum((a - mx) * (b - my) for a, b in zip(lx, ly))
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((yy - (a + b * xx)) ** 2 for xx, yy in zip(lx, ly))
    ss_tot = sum((yy - my) ** 2 for yy in ly)
    r2 = 1.0 - ss_res / ss_tot if ss_tot else 1.0
    ci_low = ci_high = None
    if n > 2:
        half = t_quantile(0.5 + CONFIDENCE / 2, n - 2) * math.sqrt(ss_res / (n - 2) / sxx)
        ci_low, ci_high = b - half, b + half
    return PowerLaw(b, math.exp(a), r2, n, ci_low, ci_high)


def paired_difference_pct(a: Sequence[float], b: Sequence[float]) -> Summary:
    """Summary of the per-pair % differences 100·(a/b − 1) of samples measured side by side (a[i] next to b[i]):
    its mean, CI and median are the change and its uncertainty, free of the drift between pairs."""
    return summarize([100 * (x / y - 1) for x, y in zip(a, b)])


def cost_verdict(ci_low_pct: float, ci_high_pct: float, target_pct: float = 1.0) -> str:
    """Whether an added cost (a paired % difference's CI) stays under `target_pct`. Instrumentation cannot
    make a step faster, so only the CI's upper end can settle that it does."""
    if ci_high_pct <= target_pct:
        return f"meets the {target_pct:g}% target"
    return f"misses the {target_pct:g}% target" if ci_low_pct > target_pct else f"noise too large to resolve {target_pct:g}%"
