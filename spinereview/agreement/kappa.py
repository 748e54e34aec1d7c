"""Agreement between two readers on a categorical (nominal or ordinal) scale.

Conventions used throughout this module:

* The category list is **fixed by the reading protocol** and passed explicitly; it is never
  inferred from the data. A grade that nobody used still occupies its place on the scale, so it
  still counts in the distances of weighted kappa.
* Ordinal weights are computed from the **index** of a category in that list, not from its value:
  ``|i - j| / (k - 1)`` (linear) and its square (quadratic). With ``categories=[1, 2, 3, 4, 5, 6]``
  grades 4 and 6 are two steps apart; with ``categories=[1, 2, 3, 4, 6]`` (the levels that happen
  to occur, which is what R ``irr::kappa2`` and scikit-learn use) they are neighbours.
* The confusion matrix has rater A in rows and rater B in columns, in category-list order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "KappaResult",
    "KappaWeights",
    "cohen_kappa_score",
    "confusion_matrix",
    "disagreement_weights",
    "percent_agreement_score",
]

KappaWeights = Literal["none", "linear", "quadratic"]
_WEIGHT_NAMES: tuple[str, ...] = ("none", "linear", "quadratic")


@dataclass(frozen=True, eq=False)
class KappaResult:
    """Cohen's kappa and the quantities it is made of.

    ``eq=False``: the result holds numpy arrays, whose ``==`` is element-wise; compare fields.

    Attributes:
        kappa: Cohen's (weighted) kappa; ``nan`` when undefined (``expected_agreement == 1``).
        n: number of rated items (pairs of ratings).
        weights: ``"none"``, ``"linear"``, ``"quadratic"`` or ``"custom"`` (explicit matrix).
        categories: the category list, in scale order, that defines rows/columns and distances.
        observed_agreement: ``p_o``, the (weighted) proportion of agreement observed.
        expected_agreement: ``p_e``, the (weighted) proportion of agreement expected by chance
            from the two readers' marginal distributions.
        confusion: ``k x k`` counts, rater A in rows, rater B in columns (read-only).
        disagreement_weights: the ``k x k`` disagreement weights ``w_ij`` used (read-only),
            scaled so that the largest is 1 (all zeros when ``k == 1``).
        standard_error_null: asymptotic standard error of kappa under the null hypothesis
            kappa = 0 (Fleiss, Cohen & Everitt 1969), as R ``irr::kappa2`` uses for its test;
            ``nan`` when kappa is undefined or the variance is 0.
        z: ``kappa / standard_error_null``, the test statistic of H0: kappa = 0.
        p_value: two-sided p-value of ``z`` against the standard normal distribution.
    """

    kappa: float
    n: int
    weights: str
    categories: tuple[Hashable, ...]
    observed_agreement: float
    expected_agreement: float
    confusion: npt.NDArray[np.int64]
    disagreement_weights: npt.NDArray[np.float64]
    standard_error_null: float
    z: float
    p_value: float


def _as_ratings(ratings: Iterable[Hashable], name: str) -> list[Hashable]:
    if isinstance(ratings, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ratings, not a single string")
    if isinstance(ratings, np.ndarray):
        if ratings.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {ratings.shape}")
        values: list[Hashable] = ratings.tolist()
        return values
    return list(ratings)


def _category_index(categories: Sequence[Hashable]) -> dict[Hashable, int]:
    if isinstance(categories, (str, bytes)):
        raise TypeError("categories must be a sequence of categories, not a single string")
    cats = list(categories)
    if not cats:
        raise ValueError("categories must not be empty")
    index: dict[Hashable, int] = {}
    for i, category in enumerate(cats):
        if isinstance(category, float) and np.isnan(category):
            raise ValueError("categories must not contain NaN")
        try:
            if category in index:
                raise ValueError(f"categories contain {category!r} more than once")
        except TypeError as exc:
            raise ValueError(f"category {category!r} is not hashable") from exc
        index[category] = i
    return index


def _indices(ratings: list[Hashable], index: dict[Hashable, int], name: str) -> npt.NDArray[np.intp]:
    out = np.empty(len(ratings), dtype=np.intp)
    for position, value in enumerate(ratings):
        try:
            out[position] = index[value]
        except (KeyError, TypeError):
            allowed = ", ".join(repr(c) for c in index)
            raise ValueError(f"{name}[{position}] = {value!r} is not one of the categories [{allowed}]") from None
    return out


def _paired_indices(
    rater_a: Iterable[Hashable],
    rater_b: Iterable[Hashable],
    categories: Sequence[Hashable],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], dict[Hashable, int]]:
    fast = _numeric_paired_indices(rater_a, rater_b, categories)
    if fast is not None:
        return fast
    a = _as_ratings(rater_a, "rater_a")
    b = _as_ratings(rater_b, "rater_b")
    if len(a) != len(b):
        raise ValueError(f"rater_a and rater_b must rate the same items: got {len(a)} and {len(b)} ratings")
    if not a:
        raise ValueError("no ratings: rater_a and rater_b are empty")
    index = _category_index(categories)
    return _indices(a, index, "rater_a"), _indices(b, index, "rater_b"), index


def _numeric_paired_indices(
    rater_a: object, rater_b: object, categories: Sequence[Hashable]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], dict[Hashable, int]] | None:
    """Vectorised lookup for integer numpy ratings on an integer category list (the common case
    in reports and the bootstrap); ``None`` sends anything else, and every error, to the general
    path, which produces the messages."""
    if not (isinstance(rater_a, np.ndarray) and isinstance(rater_b, np.ndarray)):
        return None
    if rater_a.ndim != 1 or rater_b.shape != rater_a.shape or rater_a.size == 0:
        return None
    if not (np.issubdtype(rater_a.dtype, np.integer) and np.issubdtype(rater_b.dtype, np.integer)):
        return None
    if isinstance(categories, (str, bytes)):
        return None
    cats = list(categories)
    if not cats or not all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in cats):
        return None
    values = np.asarray(cats, dtype=np.int64)
    if np.unique(values).size != values.size:
        return None
    order = np.argsort(values)
    sorted_values = values[order]
    out = []
    for ratings in (rater_a, rater_b):
        position = np.clip(np.searchsorted(sorted_values, ratings), 0, values.size - 1)
        if not np.array_equal(sorted_values[position], ratings):
            return None
        out.append(order[position].astype(np.intp))
    index: dict[Hashable, int] = {c: i for i, c in enumerate(cats)}
    return out[0], out[1], index


def confusion_matrix(
    rater_a: Iterable[Hashable],
    rater_b: Iterable[Hashable],
    categories: Sequence[Hashable],
) -> npt.NDArray[np.int64]:
    """Counts of paired ratings: ``C[i, j]`` = items rated ``categories[i]`` by A and
    ``categories[j]`` by B.

    Rows and columns follow the order of ``categories`` (all of them, used or not).

    Raises:
        ValueError: different lengths, no ratings, a rating not in ``categories``, or a malformed
            category list (empty, duplicates, NaN).
    """
    ia, ib, index = _paired_indices(rater_a, rater_b, categories)
    k = len(index)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (ia, ib), 1)
    return counts


def percent_agreement_score(
    rater_a: Iterable[Hashable],
    rater_b: Iterable[Hashable],
    *,
    categories: Sequence[Hashable] | None = None,
) -> float:
    """Raw percent agreement, in percent (0-100): ``100 * (number of items with equal ratings) / n``.

    Unlike kappa it is not corrected for chance agreement. ``categories``, when given, validates
    every rating against the protocol's category list (recommended); without it ratings are
    compared with ``==``.

    Reference: Gwet KL (2014) Handbook of Inter-Rater Reliability, 4th ed., ch. 2 ("percent
    agreement"); R ``irr::agree``, which also reports a percentage.

    Raises:
        ValueError: different lengths, no ratings, or (with ``categories``) an unknown rating.
    """
    if categories is not None:
        ia, ib, _ = _paired_indices(rater_a, rater_b, categories)
        return 100.0 * float(np.count_nonzero(ia == ib)) / float(ia.size)
    a = _as_ratings(rater_a, "rater_a")
    b = _as_ratings(rater_b, "rater_b")
    if len(a) != len(b):
        raise ValueError(f"rater_a and rater_b must rate the same items: got {len(a)} and {len(b)} ratings")
    if not a:
        raise ValueError("no ratings: rater_a and rater_b are empty")
    agreements = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    return 100.0 * agreements / len(a)


def disagreement_weights(k: int, weights: KappaWeights) -> npt.NDArray[np.float64]:
    """The ``k x k`` disagreement weights ``w_ij`` for a scale of ``k`` ordered categories.

    * ``"none"``: ``w_ij = 0`` if ``i == j`` else ``1`` (Cohen 1960);
    * ``"linear"``: ``w_ij = |i - j| / (k - 1)`` (Cicchetti & Allison 1971);
    * ``"quadratic"``: ``w_ij = (|i - j| / (k - 1))**2`` (Fleiss & Cohen 1973).

    ``i`` and ``j`` are positions in the category list. For ``k == 1`` every weight is 0.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if weights not in _WEIGHT_NAMES:
        raise ValueError(f"weights must be one of {_WEIGHT_NAMES} or a k x k matrix, got {weights!r}")
    i = np.arange(k, dtype=np.float64)
    distance = np.abs(i[:, None] - i[None, :])
    if weights == "none":
        return (distance > 0).astype(np.float64)
    if k == 1:
        return np.zeros((1, 1), dtype=np.float64)
    scaled = distance / float(k - 1)
    return scaled if weights == "linear" else scaled**2


def _custom_weights(matrix: npt.ArrayLike, k: int) -> npt.NDArray[np.float64]:
    w = np.array(matrix, dtype=np.float64)
    if w.shape != (k, k):
        raise ValueError(f"a weight matrix must be {k} x {k} (one row per category), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("the weight matrix must be finite")
    if np.any(w < 0):
        raise ValueError("disagreement weights must be >= 0")
    if np.any(np.diag(w) != 0):
        raise ValueError("disagreement weights on the diagonal (agreement) must be 0")
    largest = float(w.max())
    return w / largest if largest > 0 else w


def cohen_kappa_score(
    rater_a: Iterable[Hashable],
    rater_b: Iterable[Hashable],
    *,
    categories: Sequence[Hashable],
    weights: KappaWeights | npt.ArrayLike = "none",
) -> KappaResult:
    """Cohen's kappa for two readers, unweighted or weighted, on a fixed category list.

    With ``O_ij`` the observed proportions (confusion matrix / n), ``E_ij = r_i c_j`` the
    proportions expected by chance from the readers' marginals ``r`` (rater A) and ``c``
    (rater B), and disagreement weights ``w_ij`` (0 on the diagonal, largest 1)::

        kappa = 1 - sum(w * O) / sum(w * E) = (p_o - p_e) / (1 - p_e)
        p_o   = 1 - sum(w * O),   p_e = 1 - sum(w * E)

    Variants (``weights``):

    * ``"none"``: Cohen's (1960) kappa, nominal; ``p_o`` is the proportion of exact agreement;
    * ``"linear"``: ``w_ij = |i - j| / (k - 1)`` (Cicchetti & Allison 1971; irr "equal");
    * ``"quadratic"``: ``w_ij = ((i - j) / (k - 1))**2`` (Fleiss & Cohen 1973; irr "squared");
    * a ``k x k`` array of disagreement weights (non-negative, zero diagonal; rescaled so the
      largest is 1, which does not change kappa).

    ``i, j`` are the **positions in ``categories``**, the protocol's full ordered scale, so an
    unused grade still counts in the distances. R ``irr::kappa2`` and scikit-learn use the levels
    present in the data instead; pass only those levels to reproduce them.

    Kappa is undefined when ``p_e == 1``, i.e. ``sum(w * E) == 0``: both readers gave every
    item the same single grade (or every weight is 0, as with a one-category scale). The result
    then has ``kappa = nan``, and no warning is raised. The check is exact, not a tolerance:
    every term of ``sum(w * E)`` is non-negative, so the sum is 0 only if every term is.

    The unweighted kappa does not depend on the order of ``categories``; weighted kappa does.

    Test of H0: kappa = 0 (as R ``irr::kappa2``): with agreement weights ``a_ij = 1 - w_ij``,
    marginal proportions ``r_i``, ``c_j``, ``abar_i = sum_j c_j a_ij`` and
    ``abar_j = sum_i r_i a_ij``::

        var0(kappa) = (sum_ij r_i c_j (a_ij - abar_i - abar_j)**2 - p_e**2) / (n (1 - p_e)**2)
        z = kappa / sqrt(var0),   p = 2 (1 - Phi(|z|))

    For a confidence interval use :func:`spinereview.agreement.cluster_bootstrap_ci`, which
    respects that the levels of one patient are not independent.

    References:
        Cohen J (1960) Educ Psychol Meas 20:37-46. Cohen J (1968) Psychol Bull 70:213-220.
        Fleiss JL, Cohen J, Everitt BS (1969) Psychol Bull 72:323-327 (variance).
        Fleiss JL, Cohen J (1973) Educ Psychol Meas 33:613-619.
        Artstein R, Poesio M (2008) Comput Linguist 34:555-596.

    Args:
        rater_a, rater_b: one rating per item, paired by position.
        categories: the protocol's ordered category list (keyword-only, required).
        weights: ``"none"`` (default), ``"linear"``, ``"quadratic"`` or a ``k x k`` matrix.

    Raises:
        ValueError: different lengths, no ratings, a rating not in ``categories`` (the message
            names it and its position), malformed categories, unknown weights or a bad matrix.
        TypeError: a single string passed where a sequence of ratings or categories belongs.
    """
    ia, ib, index = _paired_indices(rater_a, rater_b, categories)
    k = len(index)
    if isinstance(weights, str):
        if weights not in _WEIGHT_NAMES:
            raise ValueError(f"weights must be one of {_WEIGHT_NAMES} or a k x k matrix, got {weights!r}")
        w = disagreement_weights(k, cast(KappaWeights, weights))
        weight_name = weights
    else:
        w = _custom_weights(weights, k)
        weight_name = "custom"

    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (ia, ib), 1)
    n = int(ia.size)
    # Weighted sums of integer counts, divided once at the end: exact for unweighted kappa and
    # for every weight of 0 or 1, so p_o and p_e stay inside [0, 1] without rounding drift.
    expected_counts = np.outer(counts.sum(axis=1), counts.sum(axis=0))
    observed_disagreement = float(np.sum(w * counts)) / n
    expected_disagreement = float(np.sum(w * expected_counts)) / (n * n)
    # Exact test: sum(w * E) is a sum of non-negative terms, 0 only when every term is.
    kappa = float("nan") if expected_disagreement == 0.0 else 1.0 - observed_disagreement / expected_disagreement

    standard_error_null, z, p_value = _null_test(counts, w, kappa)

    counts.setflags(write=False)
    w.setflags(write=False)
    return KappaResult(
        kappa=kappa,
        n=n,
        weights=weight_name,
        categories=tuple(index),
        observed_agreement=1.0 - observed_disagreement,
        expected_agreement=1.0 - expected_disagreement,
        confusion=counts,
        disagreement_weights=w,
        standard_error_null=standard_error_null,
        z=z,
        p_value=p_value,
    )


def _null_test(counts: npt.NDArray[np.int64], w: npt.NDArray[np.float64], kappa: float) -> tuple[float, float, float]:
    """Standard error of kappa under H0 (Fleiss, Cohen & Everitt 1969), z and two-sided p."""
    nan = float("nan")
    if np.isnan(kappa):
        return nan, nan, nan
    n = float(counts.sum())
    agreement = 1.0 - w
    rows = counts.sum(axis=1) / n
    cols = counts.sum(axis=0) / n
    chance = float(rows @ agreement @ cols)
    row_bar = agreement @ cols  # abar_i = sum_j c_j a_ij
    col_bar = rows @ agreement  # abar_j = sum_i r_i a_ij
    spread = agreement - row_bar[:, None] - col_bar[None, :]
    variance = (float(rows @ (spread**2) @ cols) - chance**2) / (n * (1.0 - chance) ** 2)
    if not variance > 0.0:
        return nan, nan, nan
    standard_error = float(np.sqrt(variance))
    z = kappa / standard_error
    return standard_error, z, float(2.0 * stats.norm.sf(abs(z)))
