"""Dice and IoU on masks whose overlap is known exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spinereview.agreement import (
    OverlapResult,
    dice_per_label,
    dice_score,
    iou_score,
    mask_overlap,
)


def _two_boxes() -> tuple[np.ndarray[Any, np.dtype[np.bool_]], np.ndarray[Any, np.dtype[np.bool_]]]:
    a = np.zeros((4, 10, 10), dtype=bool)
    b = np.zeros((4, 10, 10), dtype=bool)
    a[1:3, 2:6, 2:6] = True  # 2 * 4 * 4 = 32 voxels
    b[1:3, 4:8, 2:6] = True  # 32 voxels, 2 * 2 * 4 = 16 shared
    return a, b


def test_known_boxes() -> None:
    a, b = _two_boxes()
    assert dice_score(a, b) == 0.5  # 2 * 16 / 64
    assert iou_score(a, b) == 1 / 3  # 16 / 48
    assert mask_overlap(a, b) == OverlapResult(dice=0.5, iou=1 / 3, reference_voxels=32, test_voxels=32, intersection_voxels=16)


def test_numeric_masks_use_non_zero_as_foreground() -> None:
    a, b = _two_boxes()
    assert dice_score(a.astype(np.uint8) * 7, b.astype(np.float32)) == 0.5


def test_identical_disjoint_and_one_empty() -> None:
    a, _ = _two_boxes()
    empty = np.zeros_like(a)
    assert dice_score(a, a) == 1.0 and iou_score(a, a) == 1.0
    disjoint = np.roll(a, 5, axis=2)
    assert dice_score(a, disjoint) == 0.0 and iou_score(a, disjoint) == 0.0
    assert dice_score(a, empty) == 0.0 and iou_score(empty, a) == 0.0


def test_both_empty_is_nan() -> None:
    empty = np.zeros((2, 3, 3), dtype=np.uint8)
    assert math.isnan(dice_score(empty, empty))
    assert math.isnan(iou_score(empty, empty))


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (
            np.zeros((2, 3, 3)),
            np.zeros((2, 3, 4)),
            r"shapes differ: \(2, 3, 3\) and \(2, 3, 4\)",
        ),
        (np.array(["a", "b"]), np.array(["a", "b"]), "boolean or numeric"),
        (np.array([0.0, np.nan]), np.array([0.0, 1.0]), "NaN"),
    ],
)
def test_malformed_masks(a: Any, b: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dice_score(a, b)
    with pytest.raises(ValueError, match=message):
        iou_score(a, b)


def test_dice_per_label() -> None:
    reference = np.zeros((3, 8, 8), dtype=np.uint8)
    test = np.zeros((3, 8, 8), dtype=np.uint8)
    reference[0:2, 0:4, 0:4] = 1  # 32
    test[0:2, 0:4, 0:2] = 1  # 16, all inside
    reference[2, 4:8, 4:8] = 2  # 16
    test[2, 4:8, 6:8] = 3  # label 3 where the reference has 2
    result = dice_per_label(reference, test, {1: "disc", 2: "dural sac", 3: "psoas", 4: "fat"})

    assert list(result) == ["disc", "dural sac", "psoas", "fat"]
    assert result["disc"] == OverlapResult(
        dice=2 * 16 / 48,
        iou=0.5,
        reference_voxels=32,
        test_voxels=16,
        intersection_voxels=16,
    )
    assert result["dural sac"].dice == 0.0 and result["dural sac"].test_voxels == 0
    assert result["psoas"].dice == 0.0 and result["psoas"].reference_voxels == 0
    assert math.isnan(result["fat"].dice)  # in neither volume


@pytest.mark.parametrize(
    ("reference", "test", "labels", "message"),
    [
        (
            np.zeros((2, 2, 2), np.uint8),
            np.zeros((2, 2, 3), np.uint8),
            {1: "a"},
            "shapes differ",
        ),
        (
            np.zeros((2, 2), np.uint8),
            np.zeros((2, 2), np.uint8),
            {1: "a"},
            r"\(z, y, x\)",
        ),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), {1: "a"}, "integer labels"),
        (
            np.zeros((2, 2, 2), np.uint8),
            np.zeros((2, 2, 2), np.uint8),
            {1: "a", 2: "a"},
            "unique",
        ),
    ],
)
def test_dice_per_label_rejects_malformed_input(reference: Any, test: Any, labels: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dice_per_label(reference, test, labels)


def test_dice_per_label_rejects_non_integer_label_values() -> None:
    volume = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(TypeError, match="label values must be integers, got '1'"):
        dice_per_label(volume, volume, {"1": "a"})  # type: ignore[dict-item]


MASKS = arrays(np.bool_, (3, 4, 5))


@given(MASKS, MASKS)
def test_overlap_properties(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> None:
    ab, ba = mask_overlap(a, b), mask_overlap(b, a)
    if not a.any() and not b.any():
        assert math.isnan(ab.dice) and math.isnan(ab.iou)
        return
    assert ab.dice == ba.dice and ab.iou == ba.iou
    assert 0.0 <= ab.iou <= ab.dice <= 1.0
    assert ab.iou == pytest.approx(ab.dice / (2.0 - ab.dice), rel=1e-12)
    assert mask_overlap(a | b, a | b).dice == 1.0


@given(MASKS, st.permutations(range(3)))
def test_overlap_is_invariant_to_axis_order(a: np.ndarray[Any, Any], axes: list[int]) -> None:
    b = np.roll(a, 1, axis=1)
    before = mask_overlap(a, b)
    after = mask_overlap(a.transpose(axes), b.transpose(axes))
    assert before == after or (math.isnan(before.dice) and math.isnan(after.dice))
