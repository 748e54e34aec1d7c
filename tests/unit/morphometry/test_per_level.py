"""Per-level rows of one mask (axial: DSCA, AP, muscles; sagittal: disc heights), as stored for
the AI's masks and every reader's: exact numbers on synthetic volumes of known geometry, errors
(never numbers) for what is not drawn, and refusal of masks that cannot be measured.

Structures are axis-aligned boxes on an anisotropic grid (rows 0.5 mm along patient y, columns
0.8 mm along patient x), so areas are exact pixel counts x 0.4 mm2, and the AP diameter is the
spread of the pixel centres plus one pixel (exact for a box).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from spinereview.morphometry import (
    AXIAL_QUANTITIES,
    FAT_WATER_METHOD,
    FAT_WATER_RESAMPLED_METHOD,
    FatWater,
    SeriesGeometry,
    SignalIntensityModel,
    SliceGeometry,
    axial_level_rows,
    named_disc_centres,
    sagittal_level_rows,
    sample_nearest,
)

LABELS = {
    "vertebral_body": 1,
    "intervertebral_disc": 2,
    "spinal_canal": 3,
    "dural_sac": 4,
    "paraspinal_muscle_left": 5,
    "paraspinal_muscle_right": 6,
}
CENTRES = {"L4-L5": (0.0, 0.0, 0.0), "L5-S1": (0.0, 0.0, -40.0)}
LEVELS = ("L4-L5", "L5-S1")
SLICE_Z = (-42.0, -40.5, -38.0, -2.5, 0.5, 2.5)  # reference slices: index 1 (L5-S1) and 4 (L4-L5)
FAT_FRACTION = {"left": 0.2, "right": 0.35}


def _axial(z_values: tuple[float, ...] = SLICE_Z) -> SeriesGeometry:
    return SeriesGeometry(
        slices=tuple(
            SliceGeometry(
                image_position_mm=(-40.0, -30.0, z),
                row_cosine=(1.0, 0.0, 0.0),
                column_cosine=(0.0, 1.0, 0.0),
                pixel_spacing_mm=(0.5, 0.8),
                slice_thickness_mm=3.0,
            )
            for z in z_values
        )
    )


def _mask() -> npt.NDArray[np.uint8]:
    labels = np.zeros((len(SLICE_Z), 120, 100), dtype=np.uint8)
    labels[:, 36:64, 38:62] = LABELS["spinal_canal"]  # 28 rows: AP 14 mm
    labels[:, 40:60, 40:60] = LABELS["dural_sac"]  # 400 px: 160 mm2
    labels[0, 40:50, 40:60] = LABELS["spinal_canal"]  # a narrower slice in L5-S1: 80 mm2
    labels[:, 70:100, 70:90] = LABELS["paraspinal_muscle_left"]  # patient +x, 600 px: 240 mm2
    labels[:, 70:90, 10:30] = LABELS["paraspinal_muscle_right"]  # 400 px: 160 mm2
    return labels


def _fat_signal(points: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Fat and water images as functions of patient position: each side's muscle has its own fraction."""
    fraction = np.where(points[..., 0] > 0, FAT_FRACTION["left"], FAT_FRACTION["right"])
    return 100.0 * fraction, 100.0 * (1.0 - fraction)


def test_axial_rows_measure_every_structure_on_the_reference_slice() -> None:
    geometry = _axial()
    labels = _mask()
    rows_idx, cols_idx = np.mgrid[0:120, 0:100]
    points = np.stack([s.pixel_to_patient_mm(rows_idx, cols_idx) for s in geometry.slices])
    fat, water = _fat_signal(points)
    rows = axial_level_rows(labels, geometry, CENTRES, label_values=LABELS, levels=LEVELS, fat_water=FatWater(fat, water))
    by_level = {row["level"]: row for row in rows}
    assert list(by_level) == list(LEVELS)
    for level, k in (("L4-L5", 4), ("L5-S1", 1)):
        row = by_level[level]
        assert row["errors"] == {}
        assert (row["axial_slice_index"], row["distance_to_disc_mm"]) == (k, 0.5)
        assert row["dsca_mm2"] == pytest.approx(160.0, abs=1e-9)
        assert row["ap_diameter_mm"] == pytest.approx(14.0, abs=1e-9)
        assert row["muscle_csa_left_mm2"] == pytest.approx(240.0, abs=1e-9)
        assert row["muscle_csa_right_mm2"] == pytest.approx(160.0, abs=1e-9)
        assert row["muscle_fat_fraction_left_percent"] == pytest.approx(20.0, abs=1e-9)
        assert row["muscle_fat_fraction_right_percent"] == pytest.approx(35.0, abs=1e-9)
        assert row["muscle_fat_method"] == FAT_WATER_METHOD
    assert by_level["L4-L5"]["min_dsca_mm2"] == pytest.approx(160.0, abs=1e-9)
    assert by_level["L5-S1"]["min_dsca_mm2"] == pytest.approx(80.0, abs=1e-9)  # slice 0, 2 mm below the disc


def _dixon(*, z_offset_mm: float = 0.0) -> tuple[FatWater, SeriesGeometry]:
    """A fat/water series on its own grid: tilted 12° about x, rotated 20° in-plane, 1.1 x 0.9 mm
    pixels, contiguous 2 mm slices covering both levels."""
    tilt, turn = math.radians(12.0), math.radians(20.0)
    tilt_matrix = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(tilt), -math.sin(tilt)], [0.0, math.sin(tilt), math.cos(tilt)]])
    row = tilt_matrix @ np.array([math.cos(turn), math.sin(turn), 0.0])
    col = tilt_matrix @ np.array([-math.sin(turn), math.cos(turn), 0.0])
    normal = np.cross(row, col)
    size, spacing = 140, (1.1, 0.9)
    centre = np.array([0.0, 0.0, -20.0 + z_offset_mm])
    slices = []
    for t in np.arange(-32.0, 32.0 + 1e-9, 2.0):
        ipp = centre + t * normal - (size / 2) * spacing[1] * row - (size / 2) * spacing[0] * col
        slices.append(
            SliceGeometry(
                image_position_mm=tuple(float(v) for v in ipp),  # type: ignore[arg-type]
                row_cosine=tuple(float(v) for v in row),  # type: ignore[arg-type]
                column_cosine=tuple(float(v) for v in col),  # type: ignore[arg-type]
                pixel_spacing_mm=spacing,
                slice_thickness_mm=2.0,
            )
        )
    geometry = SeriesGeometry(slices=tuple(slices))
    r, c = np.mgrid[0:size, 0:size]
    points = np.stack([s.pixel_to_patient_mm(r, c) for s in geometry.slices])
    fat, water = _fat_signal(points)
    return FatWater(fat, water, geometry), geometry


def test_fat_water_on_another_oblique_grid_gives_the_same_fraction() -> None:
    pair, _ = _dixon()
    rows = axial_level_rows(_mask(), _axial(), CENTRES, label_values=LABELS, levels=LEVELS, fat_water=pair)
    for row in rows:
        assert row["errors"] == {}
        assert row["muscle_fat_fraction_left_percent"] == pytest.approx(20.0, abs=1e-9)
        assert row["muscle_fat_fraction_right_percent"] == pytest.approx(35.0, abs=1e-9)
        assert row["muscle_fat_method"] == FAT_WATER_RESAMPLED_METHOD
    # A fat/water series that does not reach a level: an error for that level, never a number.
    shifted, _ = _dixon(z_offset_mm=45.0)
    by_level = {
        row["level"]: row for row in axial_level_rows(_mask(), _axial(), CENTRES, label_values=LABELS, levels=LEVELS, fat_water=shifted)
    }
    assert by_level["L5-S1"]["muscle_fat_fraction_left_percent"] is None
    assert by_level["L5-S1"]["muscle_csa_left_mm2"] is None
    assert "does not image" in by_level["L5-S1"]["errors"]["muscle_fat_fraction_left_percent"]
    assert by_level["L4-L5"]["muscle_fat_fraction_left_percent"] == pytest.approx(20.0, abs=1e-9)


def test_sample_nearest_reads_the_voxel_at_each_point_and_nan_outside() -> None:
    pair, geometry = _dixon()
    points = np.array([[10.0, 5.0, -20.0], [-10.0, 5.0, -20.0], [0.0, 0.0, 500.0], [400.0, 0.0, -20.0]])
    fat = sample_nearest(pair.fat, geometry, points)
    assert fat[:2] == pytest.approx([20.0, 35.0])
    assert np.isnan(fat[2:]).all()
    with pytest.raises(ValueError, match="geometry describes"):
        sample_nearest(pair.fat[:3], geometry, points)
    with pytest.raises(ValueError, match="finite"):
        sample_nearest(pair.fat, geometry, [[0.0, math.nan, 0.0]])


def test_intensity_model_is_used_without_a_fat_water_pair() -> None:
    labels = _mask()
    image = np.full(labels.shape, 200.0)
    for side, label in (("left", 5), ("right", 6)):
        image[labels == label] = (1 - FAT_FRACTION[side]) * 200.0 + FAT_FRACTION[side] * 1000.0
    model = SignalIntensityModel(muscle_signal=200.0, fat_signal=1000.0)
    (row, _) = axial_level_rows(labels, _axial(), CENTRES, label_values=LABELS, levels=LEVELS, image=image, intensity_model=model)
    assert row["muscle_fat_fraction_left_percent"] == pytest.approx(20.0, abs=1e-9)
    assert row["muscle_fat_fraction_right_percent"] == pytest.approx(35.0, abs=1e-9)
    assert row["muscle_fat_method"] == model.method
    # With neither, the CSA is measured and the fat fraction says why it is missing.
    (row, _) = axial_level_rows(labels, _axial(), CENTRES, label_values=LABELS, levels=LEVELS)
    assert row["muscle_csa_left_mm2"] == pytest.approx(240.0)
    assert row["muscle_fat_fraction_left_percent"] is None
    assert "no intensity model" in row["errors"]["muscle_fat_fraction_left_percent"]


def test_what_is_not_drawn_is_an_error_never_a_zero() -> None:
    labels = _mask()
    labels[labels >= 5] = 0  # a reader who drew no muscles
    labels[1][labels[1] == LABELS["dural_sac"]] = LABELS["spinal_canal"]  # nor the sac on L5-S1's reference slice
    labels[4][labels[4] == LABELS["spinal_canal"]] = 0  # nor the canal around it on L4-L5's
    no_canal = {k: v for k, v in LABELS.items() if k != "spinal_canal"}
    centres = CENTRES | {"L3-L4": (0.0, 0.0, 40.0)}  # no axial slice there
    rows = {r["level"]: r for r in axial_level_rows(labels, _axial(), centres, label_values=LABELS, levels=("L3-L4", *LEVELS))}
    assert rows["L3-L4"]["errors"] == dict.fromkeys(AXIAL_QUANTITIES, "no axial slice within 6 mm of the L3-L4 disc centre")
    assert all(rows["L3-L4"][q] is None for q in AXIAL_QUANTITIES)
    l5 = rows["L5-S1"]
    assert l5["dsca_mm2"] is None and l5["errors"]["dsca_mm2"] == "the dural sac is not drawn on axial slice 1 (L5-S1)"
    assert l5["min_dsca_mm2"] == pytest.approx(80.0)  # drawn on the level's other slices
    assert l5["ap_diameter_mm"] == pytest.approx(14.0)
    l4 = rows["L4-L5"]
    assert l4["ap_diameter_mm"] is None and l4["errors"]["ap_diameter_mm"] == "the spinal canal is not drawn on axial slice 4 (L4-L5)"
    assert l4["dsca_mm2"] == pytest.approx(160.0)
    assert l4["muscle_csa_left_mm2"] is None
    assert l4["errors"]["muscle_csa_left_mm2"] == "paraspinal_muscle_left (label 5) is not drawn in this mask"
    (row, _) = axial_level_rows(_mask(), _axial(), CENTRES, label_values=no_canal, levels=LEVELS)
    assert row["ap_diameter_mm"] is None and row["errors"]["ap_diameter_mm"] == "the label set has no spinal_canal label"


def test_masks_that_cannot_be_measured_are_refused() -> None:
    labels, geometry = _mask(), _axial()
    with pytest.raises(ValueError, match="axial mask is empty"):
        axial_level_rows(np.zeros_like(labels), geometry, CENTRES, label_values=LABELS)
    with pytest.raises(ValueError, match="has 5 slices \\(z\\) but the geometry describes 6"):
        axial_level_rows(labels[:5], geometry, CENTRES, label_values=LABELS)
    with pytest.raises(ValueError, match="must be a \\(z, y, x\\) volume"):
        axial_level_rows(labels[0], geometry, CENTRES, label_values=LABELS)
    with pytest.raises(ValueError, match="no named disc centre"):
        axial_level_rows(labels, geometry, {}, label_values=LABELS)
    with pytest.raises(ValueError, match="image has shape"):
        axial_level_rows(
            labels, geometry, CENTRES, label_values=LABELS, image=np.ones((6, 10, 10)), intensity_model=SignalIntensityModel(1.0, 2.0)
        )
    sagittal = _sagittal()
    with pytest.raises(ValueError, match="axial mask is not axial"):
        axial_level_rows(np.ones((len(sagittal), 4, 4), dtype=np.uint8), sagittal, CENTRES, label_values=LABELS)
    with pytest.raises(ValueError, match="sagittal mask is not sagittal"):
        sagittal_level_rows(labels, geometry, CENTRES, label_values=LABELS)
    with pytest.raises(ValueError, match="sagittal mask is empty"):
        sagittal_level_rows(np.zeros((len(sagittal), 10, 10), dtype=np.uint8), sagittal, CENTRES, label_values=LABELS)


# --------------------------------------------------------------------------- sagittal

# Slices at patient x = -6 ... 6 mm; columns run posterior (+y, 0.5 mm), rows inferior (-z, 0.8 mm).
DISC_ROWS = [(40, 50), (85, 97), (130, 142), (175, 188), (220, 234)]  # 8, 9.6, 9.6, 10.4, 11.2 mm
LUMBAR = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")


def _sagittal() -> SeriesGeometry:
    return SeriesGeometry(
        slices=tuple(
            SliceGeometry(
                image_position_mm=(-6.0 + 3.0 * k, -40.0, 100.0),
                row_cosine=(0.0, 1.0, 0.0),
                column_cosine=(0.0, 0.0, -1.0),
                pixel_spacing_mm=(0.8, 0.5),
                slice_thickness_mm=3.0,
            )
            for k in range(5)
        )
    )


def _spine_labels() -> npt.NDArray[np.uint8]:
    labels = np.zeros((5, 290, 160), dtype=np.uint8)
    bottoms = [0] + [r1 for _, r1 in DISC_ROWS]
    tops = [r0 for r0, _ in DISC_ROWS] + [285]
    for top, bottom in zip(bottoms, tops, strict=True):  # vertebral bodies between the discs
        labels[1:4, top + 1 : bottom - 1, 40:120] = LABELS["vertebral_body"]
    for r0, r1 in DISC_ROWS:
        labels[1:4, r0:r1, 40:120] = LABELS["intervertebral_disc"]  # 40 mm deep
    return labels


def test_sagittal_rows_give_the_disc_heights_named_from_the_sacrum() -> None:
    labels, geometry = _spine_labels(), _sagittal()
    named, flag = named_disc_centres(labels, geometry, disc_label=2, vertebral_body_label=1)
    assert (list(named), flag) == (list(LUMBAR), "")
    rows = sagittal_level_rows(labels, geometry, named, label_values=LABELS, levels=LUMBAR)
    for row, (r0, r1) in zip(rows, DISC_ROWS, strict=True):
        assert row["errors"] == {}
        for quantity in ("disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm"):
            assert row[quantity] == pytest.approx((r1 - r0) * 0.8, abs=0.8), (row["level"], quantity)  # below one pixel
    # Named centres from elsewhere (e.g. the AI's sagittal mask) that miss a disc: that level says so.
    rows = sagittal_level_rows(labels, geometry, {k: v for k, v in named.items() if k != "L1-L2"}, label_values=LABELS, levels=LUMBAR)
    assert rows[0]["disc_height_middle_mm"] is None
    assert rows[0]["errors"]["disc_height_middle_mm"] == "no disc on the mid-sagittal slice near the L1-L2 disc centre"
    # Four discs: the count is ambiguous and flagged, never silently named.
    labels[:, DISC_ROWS[0][0] : DISC_ROWS[0][1]] = 0
    _, flag = named_disc_centres(labels, geometry, disc_label=2, vertebral_body_label=1)
    assert flag != ""
