"""Label volumes in cm³: exact voxel counts times voxel volume, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinereview.morphometry import label_volume_cm3, label_volumes_cm3, label_voxel_counts, voxel_volume_mm3


def test_volumes_per_label_with_anisotropic_spacing() -> None:
    labels = np.zeros((4, 10, 12), dtype=np.int32)
    labels[0:2, 0:5, 0:10] = 51  # 100 voxels
    labels[3, 9, 11] = 255  # one stray voxel
    volumes = label_volumes_cm3(labels, (4.0, 0.5, 0.25))
    assert volumes == {51: 100 * 0.5 / 1000.0, 255: 0.5 / 1000.0}
    assert list(volumes) == [51, 255]
    assert label_volume_cm3(labels, (4.0, 0.5, 0.25), 51) == 0.05


def test_only_the_product_of_the_spacings_matters() -> None:
    labels = np.zeros((3, 4, 5), dtype=np.uint8)
    labels[1, 1:3, 2:5] = 2
    assert label_volumes_cm3(labels, (4.4, 0.4296875, 0.4296875)) == label_volumes_cm3(labels, (0.4296875, 0.4296875, 4.4))


def test_background_only_gives_no_volumes() -> None:
    assert label_volumes_cm3(np.zeros((2, 2, 2), dtype=np.uint8), (1.0, 1.0, 1.0)) == {}


@pytest.mark.parametrize(
    ("spacing", "message"),
    [
        ((1.0, 1.0), "3 values"),
        ((1.0, 0.0, 1.0), "finite and positive"),
        ((1.0, math.nan, 1.0), "finite and positive"),
        ((1.0, math.inf, 1.0), "finite and positive"),
        ((1.0, -1.0, 1.0), "finite and positive"),
        (("a", 1.0, 1.0), "three numbers"),
    ],
)
def test_bad_spacing_is_refused(spacing: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        label_volumes_cm3(np.ones((2, 2, 2), dtype=np.uint8), spacing)  # type: ignore[arg-type]


def test_bad_label_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="3-D volume"):
        label_volumes_cm3(np.ones((2, 2), dtype=np.uint8), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="integer label values"):
        label_volumes_cm3(np.ones((2, 2, 2), dtype=np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="is empty"):
        label_volumes_cm3(np.ones((0, 2, 2), dtype=np.uint8), (1.0, 1.0, 1.0))


def test_a_missing_label_is_an_error_not_zero() -> None:
    labels = np.zeros((2, 2, 2), dtype=np.uint8)
    labels[0, 0, 0] = 3
    with pytest.raises(ValueError, match="label 2 is not present; label values present: \\[3\\]"):
        label_volume_cm3(labels, (1.0, 1.0, 1.0), 2)
    with pytest.raises(ValueError, match="background"):
        label_volume_cm3(labels, (1.0, 1.0, 1.0), 0)


def test_boolean_masks_count_as_label_1() -> None:
    mask = np.zeros((2, 3, 3), dtype=bool)
    mask[0, :, :] = True
    assert label_volumes_cm3(mask, (2.0, 1.0, 1.0)) == {1: 0.018}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    spacing=st.tuples(*(st.floats(0.1, 5.0),) * 3),
)
def test_volumes_add_up_to_the_labelled_voxels(seed: int, spacing: tuple[float, float, float]) -> None:
    labels = np.random.default_rng(seed).integers(0, 5, size=(3, 6, 7))
    volumes = label_volumes_cm3(labels, spacing)
    total = np.count_nonzero(labels) * voxel_volume_mm3(spacing) / 1000.0
    assert sum(volumes.values()) == pytest.approx(total, rel=1e-12)
    # Relabelling permutes the table and changes nothing else.
    relabelled = np.where(labels > 0, 10 - labels, 0)
    assert {10 - k: v for k, v in label_volumes_cm3(relabelled, spacing).items()} == volumes


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=200), st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.uint32]))
def test_label_voxel_counts_matches_unique(values: list[int], dtype: type) -> None:
    volume: np.ndarray = np.asarray(values).astype(dtype).reshape(1, 1, -1)
    expected_values, expected_counts = np.unique(volume, return_counts=True)
    counts = label_voxel_counts(volume)
    assert counts == {int(v): int(n) for v, n in zip(expected_values, expected_counts, strict=True)}
    assert list(counts) == sorted(counts) and sum(counts.values()) == volume.size


def test_label_voxel_counts_edge_cases() -> None:
    assert label_voxel_counts(np.zeros((2, 3, 4), np.uint8)) == {0: 24}
    assert label_voxel_counts(np.full((2, 3, 4), 7, np.uint8)) == {7: 24}
    assert label_voxel_counts(np.array([[[True, False, True]]])) == {0: 1, 1: 2}
    assert label_voxel_counts(np.array([[[-2, 0, 5, 5]]])) == {-2: 1, 0: 1, 5: 2}
