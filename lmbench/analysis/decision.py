"""The project's one decision rule, applied to records: B against A as Δ% of the mean with Welch's interval at
1 − alpha (stats.difference), significant exactly when that interval excludes zero. The unit is the process
when both records hold several (--repeats), else the measured step. `lmbench compare`, the warm-up study, the
regression gate and the variant findings all decide through here."""

from __future__ import annotations

import warnings
from typing import Any

from lmbench.errors import LmbenchError
from lmbench.results.record import Record
from lmbench.results.stats import difference

TOO_FEW = "too few samples"  # the verdict of a pair with fewer than 2 samples on a side: no interval exists


def plural(unit: str) -> str:
    """'steps' or 'processes': a comparison's unit (units() below) counted."""
    return "processes" if unit == "process" else f"{unit}s"


def compare_samples(a: list[float], b: list[float], alpha: float = 0.05) -> dict[str, Any]:
    """B against A, one sample per unit: Δ% of the mean with Welch's CI at 1 − alpha and the verdict read
    from it, plus the Welch and Mann–Whitney p-values as extra columns."""
    from scipy.stats import mannwhitneyu, ttest_ind

    if len(a) < 2 or len(b) < 2:
        raise LmbenchError(f"a comparison needs at least 2 samples on each side, got {len(a)} and {len(b)}")
    change = difference(a, b, confidence=1 - alpha)
    with warnings.catch_warnings():  # near-identical samples make scipy warn of precision loss
        warnings.simplefilter("ignore", RuntimeWarning)
        p_welch = float(ttest_ind(a, b, equal_var=False).pvalue) if len(set(a) | set(b)) > 1 else 1.0
    p_mwu = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return {"a_mean_ms": change.a_mean, "b_mean_ms": change.b_mean, "delta_pct": change.delta_pct,
            "ci_low_pct": change.ci_low_pct, "ci_high_pct": change.ci_high_pct, "n_a": change.n_a, "n_b": change.n_b,
            "p_welch": p_welch, "p_mannwhitney": p_mwu, "verdict": change.verdict}


def units(record: Record) -> tuple[str, list[float]]:
    """The samples a record compares by: its process means when it holds several processes, else its
    measured per-step totals."""
    if record.process_stats:
        return "process", record.process_stats["total"]["means"]
    return "step", record.totals()


def compare_records(ra: Record, rb: Record, alpha: float) -> dict[str, Any]:
    """B against A with the process as unit when both sides hold several processes, else the step."""
    (unit_a, a), (unit_b, b) = units(ra), units(rb)
    if unit_a != unit_b:  # one side from a single process: only its steps can be compared
        unit_a, a, b = "step", ra.totals(), rb.totals()
    if len(a) < 2 or len(b) < 2:
        return {"unit": unit_a, "n_a": len(a), "n_b": len(b), "verdict": TOO_FEW}
    return {**compare_samples(a, b, alpha), "unit": unit_a}
