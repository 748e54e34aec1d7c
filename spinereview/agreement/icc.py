"""Intraclass correlation: all six forms, with F test and F-based confidence intervals.

Ratings are a complete subjects x raters table of numbers (e.g. one row per patient-level, one
column per reader; DSCA in mm2). Forms are named in McGraw & Wong (1996) terms; Shrout & Fleiss
(1979) names are accepted as aliases:

============  ===================  ===================================================
McGraw-Wong   Shrout-Fleiss        model
============  ===================  ===================================================
ICC(1)        ICC(1,1)             one-way random, single rater
ICC(A,1)      ICC(2,1)             two-way, absolute agreement, single rater
ICC(C,1)      ICC(3,1)             two-way, consistency, single rater
ICC(k)        ICC(1,k)             one-way random, mean of k raters
ICC(A,k)      ICC(2,k)             two-way, absolute agreement, mean of k raters
ICC(C,k)      ICC(3,k)             two-way, consistency, mean of k raters
============  ===================  ===================================================

For reader studies of measurements, ICC(A,1) is the usual choice: it penalises a reader who is
systematically higher. (Whether raters are a random or fixed effect changes the interpretation,
not the number.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from spinereview.agreement._checks import check_confidence, float_matrix

__all__ = ["ICC_FORMS", "ICCResult", "IccAnova", "icc_all_forms", "icc_anova", "icc_score"]

# canonical McGraw & Wong name -> Shrout & Fleiss alias
ICC_FORMS: dict[str, str] = {
    "ICC(1)": "ICC(1,1)",
    "ICC(A,1)": "ICC(2,1)",
    "ICC(C,1)": "ICC(3,1)",
    "ICC(k)": "ICC(1,k)",
    "ICC(A,k)": "ICC(2,k)",
    "ICC(C,k)": "ICC(3,k)",
}
_DESCRIPTIONS: dict[str, str] = {
    "ICC(1)": "one-way random effects, single rater",
    "ICC(A,1)": "two-way, absolute agreement, single rater",
    "ICC(C,1)": "two-way, consistency, single rater",
    "ICC(k)": "one-way random effects, mean of k raters",
    "ICC(A,k)": "two-way, absolute agreement, mean of k raters",
    "ICC(C,k)": "two-way, consistency, mean of k raters",
}
_ALIASES: dict[str, str] = {**{name: name for name in ICC_FORMS}, **{alias: name for name, alias in ICC_FORMS.items()}}


@dataclass(frozen=True)
class IccAnova:
    """Two-way ANOVA of a subjects x raters table (no replication), the basis of every ICC.

    Attributes:
        n_subjects, n_raters: ``n`` and ``k``.
        ms_subjects: between-subjects mean square ``MSR`` (df ``n - 1``).
        ms_raters: between-raters mean square ``MSC`` (df ``k - 1``).
        ms_error: residual mean square ``MSE`` (df ``(n - 1)(k - 1)``).
        ms_within: within-subjects mean square ``MSW`` of the one-way model (df ``n (k - 1)``).
    """

    n_subjects: int
    n_raters: int
    ms_subjects: float
    ms_raters: float
    ms_error: float
    ms_within: float


@dataclass(frozen=True)
class ICCResult:
    """One form of the intraclass correlation with its F test and confidence interval.

    Attributes:
        form: McGraw & Wong name, e.g. ``"ICC(A,1)"``.
        shrout_fleiss: Shrout & Fleiss name of the same coefficient, e.g. ``"ICC(2,1)"``.
        description: the model in words.
        icc: the coefficient.
        f_value, df1, df2, p_value: F test of H0: ICC = 0 (one-sided, upper tail).
        ci_low, ci_high: F-based confidence interval (full precision; pingouin prints 2 dp).
        confidence: the interval's confidence level, e.g. 0.95.
        n_subjects, n_raters: table size.
    """

    form: str
    shrout_fleiss: str
    description: str
    icc: float
    f_value: float
    df1: float
    df2: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    n_subjects: int
    n_raters: int


def icc_anova(ratings: npt.ArrayLike) -> IccAnova:
    """Mean squares of the two-way ANOVA without replication (and of the one-way model).

    Raises:
        ValueError: not a 2-D table of finite numbers, a missing value, fewer than 2 subjects or
            fewer than 2 raters.
    """
    x = float_matrix(ratings, "ratings", allow_nan=False)
    n, k = x.shape
    if n < 2:
        raise ValueError(f"ICC needs at least 2 subjects (rows), got {n}")
    if k < 2:
        raise ValueError(f"ICC needs at least 2 raters (columns), got {k}")
    grand = float(x.mean())
    row_means = x.mean(axis=1, keepdims=True)
    column_means = x.mean(axis=0, keepdims=True)
    ss_subjects = k * float(np.sum((row_means - grand) ** 2))
    ss_raters = n * float(np.sum((column_means - grand) ** 2))
    # Sums of squared residuals computed directly, not as differences of totals: they are >= 0
    # and exactly 0 when raters agree perfectly, so F and ICC = 1 come out exact.
    ss_within = float(np.sum((x - row_means) ** 2))
    ss_error = float(np.sum((x - row_means - column_means + grand) ** 2))
    return IccAnova(
        n_subjects=n,
        n_raters=k,
        ms_subjects=ss_subjects / (n - 1),
        ms_raters=ss_raters / (k - 1),
        ms_error=ss_error / ((n - 1) * (k - 1)),
        ms_within=ss_within / (n * (k - 1)),
    )


def _canonical(form: str) -> str:
    try:
        return _ALIASES[form.replace(" ", "")]
    except (KeyError, AttributeError):
        names = ", ".join(f"{name} (= {alias})" for name, alias in ICC_FORMS.items())
        raise ValueError(f"unknown ICC form {form!r}; use one of {names}") from None


def _safe_ratio(a: float, b: float) -> float:
    if b == 0.0:
        return float("inf") if a > 0 else float("nan")
    return a / b


def _form_from_anova(a: IccAnova, name: str, confidence: float) -> ICCResult:
    n, k = a.n_subjects, a.n_raters
    msr, msc, mse, msw = a.ms_subjects, a.ms_raters, a.ms_error, a.ms_within
    q = 1.0 - (1.0 - confidence) / 2.0
    df_subjects = float(n - 1)
    if name in ("ICC(1)", "ICC(k)"):
        df2 = float(n * (k - 1))
        f_value = _safe_ratio(msr, msw)
        f_low = f_value / float(stats.f.ppf(q, df_subjects, df2))
        f_high = f_value * float(stats.f.ppf(q, df2, df_subjects))
        if name == "ICC(1)":
            icc = _safe_ratio(msr - msw, msr + (k - 1) * msw)
            low, high = _single_bound(f_low, k), _single_bound(f_high, k)
        else:
            icc = _safe_ratio(msr - msw, msr)
            low, high = _average_bound(f_low), _average_bound(f_high)
    elif name in ("ICC(C,1)", "ICC(C,k)"):
        df2 = float((n - 1) * (k - 1))
        f_value = _safe_ratio(msr, mse)
        f_low = f_value / float(stats.f.ppf(q, df_subjects, df2))
        f_high = f_value * float(stats.f.ppf(q, df2, df_subjects))
        if name == "ICC(C,1)":
            icc = _safe_ratio(msr - mse, msr + (k - 1) * mse)
            low, high = _single_bound(f_low, k), _single_bound(f_high, k)
        else:
            icc = _safe_ratio(msr - mse, msr)
            low, high = _average_bound(f_low), _average_bound(f_high)
    else:  # ICC(A,1), ICC(A,k)
        df2 = float((n - 1) * (k - 1))
        f_value = _safe_ratio(msr, mse)
        icc_single = _safe_ratio(msr - mse, msr + (k - 1) * mse + k * (msc - mse) / n)
        low, high = _absolute_agreement_ci(a, icc_single, q)
        if name == "ICC(A,1)":
            icc = icc_single
        else:
            icc = _safe_ratio(msr - mse, msr + (msc - mse) / n)
            # Spearman-Brown step-up of the single-rater bounds (Shrout & Fleiss 1979; psych; pingouin).
            low, high = _step_up(low, k), _step_up(high, k)
    p_value = float(stats.f.sf(f_value, df_subjects, df2)) if np.isfinite(f_value) else (0.0 if f_value > 0 else float("nan"))
    return ICCResult(
        form=name,
        shrout_fleiss=ICC_FORMS[name],
        description=_DESCRIPTIONS[name],
        icc=float(icc),
        f_value=float(f_value),
        df1=df_subjects,
        df2=df2,
        p_value=p_value,
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        n_subjects=n,
        n_raters=k,
    )


def _single_bound(f: float, k: int) -> float:
    """``(F - 1) / (F + k - 1)``, with its limits at ``F = inf`` (1)."""
    if np.isnan(f):
        return f
    return 1.0 if np.isinf(f) else (f - 1.0) / (f + k - 1.0)


def _average_bound(f: float) -> float:
    """``1 - 1 / F``, with its limits at ``F = 0`` (-inf) and ``F = inf`` (1)."""
    if np.isnan(f):
        return f
    return float("-inf") if f == 0.0 else 1.0 - 1.0 / f


def _step_up(bound: float, k: int) -> float:
    """Spearman-Brown ``k b / (1 + (k - 1) b)``: increasing for ``b > -1/(k - 1)`` and tending to
    -inf there; a bound at or below it (tiny, degenerate samples) maps to -inf, not to a wrapped-
    around positive number."""
    if np.isnan(bound):
        return bound
    if bound <= -1.0 / (k - 1):
        return float("-inf")
    return k * bound / (1.0 + (k - 1) * bound)


def _absolute_agreement_ci(a: IccAnova, icc: float, q: float) -> tuple[float, float]:
    """Satterthwaite-approximated F bounds for ICC(A,1), Shrout & Fleiss (1979) eq. for ICC(2,1).

    The degrees of freedom ``v`` carry ``(n - 1)`` in the denominator's first term, as in R psych
    and pingouin; writing ``(k - 1)`` there (a plain Satterthwaite sum over MSC and MSE) would give
    [0.05, 0.75] on the Shrout & Fleiss example instead of the published [0.02, 0.76].
    """
    n, k = a.n_subjects, a.n_raters
    msr, msc, mse = a.ms_subjects, a.ms_raters, a.ms_error
    if mse == 0.0 or not np.isfinite(icc):
        return float("nan"), float("nan")
    fj = msc / mse
    df_error = (n - 1) * (k - 1)
    numerator = df_error * (k * icc * fj + n * (1 + (k - 1) * icc) - k * icc) ** 2
    denominator = (n - 1) * k**2 * icc**2 * fj**2 + (n * (1 + (k - 1) * icc) - k * icc) ** 2
    v = numerator / denominator
    f_upper = float(stats.f.ppf(q, n - 1, v))
    f_lower = float(stats.f.ppf(q, v, n - 1))
    low = n * (msr - f_upper * mse) / (f_upper * (k * msc + (k * n - k - n) * mse) + n * msr)
    high = n * (f_lower * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_lower * msr)
    return low, high


def icc_score(ratings: npt.ArrayLike, *, form: str = "ICC(A,1)", confidence: float = 0.95) -> ICCResult:
    """Intraclass correlation of a complete subjects x raters table, in the requested form.

    With the mean squares of :func:`icc_anova` (``MSR`` subjects, ``MSC`` raters, ``MSE``
    residual, ``MSW`` within subjects), ``n`` subjects and ``k`` raters::

        ICC(1)   = (MSR - MSW) / (MSR + (k - 1) MSW)                   F = MSR / MSW, df (n-1, n(k-1))
        ICC(A,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)   F = MSR / MSE, df (n-1, (n-1)(k-1))
        ICC(C,1) = (MSR - MSE) / (MSR + (k - 1) MSE)                   F = MSR / MSE
        ICC(k)   = (MSR - MSW) / MSR
        ICC(A,k) = (MSR - MSE) / (MSR + (MSC - MSE) / n)
        ICC(C,k) = (MSR - MSE) / MSR

    Confidence intervals are the exact F intervals for ICC(1), ICC(k), ICC(C,1), ICC(C,k), and
    the Satterthwaite approximation for ICC(A,1), stepped up by Spearman-Brown for ICC(A,k) (as
    in Shrout & Fleiss 1979, R psych::ICC and pingouin.intraclass_corr, whose numbers these
    reproduce at full precision before pingouin rounds its CIs to 2 decimals).

    ``form`` accepts the McGraw & Wong names above or the Shrout & Fleiss aliases ``ICC(1,1)``,
    ``ICC(2,1)``, ``ICC(3,1)``, ``ICC(1,k)``, ``ICC(2,k)``, ``ICC(3,k)``.

    A table with no variation at all gives ``nan``; perfectly agreeing raters with varying
    subjects give 1 (``F = inf``, ``p = 0``). In tiny samples where ``MSR < MSE`` the estimators
    can leave [-1, 1] (the k-rater forms even exceed 1) and a lower bound can be ``-inf``; they are
    reported as computed, as psych and pingouin do, not clipped. ICC(A,1)'s interval is ``nan``
    when ``MSE = 0``.

    References: Shrout PE, Fleiss JL (1979) Psychol Bull 86:420-428 (Table 4: .17 .29 .71 .44
    .62 .91 on their 6 x 4 example); McGraw KO, Wong SP (1996) Psychol Methods 1:30-46;
    Koo TK, Li MY (2016) J Chiropr Med 15:155-163 (choosing a form).

    Raises:
        ValueError: unknown form, confidence outside (0, 1), a missing or non-finite value, fewer
            than 2 subjects or raters.
    """
    name = _canonical(form)
    level = check_confidence(confidence)
    return _form_from_anova(icc_anova(ratings), name, level)


def icc_all_forms(ratings: npt.ArrayLike, *, confidence: float = 0.95) -> tuple[ICCResult, ...]:
    """All six forms, in the order ICC(1), ICC(A,1), ICC(C,1), ICC(k), ICC(A,k), ICC(C,k)
    (Shrout & Fleiss ICC(1,1), (2,1), (3,1), (1,k), (2,k), (3,k); pingouin's row order).

    See :func:`icc_score` for the formulas. The ANOVA is computed once.
    """
    level = check_confidence(confidence)
    anova = icc_anova(ratings)
    return tuple(_form_from_anova(anova, name, level) for name in ICC_FORMS)
