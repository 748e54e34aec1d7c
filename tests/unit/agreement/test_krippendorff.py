"""Krippendorff's alpha against published values, and its properties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinereview.agreement import cohen_kappa_score, krippendorff_alpha_score
from tests.unit.agreement._reference import GWET_4_RATERS, load


@pytest.fixture(scope="module")
def wikipedia() -> dict[str, Any]:
    return load("krippendorff_alpha_wikipedia_3coders_15units.json")


def _units_by_raters(reference: dict[str, Any]) -> list[list[int | None]]:
    """The file stores coders x units; this package takes subjects (units) x raters."""
    rows = reference["data"]["rows"]
    return [list(unit) for unit in zip(*rows, strict=True)]


def test_wikipedia_nominal(wikipedia: dict[str, Any]) -> None:
    result = krippendorff_alpha_score(_units_by_raters(wikipedia), level="nominal", categories=[1, 2, 3, 4])
    assert round(result.alpha, wikipedia["expected"]["decimal"]) == wikipedia["expected"]["nominal"]
    assert result.alpha == pytest.approx(wikipedia["crosscheck_krippendorff_0.9.0"]["nominal"], abs=1e-10)
    # Units 1, 2 and 14 have fewer than two ratings; the other 12 hold 26 pairable values.
    assert result.n_units == 12
    assert result.n_pairable_values == 26
    assert result.n_raters == 3


def test_wikipedia_interval_with_and_without_a_category_list(wikipedia: dict[str, Any]) -> None:
    units = _units_by_raters(wikipedia)
    free = krippendorff_alpha_score(units, level="interval")
    listed = krippendorff_alpha_score(units, level="interval", categories=[1, 2, 3, 4])
    assert round(free.alpha, 6) == wikipedia["expected"]["interval"]
    assert free.alpha == pytest.approx(wikipedia["crosscheck_krippendorff_0.9.0"]["interval"], abs=1e-10)
    assert listed.alpha == pytest.approx(free.alpha, rel=1e-12)
    assert free.values == (1.0, 2.0, 3.0, 4.0)


def test_nan_and_none_both_mark_missing(wikipedia: dict[str, Any]) -> None:
    units = _units_by_raters(wikipedia)
    as_nan = np.array([[np.nan if v is None else v for v in row] for row in units], dtype=float)
    assert krippendorff_alpha_score(as_nan, level="nominal", categories=[1, 2, 3, 4]).alpha == pytest.approx(
        krippendorff_alpha_score(units, level="nominal", categories=[1, 2, 3, 4]).alpha, rel=1e-12
    )


@pytest.mark.parametrize(
    ("level", "published"),
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", 4 observers x 12 units;
    # also asserted by fast-krippendorff tests (ordinal, ratio) and irrCAC (nominal .743).
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_2011_example_all_levels(level: Any, published: float) -> None:
    result = krippendorff_alpha_score(GWET_4_RATERS, level=level, categories=[1, 2, 3, 4, 5])
    assert round(result.alpha, 3) == published
    assert result.n_units == 11
    assert result.n_pairable_values == 40


def test_krippendorff_2011_nominal_exact_value() -> None:
    # Krippendorff (2011) works the nominal case by hand: n = 40 pairable values, off-diagonal
    # coincidences summing to 4 and sum_{c != k} n_c n_k / 2 = 608: alpha = 1 - 39 * 4 / 608 = .743.
    result = krippendorff_alpha_score(GWET_4_RATERS, level="nominal", categories=[1, 2, 3, 4, 5])
    assert result.alpha == pytest.approx(1 - 39 * 4 / 608, rel=1e-12)
    assert result.observed_disagreement == pytest.approx(8 / 40, rel=1e-12)


def test_ordinal_unused_grade_changes_nothing_but_order_does() -> None:
    ratings = [[0, 0, 1], [1, 1, 1], [2, 2, 3], [3, 3, 2], [0, 1, 0]]
    base = krippendorff_alpha_score(ratings, level="ordinal", categories=[0, 1, 2, 3])
    with_unused = krippendorff_alpha_score(ratings, level="ordinal", categories=[0, 1, 2, 3, 4])
    reordered = krippendorff_alpha_score(ratings, level="ordinal", categories=[3, 0, 1, 2])
    assert with_unused.alpha == pytest.approx(base.alpha, rel=1e-12)
    assert reordered.alpha != pytest.approx(base.alpha, rel=1e-6)


def test_two_raters_nominal_equals_scotts_pi_small_sample_corrected() -> None:
    # With 2 raters and no missing data nominal alpha = 1 - (2n - 1)/(2n) * (1 - pi) ... checked
    # against Krippendorff's relation alpha = 1 - (2n-1) D_o / (2n D_e') via Scott's pi:
    # a = [0,0,1,1,2], b = [0,1,1,1,2]: Scott's pi = 21/31 (see the Fleiss test), n = 5 units.
    result = krippendorff_alpha_score(list(zip([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], strict=True)), level="nominal", categories=[0, 1, 2])
    pi = 21 / 31
    assert result.alpha == pytest.approx(1 - (2 * 5 - 1) / (2 * 5) * (1 - pi), rel=1e-12)


def test_ratio_with_zeros_and_perfect_agreement_is_one() -> None:
    assert krippendorff_alpha_score([[0, 0], [1, 1], [2, 2]], level="ratio").alpha == 1.0


def test_single_value_is_undefined() -> None:
    assert math.isnan(krippendorff_alpha_score([[1, 1], [1, 1]], level="nominal", categories=[1, 2]).alpha)


@pytest.mark.parametrize(
    ("ratings", "kwargs", "message"),
    [
        ([[1, 2], [1, 2]], {"level": "nominal"}, "needs the protocol's category list"),
        ([[1, 2], [1, 2]], {"level": "ordinal"}, "needs the protocol's category list"),
        ([[1, 2], [1, 2]], {"level": "cardinal", "categories": [1, 2]}, "level must be one of"),
        ([[1, 9], [1, 2]], {"level": "nominal", "categories": [1, 2]}, r"ratings\[0\]\[1\] = 9"),
        ([[1, None], [None, 2]], {"level": "nominal", "categories": [1, 2]}, "no unit has ratings from 2 or more raters"),
        ([[1], [2]], {"level": "interval"}, "at least 2 raters"),
        ([[-1.0, 2.0], [1.0, 2.0]], {"level": "ratio"}, "values >= 0"),
        ([["a", "b"], ["a", "b"]], {"level": "interval"}, "numbers only"),
        ([["a", "b"], ["a", "b"]], {"level": "interval", "categories": ["a", "b"]}, "numeric categories"),
        ([[1.0, float("inf")], [1.0, 2.0]], {"level": "interval"}, "infinite"),
        ([[1, 2], [1]], {"level": "interval"}, "rectangular"),
    ],
)
def test_malformed_input_is_a_clear_error(ratings: Any, kwargs: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        krippendorff_alpha_score(ratings, **kwargs)


# --------------------------------------------------------------------------- properties


@st.composite
def incomplete_tables(draw: st.DrawFn) -> tuple[list[list[int | None]], list[int]]:
    k = draw(st.integers(min_value=2, max_value=5))
    n = draw(st.integers(min_value=2, max_value=12))
    r = draw(st.integers(min_value=2, max_value=4))
    cell = st.one_of(st.none(), st.integers(min_value=0, max_value=k - 1))
    rows = draw(st.lists(st.lists(cell, min_size=r, max_size=r), min_size=n, max_size=n))
    complete = draw(st.lists(st.integers(min_value=0, max_value=k - 1), min_size=r, max_size=r))
    return [*rows, list(complete)], list(range(k))  # at least one pairable unit


LEVELS = st.sampled_from(["nominal", "ordinal", "interval", "ratio"])


@settings(max_examples=60, deadline=None)
@given(incomplete_tables(), LEVELS, st.randoms(use_true_random=False))
def test_alpha_ignores_rater_and_unit_order(table: tuple[list[list[int | None]], list[int]], level: Any, rng: Any) -> None:
    rows, categories = table
    shuffled = [list(row) for row in rows]
    rng.shuffle(shuffled)
    for row in shuffled:
        rng.shuffle(row)
    a = krippendorff_alpha_score(rows, level=level, categories=categories).alpha
    b = krippendorff_alpha_score(shuffled, level=level, categories=categories).alpha
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)
    if not math.isnan(a):
        assert a <= 1.0 + 1e-12


@settings(max_examples=60, deadline=None)
@given(incomplete_tables(), LEVELS)
def test_perfect_agreement_gives_one(table: tuple[list[list[int | None]], list[int]], level: Any) -> None:
    rows, categories = table
    perfect: list[list[int | None]] = []
    for row in rows:
        present = [v for v in row if v is not None]
        perfect.append([None if v is None else present[0] for v in row])
    result = krippendorff_alpha_score(perfect, level=level, categories=categories)
    if result.expected_disagreement == 0.0:
        assert math.isnan(result.alpha)
    else:
        assert result.alpha == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(incomplete_tables(), st.randoms(use_true_random=False))
def test_nominal_alpha_is_invariant_to_renaming_categories(table: tuple[list[list[int | None]], list[int]], rng: Any) -> None:
    rows, categories = table
    relabel = list(categories)
    rng.shuffle(relabel)
    renamed = [[None if v is None else relabel[v] for v in row] for row in rows]
    a = krippendorff_alpha_score(rows, level="nominal", categories=categories).alpha
    b = krippendorff_alpha_score(renamed, level="nominal", categories=categories).alpha
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


def test_nominal_alpha_approaches_cohen_kappa_for_large_samples() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, size=4000)
    b = np.where(rng.random(4000) < 0.7, a, rng.integers(0, 3, size=4000))
    alpha = krippendorff_alpha_score(np.column_stack([a, b]), level="nominal", categories=[0, 1, 2]).alpha
    kappa = cohen_kappa_score(a, b, categories=[0, 1, 2]).kappa
    assert alpha == pytest.approx(kappa, abs=2e-3)
