"""lmbench.results.stats against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from lmbench.results.stats import power_law_fit, quantile, summarize

# Student-t quantiles used below (from a printed table): t_{0.975,2} = 4.302653, t_{0.975,4} = 2.776445,
# t_{0.975,7} = 2.364624.


def test_summarize_classic_sample():
    s = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert s.n == 8
    # mean = (2+4+4+4+5+5+7+9) / 8 = 40 / 8 = 5
    assert s.mean == pytest.approx(5.0)
    # squared deviations 9,1,1,1,0,0,4,16 -> 32; sample variance 32/7 = 4.571429; std = 2.138090
    assert s.std == pytest.approx(2.138090, abs=1e-6)
    # cv = 100 * 2.138090 / 5 = 42.76180 %
    assert s.cv_pct == pytest.approx(42.76180, abs=1e-4)
    # median of the even-sized sample: (4 + 5) / 2
    assert s.median == pytest.approx(4.5)
    assert (s.min, s.max) == (2.0, 9.0)
    # sorted = [2,4,4,4,5,5,7,9]; position q*(n-1) with n-1 = 7, linear interpolation:
    # q1: 1.75 -> x[1] + 0.75*(x[2]-x[1]) = 4 + 0.75*0 = 4
    # q3: 5.25 -> x[5] + 0.25*(x[6]-x[5]) = 5 + 0.25*2 = 5.5;  iqr = 1.5
    assert s.q1 == pytest.approx(4.0)
    assert s.q3 == pytest.approx(5.5)
    assert s.iqr == pytest.approx(1.5)
    # p5: 0.35 -> 2 + 0.35*(4-2) = 2.7;  p95: 6.65 -> 7 + 0.65*(9-7) = 8.3
    assert s.p5 == pytest.approx(2.7)
    assert s.p95 == pytest.approx(8.3)
    # 95% CI half-width = t_{0.975,7} * std / sqrt(8) = 2.364624 * 2.138090 / 2.828427 = 1.787484
    assert s.ci_low == pytest.approx(5 - 1.787484, abs=1e-5)  # 3.212516
    assert s.ci_high == pytest.approx(5 + 1.787484, abs=1e-5)  # 6.787484
    assert s.ci_half_width_pct == pytest.approx(100 * 1.787484 / 5, abs=1e-3)  # 35.75 %
    # Tukey fences: 4 - 1.5*1.5 = 1.75 and 5.5 + 1.5*1.5 = 7.75 -> only 9 lies outside (2 > 1.75)
    assert s.outliers == 1
    assert s.noisy is True  # CV 42.8 % > 5 %


def test_summarize_obvious_outlier():
    s = summarize([10, 11, 12, 13, 100])
    assert s.n == 5
    # mean = 146 / 5 = 29.2
    assert s.mean == pytest.approx(29.2)
    # deviations -19.2, -18.2, -17.2, -16.2, 70.8; squares 368.64 + 331.24 + 295.84 + 262.44 + 5012.64
    # = 6270.8; variance 6270.8 / 4 = 1567.7; std = sqrt(1567.7) = 39.594192
    assert s.std == pytest.approx(39.594192, abs=1e-5)
    assert s.cv_pct == pytest.approx(100 * 39.594192 / 29.2, abs=1e-4)  # 135.596548 %
    assert s.median == 12.0
    # positions q*(5-1): q1 at 1 -> 11; q3 at 3 -> 13; iqr 2
    assert (s.q1, s.q3, s.iqr) == (11.0, 13.0, 2.0)
    # p5 at 0.2 -> 10 + 0.2*(11-10) = 10.2; p95 at 3.8 -> 13 + 0.8*(100-13) = 82.6
    assert s.p5 == pytest.approx(10.2)
    assert s.p95 == pytest.approx(82.6)
    # half-width = 2.776445 * 39.594192 / sqrt(5) (= 2.236068) = 49.162399
    assert s.ci_high - s.mean == pytest.approx(49.1624, abs=1e-3)
    assert s.ci_low == pytest.approx(29.2 - 49.1624, abs=1e-3)
    # fences 11 - 3 = 8 and 13 + 3 = 16: 100 is the one outlier
    assert s.outliers == 1
    assert s.noisy is True


def test_quiet_sample_is_not_noisy():
    s = summarize([98, 99, 100, 101, 102])
    # mean 100; squares 4+1+0+1+4 = 10; variance 10/4 = 2.5; std 1.581139; cv 1.581139 % (< 5 %)
    assert s.mean == pytest.approx(100.0)
    assert s.std == pytest.approx(1.581139, abs=1e-6)
    assert s.cv_pct == pytest.approx(1.581139, abs=1e-6)
    # half-width = 2.776445 * 1.581139 / 2.236068 = 1.963243 -> 1.963 % of the mean (< 2 %)
    assert s.ci_half_width_pct == pytest.approx(1.963243, abs=1e-5)
    assert s.outliers == 0
    assert s.noisy is False


def test_noisy_through_the_confidence_interval_alone():
    s = summarize([97, 100, 103])
    # mean 100; squares 9+0+9 = 18; variance 9; std 3; cv 3 % (not > 5 %)
    assert s.cv_pct == pytest.approx(3.0)
    # half-width = t_{0.975,2} * 3 / sqrt(3) = 4.302653 * 1.732051 = 7.452413 -> 7.45 % of the mean > 2 %
    assert s.ci_high - s.mean == pytest.approx(4.302653 * 3 / math.sqrt(3), abs=1e-5)
    assert s.ci_half_width_pct == pytest.approx(7.452413, abs=1e-5)
    assert s.noisy is True


def test_summarize_ignores_input_order():
    assert summarize([9, 2, 5, 4, 7, 4, 5, 4]) == summarize([2, 4, 4, 4, 5, 5, 7, 9])


def test_single_sample_has_no_spread_and_no_interval():
    s = summarize([5.0])
    assert (s.n, s.mean, s.std, s.cv_pct, s.median, s.iqr, s.outliers) == (1, 5.0, 0.0, 0.0, 5.0, 0.0, 0)
    assert math.isnan(s.ci_low) and math.isnan(s.ci_high)
    assert s.noisy is False


def test_summarize_refuses_no_samples():
    with pytest.raises(ValueError):
        summarize([])


def test_quantile_linear_interpolation():
    data = [1.0, 2.0, 4.0, 8.0]
    assert quantile(data, 0.0) == 1.0
    assert quantile(data, 1.0) == 8.0
    # position 0.5 * 3 = 1.5 -> 2 + 0.5 * (4 - 2) = 3
    assert quantile(data, 0.5) == pytest.approx(3.0)
    # position 0.9 * 3 = 2.7 -> 4 + 0.7 * (8 - 4) = 6.8
    assert quantile(data, 0.9) == pytest.approx(6.8)
    assert quantile([7.0], 0.3) == 7.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_as_dict_has_every_field():
    d = summarize([2, 4, 4, 4, 5, 5, 7, 9]).as_dict()
    assert set(d) == {"n", "mean", "std", "cv_pct", "median", "min", "max", "q1", "q3", "iqr", "p5", "p95",
                      "ci_low", "ci_high", "outliers", "noisy"}
    assert d["mean"] == pytest.approx(5.0)


def test_power_law_fit_recovers_exact_law():
    x = [1.0, 2.0, 4.0, 8.0, 16.0, 100.0]
    y = [3.0 * v**1.5 for v in x]  # 3, 8.485, 24, 67.88, 192, 3000
    exponent, prefactor, r2, n, low, high = power_law_fit(x, y)
    assert exponent == pytest.approx(1.5, rel=1e-9)
    assert prefactor == pytest.approx(3.0, rel=1e-9)
    assert r2 == pytest.approx(1.0, abs=1e-12)
    assert n == 6 and low == pytest.approx(1.5) and high == pytest.approx(1.5)  # an exact law: a zero-width CI


def test_power_law_fit_on_noisy_points_has_r2_below_one():
    # y = x exactly except a doubled middle point: the fit cannot be perfect
    exponent, _, r2, _, low, high = power_law_fit([1, 2, 4, 8], [1, 2, 8, 8])
    assert low < exponent < high and high - low > 0.5  # four scattered points pin the exponent loosely
    assert 0.5 < r2 < 1.0
    assert 0.5 < exponent < 1.5


def test_power_law_fit_refuses_too_few_or_unpaired_points():
    with pytest.raises(ValueError):
        power_law_fit([1.0], [2.0])
    with pytest.raises(ValueError):
        power_law_fit([1.0, 2.0], [2.0])


def test_cost_verdict_is_settled_by_the_upper_end_of_the_ci() -> None:
    from lmbench.results.stats import cost_verdict

    assert cost_verdict(-4.05, 0.04) == "meets the 1% target"  # a faster "cost" still stays under the target
    assert cost_verdict(1.5, 3.0) == "misses the 1% target"
    assert cost_verdict(-0.5, 1.8) == "noise too large to resolve 1%"
    assert cost_verdict(0.2, 1.5, target_pct=2.0) == "meets the 2% target"


def test_paired_difference_is_summarised_pair_by_pair() -> None:
    from lmbench.results.stats import paired_difference_pct

    diff = paired_difference_pct([11.0, 22.0, 33.0], [10.0, 20.0, 30.0])  # +10% in every pair despite the drift
    assert diff.mean == pytest.approx(10.0) and diff.median == pytest.approx(10.0) and diff.std == pytest.approx(0.0)
