"""Metric functions of ml.evaluation: exact values, empty cases, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.evaluation.agreement import (
    linear_weighted_kappa_score,
    measurement_agreement,
    pearson_r_score,
)
from ml.evaluation.measurements import area_mm2, column_length_mm, run_length_mm
from ml.evaluation.overlap import (
    OverlapCounts,
    hd95_error,
    mean_iou_score,
    overlap_counts,
    overlap_scores,
)


def test_overlap_scores_exact() -> None:
    p = np.zeros((4, 4), bool)
    t = np.zeros((4, 4), bool)
    p[0, :3] = True  # 3 predicted
    t[0, 1:] = True  # 3 true, 2 shared
    c = overlap_counts(p, t)
    assert c == OverlapCounts(tp=2, fp=1, fn=1)
    s = overlap_scores(c)
    assert s.dice_score == pytest.approx(4 / 6)
    assert s.f1_score == s.dice_score
    assert s.iou_score == pytest.approx(0.5)
    assert s.precision_score == pytest.approx(2 / 3) and s.recall_score == pytest.approx(2 / 3)
    assert (s.true_voxels, s.predicted_voxels) == (3, 3)


def test_overlap_empty_cases() -> None:
    both_empty = overlap_scores(OverlapCounts(0, 0, 0))
    assert both_empty.dice_score == 1.0 and both_empty.iou_score == 1.0
    nothing_predicted = overlap_scores(OverlapCounts(0, 0, 5))
    assert nothing_predicted.dice_score == 0.0 and nothing_predicted.precision_score is None
    assert nothing_predicted.recall_score == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        overlap_scores(OverlapCounts(-1, 0, 0))
    with pytest.raises(ValueError, match="shape"):
        overlap_counts(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="boolean"):
        overlap_counts(np.zeros((2, 2), int), np.zeros((2, 2), bool))


def test_hd95_exact_shift_and_spacing() -> None:
    t = np.zeros((1, 20, 20), bool)
    t[0, 5:10, 5:10] = True
    p = np.roll(t, 3, axis=2)  # shifted 3 columns
    # every surface point is within 3 columns; the 95th percentile is exactly 3 px
    assert hd95_error(p, t, (1.0, 1.0, 1.0)) == pytest.approx(3.0)
    assert hd95_error(p, t, (1.0, 1.0, 0.5)) == pytest.approx(1.5)
    assert hd95_error(t, t, (1.0, 1.0, 1.0)) == 0.0
    assert hd95_error(np.zeros_like(t), t, (1.0, 1.0, 1.0)) is None
    with pytest.raises(ValueError, match="spacing_mm"):
        hd95_error(p, t, (1.0, 1.0))


def test_hd95_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((3, 16, 16)) > 0.7
    b = rng.random((3, 16, 16)) > 0.6
    assert hd95_error(a, b, (2.0, 1.0, 1.0)) == hd95_error(b, a, (2.0, 1.0, 1.0))


def test_mean_iou() -> None:
    assert mean_iou_score([0.5, None, 1.0]) == pytest.approx(0.75)
    assert mean_iou_score([None]) is None


def test_measurement_agreement_exact() -> None:
    a = measurement_agreement([11.0, 12.0, 16.0], [10.0, 12.0, 14.0])
    # differences 1, 0, 2: bias 1, sample SD 1, LoA 1 ± 1.96
    assert a.n == 3
    assert a.mae_error == pytest.approx(1.0)
    assert a.bias == pytest.approx(1.0)
    assert a.sd_of_differences == pytest.approx(1.0)
    assert (a.loa_lower, a.loa_upper) == (pytest.approx(-0.96), pytest.approx(2.96))
    # r of (11, 12, 16) vs (10, 12, 14)
    assert a.pearson_r_score == pytest.approx(0.9449111825230682)
    single = measurement_agreement([3.0], [1.0])
    assert single.sd_of_differences is None and single.loa_lower is None and single.mae_error == 2.0
    assert pearson_r_score([1.0, 1.0], [1.0, 2.0]) is None
    for bad in (([], []), ([1.0], [1.0, 2.0]), ([math.nan], [1.0])):
        with pytest.raises(ValueError):
            measurement_agreement(*bad)


def test_linear_weighted_kappa() -> None:
    assert linear_weighted_kappa_score([0, 1, 2, 3], [0, 1, 2, 3], 4) == 1.0
    assert linear_weighted_kappa_score([2, 2], [2, 2], 4) == 1.0
    # by hand: weights of the pairs (0,0), (1,1), (2,1) are 1, 1, 2/3 -> p_o = 8/9; marginals
    # a = (1, 1, 1, 0), b = (1, 2, 0, 0): p_e = sum w_ij a_i b_j / 9 = (7/3 + 8/3 + 5/3) / 9
    # = 20/27 -> kappa = (24/27 - 20/27) / (7/27) = 4/7
    assert linear_weighted_kappa_score([0, 1, 2], [0, 1, 1], 4) == pytest.approx(4 / 7)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        linear_weighted_kappa_score([0, 4], [0, 1], 4)
    with pytest.raises(ValueError, match="integers"):
        linear_weighted_kappa_score([0.5], [0.5], 4)  # type: ignore[list-item]


def test_slice_measurements() -> None:
    labels = np.zeros((10, 6), np.uint8)
    labels[2:5, 1:3] = 4  # 6 sac pixels
    labels[5:7, 1] = 3  # canal below it in column 1
    labels[1:4, 5] = 2  # a disc run of 3 rows in column 5
    labels[6:8, 5] = 2
    assert area_mm2(labels, 4, (0.5, 0.8)) == pytest.approx(6 * 0.4)
    assert area_mm2(labels, (3, 4), (1.0, 1.0)) == 8.0
    assert column_length_mm(labels, 1, (3, 4), 0.5) == pytest.approx(2.5)
    assert run_length_mm(labels, 5, 2, 2, 2.0) == 6.0
    assert run_length_mm(labels, 5, 7, 2, 2.0) == 4.0
    assert run_length_mm(labels, 5, 5, 2, 2.0) is None
    with pytest.raises(ValueError, match="outside"):
        column_length_mm(labels, 6, (3,), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        area_mm2(labels[None], 4, (1.0, 1.0))


class _FixedSegmenter:
    """Stands in for a Segmenter: returns a fixed label volume."""

    model_version = "fixed@0"
    label_map = {1: "vertebral_body", 2: "intervertebral_disc"}

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels

    def segment(self, volume: np.ndarray, spacing: tuple[float, float, float]) -> object:
        from ml.inference.api import SegmentationResult

        return SegmentationResult(self.labels, dict(self.label_map), self.model_version)


def test_volume_scores_only_annotated_structures_and_the_extent() -> None:
    from ml.datasets.volumes import VolumeCase
    from ml.evaluation.volumes import evaluate_on_volumes

    truth = np.zeros((2, 10, 4), np.uint8)
    truth[:, 4:6, 1:3] = 1  # 8 vertebral-body voxels in rows 4-5
    predicted = truth.copy()
    predicted[:, 0:2, 1:3] = 1  # an unannotated vertebra above (rows 0-1): 8 more
    predicted[:, 7, :] = 2  # discs, not annotated in this case: not scored
    case = VolumeCase("c", "p", np.zeros((2, 10, 4), np.float32), truth, (1.0, 1.0, 1.0), frozenset({1}))
    report = evaluate_on_volumes(_FixedSegmenter(predicted), [case])  # type: ignore[arg-type]
    vb = report["by_structure"]["vertebral_body"]
    assert vb["dice"] == pytest.approx(2 * 8 / (16 + 8))
    assert vb["precision"] == pytest.approx(0.5) and vb["recall"] == 1.0
    assert vb["dice_in_extent"] == 1.0
    assert set(report["by_structure"]) == {"vertebral_body"}
    assert report["miou"] == pytest.approx(0.5)
