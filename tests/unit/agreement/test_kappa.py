"""Cohen's kappa against published values (../shared/data/reference-stats/) and its properties."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinereview.agreement import (
    KappaResult,
    cohen_kappa_score,
    confusion_matrix,
    disagreement_weights,
    percent_agreement_score,
)

# <clone>/tests/unit/agreement/this_file -> parents[3] is the clone; shared/ lies beside it.
REFERENCE_STATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "reference-stats"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE_STATS / name).read_text(encoding="utf-8"))
    return data


def _run_lengths(spec: str) -> list[int]:
    """Expand the reference files' run-length notation, e.g. ``"[0]*40 + [1]*60"``."""
    out: list[int] = []
    for term in spec.split("+"):
        match = re.fullmatch(r"\s*\[(-?\d+)\]\s*\*\s*(\d+)\s*", term)
        assert match is not None, f"unexpected run-length term {term!r}"
        out.extend([int(match.group(1))] * int(match.group(2)))
    return out


def _at_published_precision(value: float, published: float, decimals: int) -> None:
    """The published number is our value rounded to the digits it was printed with."""
    assert round(value, decimals) == published


# --------------------------------------------------------------------------- scikit-learn /
# Artstein & Poesio 2008


@pytest.fixture(scope="module")
def sklearn_ref() -> dict[str, Any]:
    return _load("cohen_kappa_sklearn_artstein_poesio.json")


def test_binary_case_matches_published_kappa_and_contingency(
    sklearn_ref: dict[str, Any],
) -> None:
    case = sklearn_ref["data"]["case_binary"]
    y1, y2 = _run_lengths(case["y1"]), _run_lengths(case["y2"])

    result = cohen_kappa_score(y1, y2, categories=[0, 1])

    _at_published_precision(result.kappa, sklearn_ref["expected"]["case_binary_unweighted"], 3)
    assert result.kappa == pytest.approx(sklearn_ref["crosscheck_sklearn"]["binary"], abs=1e-9)
    assert result.kappa == pytest.approx(8 / 23, rel=1e-12)  # (0.70 - 0.54) / (1 - 0.54)
    assert result.confusion.tolist() == case["contingency"]
    assert result.n == 100
    assert result.observed_agreement == pytest.approx(0.70, rel=1e-12)
    assert result.expected_agreement == pytest.approx(0.54, rel=1e-12)  # 0.4*0.3 + 0.6*0.7
    assert result.weights == "none"
    assert result.categories == (0, 1)


def test_multiclass_case_matches_published_kappa(sklearn_ref: dict[str, Any]) -> None:
    case = sklearn_ref["data"]["case_multiclass"]
    result = cohen_kappa_score(_run_lengths(case["y1"]), _run_lengths(case["y2"]), categories=[0, 1, 2])
    _at_published_precision(result.kappa, sklearn_ref["expected"]["case_multiclass_unweighted"], 4)
    assert result.kappa == pytest.approx(sklearn_ref["crosscheck_sklearn"]["multiclass"], abs=1e-9)


@pytest.mark.parametrize(
    ("weights", "expected_key", "crosscheck_key"),
    [
        ("none", "case_weighted_none", "weighted_none"),
        ("linear", "case_weighted_linear", "linear"),
        ("quadratic", "case_weighted_quadratic", "quadratic"),
    ],
)
def test_weighted_case_matches_published_kappa(sklearn_ref: dict[str, Any], weights: str, expected_key: str, crosscheck_key: str) -> None:
    case = sklearn_ref["data"]["case_weighted"]
    result = cohen_kappa_score(
        _run_lengths(case["y1"]),
        _run_lengths(case["y2"]),
        categories=[0, 1, 2],
        weights=weights,
    )
    _at_published_precision(result.kappa, sklearn_ref["expected"][expected_key], 4)
    assert result.kappa == pytest.approx(sklearn_ref["crosscheck_sklearn"][crosscheck_key], abs=1e-9)
    assert result.weights == weights


def test_both_raters_using_one_category_is_undefined_nan() -> None:
    # scikit-learn: ([3]*10, [3]*10) -> division by zero -> nan.
    for weights in ("none", "linear", "quadratic"):
        result = cohen_kappa_score(
            [3] * 10,
            [3] * 10,
            categories=[1, 2, 3],
            weights=weights,
        )
        assert math.isnan(result.kappa)
        assert result.observed_agreement == 1.0
        assert result.expected_agreement == 1.0


def test_single_category_scale_is_undefined_nan() -> None:
    assert math.isnan(cohen_kappa_score(["A"] * 3, ["A"] * 3, categories=["A"]).kappa)


def test_sklearn_out_of_label_undefined_case_is_an_error_here() -> None:
    # scikit-learn drops ratings outside `labels` and returns nan for y1=[1]*5+[2]*5,
    # y2=[3]*10, labels=[1, 2]. A rating outside the protocol's scale is a data error here.
    with pytest.raises(ValueError, match=r"rater_b\[0\] = 3 is not one of the categories"):
        cohen_kappa_score([1] * 5 + [2] * 5, [3] * 10, categories=[1, 2])


def test_sklearn_spurious_labels_are_rejected_not_ignored(
    sklearn_ref: dict[str, Any],
) -> None:
    # scikit-learn ignores four extra (2, 2) pairs given labels=[0, 1]; we refuse them.
    case = sklearn_ref["data"]["case_binary"]
    y1 = _run_lengths(case["y1"]) + [2] * 4
    y2 = _run_lengths(case["y2"]) + [2] * 4
    with pytest.raises(ValueError, match=r"rater_a\[100\] = 2"):
        cohen_kappa_score(y1, y2, categories=[0, 1])


# --------------------------------------------------------------------------- R irr anxiety


@pytest.fixture(scope="module")
def anxiety() -> dict[str, Any]:
    return _load("cohen_kappa_irr_anxiety.json")


def _raters_2_and_3(anxiety: dict[str, Any]) -> tuple[list[int], list[int]]:
    assert anxiety["data"]["pair_used"] == "rater2 vs rater3"
    rows = anxiety["data"]["rows"]
    return [row[1] for row in rows], [row[2] for row in rows]


IRR_PRESENT_LEVELS = [1, 2, 3, 4, 6]  # what irr::kappa2 tabulates: 5 never occurs
FULL_SCALE = [1, 2, 3, 4, 5, 6]  # the anxiety scale as a protocol would define it


@pytest.mark.parametrize(
    ("weights", "expected_key", "crosscheck_key"),
    [
        ("none", "unweighted", "unweighted"),
        ("linear", "equal (linear weights)", "equal_linear"),
        ("quadratic", "squared (quadratic weights)", "squared_quadratic"),
    ],
)
def test_irr_kappa2_with_the_levels_it_tabulates(anxiety: dict[str, Any], weights: str, expected_key: str, crosscheck_key: str) -> None:
    a, b = _raters_2_and_3(anxiety)
    result = cohen_kappa_score(
        a,
        b,
        categories=IRR_PRESENT_LEVELS,
        weights=weights,
    )
    # irr prints 7 significant digits.
    published = anxiety["expected"][expected_key]["kappa"]
    _at_published_precision(result.kappa, published, 9 if weights == "none" else 7)
    assert result.kappa == pytest.approx(anxiety["crosscheck_statsmodels"][crosscheck_key]["kappa"], abs=1e-10)
    assert result.kappa == pytest.approx(
        anxiety["crosscheck_sklearn_label_index_weights"][{"none": "unweighted"}.get(weights, weights)],
        abs=1e-10,
    )


def test_irr_kappa2_custom_weights_as_an_explicit_matrix(
    anxiety: dict[str, Any],
) -> None:
    # irr weight = c(0, 0, 1, 1, 2): disagreement weight by index distance |i - j|.
    a, b = _raters_2_and_3(anxiety)
    by_distance = [0, 0, 1, 1, 2]
    matrix = [[by_distance[abs(i - j)] for j in range(5)] for i in range(5)]

    result = cohen_kappa_score(a, b, categories=IRR_PRESENT_LEVELS, weights=matrix)

    _at_published_precision(result.kappa, anxiety["expected"]["custom weights c(0,0,1,1,2)"]["kappa"], 7)
    assert result.kappa == pytest.approx(anxiety["crosscheck_statsmodels"]["custom_0_0_1_1_2"]["kappa"], abs=1e-10)
    assert result.weights == "custom"
    assert result.disagreement_weights.max() == 1.0  # rescaled; kappa is scale-free


def test_full_scale_keeps_unused_grade_5_in_the_distances(
    anxiety: dict[str, Any],
) -> None:
    """The contrast the reference README warns about (pitfall 1).

    With the protocol's full scale 1..6, grade 5 (never used) sits between 4 and 6, so 4 vs 6
    is a two-step disagreement: linear 0.1262 and quadratic 0.2298, not irr's 0.1459 / 0.2520.
    Unweighted kappa does not depend on unused categories.
    """
    a, b = _raters_2_and_3(anxiety)
    contrast = anxiety["contrast_value_distance_weights_NOT_irr"]

    unweighted = cohen_kappa_score(a, b, categories=FULL_SCALE)
    linear = cohen_kappa_score(a, b, categories=FULL_SCALE, weights="linear")
    quadratic = cohen_kappa_score(a, b, categories=FULL_SCALE, weights="quadratic")

    assert unweighted.kappa == pytest.approx(anxiety["expected"]["unweighted"]["kappa"], abs=1e-9)
    assert linear.kappa == pytest.approx(contrast["linear"], abs=1e-10)
    assert quadratic.kappa == pytest.approx(contrast["quadratic"], abs=1e-10)
    assert linear.kappa == pytest.approx(13 / 103, rel=1e-12)
    assert quadratic.kappa == pytest.approx(91 / 396, rel=1e-12)
    assert linear.confusion.shape == (6, 6)
    assert linear.confusion[4].sum() == 0 and linear.confusion[:, 4].sum() == 0


# --------------------------------------------------------------------------- API details


def test_confusion_matrix_rows_are_rater_a_in_category_order() -> None:
    counts = confusion_matrix(["B", "A", "A", "C"], ["A", "A", "C", "C"], ["C", "B", "A"])
    assert counts.tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 1]]
    assert counts.dtype == np.int64


def test_result_arrays_are_read_only() -> None:
    result = cohen_kappa_score([0, 1], [0, 1], categories=[0, 1])
    with pytest.raises(ValueError, match="read-only"):
        result.confusion[0, 0] = 5
    with pytest.raises(ValueError, match="read-only"):
        result.disagreement_weights[0, 0] = 5.0


def test_numpy_and_tuple_inputs_equal_list_inputs() -> None:
    a = [0, 2, 1, 1, 0, 2]
    b = [0, 1, 1, 2, 0, 2]
    from_lists = cohen_kappa_score(a, b, categories=[0, 1, 2], weights="linear")
    from_arrays = cohen_kappa_score(
        np.array(a, dtype=np.uint8),
        tuple(b),
        categories=np.arange(3).tolist(),
        weights="linear",
    )
    assert from_arrays.kappa == from_lists.kappa
    assert from_arrays.confusion.tolist() == from_lists.confusion.tolist()


def test_disagreement_weights_by_category_index() -> None:
    assert disagreement_weights(4, "none").tolist() == [
        [0, 1, 1, 1],
        [1, 0, 1, 1],
        [1, 1, 0, 1],
        [1, 1, 1, 0],
    ]
    assert disagreement_weights(4, "linear")[0].tolist() == [0.0, 1 / 3, 2 / 3, 1.0]
    assert disagreement_weights(4, "quadratic")[0].tolist() == [0.0, 1 / 9, 4 / 9, 1.0]
    assert disagreement_weights(1, "linear").tolist() == [[0.0]]


def test_percent_agreement_is_in_percent() -> None:
    assert percent_agreement_score([1, 2, 3, 4], [1, 2, 3, 3]) == 75.0
    assert percent_agreement_score(["A", "B"], ["B", "A"], categories=["A", "B"]) == 0.0
    assert percent_agreement_score(np.array([0, 1]), np.array([0, 1])) == 100.0


def test_weighted_kappa_depends_on_category_order() -> None:
    # Worked by hand: linear, order 0 < 1 < 2: observed disagreement 1.5/6 = 0.25, expected
    # (1/3) * (5/12 + 1/4 + 7/12) = 5/12, kappa = 1 - 0.25 / (5/12) = 0.4.
    a = [0, 0, 1, 2, 2, 1]
    b = [0, 1, 1, 2, 0, 1]
    kappa = {
        (tuple(order), weights): cohen_kappa_score(a, b, categories=order, weights=weights).kappa
        for order in ([0, 1, 2], [1, 0, 2])
        for weights in ("none", "linear", "quadratic")
    }
    assert kappa[(0, 1, 2), "none"] == kappa[(1, 0, 2), "none"] == 0.5
    assert kappa[(0, 1, 2), "linear"] == pytest.approx(2 / 5, rel=1e-12)
    assert kappa[(1, 0, 2), "linear"] == pytest.approx(5 / 8, rel=1e-12)
    assert kappa[(0, 1, 2), "quadratic"] == pytest.approx(2 / 7, rel=1e-12)
    assert kappa[(1, 0, 2), "quadratic"] == pytest.approx(3 / 4, rel=1e-12)


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("rater_a", "rater_b", "categories", "message"),
    [
        ([0, 1], [0], [0, 1], "same items: got 2 and 1"),
        ([], [], [0, 1], "no ratings"),
        (
            [0, 7],
            [0, 1],
            [0, 1],
            r"rater_a\[1\] = 7 is not one of the categories \[0, 1\]",
        ),
        ([0, 1], [0, "1"], [0, 1], r"rater_b\[1\] = '1' is not one of the categories"),
        ([0, float("nan")], [0, 1], [0, 1], r"rater_a\[1\] = nan"),
        ([0, None], [0, 1], [0, 1], r"rater_a\[1\] = None"),
        ([0, [1]], [0, 1], [0, 1], r"rater_a\[1\] = \[1\]"),
        ([0, 1], [0, 1], [], "categories must not be empty"),
        ([0, 1], [0, 1], [0, 1, 0], "categories contain 0 more than once"),
        ([0, 1], [0, 1], [0, float("nan")], "NaN"),
        (np.zeros((2, 2)), np.zeros((2, 2)), [0], "one-dimensional"),
    ],
)
def test_malformed_input_is_a_clear_value_error(rater_a: Any, rater_b: Any, categories: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cohen_kappa_score(rater_a, rater_b, categories=categories)
    with pytest.raises(ValueError, match=message):
        confusion_matrix(rater_a, rater_b, categories)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("cubic", "weights must be one of"),
        ([[0, 1], [1, 0]], r"must be 3 x 3"),
        ([[0, 1, 2], [1, 0, 1], [2, 1, 1]], r"diagonal"),
        ([[0, -1, 2], [1, 0, 1], [2, 1, 0]], r">= 0"),
        ([[0, np.inf, 2], [1, 0, 1], [2, 1, 0]], "finite"),
    ],
)
def test_bad_weights_are_a_clear_value_error(weights: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cohen_kappa_score([0, 1, 2], [0, 1, 2], categories=[0, 1, 2], weights=weights)


def test_percent_agreement_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match="same items"):
        percent_agreement_score([1, 2], [1])
    with pytest.raises(ValueError, match="no ratings"):
        percent_agreement_score([], [])
    with pytest.raises(ValueError, match=r"rater_b\[0\] = 9"):
        percent_agreement_score([1], [9], categories=[1, 2])


@pytest.mark.parametrize(
    ("rater_a", "rater_b", "categories"),
    [("01", "01", ["0", "1"]), ([0, 1], [0, 1], "01"), (b"01", b"01", [48, 49])],
)
def test_a_single_string_is_a_type_error(rater_a: Any, rater_b: Any, categories: Any) -> None:
    with pytest.raises(TypeError, match="not a single string"):
        cohen_kappa_score(rater_a, rater_b, categories=categories)


# --------------------------------------------------------------------------- properties

WEIGHTS = st.sampled_from(["none", "linear", "quadratic"])


@st.composite
def paired_ratings(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    k = draw(st.integers(min_value=1, max_value=6))
    categories = list(range(k))
    n = draw(st.integers(min_value=1, max_value=40))
    grade = st.sampled_from(categories)
    a = draw(st.lists(grade, min_size=n, max_size=n))
    b = draw(st.lists(grade, min_size=n, max_size=n))
    return a, b, categories


def _same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


@given(paired_ratings(), WEIGHTS)
def test_kappa_is_symmetric_in_the_two_readers(ratings: tuple[list[int], list[int], list[int]], weights: str) -> None:
    a, b, categories = ratings
    ab = cohen_kappa_score(a, b, categories=categories, weights=weights)
    ba = cohen_kappa_score(b, a, categories=categories, weights=weights)
    assert _same(ab.kappa, ba.kappa)
    assert np.array_equal(ab.confusion, ba.confusion.T)


@given(paired_ratings(), WEIGHTS)
def test_perfect_agreement_gives_one(ratings: tuple[list[int], list[int], list[int]], weights: str) -> None:
    a, _, categories = ratings
    result = cohen_kappa_score(a, a, categories=categories, weights=weights)
    if len(set(a)) >= 2:
        assert result.kappa == 1.0
    else:
        assert math.isnan(result.kappa)  # one grade for everything: chance explains it all
    assert result.observed_agreement == 1.0


@given(paired_ratings(), st.randoms(use_true_random=False))
def test_unweighted_kappa_is_invariant_to_category_permutation(ratings: tuple[list[int], list[int], list[int]], rng: Any) -> None:
    a, b, categories = ratings
    permuted = list(categories)
    rng.shuffle(permuted)
    original = cohen_kappa_score(a, b, categories=categories)
    shuffled = cohen_kappa_score(a, b, categories=permuted)
    assert _same(original.kappa, shuffled.kappa)


@given(paired_ratings())
def test_unweighted_kappa_ignores_unused_categories_and_matches_percent_agreement(
    ratings: tuple[list[int], list[int], list[int]],
) -> None:
    a, b, categories = ratings
    base = cohen_kappa_score(a, b, categories=categories)
    widened = cohen_kappa_score(a, b, categories=[*categories, 99, 100])
    assert _same(base.kappa, widened.kappa)
    assert base.observed_agreement * 100 == pytest.approx(percent_agreement_score(a, b), rel=1e-12)


@given(paired_ratings(), WEIGHTS)
def test_kappa_bounds_and_definition(ratings: tuple[list[int], list[int], list[int]], weights: str) -> None:
    a, b, categories = ratings
    result: KappaResult = cohen_kappa_score(
        a,
        b,
        categories=categories,
        weights=weights,
    )
    assert result.confusion.sum() == result.n == len(a)
    assert 0.0 <= result.observed_agreement <= 1.0 + 1e-12
    assert 0.0 <= result.expected_agreement <= 1.0 + 1e-12
    if result.expected_agreement == 1.0:
        assert math.isnan(result.kappa)
    else:
        assert result.kappa <= 1.0 + 1e-12
        expected = (result.observed_agreement - result.expected_agreement) / (1.0 - result.expected_agreement)
        assert result.kappa == pytest.approx(expected, rel=1e-9, abs=1e-12)
        if weights == "none":
            assert result.kappa >= -1.0 - 1e-12


def test_complete_disagreement_by_chance_is_exactly_zero() -> None:
    # Found by hypothesis: proportions rounded to p_e = 1 - 1.0000000000000002 < 0.
    result = cohen_kappa_score([0, 0, 0, 0, 1], [2, 2, 2, 2, 3], categories=[0, 1, 2, 3])
    assert result.observed_agreement == 0.0
    assert result.expected_agreement == 0.0
    assert result.kappa == 0.0


# --------------------------------------------------------------------------- irr z and p


@pytest.mark.parametrize(
    ("weights", "expected_key", "crosscheck_key"),
    [
        ("none", "unweighted", "unweighted"),
        ("linear", "equal (linear weights)", "equal_linear"),
        ("quadratic", "squared (quadratic weights)", "squared_quadratic"),
    ],
)
def test_irr_kappa2_z_and_p(anxiety: dict[str, Any], weights: str, expected_key: str, crosscheck_key: str) -> None:
    a, b = _raters_2_and_3(anxiety)
    result = cohen_kappa_score(a, b, categories=IRR_PRESENT_LEVELS, weights=weights)
    published = anxiety["expected"][expected_key]
    # irr prints 7 significant digits; the file's tolerance is z to 5 dp and p to 6 dp.
    assert result.z == pytest.approx(published["z"], abs=5e-6 * max(1.0, abs(published["z"])))
    assert round(result.p_value, 7) == published["p"]
    assert result.z == pytest.approx(anxiety["crosscheck_statsmodels"][crosscheck_key]["z"], abs=1e-9)
    assert result.p_value == pytest.approx(anxiety["crosscheck_statsmodels"][crosscheck_key]["p"], abs=1e-9)
    assert result.z == pytest.approx(result.kappa / result.standard_error_null, rel=1e-12)


def test_irr_kappa2_custom_weights_z_and_p(anxiety: dict[str, Any]) -> None:
    a, b = _raters_2_and_3(anxiety)
    by_distance = [0, 0, 1, 1, 2]
    matrix = [[by_distance[abs(i - j)] for j in range(5)] for i in range(5)]
    result = cohen_kappa_score(a, b, categories=IRR_PRESENT_LEVELS, weights=matrix)
    published = anxiety["expected"]["custom weights c(0,0,1,1,2)"]
    assert round(result.z, 6) == published["z"]
    assert round(result.p_value, 7) == published["p"]


@pytest.mark.parametrize(
    ("by_distance", "key"),
    [([0, 0, 0, 1, 1, 1], "rater1_vs_rater2_weights_c(0,0,0,1,1,1)"), ([0, 0, 1, 1, 2, 2], "rater1_vs_rater2_weights_c(0,0,1,1,2,2)")],
)
def test_irr_kappa2_rater_1_vs_2_custom_weights(anxiety: dict[str, Any], by_distance: list[int], key: str) -> None:
    # Raters 1 and 2 use every grade 1..6 between them, so irr's levels are the full scale.
    rows = anxiety["data"]["rows"]
    matrix = [[by_distance[abs(i - j)] for j in range(6)] for i in range(6)]
    result = cohen_kappa_score([r[0] for r in rows], [r[1] for r in rows], categories=FULL_SCALE, weights=matrix)
    published = anxiety["expected"][key]
    assert round(result.kappa, 7) == published["kappa"]
    assert result.z == pytest.approx(published["z"], abs=5e-7)
    assert round(result.p_value, 7) == published["p"]


def test_undefined_kappa_has_no_test() -> None:
    result = cohen_kappa_score([2] * 6, [2] * 6, categories=[1, 2, 3])
    assert math.isnan(result.kappa)
    assert math.isnan(result.z) and math.isnan(result.p_value) and math.isnan(result.standard_error_null)


def test_integer_arrays_take_the_fast_path_with_the_same_result_and_errors() -> None:
    a = np.array([0, 2, 1, 1, 0, 2, 3], dtype=np.int16)
    b = np.array([0, 1, 1, 2, 0, 2, 3], dtype=np.int64)
    categories = [3, 0, 1, 2]  # order matters for weighted kappa; the fast path must keep it
    fast = cohen_kappa_score(a, b, categories=categories, weights="quadratic")
    slow = cohen_kappa_score(a.tolist(), b.tolist(), categories=categories, weights="quadratic")
    assert fast.kappa == slow.kappa
    assert fast.confusion.tolist() == slow.confusion.tolist()
    assert fast.categories == (3, 0, 1, 2)
    with pytest.raises(ValueError, match=r"rater_b\[2\] = 7 is not one of the categories"):
        cohen_kappa_score(a, np.array([0, 1, 7, 2, 0, 2, 3]), categories=categories)
