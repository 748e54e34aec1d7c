"""Per-class precision, recall, F1 and macro-F1 against a reference rating."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinereview.agreement import classification_scores, percent_agreement_score


def test_scikit_learn_docstring_example() -> None:
    # sklearn.metrics.f1_score docstring: y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1]
    # -> average=None [0.8, 0, 0], macro 0.2667; precision_score macro 0.2222, recall macro 0.3333.
    result = classification_scores([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], categories=[0, 1, 2])
    assert [c.f1 for c in result.per_class] == pytest.approx([0.8, 0.0, 0.0], abs=1e-12)
    assert result.macro_f1 == pytest.approx(0.8 / 3, rel=1e-12)
    assert round(result.macro_f1, 4) == 0.2667
    assert round(result.macro_precision, 4) == 0.2222
    assert round(result.macro_recall, 4) == 0.3333
    assert result.accuracy == pytest.approx(2 / 6, rel=1e-12)
    first = result.per_class[0]
    assert (first.true_positives, first.false_positives, first.false_negatives) == (2, 1, 0)
    assert (first.reference_count, first.rater_count) == (2, 3)


def test_unused_categories_are_undefined_and_left_out_of_the_macro_average() -> None:
    result = classification_scores(["A", "A", "B"], ["A", "B", "B"], categories=["A", "B", "C", "D"])
    c = result.per_class[2]
    assert math.isnan(c.precision) and math.isnan(c.recall) and math.isnan(c.f1)
    assert result.macro_classes == ("A", "B")
    # A: TP 1, FN 1 -> F1 2/3; B: TP 1, FP 1 -> F1 2/3.
    assert result.macro_f1 == pytest.approx(2 / 3, rel=1e-12)


def test_a_category_only_the_rater_used_has_f1_zero_and_counts() -> None:
    result = classification_scores([0, 0, 0], [0, 0, 1], categories=[0, 1])
    one = result.per_class[1]
    assert one.f1 == 0.0 and one.precision == 0.0 and math.isnan(one.recall)
    assert result.macro_f1 == pytest.approx((0.8 + 0.0) / 2, rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "rater", "message"),
    [
        ([0, 1], [0], "same items: got 2 and 1"),
        ([], [], "no ratings"),
        ([0, 5], [0, 1], r"rater_a\[1\] = 5 is not one of the categories"),
        ([0, None], [0, 1], r"rater_a\[1\] = None"),
    ],
)
def test_malformed_input_is_a_clear_error(reference: Any, rater: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_scores(reference, rater, categories=[0, 1])


GRADES = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(GRADES)
def test_properties(pairs: list[tuple[int, int]]) -> None:
    reference = [p[0] for p in pairs]
    rater = [p[1] for p in pairs]
    result = classification_scores(reference, rater, categories=[0, 1, 2, 3])
    swapped = classification_scores(rater, reference, categories=[0, 1, 2, 3])
    # Swapping reference and rater swaps precision and recall and keeps F1.
    for a, b in zip(result.per_class, swapped.per_class, strict=True):
        assert (math.isnan(a.precision) and math.isnan(b.recall)) or a.precision == b.recall
        assert (math.isnan(a.f1) and math.isnan(b.f1)) or a.f1 == pytest.approx(b.f1, rel=1e-12)
        if not math.isnan(a.f1):
            assert 0.0 <= a.f1 <= 1.0
    assert result.accuracy * 100 == pytest.approx(percent_agreement_score(reference, rater), rel=1e-12)
    assert sum(c.reference_count for c in result.per_class) == result.n == len(pairs)
    perfect = classification_scores(reference, reference, categories=[0, 1, 2, 3])
    assert perfect.macro_f1 == 1.0 and perfect.accuracy == 1.0
