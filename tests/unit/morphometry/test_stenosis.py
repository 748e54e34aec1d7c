"""DSCA per level on a synthetic axial series, and the DSCA stenosis grade."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinereview.morphometry import (
    DEFAULT_DSCA_CUTOFFS_MM2,
    LUMBAR_DISC_LEVELS,
    STENOSIS_GRADE_NAMES,
    LevelDsca,
    SeriesGeometry,
    SliceGeometry,
    SliceLevel,
    axial_slice_levels,
    dsca_by_level_mm2,
    stenosis_grade_from_dsca,
)

SAC = 3
CENTRES = {"L3-L4": (0.0, 5.0, -20.0), "L4-L5": (0.0, 5.0, -60.0), "L5-S1": (0.0, 5.0, -100.0)}
TILT = math.radians(20.0)


def _axial(z_mm: float, *, tilt_rad: float = 0.0, spacing_mm: tuple[float, float] = (0.5, 0.5)) -> SliceGeometry:
    return SliceGeometry(
        image_position_mm=(-50.0, -60.0, z_mm),
        row_cosine=(1.0, 0.0, 0.0),
        column_cosine=(0.0, math.cos(tilt_rad), math.sin(tilt_rad)),
        pixel_spacing_mm=spacing_mm,
        slice_thickness_mm=4.0,
    )


def _sac(volume: npt.NDArray[np.uint8], k: int, area_mm2: float, pixel_area_mm2: float) -> None:
    """Draw a dural sac of exactly ``area_mm2`` on slice ``k`` (a 10-pixel-wide rectangle)."""
    pixels = round(area_mm2 / pixel_area_mm2)
    assert pixels % 10 == 0 and math.isclose(pixels * pixel_area_mm2, area_mm2)
    volume[k, 40 : 40 + pixels // 10, 60:70] = SAC


def _series() -> tuple[npt.NDArray[np.uint8], SeriesGeometry]:
    """Three slices 4 mm apart per level for L4-L5 (straight, 0.5 x 0.5 mm pixels) and L5-S1
    (tilted 20° about x, 0.4 x 0.5 mm pixels), the middle slice of each through the disc centre.

    A tilted plane starting at y = -60 rises by 65 * tan(20°) by y = 5 (the disc centre), so its
    IPP is lowered by that much to pass through (0, 5, -100).
    """
    rise = 65.0 * math.tan(TILT)
    slices = [_axial(z) for z in (-56.0, -60.0, -64.0)]
    slices += [_axial(z - rise, tilt_rad=TILT, spacing_mm=(0.4, 0.5)) for z in (-96.0, -100.0, -104.0)]
    volume = np.zeros((6, 128, 128), dtype=np.uint8)
    for k, area in enumerate([120.0, 80.0, 95.0]):
        _sac(volume, k, area, 0.25)
    for k, area in zip(range(3, 6), [60.0, 70.0, 40.0], strict=True):
        _sac(volume, k, area, 0.2)
    return volume, SeriesGeometry(slices=tuple(slices))


def test_dsca_at_the_mid_disc_slice_and_minimum_per_level() -> None:
    volume, geometry = _series()
    slice_levels = axial_slice_levels(geometry, CENTRES)
    assert [s.level for s in slice_levels] == ["L4-L5"] * 3 + ["L5-S1"] * 3

    result = dsca_by_level_mm2(volume, geometry, slice_levels, SAC)

    assert list(result) == ["L4-L5", "L5-S1"]
    l45, l5s1 = result["L4-L5"], result["L5-S1"]
    assert l45.dsca_mm2 == pytest.approx(80.0, rel=1e-12)
    assert l45.min_dsca_mm2 == pytest.approx(80.0, rel=1e-12)
    assert (l45.slice_index, l45.min_slice_index, l45.n_slices) == (1, 1, 3)
    assert l45.distance_mm == pytest.approx(0.0, abs=1e-9)
    assert l5s1.dsca_mm2 == pytest.approx(70.0, rel=1e-12)  # in-plane area on the tilted slice
    assert l5s1.min_dsca_mm2 == pytest.approx(40.0, rel=1e-12)
    assert (l5s1.slice_index, l5s1.min_slice_index, l5s1.n_slices) == (4, 5, 3)
    assert l5s1.distance_mm == pytest.approx(0.0, abs=1e-9)
    assert l5s1.measured


def test_levels_without_slices_are_reported_as_missing() -> None:
    volume, geometry = _series()
    result = dsca_by_level_mm2(volume, geometry, axial_slice_levels(geometry, CENTRES), SAC, levels=LUMBAR_DISC_LEVELS)
    assert list(result) == list(LUMBAR_DISC_LEVELS)
    for level in ("L1-L2", "L2-L3", "L3-L4"):
        assert result[level] == LevelDsca(
            level=level,
            dsca_mm2=None,
            min_dsca_mm2=None,
            slice_index=None,
            distance_mm=None,
            min_slice_index=None,
            n_slices=0,
        )
        assert not result[level].measured
    assert result["L4-L5"].dsca_mm2 == pytest.approx(80.0, rel=1e-12)


def test_max_distance_keeps_only_slices_near_the_disc() -> None:
    volume, geometry = _series()
    slice_levels = axial_slice_levels(geometry, CENTRES)
    near = dsca_by_level_mm2(volume, geometry, slice_levels, SAC, max_distance_mm=1.0)
    assert near["L5-S1"].n_slices == 1
    assert near["L5-S1"].min_dsca_mm2 == pytest.approx(70.0, rel=1e-12)
    nothing = dsca_by_level_mm2(volume, geometry, slice_levels, SAC, max_distance_mm=0.0, levels=["L4-L5"])
    assert nothing["L4-L5"].n_slices == 1  # the slice through the centre is at distance 0


def test_a_slice_without_sac_measures_zero_but_a_volume_without_sac_is_an_error() -> None:
    volume, geometry = _series()
    slice_levels = axial_slice_levels(geometry, CENTRES)
    reference = dsca_by_level_mm2(volume, geometry, slice_levels, SAC)["L4-L5"].slice_index
    assert reference is not None
    volume[reference][volume[reference] == SAC] = 0
    assert dsca_by_level_mm2(volume, geometry, slice_levels, SAC)["L4-L5"].dsca_mm2 == 0.0
    volume[volume == SAC] = 0
    with pytest.raises(ValueError, match="dural sac \\(label 3\\) is not labelled on any axial slice"):
        dsca_by_level_mm2(volume, geometry, slice_levels, SAC)


def test_dsca_input_errors() -> None:
    volume, geometry = _series()
    slice_levels = axial_slice_levels(geometry, CENTRES)
    with pytest.raises(ValueError, match="5 slices \\(z\\) but the geometry describes 6"):
        dsca_by_level_mm2(volume[:5], geometry, slice_levels, SAC)
    with pytest.raises(ValueError, match="refers to slice 6, but the axial volume has 6 slices"):
        dsca_by_level_mm2(volume, geometry, [SliceLevel(6, "L4-L5", 0.0)], SAC)
    with pytest.raises(ValueError, match="lists slice 1 more than once"):
        dsca_by_level_mm2(volume, geometry, [*slice_levels, SliceLevel(1, "L3-L4", 3.0)], SAC)
    with pytest.raises(ValueError, match="max_distance_mm"):
        dsca_by_level_mm2(volume, geometry, slice_levels, SAC, max_distance_mm=-1.0)


# --------------------------------------------------------------------------- grade


@pytest.mark.parametrize(
    ("dsca_mm2", "grade"),
    [
        (180.0, 0),
        (100.0, 0),
        (99.99, 1),
        (75.0, 1),
        (74.99, 2),
        (50.0, 2),
        (49.99, 3),
        (0.0, 3),
    ],
)
def test_default_grade_boundaries(dsca_mm2: float, grade: int) -> None:
    assert stenosis_grade_from_dsca(dsca_mm2) == grade


def test_grade_names_and_default_cutoffs() -> None:
    assert DEFAULT_DSCA_CUTOFFS_MM2 == (100.0, 75.0, 50.0)
    assert STENOSIS_GRADE_NAMES[stenosis_grade_from_dsca(60.0)] == "moderate"


def test_custom_cutoffs() -> None:
    assert stenosis_grade_from_dsca(70.0, cutoffs_mm2=(76.0,)) == 1
    assert stenosis_grade_from_dsca(80.0, cutoffs_mm2=(130.0, 100.0, 76.0, 60.0)) == 2
    assert stenosis_grade_from_dsca(80.0, cutoffs_mm2=[100, 75, 50]) == 1


@pytest.mark.parametrize(
    ("cutoffs", "message"),
    [
        ((), "must not be empty"),
        ((75.0, 100.0, 50.0), "strictly decreasing"),
        ((100.0, 75.0, 75.0), "strictly decreasing"),
        ((100.0, 75.0, 0.0), "positive finite"),
        ((100.0, -75.0), "positive finite"),
        ((float("inf"), 75.0), "positive finite"),
        ((100.0, float("nan")), "positive finite"),
    ],
)
def test_invalid_cutoffs(cutoffs: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stenosis_grade_from_dsca(80.0, cutoffs_mm2=cutoffs)


@pytest.mark.parametrize("dsca", [-1.0, float("nan"), float("inf")])
def test_invalid_dsca(dsca: float) -> None:
    with pytest.raises(ValueError, match="dsca_mm2 must be a non-negative finite area"):
        stenosis_grade_from_dsca(dsca)


@given(
    st.floats(min_value=0.0, max_value=500.0),
    st.floats(min_value=0.0, max_value=500.0),
)
def test_grade_never_decreases_as_the_sac_narrows(a: float, b: float) -> None:
    wide, narrow = max(a, b), min(a, b)
    assert 0 <= stenosis_grade_from_dsca(wide) <= stenosis_grade_from_dsca(narrow) <= 3
