"""Every per-case measurement against the phantom's analytic truth (ml.phantom.anatomy).

The phantom's spine runs along patient z (no lordosis) and its axial slices are straight, so
disc planes must come out horizontal and the axis-aware measurements must equal the in-plane
ones. Labels are "voxel centre inside the analytic shape", which is what every tolerance below
is derived from (ps = pixel spacing).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ml.labels import (
    DURAL_SAC,
    INTERVERTEBRAL_DISC,
    LEVELS,
    PARASPINAL_MUSCLE_LEFT,
    PARASPINAL_MUSCLE_RIGHT,
    SPINAL_CANAL,
    VERTEBRAL_BODY,
)
from ml.phantom import PhantomRendering
from ml.phantom.anatomy import BODIES, MEASURE_U, Anatomy
from spinereview.morphometry import (
    SignalIntensityModel,
    axial_slice_levels,
    canal_ap_by_level_mm,
    disc_heights_mm,
    dsca_by_level_mm2,
    heights_by_name,
    mid_sagittal_slice_index,
    paraspinal_muscles_by_level,
    spine_levels,
    vertebral_body_heights_mm,
)
from tests.unit.cross.conftest import morphometry_geometry


def _spine(rendering: PhantomRendering):  # type: ignore[no-untyped-def]
    sagittal = rendering.series["sagittal_t2"]
    geometry = morphometry_geometry(sagittal.geometry)
    return (
        sagittal.labels,
        geometry,
        spine_levels(sagittal.labels, geometry, disc_label=INTERVERTEBRAL_DISC, vertebral_body_label=VERTEBRAL_BODY),
    )


def test_levels_are_counted_from_the_sacrum_with_horizontal_disc_planes(rendering: PhantomRendering) -> None:
    _, _, spine = _spine(rendering)
    anatomy = Anatomy(rendering.spec)
    assert spine.flags == ()
    assert [d.level for d in spine.discs] == list(LEVELS)
    assert [v.name for v in spine.vertebrae] == ["L1", "L2", "L3", "L4", "L5", "S1"]
    assert len(spine.unnamed_discs) == 1  # T12-L1, in view above L1-L2
    for named in spine.discs:
        # The centroid of a disc symmetric about its mid-plane lies on it, to a fraction of a
        # pixel (0.9375 mm rows along z); its normal is patient z within the angle a one-pixel
        # error subtends over the disc's depth (atan(ps / depth)).
        assert named.plane.centre_mm[2] == pytest.approx(anatomy.disc(named.level).z_mid_mm, abs=0.5)
        depth_mm = 2 * anatomy.disc(named.level).ry_mm
        assert math.degrees(math.acos(named.plane.normal[2])) < math.degrees(math.atan(0.9375 / depth_mm))


def test_disc_and_vertebral_body_heights_match_the_analytic_shapes(rendering: PhantomRendering) -> None:
    labels, geometry, spine = _spine(rendering)
    anatomy = Anatomy(rendering.spec)
    ps = rendering.spec.sagittal_pixel_mm
    k = mid_sagittal_slice_index(labels, geometry, INTERVERTEBRAL_DISC)
    assert geometry.slices[k].image_position_mm[0] == pytest.approx(anatomy.x0)  # the slice through the spine's axis

    # Tolerance: a chord through pixel centres spaced ps along z is n * ps long with the true
    # height h in (n - 1) ps .. (n + 1) ps: error < ps. The station (10 % inside each edge) is
    # off by at most ps/2 (edges found to half a pixel) plus ps/2 (nearest pixel column), which
    # changes the height by at most ps * |dh/dy|. The chord is sampled every ps / 10.
    discs = heights_by_name(disc_heights_mm(labels, geometry, INTERVERTEBRAL_DISC), spine.centres_by_level())
    assert list(discs) == list(LEVELS)
    for level, measured in discs.items():
        dg = anatomy.disc(level)
        c0, c1, c2 = dg.coefficients
        for part, u in (("anterior", -MEASURE_U), ("middle", 0.0), ("posterior", MEASURE_U)):
            slope = max(abs(c1 + 2 * c2 * uu) for uu in (u - ps / dg.ry_mm, u + ps / dg.ry_mm)) / dg.ry_mm
            tolerance = ps + ps * slope + ps / 10
            expected = getattr(dg, f"height_{part}_mm")
            assert getattr(measured, f"{part}_mm") == pytest.approx(expected, abs=tolerance), (level, part)
        assert measured.depth_mm == pytest.approx(2 * dg.ry_mm, abs=ps)

    centres = {v.name: v.body.centre_mm for v in spine.vertebrae}
    bodies = heights_by_name(vertebral_body_heights_mm(labels, geometry, VERTEBRAL_BODY, disc_label=INTERVERTEBRAL_DISC), centres)
    assert list(bodies) == ["L1", "L2", "L3", "L4", "L5", "S1"]
    for name, measured in bodies.items():
        i = BODIES.index(name)
        above, below = anatomy.discs[i - 1], (anatomy.discs[i] if i < len(anatomy.discs) else None)
        ry = float(anatomy.body_ry[i])

        def height(dy: float, above=above, below=below) -> float:  # type: ignore[no-untyped-def]
            def half(dg, dy: float) -> float:  # type: ignore[no-untyped-def]
                c0, c1, c2 = dg.coefficients
                u = min(max(dy / dg.ry_mm, -1.0), 1.0)
                return max(c0 + c1 * u + c2 * u * u, 1.0) / 2

            top = above.z_mid_mm - half(above, dy)
            bottom = below.z_mid_mm + half(below, dy) if below is not None else anatomy.s1_bottom_z
            return float(top - bottom)

        for part, dy in (("anterior", -MEASURE_U * ry), ("middle", 0.0), ("posterior", MEASURE_U * ry)):
            slope = abs(height(dy + ps) - height(dy - ps)) / (2 * ps)
            tolerance = ps + ps * slope + ps / 10
            assert getattr(measured, f"{part}_mm") == pytest.approx(height(dy), abs=tolerance), (name, part)
        assert measured.middle_mm == pytest.approx(rendering.spec.body_height_mm_by_vertebra[name], abs=ps + ps / 10)


def test_dsca_and_canal_ap_per_level_with_the_disc_normals_as_axes(rendering: PhantomRendering) -> None:
    _, _, spine = _spine(rendering)
    axial = rendering.series["axial_t2"]
    geometry = morphometry_geometry(axial.geometry)
    slice_levels = axial_slice_levels(geometry, spine.centres_by_level())
    normals = spine.normals_by_level()
    truth = rendering.measurements["levels"]
    ps = rendering.spec.axial_pixel_mm

    plain = dsca_by_level_mm2(axial.labels, geometry, slice_levels, DURAL_SAC)
    along_axis = dsca_by_level_mm2(axial.labels, geometry, slice_levels, DURAL_SAC, axis_by_level=normals)
    canal = canal_ap_by_level_mm(axial.labels, geometry, slice_levels, [SPINAL_CANAL, DURAL_SAC], axis_by_level=normals)
    for level in LEVELS:
        expected = truth[level]
        assert along_axis[level].slice_index == plain[level].slice_index
        # Disc normals within atan(ps / depth) of z: the projection factor cos differs from 1 by < 1e-3.
        assert along_axis[level].dsca_mm2 == pytest.approx(plain[level].dsca_mm2, rel=1e-3)
        a, b = expected["dural_sac_semi_axis_x_mm"], expected["dural_sac_semi_axis_y_mm"]
        perimeter_mm = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
        tolerance_mm2 = 4 * math.sqrt(perimeter_mm / ps) * ps**2 / math.sqrt(12)
        assert along_axis[level].dsca_mm2 == pytest.approx(expected["dsca_mm2"], abs=tolerance_mm2), level
        # AP: error below one projected pixel (see areas.ap_diameter_mm), and the canal is
        # narrowest at the disc (the phantom's knots there are the minima).
        assert canal[level].ap_mm == pytest.approx(expected["canal_ap_mm"], abs=ps), level
        assert canal[level].slice_index == plain[level].slice_index
        ap_mm, min_ap_mm = canal[level].ap_mm, canal[level].min_ap_mm
        assert ap_mm is not None and min_ap_mm is not None
        assert min_ap_mm <= ap_mm
        assert canal[level].n_slices == rendering.spec.axial_slices_per_level


def test_paraspinal_muscle_area_and_fat_fraction_per_side(rendering: PhantomRendering) -> None:
    _, _, spine = _spine(rendering)
    spec = rendering.spec
    anatomy = Anatomy(spec)
    axial = rendering.series["axial_t2"]
    geometry = morphometry_geometry(axial.geometry)
    slice_levels = axial_slice_levels(geometry, spine.centres_by_level())
    model = SignalIntensityModel(
        muscle_signal=spec.tissue_signal["muscle"] * spec.signal_scale, fat_signal=spec.tissue_signal["fat"] * spec.signal_scale
    )
    result = paraspinal_muscles_by_level(
        axial.labels,
        geometry,
        slice_levels,
        left_label=PARASPINAL_MUSCLE_LEFT,
        right_label=PARASPINAL_MUSCLE_RIGHT,
        image=axial.image,
        intensity_model=model,
    )
    ps = spec.axial_pixel_mm
    fine = 4  # truth: the analytic labels integrated on a 4 x 4 sub-pixel grid
    for level in LEVELS:
        for side, label in (("left", PARASPINAL_MUSCLE_LEFT), ("right", PARASPINAL_MUSCLE_RIGHT)):
            measured = result[level][side]
            assert measured.slice_index is not None and measured.csa_mm2 is not None and measured.fat_fraction_percent is not None
            k = measured.slice_index
            x, y, z = axial.geometry.pixel_centres(k)
            offsets = (np.arange(fine) - (fine - 1) / 2) * ps / fine
            xs = (np.asarray(x).reshape(1, -1)[:, :, None] + offsets[None, None, :]).reshape(1, -1)
            ys = (np.asarray(y).reshape(-1, 1)[:, None, :] + offsets[None, :, None]).reshape(-1, 1)
            sub_labels, _ = anatomy.classify(xs, ys, np.asarray(z), with_signal=False)
            truth_mm2 = np.count_nonzero(sub_labels == label) * (ps / fine) ** 2
            # Boundary pixels N (pixels of the mask with a neighbour outside): area error sd
            # sqrt(N) * ps² / sqrt(12) for the coarse grid; allow 4 sd.
            mask = axial.labels[k] == label
            n_boundary = int(np.count_nonzero(mask & ~ndimage.binary_erosion(mask)))
            assert measured.csa_mm2 == pytest.approx(truth_mm2, abs=4 * math.sqrt(n_boundary) * ps**2 / math.sqrt(12)), (level, side)
            # Fat fraction: inside the muscle the image is exactly (1 - ff) muscle + ff fat; only
            # boundary pixels see their neighbours (the fat envelope at 0.85 fat, soft tissue,
            # posterior elements) through the Gaussian blur (sigma = 1/2 pixel). A boundary pixel
            # centre lies a distance d ~ U(0, 1) pixel inside the edge and takes a weight
            # Phi(-d / sigma) from outside: on average integral_0^1 Phi(-2d) dd = 0.195 < 0.2.
            # Error ~ (N / n) * 0.2 * contrast; allow twice that.
            ff = spec.fat_fraction_by_side[side]
            roi = (1 - ff) * spec.tissue_signal["muscle"] + ff * spec.tissue_signal["fat"]
            neighbours = (0.85 * spec.tissue_signal["fat"], spec.tissue_signal["soft_tissue"], spec.tissue_signal["posterior_elements"])
            contrast = max(abs(s - roi) for s in neighbours) / (spec.tissue_signal["fat"] - spec.tissue_signal["muscle"])
            tolerance_percent = 2 * 100 * n_boundary / np.count_nonzero(mask) * 0.2 * contrast
            assert measured.fat_fraction_percent == pytest.approx(100 * spec.fat_fraction_by_side[side], abs=tolerance_percent), (
                level,
                side,
            )
            assert measured.method.startswith("two-component signal model")
