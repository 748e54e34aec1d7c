"""Fleiss' kappa and Gwet's AC1/AC2 against published values, and their properties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinereview.agreement import (
    category_counts,
    cohen_kappa_score,
    fleiss_kappa_counts_score,
    fleiss_kappa_score,
    gwet_ac_score,
)
from tests.unit.agreement._reference import GWET_4_RATERS, load

# --------------------------------------------------------------------------- Fleiss


@pytest.fixture(scope="module")
def wikipedia() -> dict[str, Any]:
    return load("fleiss_kappa_wikipedia_10x5.json")


def test_fleiss_wikipedia_example(wikipedia: dict[str, Any]) -> None:
    result = fleiss_kappa_counts_score(wikipedia["data"]["counts"])
    assert round(result.kappa, 3) == wikipedia["expected"]["fleiss_kappa"]
    assert result.kappa == pytest.approx(wikipedia["crosscheck_statsmodels"]["fleiss_kappa"], abs=1e-10)
    assert result.n_subjects == 10
    assert result.n_raters == wikipedia["data"]["raters_per_subject"]
    # Wikipedia's worked numbers: P_bar = 0.378, P_e = 0.213, p_j = 0.143 0.200 0.279 0.150 0.229.
    assert round(result.observed_agreement, 3) == 0.378
    assert round(result.expected_agreement, 3) == 0.213
    assert [round(p, 3) for p in result.category_proportions] == [0.143, 0.2, 0.279, 0.15, 0.229]
    assert result.observed_agreement == pytest.approx(np.mean(wikipedia["data"]["P_i_from_source"]), abs=5e-4)


def test_fleiss_from_raw_ratings_equals_the_count_table(wikipedia: dict[str, Any]) -> None:
    # Expand each count row into 14 raters' grades (rater identity does not matter to Fleiss).
    grades = ["none", "mild", "moderate", "severe", "extreme"]
    ratings = [[grades[j] for j, c in enumerate(row) for _ in range(c)] for row in wikipedia["data"]["counts"]]
    raw = fleiss_kappa_score(ratings, categories=grades)
    table = fleiss_kappa_counts_score(wikipedia["data"]["counts"], categories=grades)
    assert raw == table
    assert category_counts(ratings, categories=grades).tolist() == wikipedia["data"]["counts"]


def test_fleiss_per_category_kappa_by_hand() -> None:
    # 3 subjects x 2 raters, categories a/b: [a a], [a b], [b b]: p_a = p_b = 1/2,
    # P_i = 1, 0, 1 -> P_bar = 2/3, P_e = 1/2, kappa = 1/3; per category the same by symmetry.
    result = fleiss_kappa_score([["a", "a"], ["a", "b"], ["b", "b"]], categories=["a", "b", "c"])
    assert result.kappa == pytest.approx(1 / 3, rel=1e-12)
    assert result.category_kappas[0] == pytest.approx(1 / 3, rel=1e-12)
    assert result.category_kappas[1] == pytest.approx(1 / 3, rel=1e-12)
    assert math.isnan(result.category_kappas[2])  # nobody used "c"


def test_fleiss_two_raters_is_scotts_pi() -> None:
    # Scott's pi by hand for a = [0,0,1,1,2], b = [0,1,1,1,2]: p_o = 0.8, pooled p = (.3, .5, .2)
    # -> p_e = .09 + .25 + .04 = .38, pi = (.8 - .38) / .62 = 21/31.
    result = fleiss_kappa_score(list(zip([0, 0, 1, 1, 2], [0, 1, 1, 1, 2], strict=True)), categories=[0, 1, 2])
    assert result.kappa == pytest.approx(21 / 31, rel=1e-12)


def test_fleiss_single_category_is_undefined() -> None:
    assert math.isnan(fleiss_kappa_score([[1, 1], [1, 1]], categories=[1, 2]).kappa)


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ([[1, 2], [1, None]], r"ratings\[1\]\[1\] is missing"),
        ([[1, 2], [1, 9]], r"ratings\[1\]\[1\] = 9 is not one of the categories"),
        ([[1, 2]], "at least 2 subjects"),
        ([[1], [2]], "at least 2 raters"),
        ([[1, 2], [1]], "rectangular"),
        ([], "empty"),
    ],
)
def test_fleiss_rejects_malformed_ratings(ratings: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fleiss_kappa_score(ratings, categories=[1, 2])


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ([[2, 0], [1, 2]], "same number of ratings"),
        ([[1, 0], [0, 1]], "at least 2 raters"),
        ([[1.5, 0.5], [1, 1]], "integer counts"),
        ([[-1, 3], [1, 1]], "integer counts"),
        ([1, 2], "2-D"),
    ],
)
def test_fleiss_rejects_malformed_counts(counts: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fleiss_kappa_counts_score(counts)


def test_fleiss_counts_category_names_must_match_columns() -> None:
    with pytest.raises(ValueError, match="categories has 3 entries but counts has 2 columns"):
        fleiss_kappa_counts_score([[2, 0], [1, 1]], categories=["a", "b", "c"])


# --------------------------------------------------------------------------- Gwet


@pytest.mark.parametrize(
    ("weights", "p_a", "p_e", "coefficient"),
    [
        # Gwet (2014) p. 120 as asserted in irrCAC test_gwet.py (3 dp).
        ("none", 0.818, 0.190, 0.775),
        ("linear", 0.939, 0.571, 0.859),
        ("quadratic", 0.975, 0.714, 0.914),
    ],
)
def test_gwet_handbook_example(weights: str, p_a: float, p_e: float, coefficient: float) -> None:
    result = gwet_ac_score(GWET_4_RATERS, categories=[1, 2, 3, 4, 5], weights=weights)
    assert round(result.observed_agreement, 3) == p_a
    assert round(result.expected_agreement, 3) == p_e
    assert round(result.coefficient, 3) == coefficient
    assert result.name == ("AC1" if weights == "none" else "AC2")
    assert result.n_subjects == 12 and result.n_subjects_paired == 11 and result.n_raters == 4


def test_gwet_ac1_exact_fractions() -> None:
    # p_a = 9/11 (subject 12 has one rating); pi from the 12 rated subjects.
    result = gwet_ac_score(GWET_4_RATERS, categories=[1, 2, 3, 4, 5])
    assert result.observed_agreement == pytest.approx(9 / 11, rel=1e-12)
    pi = np.array(result.category_proportions)
    assert pi.sum() == pytest.approx(1.0, rel=1e-12)
    assert result.expected_agreement == pytest.approx(float(np.sum(pi * (1 - pi))) / 4, rel=1e-12)


def test_gwet_ac1_two_raters_by_hand() -> None:
    # 2 raters, 10 items, 8 agreements. Rater A says "y" 6 times, rater B 4 times, so
    # pi_y = pi_n = 0.5 and p_e = (0.25 + 0.25) / (q - 1) = 0.5: AC1 = (0.8 - 0.5) / 0.5 = 0.6.
    a = ["y", "y", "y", "y", "y", "n", "n", "n", "n", "y"]
    b = ["y", "y", "y", "y", "n", "n", "n", "n", "n", "n"]
    result = gwet_ac_score(list(zip(a, b, strict=True)), categories=["y", "n"])
    assert result.observed_agreement == pytest.approx(0.8, rel=1e-12)
    assert result.expected_agreement == pytest.approx(0.5, rel=1e-12)
    assert result.coefficient == pytest.approx(0.6, rel=1e-12)


def test_gwet_stays_defined_when_everyone_uses_one_grade() -> None:
    # Kappa's paradox: total agreement on a single grade leaves kappa undefined; AC1 is 1.
    result = gwet_ac_score([[0, 0], [0, 0], [0, 0]], categories=[0, 1, 2])
    assert result.coefficient == 1.0
    assert math.isnan(cohen_kappa_score([0, 0, 0], [0, 0, 0], categories=[0, 1, 2]).kappa)


@pytest.mark.parametrize(
    ("ratings", "categories", "weights", "message"),
    [
        ([[1, 2], [1, 7]], [1, 2], "none", r"ratings\[1\]\[1\] = 7"),
        ([[1], [2]], [1, 2], "none", "at least 2 raters"),
        ([[1, 1], [1, 1]], [1], "none", "at least 2 categories"),
        ([[1, None], [None, 2]], [1, 2], "none", "no subject has ratings from 2 or more raters"),
        ([[1, 2], [1, 2]], [1, 2], "cubic", "weights must be one of"),
        ([[1, 2], [1, 2]], [1, 2], [[0, 1, 1], [1, 0, 1], [1, 1, 0]], "must be 2 x 2"),
    ],
)
def test_gwet_rejects_malformed_input(ratings: Any, categories: Any, weights: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gwet_ac_score(ratings, categories=categories, weights=weights)


# --------------------------------------------------------------------------- properties


@st.composite
def rating_tables(draw: st.DrawFn) -> tuple[list[list[int]], list[int]]:
    k = draw(st.integers(min_value=2, max_value=5))
    n = draw(st.integers(min_value=2, max_value=15))
    r = draw(st.integers(min_value=2, max_value=5))
    grade = st.integers(min_value=0, max_value=k - 1)
    rows = draw(st.lists(st.lists(grade, min_size=r, max_size=r), min_size=n, max_size=n))
    return rows, list(range(k))


@settings(max_examples=60, deadline=None)
@given(rating_tables(), st.randoms(use_true_random=False))
def test_fleiss_and_ac1_do_not_depend_on_rater_or_subject_order_or_labels(table: tuple[list[list[int]], list[int]], rng: Any) -> None:
    rows, categories = table
    shuffled = [list(row) for row in rows]
    rng.shuffle(shuffled)
    for row in shuffled:
        rng.shuffle(row)
    relabel = list(categories)
    rng.shuffle(relabel)  # nominal statistics: renaming the categories changes nothing
    renamed = [[relabel[g] for g in row] for row in shuffled]
    base_f = fleiss_kappa_score(rows, categories=categories).kappa
    other_f = fleiss_kappa_score(renamed, categories=categories).kappa
    assert (math.isnan(base_f) and math.isnan(other_f)) or base_f == pytest.approx(other_f, rel=1e-9, abs=1e-12)
    base_g = gwet_ac_score(rows, categories=categories).coefficient
    other_g = gwet_ac_score(renamed, categories=categories).coefficient
    assert base_g == pytest.approx(other_g, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(rating_tables(), st.sampled_from(["none", "linear", "quadratic"]))
def test_perfect_agreement_gives_one_and_bounds_hold(table: tuple[list[list[int]], list[int]], weights: str) -> None:
    rows, categories = table
    perfect = [[row[0]] * len(row) for row in rows]
    assert gwet_ac_score(perfect, categories=categories, weights=weights).coefficient == pytest.approx(1.0, rel=1e-12)
    fleiss = fleiss_kappa_score(perfect, categories=categories).kappa
    if len({row[0] for row in rows}) >= 2:
        assert fleiss == pytest.approx(1.0, rel=1e-12)
    else:
        assert math.isnan(fleiss)
    result = gwet_ac_score(rows, categories=categories, weights=weights)
    assert result.coefficient <= 1.0 + 1e-12
    assert 0.0 <= result.observed_agreement <= 1.0 + 1e-12
    assert 0.0 <= result.expected_agreement < 1.0
    f = fleiss_kappa_score(rows, categories=categories)
    if not math.isnan(f.kappa):
        assert f.kappa <= 1.0 + 1e-12
        assert f.kappa >= -1.0 / (f.n_raters - 1) - 1e-9  # Fleiss' lower bound
