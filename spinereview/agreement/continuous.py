"""Agreement between two readers (or a reader and the AI) on a continuous measurement:
Bland-Altman limits of agreement, correlation (Pearson, Spearman, Lin's CCC), absolute error and
TOST equivalence.

Both inputs are paired by position, e.g. the DSCA (mm2) each reader measured at the same levels.
Differences are always ``method_a - method_b``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from spinereview.agreement._checks import check_confidence, paired_vectors

__all__ = [
    "AbsoluteErrorResult",
    "BlandAltmanResult",
    "ConcordanceResult",
    "CorrelationResult",
    "LoaCiMethod",
    "TostResult",
    "bland_altman",
    "concordance_correlation_score",
    "mean_absolute_error",
    "pearson_correlation_score",
    "spearman_correlation_score",
    "tost_paired_equivalence",
]

LoaCiMethod = Literal["exact", "approximate", "bland-altman-1986"]
_LOA_CI_METHODS: tuple[str, ...] = ("exact", "approximate", "bland-altman-1986")


@dataclass(frozen=True)
class BlandAltmanResult:
    """Bland-Altman analysis of paired measurements (differences ``a - b``, in the data's unit).

    Attributes:
        n: number of pairs.
        bias: mean difference ``d``.
        sd_of_differences: ``s``, sample SD of the differences (``n - 1`` denominator).
        bias_ci_low, bias_ci_high: ``d -/+ t(1 - alpha/2, n - 1) s / sqrt(n)``.
        loa_multiplier: the multiplier ``z`` of the limits ``d -/+ z s`` (1.96, or 2 as in 1986).
        loa_lower, loa_upper: limits of agreement.
        loa_lower_ci_low, loa_lower_ci_high, loa_upper_ci_low, loa_upper_ci_high: confidence
            intervals of each limit, by ``loa_ci_method``.
        loa_ci_method: ``"exact"``, ``"approximate"`` or ``"bland-altman-1986"``.
        confidence: level of every interval here.
        proportional_bias_slope, proportional_bias_intercept, proportional_bias_p_value:
            least-squares regression of the difference on the mean of the two methods, and the
            two-sided p of H0: slope = 0 (``nan`` when the means do not vary).
    """

    n: int
    bias: float
    sd_of_differences: float
    bias_ci_low: float
    bias_ci_high: float
    loa_multiplier: float
    loa_lower: float
    loa_upper: float
    loa_lower_ci_low: float
    loa_lower_ci_high: float
    loa_upper_ci_low: float
    loa_upper_ci_high: float
    loa_ci_method: str
    confidence: float
    proportional_bias_slope: float
    proportional_bias_intercept: float
    proportional_bias_p_value: float


def bland_altman(
    method_a: npt.ArrayLike,
    method_b: npt.ArrayLike,
    *,
    loa_multiplier: float = 1.96,
    confidence: float = 0.95,
    loa_ci_method: LoaCiMethod = "exact",
) -> BlandAltmanResult:
    """Bias, limits of agreement with their confidence intervals, and proportional bias.

    With differences ``d_i = a_i - b_i``, their mean ``d``, SD ``s``, ``n`` pairs, multiplier
    ``z`` and ``t = t(1 - alpha/2, n - 1)``::

        bias = d,  bias CI = d -/+ t s / sqrt(n)
        limits of agreement = d -/+ z s

    Confidence interval of each limit (``loa_ci_method``):

    * ``"exact"`` (default): exact for normal differences; for the upper limit
      ``d + s * q / sqrt(n)`` with ``q`` the ``alpha/2`` and ``1 - alpha/2`` quantiles of the
      noncentral t distribution with ``n - 1`` df and noncentrality ``z sqrt(n)`` (lower limit by
      symmetry). Carkeet A (2015) Optom Vis Sci 92:e71-e80; Shieh G (2018) BMC Med Res Methodol 18:45.
    * ``"approximate"``: ``limit -/+ t * s * sqrt(1/n + z**2 / (2 (n - 1)))`` (Bland & Altman
      1999, Stat Methods Med Res 8:135-160; what blandr and most software report).
    * ``"bland-altman-1986"``: ``limit -/+ t * sqrt(3 s**2 / n)``, the approximation printed in the
      1986 paper.

    The multiplier defaults to 1.96 (current practice). The 1986 paper used ``z = 2``: its PEFR
    example gives bias -2.1, s 38.8, limits -79.7 / 75.5 with ``loa_multiplier=2`` (and -78.10 /
    73.86 with 1.96).

    Proportional bias: ordinary least squares of ``d_i`` on ``(a_i + b_i) / 2``; slope, intercept
    and the two-sided t-test p of the slope (Bland & Altman 1999, section 3).

    Reference: Bland JM, Altman DG (1986) Lancet 327:307-310, Table 1 and its worked CIs.

    Raises:
        ValueError: different lengths, fewer than 3 pairs, a non-finite value, a multiplier that is
            not a positive number, confidence outside (0, 1), or an unknown ``loa_ci_method``.
    """
    a, b = paired_vectors(method_a, method_b, ("method_a", "method_b"), min_size=3)
    level = check_confidence(confidence)
    if (
        isinstance(loa_multiplier, bool)
        or not isinstance(loa_multiplier, (int, float))
        or not (math.isfinite(loa_multiplier) and loa_multiplier > 0)
    ):
        raise ValueError(f"loa_multiplier must be a positive number (1.96, or 2 as in Bland & Altman 1986), got {loa_multiplier!r}")
    if loa_ci_method not in _LOA_CI_METHODS:
        raise ValueError(f"loa_ci_method must be one of {_LOA_CI_METHODS}, got {loa_ci_method!r}")
    z = float(loa_multiplier)
    n = a.size
    diff = a - b
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    q = 1.0 - (1.0 - level) / 2.0
    t = float(stats.t.ppf(q, n - 1))
    se_bias = sd / math.sqrt(n)
    lower, upper = bias - z * sd, bias + z * sd

    if loa_ci_method == "exact":
        nc = z * math.sqrt(n)
        q_low = float(stats.nct.ppf(1.0 - q, n - 1, nc))
        q_high = float(stats.nct.ppf(q, n - 1, nc))
        upper_ci = (bias + sd * q_low / math.sqrt(n), bias + sd * q_high / math.sqrt(n))
        lower_ci = (bias - sd * q_high / math.sqrt(n), bias - sd * q_low / math.sqrt(n))
    else:
        approximate = loa_ci_method == "approximate"
        se_limit = sd * math.sqrt(1.0 / n + z * z / (2.0 * (n - 1))) if approximate else math.sqrt(3.0 * sd * sd / n)
        upper_ci = (upper - t * se_limit, upper + t * se_limit)
        lower_ci = (lower - t * se_limit, lower + t * se_limit)

    means = (a + b) / 2.0
    if float(np.ptp(means)) == 0.0:
        slope = intercept = slope_p = float("nan")
    else:
        fit = stats.linregress(means, diff)
        slope, intercept = float(fit.slope), float(fit.intercept)
        slope_p = float(fit.pvalue)

    return BlandAltmanResult(
        n=n,
        bias=bias,
        sd_of_differences=sd,
        bias_ci_low=bias - t * se_bias,
        bias_ci_high=bias + t * se_bias,
        loa_multiplier=z,
        loa_lower=lower,
        loa_upper=upper,
        loa_lower_ci_low=lower_ci[0],
        loa_lower_ci_high=lower_ci[1],
        loa_upper_ci_low=upper_ci[0],
        loa_upper_ci_high=upper_ci[1],
        loa_ci_method=loa_ci_method,
        confidence=level,
        proportional_bias_slope=slope,
        proportional_bias_intercept=intercept,
        proportional_bias_p_value=slope_p,
    )


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient with its Fisher-z confidence interval.

    Attributes:
        coefficient: Pearson's r or Spearman's rho; ``nan`` when an input does not vary.
        method: ``"pearson"`` or ``"spearman"``.
        n: number of pairs.
        ci_low, ci_high: confidence interval (Fisher z, see the function).
        confidence: level of the interval.
        p_value: two-sided p of H0: coefficient = 0 (t distribution with n - 2 df).
    """

    coefficient: float
    method: str
    n: int
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float


def _fisher_ci(r: float, se: float, level: float) -> tuple[float, float]:
    if math.isnan(r):
        return float("nan"), float("nan")
    if abs(r) >= 1.0:
        return r, r
    z = math.atanh(r)
    half = float(stats.norm.ppf(1.0 - (1.0 - level) / 2.0)) * se
    return math.tanh(z - half), math.tanh(z + half)


def _correlation(a: npt.ArrayLike, b: npt.ArrayLike, method: str, confidence: float) -> CorrelationResult:
    x, y = paired_vectors(a, b, ("a", "b"), min_size=4)
    level = check_confidence(confidence)
    n = x.size
    if float(np.ptp(x)) == 0.0 or float(np.ptp(y)) == 0.0:
        nan = float("nan")
        return CorrelationResult(coefficient=nan, method=method, n=n, ci_low=nan, ci_high=nan, confidence=level, p_value=nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        if method == "pearson":
            fit = stats.pearsonr(x, y)
            r, p = float(fit.statistic), float(fit.pvalue)
            se = 1.0 / math.sqrt(n - 3)
        else:
            res = stats.spearmanr(x, y)
            r, p = float(res.statistic), float(res.pvalue)
            se = math.sqrt((1.0 + r * r / 2.0) / (n - 3))
    r = max(-1.0, min(1.0, r))
    low, high = _fisher_ci(r, se, level)
    return CorrelationResult(coefficient=r, method=method, n=n, ci_low=low, ci_high=high, confidence=level, p_value=p)


def pearson_correlation_score(a: npt.ArrayLike, b: npt.ArrayLike, *, confidence: float = 0.95) -> CorrelationResult:
    """Pearson's product-moment correlation with a Fisher-z confidence interval.

    ``r = sum (x - xbar)(y - ybar) / sqrt(sum (x - xbar)**2 sum (y - ybar)**2)``;
    CI ``tanh(atanh(r) -/+ z_{1-alpha/2} / sqrt(n - 3))`` (Fisher 1921), the interval
    ``scipy.stats.pearsonr(...).confidence_interval()`` and pingouin report.

    Correlation measures association, not agreement: a reader who measures everything 20%
    larger correlates perfectly. Report it beside Bland-Altman or Lin's CCC, not instead.

    Reference: Fisher RA (1921) Metron 1:3-32; Bland JM, Altman DG (1986) Lancet 327:307.

    Raises:
        ValueError: different lengths, fewer than 4 pairs, a non-finite value, bad confidence.
    """
    return _correlation(a, b, "pearson", confidence)


def spearman_correlation_score(a: npt.ArrayLike, b: npt.ArrayLike, *, confidence: float = 0.95) -> CorrelationResult:
    """Spearman's rank correlation with a Fisher-z confidence interval.

    ``rho`` = Pearson's r of the ranks (ties get average ranks). CI
    ``tanh(atanh(rho) -/+ z_{1-alpha/2} * sqrt((1 + rho**2 / 2) / (n - 3)))``: the Fisher z
    interval with Bonett & Wright's (2000) variance for rank correlations, which keeps its
    coverage where ``1 / sqrt(n - 3)`` is too narrow.

    Reference: Spearman C (1904) Am J Psychol 15:72-101; Bonett DG, Wright TA (2000)
    Psychometrika 65:23-28.

    Raises:
        ValueError: different lengths, fewer than 4 pairs, a non-finite value, bad confidence.
    """
    return _correlation(a, b, "spearman", confidence)


@dataclass(frozen=True)
class ConcordanceResult:
    """Lin's concordance correlation coefficient.

    Attributes:
        ccc: ``rho_c``; ``nan`` when both inputs are constant.
        pearson_r: the precision component ``r``.
        bias_correction: the accuracy component ``C_b = rho_c / r``.
        ci_low, ci_high: confidence interval via Fisher's z of ``rho_c`` (Lin 1989).
        confidence: level of the interval.
        n: number of pairs.
    """

    ccc: float
    pearson_r: float
    bias_correction: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int


def concordance_correlation_score(a: npt.ArrayLike, b: npt.ArrayLike, *, confidence: float = 0.95) -> ConcordanceResult:
    """Lin's concordance correlation coefficient with its confidence interval.

    With moments over ``n`` (not ``n - 1``, as in Lin 1989)::

        rho_c = 2 s_xy / (s_x**2 + s_y**2 + (xbar - ybar)**2) = r * C_b

    CI: ``Z = atanh(rho_c)`` with variance (Lin 1989, eq. 8 corrected in Lin 2000;
    ``u = (xbar - ybar) / sqrt(s_x s_y)``)::

        var(Z) = 1/(n-2) [ (1-r**2) rho_c**2 / ((1-rho_c**2) r**2)
                           + 2 rho_c**3 (1-rho_c) u**2 / (r (1-rho_c**2)**2)
                           - rho_c**4 u**4 / (2 r**2 (1-rho_c**2)**2) ]

    (as in R epiR::epi.ccc and DescTools::CCC, ``ci = "z-transform"``).

    Reference: Lin LI (1989) Biometrics 45:255-268; Lin LI (2000) Biometrics 56:324-325.

    Raises:
        ValueError: different lengths, fewer than 4 pairs, a non-finite value, bad confidence.
    """
    x, y = paired_vectors(a, b, ("a", "b"), min_size=4)
    level = check_confidence(confidence)
    n = x.size
    mx, my = float(x.mean()), float(y.mean())
    vx, vy = float(np.mean((x - mx) ** 2)), float(np.mean((y - my) ** 2))
    sxy = float(np.mean((x - mx) * (y - my)))
    denominator = vx + vy + (mx - my) ** 2
    nan = float("nan")
    if denominator == 0.0:
        return ConcordanceResult(ccc=nan, pearson_r=nan, bias_correction=nan, ci_low=nan, ci_high=nan, confidence=level, n=n)
    ccc = 2.0 * sxy / denominator
    if vx == 0.0 or vy == 0.0:
        return ConcordanceResult(ccc=ccc, pearson_r=nan, bias_correction=nan, ci_low=nan, ci_high=nan, confidence=level, n=n)
    r = sxy / math.sqrt(vx * vy)
    bias_correction = ccc / r if r != 0.0 else nan
    if abs(ccc) >= 1.0 or r == 0.0:
        low = high = ccc if abs(ccc) >= 1.0 else nan
    else:
        u2 = (mx - my) ** 2 / math.sqrt(vx * vy)
        one_minus = 1.0 - ccc * ccc
        variance = (
            (1.0 - r * r) * ccc * ccc / (one_minus * r * r)
            + 2.0 * ccc**3 * (1.0 - ccc) * u2 / (r * one_minus**2)
            - ccc**4 * u2 * u2 / (2.0 * r * r * one_minus**2)
        ) / (n - 2)
        if variance > 0.0:
            low, high = _fisher_ci(ccc, math.sqrt(variance), level)
        else:
            low = high = nan
    return ConcordanceResult(ccc=ccc, pearson_r=r, bias_correction=bias_correction, ci_low=low, ci_high=high, confidence=level, n=n)


@dataclass(frozen=True)
class AbsoluteErrorResult:
    """Absolute differences between paired measurements (in the data's unit).

    Attributes:
        mean_absolute_error: ``mean |a - b|``.
        median_absolute_error: ``median |a - b|``.
        max_absolute_error: ``max |a - b|``.
        root_mean_squared_error: ``sqrt(mean (a - b)**2)``.
        n: number of pairs.
    """

    mean_absolute_error: float
    median_absolute_error: float
    max_absolute_error: float
    root_mean_squared_error: float
    n: int


def mean_absolute_error(a: npt.ArrayLike, b: npt.ArrayLike) -> AbsoluteErrorResult:
    """Mean absolute error ``MAE = (1/n) sum |a_i - b_i|``, with median, maximum and RMSE.

    Symmetric in ``a`` and ``b``; in the unit of the data (e.g. mm2 for DSCA). Lower is better.

    Reference: Willmott CJ, Matsuura K (2005) Clim Res 30:79-82 (MAE vs RMSE).

    Raises:
        ValueError: different lengths, no pairs, or a non-finite value.
    """
    x, y = paired_vectors(a, b, ("a", "b"), min_size=1)
    absolute = np.abs(x - y)
    return AbsoluteErrorResult(
        mean_absolute_error=float(absolute.mean()),
        median_absolute_error=float(np.median(absolute)),
        max_absolute_error=float(absolute.max()),
        root_mean_squared_error=float(np.sqrt(np.mean(absolute**2))),
        n=int(x.size),
    )


@dataclass(frozen=True)
class TostResult:
    """Two one-sided tests (TOST) of equivalence of paired measurements.

    Attributes:
        mean_difference: mean of ``a - b``.
        lower_margin, upper_margin: the equivalence region ``(lower, upper)``.
        t_lower, t_upper: t statistics against each margin.
        p_lower, p_upper: one-sided p-values (H0: difference <= lower; H0: difference >= upper).
        p_value: ``max(p_lower, p_upper)``, the TOST p-value.
        df: degrees of freedom, ``n - 1``.
        ci_low, ci_high: the ``1 - 2 alpha`` confidence interval of the mean difference; it lies
            inside the margins exactly when ``p_value < alpha``.
        alpha: the test level.
        equivalent: ``p_value < alpha``.
        n: number of pairs.
    """

    mean_difference: float
    lower_margin: float
    upper_margin: float
    t_lower: float
    t_upper: float
    p_lower: float
    p_upper: float
    p_value: float
    df: int
    ci_low: float
    ci_high: float
    alpha: float
    equivalent: bool
    n: int


def tost_paired_equivalence(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    margin: float | tuple[float, float],
    alpha: float = 0.05,
) -> TostResult:
    """TOST equivalence test for the mean of paired differences ``d = a - b``.

    With equivalence region ``(L, U)`` (``margin=m`` means ``(-m, m)``), mean ``d``, SD ``s``::

        t_L = (d - L) / (s / sqrt(n)),  p_L = P(T_{n-1} >= t_L)
        t_U = (d - U) / (s / sqrt(n)),  p_U = P(T_{n-1} <= t_U)
        p = max(p_L, p_U);  equivalent when p < alpha

    Equivalently the ``1 - 2 alpha`` CI of the mean difference lies inside ``(L, U)``.
    Choose the margin before looking at the data, in the unit of the measurement (e.g. 10 mm2).

    Reference: Schuirmann DJ (1987) J Pharmacokinet Biopharm 15:657-680; Lakens D (2017)
    Soc Psychol Personal Sci 8:355-362.

    Raises:
        ValueError: different lengths, fewer than 2 pairs, a non-finite value, a margin that is
            not positive (or a region with ``L >= U``), alpha outside (0, 0.5).
    """
    x, y = paired_vectors(a, b, ("a", "b"), min_size=2)
    if isinstance(margin, tuple):
        if len(margin) != 2:
            raise ValueError(f"margin must be a number or a (lower, upper) pair, got {margin!r}")
        lower, upper = float(margin[0]), float(margin[1])
    else:
        if isinstance(margin, bool) or not isinstance(margin, (int, float)):
            raise ValueError(f"margin must be a positive number or a (lower, upper) pair, got {margin!r}")
        if not margin > 0:
            raise ValueError(f"a symmetric margin must be > 0, got {margin!r}")
        lower, upper = -float(margin), float(margin)
    if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
        raise ValueError(f"the equivalence region must be finite with lower < upper, got ({lower}, {upper})")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha!r}")
    level = float(alpha)
    diff = x - y
    n = diff.size
    df = n - 1
    mean = float(diff.mean())
    se = float(diff.std(ddof=1)) / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lower = float(np.divide(mean - lower, se))
        t_upper = float(np.divide(mean - upper, se))
    p_lower = float(stats.t.sf(t_lower, df))
    p_upper = float(stats.t.cdf(t_upper, df))
    p_value = max(p_lower, p_upper) if not (math.isnan(p_lower) or math.isnan(p_upper)) else float("nan")
    half = float(stats.t.ppf(1.0 - level, df)) * se
    return TostResult(
        mean_difference=mean,
        lower_margin=lower,
        upper_margin=upper,
        t_lower=t_lower,
        t_upper=t_upper,
        p_lower=p_lower,
        p_upper=p_upper,
        p_value=p_value,
        df=df,
        ci_low=mean - half,
        ci_high=mean + half,
        alpha=level,
        equivalent=bool(p_value < level),
        n=n,
    )
