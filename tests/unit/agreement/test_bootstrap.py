"""Patient-clustered bootstrap: reproducible, wider when clusters are respected, exact fast paths."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from spinereview.agreement import (
    cluster_bootstrap_ci,
    cohen_kappa_score,
    cohen_kappa_statistic,
    dice_score,
    icc_score,
    icc_statistic,
    mean_statistic,
)


def _graded_study(
    patients: int = 60, levels: int = 5, seed: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, size=patients * levels)
    a = np.clip(truth + rng.integers(-1, 2, size=truth.size), 0, 3)
    b = np.clip(truth + rng.integers(-1, 2, size=truth.size), 0, 3)
    return a, b, np.repeat(np.arange(patients), levels)


def test_same_seed_same_interval_other_seed_other_draws() -> None:
    a, b, ids = _graded_study()
    statistic = cohen_kappa_statistic(categories=[0, 1, 2, 3], weights="linear")
    first = cluster_bootstrap_ci(statistic, a, b, clusters=ids, n_resamples=500, seed=7, vectorized=True)
    again = cluster_bootstrap_ci(statistic, a, b, clusters=ids, n_resamples=500, seed=7, vectorized=True)
    other = cluster_bootstrap_ci(statistic, a, b, clusters=ids, n_resamples=500, seed=8, vectorized=True)
    assert np.array_equal(first.distribution, again.distribution)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert not np.array_equal(first.distribution, other.distribution)
    # the vectorised statistic sums in another order than the scalar one (and BLAS's order depends on its threads)
    assert first.estimate == pytest.approx(cohen_kappa_score(a, b, categories=[0, 1, 2, 3], weights="linear").kappa, rel=1e-12, abs=0)
    assert first.ci_low < first.estimate < first.ci_high
    assert first.n_clusters == 60 and first.n_observations == 300 and first.seed == 7
    with pytest.raises(ValueError, match="read-only"):
        first.distribution[0] = 0.0


def test_vectorized_kappa_equals_calling_cohen_kappa_on_each_resample() -> None:
    a, b, ids = _graded_study(patients=25)

    def plain(x: Any, y: Any) -> float:
        return cohen_kappa_score(x, y, categories=[0, 1, 2, 3], weights="quadratic").kappa

    fast = cluster_bootstrap_ci(
        cohen_kappa_statistic(categories=[0, 1, 2, 3], weights="quadratic"),
        a,
        b,
        clusters=ids,
        n_resamples=200,
        method="bca",
        vectorized=True,
    )
    slow = cluster_bootstrap_ci(plain, a, b, clusters=ids, n_resamples=200, method="bca")
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-12, atol=1e-14)
    assert fast.ci_low == pytest.approx(slow.ci_low, rel=1e-12)
    assert fast.ci_high == pytest.approx(slow.ci_high, rel=1e-12)


def test_vectorized_icc_equals_icc_score_on_each_resample() -> None:
    rng = np.random.default_rng(2)
    subject = np.repeat(rng.normal(150.0, 30.0, size=20), 3)  # 20 patients x 3 levels
    ratings = subject[:, None] + rng.normal(0.0, 8.0, size=(60, 3)) + np.array([0.0, 4.0, -2.0])
    ids = np.repeat(np.arange(20), 3)
    for form in ("ICC(1)", "ICC(A,1)", "ICC(C,1)", "ICC(k)", "ICC(A,k)", "ICC(C,k)"):

        def plain(x: Any, form: str = form) -> float:
            return icc_score(x, form=form).icc

        fast = cluster_bootstrap_ci(icc_statistic(form=form), ratings, clusters=ids, n_resamples=100, vectorized=True)
        slow = cluster_bootstrap_ci(plain, ratings, clusters=ids, n_resamples=100)
        np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-9)
        assert fast.estimate == pytest.approx(icc_score(ratings, form=form).icc, rel=1e-12)


def test_mean_statistic_skips_undefined_values_like_nanmean() -> None:
    empty = np.zeros((2, 2, 2), bool)
    values = np.array([0.8, 0.9, dice_score(empty, empty), 0.7, 0.6, 0.75])  # one nan Dice
    ids = np.array([0, 0, 1, 1, 2, 2])
    result = cluster_bootstrap_ci(mean_statistic(), values, clusters=ids, n_resamples=300, vectorized=True)
    assert result.estimate == pytest.approx(np.nanmean(values), rel=1e-12)
    loop = cluster_bootstrap_ci(lambda v: float(np.nanmean(v)) if np.any(~np.isnan(v)) else math.nan, values, clusters=ids, n_resamples=300)
    np.testing.assert_allclose(result.distribution, loop.distribution, rtol=1e-12)


def test_interval_widens_when_within_patient_correlation_is_respected() -> None:
    # 30 patients x 10 levels; a patient effect (SD 1) dominates the level noise (SD 0.1), so
    # the 300 values carry about 30 values' worth of information.
    rng = np.random.default_rng(4)
    patients, levels = 30, 10
    values = np.repeat(rng.normal(0.0, 1.0, size=patients), levels) + rng.normal(0.0, 0.1, size=patients * levels)
    ids = np.repeat(np.arange(patients), levels)
    clustered = cluster_bootstrap_ci(mean_statistic(), values, clusters=ids, n_resamples=2000, vectorized=True)
    naive = cluster_bootstrap_ci(mean_statistic(), values, clusters=np.arange(values.size), n_resamples=2000, vectorized=True)
    clustered_width = clustered.ci_high - clustered.ci_low
    naive_width = naive.ci_high - naive.ci_low
    assert clustered_width > 2.5 * naive_width  # theory: about sqrt(10) = 3.2 times wider
    # And the clustered standard error matches the between-patient SD / sqrt(patients).
    patient_means = values.reshape(patients, levels).mean(axis=1)
    assert clustered.standard_error == pytest.approx(patient_means.std() / math.sqrt(patients), rel=0.1)


def test_bca_and_percentile_agree_for_a_symmetric_statistic_and_bca_shifts_for_a_skewed_one() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(size=200)
    ids = np.arange(200)
    pct = cluster_bootstrap_ci(mean_statistic(), values, clusters=ids, n_resamples=4000, vectorized=True)
    bca = cluster_bootstrap_ci(mean_statistic(), values, clusters=ids, n_resamples=4000, vectorized=True, method="bca")
    assert bca.ci_low == pytest.approx(pct.ci_low, abs=0.02)
    assert bca.ci_high == pytest.approx(pct.ci_high, abs=0.02)
    skewed = rng.exponential(size=40)

    def variance(v: Any) -> float:
        return float(np.var(v, ddof=1))

    pct_var = cluster_bootstrap_ci(variance, skewed, clusters=np.arange(40), n_resamples=2000)
    bca_var = cluster_bootstrap_ci(variance, skewed, clusters=np.arange(40), n_resamples=2000, method="bca")
    # The percentile interval of a variance is biased low; BCa moves both ends up.
    assert bca_var.ci_low > pct_var.ci_low and bca_var.ci_high > pct_var.ci_high


def test_undefined_resamples_are_counted_and_left_out() -> None:
    # Patient 0 has the only disagreement and the only second grade: resamples without it have
    # a single grade and an undefined kappa.
    a = np.array([0, 1, 1, 1, 1, 1])
    b = np.array([1, 1, 1, 1, 1, 1])
    ids = np.array([0, 1, 2, 3, 4, 5])
    result = cluster_bootstrap_ci(cohen_kappa_statistic(categories=[0, 1]), a, b, clusters=ids, n_resamples=400, vectorized=True)
    assert result.n_undefined == int(np.count_nonzero(np.isnan(result.distribution)))
    assert 0 < result.n_undefined < 400
    assert not math.isnan(result.ci_low) or result.n_undefined == 400


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (([1.0, 2.0, 3.0],), {"clusters": [0, 0, 0]}, "at least 2 clusters"),
        (([1.0, 2.0, 3.0],), {"clusters": [0, 1]}, "clusters has 2 labels but the data have 3"),
        (([1.0, 2.0, 3.0], [1.0, 2.0]), {"clusters": [0, 1, 2]}, "argument 0 has 3, argument 1 has 2"),
        (([1.0, 2.0, 3.0],), {"clusters": [0, None, 1]}, r"clusters\[1\] is missing"),
        (([1.0, 2.0, 3.0],), {"clusters": [0, 1, 2], "n_resamples": 10}, "n_resamples must be an integer >= 100"),
        (([1.0, 2.0, 3.0],), {"clusters": [0, 1, 2], "seed": -1}, "seed must be a non-negative integer"),
        (([1.0, 2.0, 3.0],), {"clusters": [0, 1, 2], "confidence": 0}, "confidence"),
        (([1.0, 2.0, 3.0],), {"clusters": [0, 1, 2], "method": "normal"}, "method must be"),
        ((), {"clusters": [0, 1, 2]}, "pass the data"),
        ((5.0,), {"clusters": [0]}, "scalar"),
        (([1.0, 2.0, 3.0],), {"clusters": "abc"}, "not a string"),
    ],
)
def test_degenerate_input_is_a_clear_error(data: tuple[Any, ...], kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_bootstrap_ci(lambda v: float(np.mean(v)), *data, **kwargs)


def test_a_vectorized_statistic_of_the_wrong_shape_is_refused() -> None:
    def wrong(values: Any, *, cluster_weights: Any, cluster_index: Any) -> Any:
        return np.zeros(3)

    with pytest.raises(ValueError, match="one value per row of cluster_weights"):
        cluster_bootstrap_ci(wrong, [1.0, 2.0, 3.0, 4.0], clusters=[0, 0, 1, 1], vectorized=True)
    with pytest.raises(TypeError, match="statistic must be a function"):
        cluster_bootstrap_ci(42, [1.0, 2.0], clusters=[0, 1])  # type: ignore[arg-type]
