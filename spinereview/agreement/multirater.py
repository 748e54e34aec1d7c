"""Chance-corrected agreement among two or more readers on a fixed category list:
Fleiss' kappa and Gwet's AC1/AC2.

Ratings are a subjects x raters table (one row per subject, e.g. one patient-level, one column
per reader). Categories are the protocol's ordered list, passed explicitly; weights use the
position of a category in that list, as in :func:`spinereview.agreement.cohen_kappa_score`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from spinereview.agreement._checks import counts_from_indices, index_matrix
from spinereview.agreement.kappa import KappaWeights, _custom_weights, disagreement_weights

__all__ = [
    "FleissKappaResult",
    "GwetACResult",
    "category_counts",
    "fleiss_kappa_counts_score",
    "fleiss_kappa_score",
    "gwet_ac_score",
]

_WEIGHT_NAMES: tuple[str, ...] = ("none", "linear", "quadratic")


@dataclass(frozen=True)
class FleissKappaResult:
    """Fleiss' kappa and what it is made of.

    Attributes:
        kappa: Fleiss' kappa; ``nan`` when undefined (every rating in one category).
        n_subjects: rows of the table.
        n_raters: ratings per subject (the same for every subject).
        categories: the category list (positions ``0..k-1`` when built from a bare count table).
        observed_agreement: ``P_bar``, mean over subjects of the proportion of agreeing rater pairs.
        expected_agreement: ``P_e = sum_j p_j**2``.
        category_proportions: ``p_j``, share of all ratings in each category.
        category_kappas: Fleiss' (1971) kappa for each category against all others
            (``nan`` for a category nobody or everybody used).
    """

    kappa: float
    n_subjects: int
    n_raters: int
    categories: tuple[Hashable, ...]
    observed_agreement: float
    expected_agreement: float
    category_proportions: tuple[float, ...]
    category_kappas: tuple[float, ...]


def category_counts(ratings: Any, *, categories: Sequence[Hashable]) -> npt.NDArray[np.int64]:
    """Subjects x categories table: ``C[i, j]`` = raters who put subject ``i`` in ``categories[j]``.

    ``ratings`` is a subjects x raters table; ``None``/NaN (missing) ratings are not counted.

    Raises:
        ValueError: a ragged table, or a rating not in ``categories``.
    """
    indices, index = index_matrix(ratings, categories, allow_missing=True)
    return counts_from_indices(indices, len(index))


def fleiss_kappa_score(ratings: Any, *, categories: Sequence[Hashable]) -> FleissKappaResult:
    """Fleiss' kappa from raw ratings: a complete subjects x raters table on a fixed category list.

    Builds the subjects x categories count table (:func:`category_counts`) and applies
    :func:`fleiss_kappa_counts_score`; see there for the formula. Raters need not be the same
    people for every subject (Fleiss 1971), but every subject needs the same number of ratings.

    Raises:
        ValueError: a missing rating (use :func:`spinereview.agreement.krippendorff_alpha_score` or
            :func:`gwet_ac_score` for incomplete data), a rating not in ``categories``, fewer than
            2 subjects or 2 raters, or a ragged table.
    """
    indices, index = index_matrix(ratings, categories, allow_missing=False)
    return _fleiss(counts_from_indices(indices, len(index)), tuple(index))


def fleiss_kappa_counts_score(counts: npt.ArrayLike, *, categories: Sequence[Hashable] | None = None) -> FleissKappaResult:
    """Fleiss' kappa from a subjects x categories table of counts, ``m`` raters per subject.

    With ``n_ij`` raters putting subject ``i`` (of ``N``) in category ``j``::

        p_j   = sum_i n_ij / (N m)
        P_i   = (sum_j n_ij**2 - m) / (m (m - 1))
        kappa = (P_bar - P_e) / (1 - P_e),   P_bar = mean_i P_i,   P_e = sum_j p_j**2

    Variant: Fleiss (1971), a generalisation of Scott's pi (one pooled marginal distribution), not
    of Cohen's kappa; nominal (unweighted). Undefined (``nan``) when ``P_e == 1``.

    Reference: Fleiss JL (1971) Measuring nominal scale agreement among many raters. Psychol Bull
    76:378-382. Worked example: Wikipedia "Fleiss' kappa" (kappa = 0.210), as asserted by
    statsmodels ``test_inter_rater.py::test_fleiss_kappa``.

    Raises:
        ValueError: not a 2-D table of non-negative integers, rows with different totals, fewer
            than 2 raters per subject or fewer than 2 subjects, or ``categories`` of the wrong length.
    """
    table = np.asarray(counts)
    if table.ndim != 2:
        raise ValueError(f"counts must be a 2-D subjects x categories table, got shape {table.shape}")
    if table.size == 0:
        raise ValueError("counts is empty: need at least 2 subjects and 1 category")
    if not (np.issubdtype(table.dtype, np.integer) or np.issubdtype(table.dtype, np.floating)) or table.dtype == np.bool_:
        raise ValueError(f"counts must hold non-negative integer counts, got dtype {table.dtype}")
    if not np.all(np.isfinite(table)) or np.any(table < 0) or np.any(table != np.round(table)):
        raise ValueError("counts must hold non-negative integer counts (no NaN, negatives or fractions)")
    int_table = table.astype(np.int64)
    if categories is None:
        names: tuple[Hashable, ...] = tuple(range(int_table.shape[1]))
    else:
        names = tuple(categories)
        if len(names) != int_table.shape[1]:
            raise ValueError(f"categories has {len(names)} entries but counts has {int_table.shape[1]} columns")
    return _fleiss(int_table, names)


def _fleiss(counts: npt.NDArray[np.int64], categories: tuple[Hashable, ...]) -> FleissKappaResult:
    n_subjects, _ = counts.shape
    totals = counts.sum(axis=1)
    m = int(totals[0])
    unequal = np.flatnonzero(totals != m)
    if unequal.size:
        raise ValueError(
            f"every subject needs the same number of ratings: subject 0 has {m}, subject {int(unequal[0])} has "
            f"{int(totals[unequal[0]])} (use krippendorff_alpha_score or gwet_ac_score for unequal numbers)"
        )
    if m < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 raters per subject, got {m}")
    if n_subjects < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 subjects, got {n_subjects}")
    total = n_subjects * m
    column_totals = counts.sum(axis=0)
    p = column_totals / total
    per_subject = (np.sum(counts * counts, axis=1) - m) / (m * (m - 1))
    observed = float(per_subject.mean())
    expected = float(np.sum(p * p))
    # P_e == 1 exactly when a single category holds every rating; test on integers, not floats.
    undefined = int(np.count_nonzero(column_totals)) <= 1
    kappa = float("nan") if undefined else (observed - expected) / (1.0 - expected)
    pq = p * (1.0 - p)
    disagreement = np.sum(counts * (m - counts), axis=0) / (n_subjects * m * (m - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_category = np.where(pq > 0, 1.0 - disagreement / np.where(pq > 0, pq, 1.0), np.nan)
    return FleissKappaResult(
        kappa=kappa,
        n_subjects=n_subjects,
        n_raters=m,
        categories=categories,
        observed_agreement=observed,
        expected_agreement=expected,
        category_proportions=tuple(float(x) for x in p),
        category_kappas=tuple(float(x) for x in per_category),
    )


@dataclass(frozen=True, eq=False)
class GwetACResult:
    """Gwet's AC1 (unweighted) or AC2 (weighted) and what it is made of.

    ``eq=False``: holds a numpy array; compare fields.

    Attributes:
        coefficient: AC1 or AC2.
        name: ``"AC1"`` or ``"AC2"``.
        weights: ``"none"``, ``"linear"``, ``"quadratic"`` or ``"custom"``.
        n_subjects: subjects with at least one rating (those that enter the chance term).
        n_subjects_paired: subjects with at least two ratings (those that enter ``p_a``).
        n_raters: columns of the ratings table.
        categories: the category list.
        observed_agreement: ``p_a``.
        expected_agreement: ``p_e``.
        category_proportions: ``pi_k``, mean over subjects of the share of ratings in category k.
        agreement_weights: the ``k x k`` agreement weights (1 on the diagonal; read-only).
    """

    coefficient: float
    name: str
    weights: str
    n_subjects: int
    n_subjects_paired: int
    n_raters: int
    categories: tuple[Hashable, ...]
    observed_agreement: float
    expected_agreement: float
    category_proportions: tuple[float, ...]
    agreement_weights: npt.NDArray[np.float64]


def gwet_ac_score(
    ratings: Any,
    *,
    categories: Sequence[Hashable],
    weights: KappaWeights | npt.ArrayLike = "none",
) -> GwetACResult:
    """Gwet's AC1 (``weights="none"``) or AC2 (weighted) for 2 or more raters, missing ratings allowed.

    ``ratings`` is a subjects x raters table; ``None``/NaN marks a missing rating. With ``r_ik``
    raters putting subject ``i`` in category ``k``, ``r_i`` ratings of subject ``i``, ``q``
    categories, agreement weights ``a_kl`` (1 on the diagonal) and ``r*_ik = sum_l a_kl r_il``::

        p_a  = mean over subjects with r_i >= 2 of  sum_k r_ik (r*_ik - 1) / (r_i (r_i - 1))
        pi_k = mean over subjects with r_i >= 1 of  r_ik / r_i
        p_e  = T_a / (q (q - 1)) * sum_k pi_k (1 - pi_k),   T_a = sum_kl a_kl
        AC   = (p_a - p_e) / (1 - p_e)

    Variants (``weights``, on positions in ``categories``): ``"none"`` -> AC1 (identity
    weights, nominal); ``"linear"`` -> AC2 with ``a_kl = 1 - |k - l| / (q - 1)``; ``"quadratic"``
    -> AC2 with ``a_kl = 1 - (k - l)**2 / (q - 1)**2``; or a ``q x q`` matrix of *disagreement*
    weights as for :func:`spinereview.agreement.cohen_kappa_score` (converted to ``1 - w / max w``).
    Unlike kappa, AC1 stays defined (and high) when nearly every rating falls in one category.

    References: Gwet KL (2008) Br J Math Stat Psychol 61:29-48; Gwet KL (2014) Handbook of
    Inter-Rater Reliability, 4th ed., ch. 5 and its 4-rater x 12-subject example (p. 120:
    AC1 = 0.775, p_a = 0.818, p_e = 0.190), as asserted in irrCAC (Python) ``test/unit/irrCAC/raw/test_gwet.py``.

    Raises:
        ValueError: a rating not in ``categories``, fewer than 2 categories or 2 raters, no subject
            rated by 2 or more raters, a ragged table, unknown weights or a bad weight matrix.
    """
    indices, index = index_matrix(ratings, categories, allow_missing=True)
    q = len(index)
    n_raters = indices.shape[1]
    if q < 2:
        raise ValueError(f"Gwet's AC needs at least 2 categories, got {q}")
    if n_raters < 2:
        raise ValueError(f"Gwet's AC needs at least 2 raters (columns), got {n_raters}")
    if isinstance(weights, str):
        if weights not in _WEIGHT_NAMES:
            raise ValueError(f"weights must be one of {_WEIGHT_NAMES} or a q x q matrix, got {weights!r}")
        agreement = 1.0 - disagreement_weights(q, cast(KappaWeights, weights))
        weight_name = weights
    else:
        agreement = 1.0 - _custom_weights(weights, q)
        weight_name = "custom"

    counts = counts_from_indices(indices, q).astype(np.float64)
    per_subject = counts.sum(axis=1)
    rated = per_subject >= 1
    paired = per_subject >= 2
    if not np.any(paired):
        raise ValueError("no subject has ratings from 2 or more raters: agreement cannot be measured")
    weighted = counts @ agreement.T  # r*_ik = sum_l a_kl r_il
    c = counts[paired]
    r = per_subject[paired]
    p_a = float(np.mean(np.sum(c * (weighted[paired] - 1.0), axis=1) / (r * (r - 1.0))))
    pi = (counts[rated] / per_subject[rated][:, None]).mean(axis=0)
    p_e = float(agreement.sum() / (q * (q - 1)) * np.sum(pi * (1.0 - pi)))
    # p_e reaches 1 only with degenerate custom weights (every disagreement weight 0).
    coefficient = (p_a - p_e) / (1.0 - p_e) if p_e < 1.0 else float("nan")
    agreement.setflags(write=False)
    return GwetACResult(
        coefficient=coefficient,
        name="AC1" if weight_name == "none" else "AC2",
        weights=weight_name,
        n_subjects=int(np.count_nonzero(rated)),
        n_subjects_paired=int(np.count_nonzero(paired)),
        n_raters=n_raters,
        categories=tuple(index),
        observed_agreement=p_a,
        expected_agreement=p_e,
        category_proportions=tuple(float(x) for x in pi),
        agreement_weights=agreement,
    )
