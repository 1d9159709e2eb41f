"""How every power-law finding reads its fit: one R² threshold, one phrasing, one set of numbers.

A fit below GOOD_FIT_R2 is "no clear power law" and nothing more: its exponent is neither printed in the
claim nor compared with anything, so no trend is read from a cloud of points. A clear fit is printed with
its 95% CI, R² and number of points, so a reader sees how far the exponent itself can be trusted.
"""

from __future__ import annotations

from typing import Any

from lmbench.results.stats import PowerLaw

GOOD_FIT_R2 = 0.9  # below this the power law is not a description worth reading an exponent from
MIN_FIT_POINTS = 3  # a power law through two points is exact (R² = 1) and shows nothing


def is_clear(fit: PowerLaw) -> bool:
    return fit.r2 >= GOOD_FIT_R2


def fit_numbers(fit: PowerLaw) -> dict[str, Any]:
    """The fit as a finding's numbers: exponent, its 95% CI, R², points, and whether it is clear."""
    return {"exponent": fit.exponent, "ci_low": fit.ci_low, "ci_high": fit.ci_high, "r2": fit.r2, "n": fit.n,
            "clear": is_clear(fit)}


def fit_text(fit: PowerLaw, x: str, points: str = "points") -> str:
    """'FLOPs^0.75 (R² = 0.998, 4 sizes), exponent 95% CI 0.70 to 0.80' for a clear fit, else
    'no clear power law (R² = 0.420 < 0.9, 4 sizes)'."""
    if not is_clear(fit):
        return f"no clear power law (R² = {fit.r2:.3f} < {GOOD_FIT_R2:g}, {fit.n} {points})"
    ci = f", exponent 95% CI {fit.ci_low:.2f} to {fit.ci_high:.2f}" if fit.ci_low is not None else ""
    return f"{x}^{fit.exponent:.2f} (R² = {fit.r2:.3f}, {fit.n} {points}){ci}"


def relation_to(fit: PowerLaw, reference: float) -> str:
    """Where a clear fit's exponent stands against `reference` by its 95% CI: 'below', 'above' or 'consistent'
    (the CI holds the reference, or there is no CI)."""
    if fit.ci_low is not None and fit.ci_high < reference:
        return "below"
    if fit.ci_low is not None and fit.ci_low > reference:
        return "above"
    return "consistent"
