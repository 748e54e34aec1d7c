"""Bland-Altman, correlations, Lin's CCC, MAE and TOST against published and exact values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spinereview.agreement import (
    bland_altman,
    concordance_correlation_score,
    mean_absolute_error,
    pearson_correlation_score,
    spearman_correlation_score,
    tost_paired_equivalence,
)
from tests.unit.agreement._reference import load


@pytest.fixture(scope="module")
def pefr() -> dict[str, Any]:
    return load("bland_altman_1986_pefr.json")


def _wright_vs_mini(pefr: dict[str, Any]) -> tuple[list[int], list[int]]:
    assert pefr["data"]["difference_convention"] == "WrightFirst - MiniWrightFirst"
    return pefr["data"]["WrightFirst"], pefr["data"]["MiniWrightFirst"]


def test_bland_altman_1986_paper_with_2_sd(pefr: dict[str, Any]) -> None:
    """README pitfall 2: the paper uses d +/- 2s; test against the paper's numbers with z = 2."""
    a, b = _wright_vs_mini(pefr)
    result = bland_altman(a, b, loa_multiplier=2, loa_ci_method="bland-altman-1986")
    expected = pefr["expected"]
    assert round(result.bias, 1) == expected["bias_d"]
    assert round(result.sd_of_differences, 1) == expected["sd_of_differences_s"]
    # The paper's limits come from the rounded d and s: -2.1 -/+ 2 x 38.8 = -79.7 / 75.5; from
    # full precision they are -79.65 / 75.41 (crosscheck_numpy).
    d, s = round(result.bias, 1), round(result.sd_of_differences, 1)
    assert round(d - 2 * s, 1) == expected["loa_lower_d_minus_2s"]
    assert round(d + 2 * s, 1) == expected["loa_upper_d_plus_2s"]
    assert result.loa_lower == pytest.approx(expected["loa_lower_d_minus_2s"], abs=0.1)
    assert result.loa_upper == pytest.approx(expected["loa_upper_d_plus_2s"], abs=0.1)
    assert [round(result.bias_ci_low, 1), round(result.bias_ci_high, 1)] == expected["ci_of_bias_t16_2.12"]
    numpy = pefr["crosscheck_numpy"]
    assert result.bias == pytest.approx(numpy["bias"], abs=1e-9)
    assert result.sd_of_differences == pytest.approx(numpy["sd"], abs=1e-9)
    assert [result.loa_lower, result.loa_upper] == pytest.approx(numpy["loa_2s"], abs=1e-9)
    se_limit = (result.loa_upper_ci_high - result.loa_upper) / stats.t.ppf(0.975, 16)
    assert se_limit == pytest.approx(numpy["se_loa_sqrt(3s2/n)"], abs=1e-8)
    # The paper computed the limits' CIs from rounded inputs (75.5 + 2.12 x 16.3 = 110.1); from
    # unrounded ones they are 40.9 / 109.9 and -114.2 / -45.1: within 0.25 of the printed values.
    assert result.loa_upper_ci_low == pytest.approx(expected["ci_upper_loa"][0], abs=0.25)
    assert result.loa_upper_ci_high == pytest.approx(expected["ci_upper_loa"][1], abs=0.25)
    assert result.loa_lower_ci_low == pytest.approx(expected["ci_lower_loa"][0], abs=0.25)
    assert result.loa_lower_ci_high == pytest.approx(expected["ci_lower_loa"][1], abs=0.25)


def test_bland_altman_default_is_1_96_sd(pefr: dict[str, Any]) -> None:
    a, b = _wright_vs_mini(pefr)
    result = bland_altman(a, b, loa_ci_method="approximate")
    assert result.loa_multiplier == 1.96
    assert [result.loa_lower, result.loa_upper] == pytest.approx(pefr["crosscheck_numpy"]["loa_1.96"], abs=1e-9)
    assert [round(result.loa_lower, 2), round(result.loa_upper, 2)] == [-78.10, 73.86]
    # blandr's SE of a limit, sqrt(s^2/n + 1.96^2 s^2 / (2(n-1))), printed to 1 dp.
    se_limit = (result.loa_upper_ci_high - result.loa_upper) / stats.t.ppf(0.975, 16)
    assert round(se_limit, 1) == pefr["expected"]["se_of_loa_computed_by_blandr_round1"]
    # SimplyAgree agreement_limit(loa_calc = "b") upper-limit CI bound, rounded to 0 dp: 109.
    assert round(result.loa_upper_ci_high) == 109


def test_exact_limit_intervals_cover_at_the_nominal_rate() -> None:
    # The exact interval is d + s * q / sqrt(n) with q fixed by n and z; read the two factors of
    # each limit off one call, then check their coverage over 20000 simulated samples of n = 10
    # normal differences (true limits mu -/+ 1.96 sigma). The approximate method under-covers here.
    z, n, trials = 1.96, 10, 20000
    rng = np.random.default_rng(11)
    first = rng.normal(3.0, 2.0, size=n)
    factors = {}
    for method in ("exact", "approximate"):
        r = bland_altman(first, np.zeros(n), loa_multiplier=z, loa_ci_method=method)
        factors[method] = [
            (v - r.bias) / r.sd_of_differences for v in (r.loa_upper_ci_low, r.loa_upper_ci_high, r.loa_lower_ci_low, r.loa_lower_ci_high)
        ]
    samples = rng.normal(3.0, 2.0, size=(trials, n))
    mean, sd = samples.mean(axis=1), samples.std(axis=1, ddof=1)
    upper_true, lower_true = 3.0 + z * 2.0, 3.0 - z * 2.0
    coverage = {}
    for method, (u_lo, u_hi, l_lo, l_hi) in factors.items():
        upper = np.mean((mean + u_lo * sd <= upper_true) & (upper_true <= mean + u_hi * sd))
        lower = np.mean((mean + l_lo * sd <= lower_true) & (lower_true <= mean + l_hi * sd))
        coverage[method] = (float(upper), float(lower))
    # Binomial SD at 0.95 and 20000 trials is 0.0015: +/- 0.006 is 4 SD.
    assert abs(coverage["exact"][0] - 0.95) < 0.006
    assert abs(coverage["exact"][1] - 0.95) < 0.006
    assert coverage["approximate"][0] < 0.94


def test_exact_interval_is_asymmetric_and_contains_the_limit(pefr: dict[str, Any]) -> None:
    a, b = _wright_vs_mini(pefr)
    r = bland_altman(a, b)
    assert r.loa_ci_method == "exact"
    assert r.loa_upper_ci_low < r.loa_upper < r.loa_upper_ci_high
    assert r.loa_lower_ci_low < r.loa_lower < r.loa_lower_ci_high
    assert r.loa_upper_ci_high - r.loa_upper > r.loa_upper - r.loa_upper_ci_low
    # Lower and upper limit intervals mirror each other around the bias.
    assert r.loa_upper_ci_high - r.bias == pytest.approx(r.bias - r.loa_lower_ci_low, rel=1e-12)


def test_proportional_bias_regression_is_exact_on_a_line() -> None:
    mean = np.array([100.0, 150.0, 200.0, 250.0, 300.0])
    difference = 0.1 * mean - 5.0  # difference grows with the magnitude
    result = bland_altman(mean + difference / 2, mean - difference / 2)
    assert result.proportional_bias_slope == pytest.approx(0.1, rel=1e-12)
    assert result.proportional_bias_intercept == pytest.approx(-5.0, rel=1e-9)
    assert result.proportional_bias_p_value < 1e-10
    flat = bland_altman([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert flat.bias == 0.0 and flat.sd_of_differences == 0.0


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "message"),
    [
        ([1, 2, 3], [1, 2], {}, "paired by position: got 3 and 2"),
        ([1, 2], [1, 2], {}, "at least 3 pairs"),
        ([1, 2, float("nan")], [1, 2, 3], {}, r"method_a\[2\] = nan is not a finite number"),
        ([1, 2, 3], [1, 2, 3], {"loa_multiplier": 0}, "positive number"),
        ([1, 2, 3], [1, 2, 3], {"loa_multiplier": "2"}, "positive number"),
        ([1, 2, 3], [1, 2, 3], {"confidence": 1.0}, "strictly between 0 and 1"),
        ([1, 2, 3], [1, 2, 3], {"loa_ci_method": "mover"}, "loa_ci_method must be one of"),
        ("123", [1, 2, 3], {}, "not a string"),
        ([[1, 2, 3]], [1, 2, 3], {}, "one-dimensional"),
    ],
)
def test_bland_altman_rejects_malformed_input(a: Any, b: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bland_altman(a, b, **kwargs)


# --------------------------------------------------------------------------- correlation


def test_pearson_matches_scipy_fisher_interval(pefr: dict[str, Any]) -> None:
    a, b = _wright_vs_mini(pefr)
    result = pearson_correlation_score(a, b)
    reference = stats.pearsonr(a, b)
    interval = reference.confidence_interval(0.95)
    assert result.coefficient == pytest.approx(reference.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high), abs=1e-12)
    # Bland & Altman (1986) report r = 0.94 for these two meters.
    assert round(result.coefficient, 2) == 0.94


def test_spearman_uses_the_bonett_wright_variance() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0]
    result = spearman_correlation_score(x, y)
    rho = 1 - 6 * 8 / (8 * 63)  # every rank off by one: sum d^2 = 8
    assert result.coefficient == pytest.approx(rho, rel=1e-12)
    half = 1.959963984540054 * math.sqrt((1 + rho * rho / 2) / 5)
    assert result.ci_low == pytest.approx(math.tanh(math.atanh(rho) - half), rel=1e-12)
    assert result.ci_high == pytest.approx(math.tanh(math.atanh(rho) + half), rel=1e-12)


def test_constant_input_gives_nan_correlation() -> None:
    result = pearson_correlation_score([1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(result.coefficient) and math.isnan(result.ci_low)


def test_correlation_rejects_too_few_pairs() -> None:
    with pytest.raises(ValueError, match="at least 4 pairs"):
        spearman_correlation_score([1, 2, 3], [1, 2, 3])


# --------------------------------------------------------------------------- CCC


def test_ccc_by_hand_and_its_components() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    shifted = concordance_correlation_score(x, x + 1.0)
    # s_x^2 = s_y^2 = 2 (1/n moments), s_xy = 2, mean difference 1: 2*2 / (2 + 2 + 1) = 0.8.
    assert shifted.ccc == pytest.approx(0.8, rel=1e-12)
    assert shifted.pearson_r == pytest.approx(1.0, rel=1e-12)
    assert shifted.bias_correction == pytest.approx(0.8, rel=1e-12)
    assert concordance_correlation_score(x, x).ccc == 1.0
    scaled = concordance_correlation_score(x, 2 * x)  # 2*4 / (2 + 8 + 9) = 8/19
    assert scaled.ccc == pytest.approx(8 / 19, rel=1e-12)


def test_ccc_interval_follows_lin_1989(pefr: dict[str, Any]) -> None:
    a, b = (np.asarray(v, dtype=float) for v in _wright_vs_mini(pefr))
    r = concordance_correlation_score(a, b)
    n = a.size
    mx, my = a.mean(), b.mean()
    sx, sy = a.std(), b.std()
    rc, rr = r.ccc, r.pearson_r
    u = (mx - my) / math.sqrt(sx * sy)
    var = (
        (1 - rr**2) * rc**2 / ((1 - rc**2) * rr**2)
        + 2 * rc**3 * (1 - rc) * u**2 / (rr * (1 - rc**2) ** 2)
        - rc**4 * u**4 / (2 * rr**2 * (1 - rc**2) ** 2)
    ) / (n - 2)
    half = stats.norm.ppf(0.975) * math.sqrt(var)
    assert r.ci_low == pytest.approx(math.tanh(math.atanh(rc) - half), rel=1e-12)
    assert r.ci_high == pytest.approx(math.tanh(math.atanh(rc) + half), rel=1e-12)
    assert r.ci_low < r.ccc < r.ci_high


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=4, max_size=30))
def test_ccc_properties(pairs: list[tuple[float, float]]) -> None:
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    ab, ba = concordance_correlation_score(x, y), concordance_correlation_score(y, x)
    assert (math.isnan(ab.ccc) and math.isnan(ba.ccc)) or ab.ccc == pytest.approx(ba.ccc, rel=1e-9, abs=1e-12)
    if not math.isnan(ab.ccc):
        assert -1.0 - 1e-12 <= ab.ccc <= 1.0 + 1e-12
        if not math.isnan(ab.pearson_r):
            assert abs(ab.ccc) <= abs(ab.pearson_r) + 1e-9


# --------------------------------------------------------------------------- MAE


def test_mean_absolute_error_by_hand() -> None:
    result = mean_absolute_error([10.0, 20.0, 30.0, 40.0], [12.0, 17.0, 30.0, 44.0])
    assert result.mean_absolute_error == 9 / 4
    assert result.median_absolute_error == 2.5
    assert result.max_absolute_error == 4.0
    assert result.root_mean_squared_error == pytest.approx(math.sqrt(29 / 4), rel=1e-12)
    assert result.n == 4
    with pytest.raises(ValueError, match="paired by position"):
        mean_absolute_error([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 1 values"):
        mean_absolute_error([], [])


# --------------------------------------------------------------------------- TOST


def test_tost_matches_two_scipy_one_sided_t_tests(pefr: dict[str, Any]) -> None:
    a, b = _wright_vs_mini(pefr)
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    result = tost_paired_equivalence(a, b, margin=30.0)
    lower = stats.ttest_1samp(d, -30.0, alternative="greater")
    upper = stats.ttest_1samp(d, 30.0, alternative="less")
    assert result.p_lower == pytest.approx(lower.pvalue, rel=1e-9)
    assert result.p_upper == pytest.approx(upper.pvalue, rel=1e-9)
    assert result.p_value == max(result.p_lower, result.p_upper)
    assert result.equivalent  # 90% CI -18.5 .. 14.3 lies inside +/- 30 l/min
    assert -30 < result.ci_low < result.ci_high < 30
    narrow = tost_paired_equivalence(a, b, margin=10.0)
    assert not narrow.equivalent
    assert narrow.ci_low < -10.0


def test_tost_asymmetric_region_and_interval_duality() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(100, 10, size=40)
    b = a + rng.normal(1.0, 3.0, size=40)
    result = tost_paired_equivalence(a, b, margin=(-4.0, 2.0), alpha=0.05)
    inside = result.ci_low > -4.0 and result.ci_high < 2.0
    assert result.equivalent == inside
    assert (result.lower_margin, result.upper_margin) == (-4.0, 2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.0}, "must be > 0"),
        ({"margin": (2.0, -2.0)}, "lower < upper"),
        ({"margin": (1.0, 2.0, 3.0)}, "number or a"),
        ({"margin": 1.0, "alpha": 0.5}, r"alpha must lie in \(0, 0.5\)"),
        ({"margin": "1"}, "positive number"),
    ],
)
def test_tost_rejects_bad_margins(kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tost_paired_equivalence([1.0, 2.0, 3.0], [1.0, 2.5, 2.0], **kwargs)
