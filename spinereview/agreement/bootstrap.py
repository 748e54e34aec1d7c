"""Confidence intervals by patient-clustered bootstrap, for any statistic.

The five lumbar levels of one patient are not independent observations: a reader who grades one
level of a patient high tends to grade the others high too. Resampling levels as if they were
independent gives intervals that are too narrow. :func:`cluster_bootstrap_ci` resamples whole
clusters (patients) with replacement and recomputes the statistic on every resample.

Two ways to supply the statistic:

* a plain function ``statistic(*data) -> float``, called once per resample on the rows of the
  drawn clusters (rows of a cluster drawn twice appear twice);
* a vectorised function ``statistic(*data, cluster_weights=C, cluster_index=g) -> array``
  (``vectorized=True``): ``C`` is a ``(resamples, clusters)`` float array, ``C[r, j]`` = how many
  times cluster ``j`` was drawn in resample ``r``, and ``g[i]`` is the cluster (0..G-1) of
  observation ``i``; it returns one value per row of ``C``. The weight of observation ``i`` in
  resample ``r`` is ``C[r, g[i]]`` (``C[:, g]`` builds the full matrix), but a statistic made of
  sums is cheaper as ``C @ (per-cluster sums)``. :func:`cohen_kappa_statistic`,
  :func:`icc_statistic` and :func:`mean_statistic` are built that way: 2000 resamples of 500
  patients take milliseconds.

Both receive exactly the same resamples for the same seed, so for a statistic that does not
depend on the order of the rows they give the same interval.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from scipy import stats

from spinereview.agreement._checks import check_confidence, float_matrix, is_missing
from spinereview.agreement.icc import ICC_FORMS, _canonical
from spinereview.agreement.kappa import KappaWeights, _custom_weights, _paired_indices, disagreement_weights

__all__ = [
    "BootstrapMethod",
    "BootstrapResult",
    "VectorizedStatistic",
    "cluster_bootstrap_ci",
    "cohen_kappa_statistic",
    "icc_statistic",
    "mean_statistic",
]

BootstrapMethod = Literal["percentile", "bca"]
FloatArray = npt.NDArray[np.float64]
# Resample rows per call of a vectorised statistic: a statistic that expands the weights to
# (rows x observations) then holds at most about 32 MB whatever the study size.
_MAX_WEIGHT_ENTRIES = 4_000_000


# ``statistic(*data, cluster_weights=C, cluster_index=g) -> array of shape (C.shape[0],)``
VectorizedStatistic = Callable[..., FloatArray]


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """A statistic with its patient-clustered bootstrap confidence interval.

    ``eq=False``: holds a numpy array; compare fields.

    Attributes:
        estimate: the statistic on the original data.
        ci_low, ci_high: the interval (``nan`` when it cannot be formed, e.g. the estimate or
            every resample is undefined).
        confidence: its level.
        method: ``"percentile"`` or ``"bca"``.
        standard_error: SD of the defined bootstrap values.
        n_resamples: resamples drawn.
        n_undefined: resamples whose statistic was ``nan`` (e.g. kappa with a single grade); they
            are left out of the interval, so report this number beside it.
        n_clusters, n_observations: clusters (patients) and rows of the data.
        seed: the seed of the resampling; the same seed gives the same interval.
        distribution: the bootstrap values, in draw order (read-only).
    """

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str
    standard_error: float
    n_resamples: int
    n_undefined: int
    n_clusters: int
    n_observations: int
    seed: int
    distribution: FloatArray


def _cluster_codes(clusters: Any, n_observations: int) -> tuple[npt.NDArray[np.intp], int]:
    """Cluster number (0..G-1, in sorted label order) of every observation."""
    if isinstance(clusters, (str, bytes)):
        raise ValueError("clusters must be one label per observation (e.g. the patient id of each row), not a string")
    labels = np.asarray(clusters) if not isinstance(clusters, np.ndarray) else clusters
    if labels.ndim != 1:
        raise ValueError(f"clusters must be one label per observation (one-dimensional), got shape {labels.shape}")
    if labels.shape[0] != n_observations:
        raise ValueError(f"clusters has {labels.shape[0]} labels but the data have {n_observations} observations (rows)")
    if labels.dtype.kind in "iub" or labels.dtype.kind in "U" or labels.dtype.kind == "f":
        if labels.dtype.kind == "f" and np.any(np.isnan(labels)):
            i = int(np.flatnonzero(np.isnan(labels))[0])
            raise ValueError(f"clusters[{i}] is missing (nan); every observation needs its patient id")
        unique, codes = np.unique(labels, return_inverse=True)
        n_clusters = int(unique.size)
    else:
        # Mixed or None-bearing labels: number them in sorted order where possible, else by first appearance.
        items = labels.tolist()
        for i, label in enumerate(items):
            if is_missing(label):
                raise ValueError(f"clusters[{i}] is missing ({label!r}); every observation needs its patient id")
        try:
            distinct = sorted(set(items))
        except TypeError as exc:
            if "unhashable" in str(exc):
                raise ValueError(f"cluster labels must be hashable: {exc}") from None
            distinct = list(dict.fromkeys(items))
        number = {label: i for i, label in enumerate(distinct)}
        codes = np.fromiter((number[label] for label in items), dtype=np.intp, count=len(items))
        n_clusters = len(distinct)
    if n_clusters < 2:
        raise ValueError(f"need at least 2 clusters (patients) to resample, got {n_clusters}")
    return np.asarray(codes, dtype=np.intp), n_clusters


def _as_data(data: tuple[Any, ...]) -> list[npt.NDArray[Any]]:
    if not data:
        raise ValueError("pass the data the statistic needs, e.g. cluster_bootstrap_ci(f, rater_a, rater_b, clusters=ids)")
    arrays = []
    for position, item in enumerate(data):
        array = np.asarray(item)
        if array.ndim == 0:
            raise ValueError(f"data argument {position} is a scalar; every data argument needs one row per observation")
        arrays.append(array)
    n = arrays[0].shape[0]
    for position, array in enumerate(arrays[1:], start=1):
        if array.shape[0] != n:
            raise ValueError(
                f"data arguments must have the same number of rows: argument 0 has {n}, argument {position} has {array.shape[0]}"
            )
    if n < 2:
        raise ValueError(f"need at least 2 observations, got {n}")
    return arrays


def _vectorized(
    statistic: Callable[..., Any],
    arrays: list[npt.NDArray[Any]],
    cluster_weights: FloatArray,
    codes: npt.NDArray[np.intp],
) -> FloatArray:
    """A vectorised statistic for every row of ``cluster_weights``, in bounded chunks."""
    rows = cluster_weights.shape[0]
    out = np.empty(rows, dtype=np.float64)
    step = max(1, _MAX_WEIGHT_ENTRIES // max(codes.size, 1))
    for start in range(0, rows, step):
        chunk = cluster_weights[start : start + step]
        values = np.asarray(statistic(*arrays, cluster_weights=chunk, cluster_index=codes), dtype=np.float64)
        if values.shape != (chunk.shape[0],):
            raise ValueError(
                f"a vectorized statistic must return one value per row of cluster_weights: expected shape "
                f"({chunk.shape[0]},), got {values.shape}"
            )
        out[start : start + chunk.shape[0]] = values
    return out


def _looped(
    statistic: Callable[..., Any],
    arrays: list[npt.NDArray[Any]],
    cluster_weights: FloatArray,
    codes: npt.NDArray[np.intp],
) -> FloatArray:
    """A plain statistic on the rows of each resample (each row of cluster ``j`` repeated
    ``C[r, j]`` times, rows in their original order)."""
    out = np.empty(cluster_weights.shape[0], dtype=np.float64)
    positions = np.arange(codes.size)
    for r, weights in enumerate(cluster_weights.astype(np.intp)):
        idx = np.repeat(positions, weights[codes])
        out[r] = float(statistic(*[array[idx] for array in arrays]))
    return out


@functools.lru_cache(maxsize=4)
def _resample_counts(seed: int, n_resamples: int, n_clusters: int) -> FloatArray:
    """``C[r, j]``: times cluster ``j`` is drawn in resample ``r`` (``G`` draws with replacement).

    Cached: a report bootstraps many reader pairs and conditions over the same patients with the
    same seed, and they share the draws (common random numbers), which also makes their intervals
    comparable. Read-only.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    offsets = (np.arange(n_resamples, dtype=np.int64) * n_clusters)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_clusters)
    weights = counts.reshape(n_resamples, n_clusters).astype(np.float64)
    weights.setflags(write=False)
    return weights


def cluster_bootstrap_ci(
    statistic: Callable[..., Any],
    *data: Any,
    clusters: Any,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    method: BootstrapMethod = "percentile",
    vectorized: bool = False,
) -> BootstrapResult:
    """Confidence interval of ``statistic(*data)`` by resampling whole clusters (patients).

    Each resample draws ``G`` clusters with replacement from the ``G`` clusters in ``clusters``
    (one label per row of every ``data`` argument) and recomputes the statistic on their rows.
    With the bootstrap values ``t*_1..t*_B`` (undefined ones, ``nan``, left out and counted):

    * ``"percentile"``: ``[Q(alpha/2), Q(1 - alpha/2)]`` of ``t*`` (numpy linear quantiles);
    * ``"bca"``: bias-corrected and accelerated: ``z0 = Phi^-1(share of t* below the estimate,
      ties counted half)``, acceleration ``a`` from the leave-one-cluster-out jackknife
      ``a = sum (tbar - t_(g))**3 / (6 (sum (tbar - t_(g))**2)**1.5)``; quantile levels
      ``Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q)))`` for ``z_q = Phi^-1(alpha/2), Phi^-1(1 - alpha/2)``.

    Reproducible: ``numpy.random.default_rng(seed)`` draws all cluster indices at once, so the
    same seed and data give the same interval (record the seed in a data freeze). The draws
    depend only on the seed, ``n_resamples`` and the number of clusters, so every statistic
    bootstrapped over the same patients with one seed uses the same resamples.

    References: Davison AC, Hinkley DV (1997) Bootstrap Methods and their Application, section
    3.8 (cluster/two-stage resampling: resample the top-level units); Field CA, Welsh AH (2007)
    J R Stat Soc B 69:369-390; Efron B (1987) J Am Stat Assoc 82:171-185 (BCa).

    Args:
        statistic: ``f(*data) -> float`` or, with ``vectorized=True``,
            ``f(*data, cluster_weights=C, cluster_index=g) -> array`` (see the module docstring).
        data: arrays with one row per observation (e.g. per patient-level), all the same length.
        clusters: one cluster label (patient id) per observation.
        n_resamples: bootstrap resamples (at least 100; 2000 or more for a reported interval).
        seed: seed of the random generator.
        confidence: level of the interval, e.g. 0.95.
        method: ``"percentile"`` (default) or ``"bca"``.
        vectorized: whether ``statistic`` takes ``cluster_weights`` and ``cluster_index``.

    Raises:
        ValueError: no data, data of different lengths, ``clusters`` of another length, a missing
            cluster label, fewer than 2 clusters, fewer than 100 resamples, a bad seed,
            confidence or method, or a vectorised statistic that returns the wrong shape.
        TypeError: ``statistic`` is not callable.
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be a function of the data, got {statistic!r}")
    arrays = _as_data(data)
    n = arrays[0].shape[0]
    codes, n_clusters = _cluster_codes(clusters, n)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100 (2000 or more for a reported interval), got {n_resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    level = check_confidence(confidence)
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
    resamples = int(n_resamples)

    cluster_weights = _resample_counts(int(seed), resamples, n_clusters)
    if vectorized:
        estimate = float(_vectorized(statistic, arrays, np.ones((1, n_clusters)), codes)[0])
        distribution = _vectorized(statistic, arrays, cluster_weights, codes)
    else:
        estimate = float(statistic(*arrays))
        distribution = _looped(statistic, arrays, cluster_weights, codes)

    defined = distribution[~np.isnan(distribution)]
    n_undefined = resamples - defined.size
    alpha = 1.0 - level
    nan = float("nan")
    low = high = nan
    if defined.size and not math.isnan(estimate):
        if method == "percentile":
            low, high = (float(v) for v in np.quantile(defined, [alpha / 2.0, 1.0 - alpha / 2.0]))
        else:
            jackknife = _jackknife(statistic, arrays, codes, n_clusters, vectorized)
            low, high = _bca(defined, estimate, jackknife, alpha)
    distribution.setflags(write=False)
    return BootstrapResult(
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        confidence=level,
        method=method,
        standard_error=float(defined.std(ddof=1)) if defined.size > 1 else nan,
        n_resamples=resamples,
        n_undefined=int(n_undefined),
        n_clusters=n_clusters,
        n_observations=n,
        seed=int(seed),
        distribution=distribution,
    )


def _jackknife(
    statistic: Callable[..., Any],
    arrays: list[npt.NDArray[Any]],
    codes: npt.NDArray[np.intp],
    n_clusters: int,
    vectorized: bool,
) -> FloatArray:
    """The statistic with each cluster left out in turn."""
    leave_out = np.ones((n_clusters, n_clusters), dtype=np.float64)
    np.fill_diagonal(leave_out, 0.0)
    if vectorized:
        return _vectorized(statistic, arrays, leave_out, codes)
    return _looped(statistic, arrays, leave_out, codes)


def _bca(distribution: FloatArray, estimate: float, jackknife: FloatArray, alpha: float) -> tuple[float, float]:
    nan = float("nan")
    if np.any(np.isnan(jackknife)):
        return nan, nan
    below = (np.count_nonzero(distribution < estimate) + np.count_nonzero(distribution <= estimate)) / (2.0 * distribution.size)
    if below <= 0.0 or below >= 1.0:
        return nan, nan  # every resample on one side of the estimate: no bias correction exists
    z0 = float(stats.norm.ppf(below))
    centred = jackknife.mean() - jackknife
    spread = float(np.sum(centred**2))
    acceleration = float(np.sum(centred**3)) / (6.0 * spread**1.5) if spread > 0 else 0.0
    levels = []
    for q in (alpha / 2.0, 1.0 - alpha / 2.0):
        zq = float(stats.norm.ppf(q))
        levels.append(float(stats.norm.cdf(z0 + (z0 + zq) / (1.0 - acceleration * (z0 + zq)))))
    low, high = np.quantile(distribution, levels)
    return float(low), float(high)


# --------------------------------------------------------------------------- vectorised statistics


def _per_cluster(values: FloatArray, cluster_index: npt.NDArray[np.intp], n_clusters: int) -> FloatArray:
    """Sum of ``values`` (observations x p) within each cluster: (clusters x p)."""
    sums = np.zeros((n_clusters, values.shape[1]), dtype=np.float64)
    np.add.at(sums, cluster_index, values)
    return sums


def _check_index(cluster_index: npt.NDArray[np.intp], n_observations: int, n_clusters: int) -> None:
    if cluster_index.shape != (n_observations,):
        raise ValueError(f"cluster_index must hold one cluster per observation: shape {cluster_index.shape}, {n_observations} observations")
    if n_observations and (int(cluster_index.min()) < 0 or int(cluster_index.max()) >= n_clusters):
        raise ValueError(f"cluster_index must lie in 0..{n_clusters - 1} (one column of cluster_weights per cluster)")


def cohen_kappa_statistic(*, categories: Sequence[Hashable], weights: KappaWeights | npt.ArrayLike = "none") -> VectorizedStatistic:
    """Vectorised Cohen's kappa for :func:`cluster_bootstrap_ci` (``vectorized=True``).

    ``f(rater_a, rater_b, cluster_weights=C, cluster_index=g)`` returns, for each row of ``C``,
    the kappa of :func:`spinereview.agreement.cohen_kappa_score` on the resampled data: the
    confusion matrix of a resample is ``C[r] @ (per-cluster confusion matrices)``. Same
    categories, weights and ``nan``-when-undefined convention as ``cohen_kappa_score``.

    Raises:
        ValueError: as ``cohen_kappa_score`` for bad categories, weights or ratings.
    """
    k = len(categories)
    if isinstance(weights, str):
        if weights not in ("none", "linear", "quadratic"):
            raise ValueError(f"weights must be one of ('none', 'linear', 'quadratic') or a k x k matrix, got {weights!r}")
        w = disagreement_weights(k, cast(KappaWeights, weights))
    else:
        w = _custom_weights(weights, k)
    flat = w.ravel()

    def statistic(rater_a: Any, rater_b: Any, *, cluster_weights: FloatArray, cluster_index: npt.NDArray[np.intp]) -> FloatArray:
        ia, ib, index = _paired_indices(rater_a, rater_b, categories)
        n_clusters = cluster_weights.shape[1]
        _check_index(cluster_index, ia.size, n_clusters)
        kk = len(index) ** 2
        per_cluster = np.bincount(cluster_index * kk + ia * len(index) + ib, minlength=n_clusters * kk).reshape(n_clusters, kk)
        tables = cluster_weights @ per_cluster.astype(np.float64)  # (rows, k*k) weighted confusion matrices
        n = tables.sum(axis=1)
        square = tables.reshape(-1, len(index), len(index))
        row_totals, col_totals = square.sum(axis=2), square.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            observed = (tables @ flat) / n
            expected = np.sum((row_totals @ w) * col_totals, axis=1) / (n * n)
            kappa = np.where(expected > 0, 1.0 - observed / np.where(expected > 0, expected, 1.0), np.nan)
        result: FloatArray = np.where(n > 0, kappa, np.nan)
        return result

    return statistic


def mean_statistic() -> VectorizedStatistic:
    """Vectorised mean for :func:`cluster_bootstrap_ci` (``vectorized=True``), e.g. mean Dice.

    ``f(values, cluster_weights=C, cluster_index=g)`` returns the mean of the resampled values,
    ``C[r] @ (per-cluster sums) / C[r] @ (per-cluster counts)``, over the values that are not
    ``nan`` (a Dice of two empty masks is undefined and is skipped, as ``numpy.nanmean`` would);
    ``nan`` when a resample holds no defined value.
    """

    def statistic(values: Any, *, cluster_weights: FloatArray, cluster_index: npt.NDArray[np.intp]) -> FloatArray:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"mean_statistic needs one value per observation, got shape {v.shape}")
        n_clusters = cluster_weights.shape[1]
        _check_index(cluster_index, v.size, n_clusters)
        defined = ~np.isnan(v)
        sums = np.bincount(cluster_index[defined], weights=v[defined], minlength=n_clusters)
        counts = np.bincount(cluster_index[defined], minlength=n_clusters).astype(np.float64)
        total = cluster_weights @ counts
        with np.errstate(divide="ignore", invalid="ignore"):
            result: FloatArray = np.where(total > 0, (cluster_weights @ sums) / np.where(total > 0, total, 1.0), np.nan)
        return result

    return statistic


def icc_statistic(*, form: str = "ICC(A,1)") -> VectorizedStatistic:
    """Vectorised intraclass correlation for :func:`cluster_bootstrap_ci` (``vectorized=True``).

    ``f(ratings, cluster_weights=C, cluster_index=g)`` with ``ratings`` a complete subjects x
    raters table (one row per observation, e.g. per patient-level) returns the ICC of
    :func:`spinereview.agreement.icc_score` on each resampled table. The mean squares come from
    per-cluster sums (rows, row sums, squared row sums, squares, column sums) weighted by ``C``,
    so no resampled table is ever built.

    Raises:
        ValueError: an unknown form, or ratings that ``icc_score`` would refuse.
    """
    name = _canonical(form)

    def statistic(ratings: Any, *, cluster_weights: FloatArray, cluster_index: npt.NDArray[np.intp]) -> FloatArray:
        x = float_matrix(ratings, "ratings", allow_nan=False)
        x = x - x.mean()  # centring changes no mean square and keeps the sums of squares accurate
        k = x.shape[1]
        if k < 2:
            raise ValueError(f"ICC needs at least 2 raters (columns), got {k}")
        n_clusters = cluster_weights.shape[1]
        _check_index(cluster_index, x.shape[0], n_clusters)
        row_sums = x.sum(axis=1)
        features = np.column_stack([np.ones(x.shape[0]), row_sums, row_sums**2, np.sum(x * x, axis=1), x])
        sums = cluster_weights @ _per_cluster(features, cluster_index, n_clusters)
        n, total, row_sq, squares, columns = sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3], sums[:, 4:]
        with np.errstate(divide="ignore", invalid="ignore"):
            correction = total**2 / (n * k)
            ss_total = squares - correction
            ss_subjects = row_sq / k - correction
            ss_raters = np.sum(columns**2, axis=1) / n - correction
            ss_error = np.maximum(ss_total - ss_subjects - ss_raters, 0.0)
            msr = ss_subjects / (n - 1)
            msc = ss_raters / (k - 1)
            mse = ss_error / ((n - 1) * (k - 1))
            msw = (ss_total - ss_subjects) / (n * (k - 1))
            if name == "ICC(1)":
                icc = (msr - msw) / (msr + (k - 1) * msw)
            elif name == "ICC(k)":
                icc = (msr - msw) / msr
            elif name == "ICC(C,1)":
                icc = (msr - mse) / (msr + (k - 1) * mse)
            elif name == "ICC(C,k)":
                icc = (msr - mse) / msr
            elif name == "ICC(A,1)":
                icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
            else:
                icc = (msr - mse) / (msr + (msc - mse) / n)
        result: FloatArray = np.where(n >= 2, icc, np.nan)
        return result

    assert name in ICC_FORMS
    return statistic
