"""Phantom specs: validation, random draws, and the in-memory rendering's geometry."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.labels import LABEL_MAP, LEVELS, NUM_CLASSES, level_check
from ml.phantom import AXIAL, SAGITTAL, Anatomy, PhantomSpec, phantom_spec_random, render_phantom


def test_label_map_is_fixed() -> None:
    assert LABEL_MAP == {
        1: "vertebral_body",
        2: "intervertebral_disc",
        3: "spinal_canal",
        4: "dural_sac",
        5: "paraspinal_muscle_left",
        6: "paraspinal_muscle_right",
    }
    assert NUM_CLASSES == 7
    assert LEVELS == ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
    assert level_check("L4-L5") == "L4-L5"
    with pytest.raises(ValueError, match="unknown level 'L6-L7'; valid levels: L1-L2, L2-L3"):
        level_check("L6-L7")


def _kwargs(**changes: Any) -> dict[str, Any]:
    base = phantom_spec_random(3).to_dict()
    base["spine_origin_mm"] = tuple(base["spine_origin_mm"])
    return base | changes


def _with_level(field: str, level: str, value: Any) -> dict[str, Any]:
    kwargs = _kwargs()
    kwargs[field] = dict(kwargs[field]) | {level: value}
    return kwargs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (_with_level("dsca_mm2_by_level", "L4-L5", -10.0), r"dsca_mm2_by_level\['L4-L5'\] = -10.0 is outside"),
        (_with_level("dsca_mm2_by_level", "L6-L7", 100.0), "unknown level 'L6-L7'; valid levels"),
        (_with_level("dsca_mm2_by_level", "L4-L5", float("nan")), "is outside"),
        (_with_level("dsca_mm2_by_level", "L4-L5", 390.0), "does not fit the canal"),
        (_with_level("canal_ap_mm_by_level", "L1-L2", 0.0), "canal_ap_mm_by_level"),
        (_with_level("disc_height_middle_mm_by_level", "L5-S1", 40.0), "disc_height_middle"),
        (_kwargs(fat_fraction_by_side={"left": 0.2, "right": 1.2}), "fat_fraction_by_side"),
        (_kwargs(fat_fraction_by_side={"left": 0.2, "centre": 0.1}), "exactly the keys"),
        (_kwargs(seed=-1), "seed must be a non-negative int"),
        (_kwargs(axial_slices_per_level=4), "odd int"),
        (_kwargs(axial_spacing_mm=2.0), "axial_spacing_mm"),
        (_kwargs(sagittal_matrix=16), "sagittal_matrix"),
        (_with_level("sedimentation_sign_by_level", "L4-L5", "yes"), "sedimentation_sign_by_level must map"),
        (_with_level("sedimentation_sign_by_level", "L6-L7", True), "sedimentation_sign_by_level must map"),
        (_kwargs(nerve_roots=-1), r"nerve_roots must be an int in \[0, 40\]"),
        (_kwargs(nerve_roots=2.5), "nerve_roots"),
    ],
)
def test_bad_spec_raises_clear_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PhantomSpec(**kwargs)


def test_missing_level_is_named() -> None:
    kwargs = _kwargs()
    kwargs["dsca_mm2_by_level"] = {k: v for k, v in kwargs["dsca_mm2_by_level"].items() if k != "L3-L4"}
    with pytest.raises(ValueError, match="missing level"):
        PhantomSpec(**kwargs)


def test_random_spec_rejects_bad_seed() -> None:
    with pytest.raises(ValueError, match="seed"):
        phantom_spec_random(-5)


def test_spec_round_trips_through_dict() -> None:
    spec = phantom_spec_random(11)
    assert PhantomSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown PhantomSpec field"):
        PhantomSpec.from_dict(spec.to_dict() | {"colour": 1})


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_random_spec_has_one_severe_one_moderate_rest_normal(seed: int) -> None:
    spec = phantom_spec_random(seed)
    assert spec == phantom_spec_random(seed)
    values = sorted(spec.dsca_mm2_by_level.values())
    assert values[0] < 75.0
    assert 75.0 <= values[1] < 100.0
    assert all(v > 100.0 for v in values[2:])
    for level in LEVELS:
        canal_area = math.pi * spec.canal_ap_mm_by_level[level] * spec.canal_width_mm_by_level[level] / 4
        assert spec.dsca_mm2_by_level[level] <= 0.85 * canal_area
    assert all(0.0 <= f <= 0.5 for f in spec.fat_fraction_by_side.values())


def test_different_seeds_give_different_specs() -> None:
    assert phantom_spec_random(1) != phantom_spec_random(2)


@pytest.fixture(scope="module")
def rendering() -> Any:
    return render_phantom(phantom_spec_random(21))


def test_render_shapes_and_types(rendering: Any) -> None:
    sag, ax = rendering.series[SAGITTAL], rendering.series[AXIAL]
    assert sag.image.shape == sag.labels.shape == (15, 256, 256)
    assert ax.image.shape == ax.labels.shape == (25, 256, 256)
    for s in (sag, ax):
        assert s.image.dtype == np.uint16 and s.labels.dtype == np.uint8
        assert set(np.unique(s.labels)) == set(range(NUM_CLASSES))
    assert sag.geometry.spacing_mm == (4.0, 0.9375, 0.9375)
    assert ax.geometry.spacing_mm == (4.0, 0.78125, 0.78125)
    assert ax.slice_levels == tuple(lv for lv in reversed(LEVELS) for _ in range(5))
    # both series ascend along their normals
    for s in (sag, ax):
        along = s.geometry.positions_mm @ s.geometry.normal
        assert np.all(np.diff(along) > 0)
    np.testing.assert_array_equal(sag.geometry.normal, [-1.0, 0.0, 0.0])
    np.testing.assert_array_equal(ax.geometry.normal, [0.0, 0.0, 1.0])


def test_pixel_position_convention(rendering: Any) -> None:
    """Pixel (r, c) of slice k = IPP_k + c * PixelSpacing[1] * rowcos + r * PixelSpacing[0] * colcos."""
    geom = rendering.series[SAGITTAL].geometry
    x, y, z = (np.broadcast_to(a, (geom.rows, geom.columns)) for a in geom.pixel_centres(3))
    r, c = 17, 201
    expected = (
        geom.positions_mm[3]
        + c * geom.pixel_spacing_mm[1] * np.array(geom.orientation[:3])
        + r * geom.pixel_spacing_mm[0] * np.array(geom.orientation[3:])
    )
    np.testing.assert_allclose([x[r, c], y[r, c], z[r, c]], expected, atol=1e-9)


def test_anatomy_reproduces_spec_exactly() -> None:
    spec = phantom_spec_random(5)
    anatomy = Anatomy(spec)
    for level, m in anatomy.measurements().items():
        z = np.array([m["disc_midplane_z_mm"]])
        a_c, b_c, a_s, b_s, _ = (float(v[0]) for v in anatomy.canal_at(z))
        assert math.pi * a_s * b_s == pytest.approx(spec.dsca_mm2_by_level[level], rel=1e-12)
        assert 2 * b_c == pytest.approx(spec.canal_ap_mm_by_level[level], rel=1e-12)
        assert 2 * a_c == pytest.approx(spec.canal_width_mm_by_level[level], rel=1e-12)
        dg = anatomy.disc(level)
        c0, c1, c2 = dg.coefficients
        for u, part in ((-0.8, "anterior"), (0.0, "middle"), (0.8, "posterior")):
            height = c0 + c1 * u + c2 * u * u
            assert height == pytest.approx(getattr(spec, f"disc_height_{part}_mm_by_level")[level])
    with pytest.raises(ValueError, match="unknown disc"):
        anatomy.disc("L6-L7")


def test_fat_fraction_changes_muscle_signal_only() -> None:
    spec = phantom_spec_random(9)
    fatty = dataclasses.replace(spec, fat_fraction_by_side={"left": 0.45, "right": 0.02})
    lean = dataclasses.replace(spec, fat_fraction_by_side={"left": 0.02, "right": 0.02})
    a, b = render_phantom(fatty).series[AXIAL], render_phantom(lean).series[AXIAL]
    np.testing.assert_array_equal(a.labels, b.labels)
    left = a.labels == 5
    right = a.labels == 6
    assert a.image[left].mean() > 1.3 * b.image[left].mean()
    assert a.image[right].mean() == pytest.approx(b.image[right].mean(), rel=0.02)


def _root_rows(spec: PhantomSpec) -> dict[str, tuple[float, int]]:
    """Per level, on the mid-plane axial slice: the mean position of the T2-dark pixels inside the
    sac's CSF (0 = the sac's centre row, +1 its posterior edge) and how many there are."""
    series = render_phantom(spec).series[AXIAL]
    out = {}
    for k, level in enumerate(series.slice_levels):
        if level is None or k % spec.axial_slices_per_level != spec.axial_slices_per_level // 2:
            continue
        sac = series.labels[k] == 4
        rows, _ = np.nonzero(sac)
        centre, half = (rows.min() + rows.max()) / 2, (rows.max() - rows.min()) / 2
        inner = sac & ~np.isin(np.roll(series.labels[k], 2, 0), (3, 0)) & ~np.isin(np.roll(series.labels[k], -2, 0), (3, 0))
        inner &= ~np.isin(np.roll(series.labels[k], 2, 1), (3, 0)) & ~np.isin(np.roll(series.labels[k], -2, 1), (3, 0))
        dark = inner & (series.image[k] < 0.6 * np.percentile(series.image[k][inner], 90))
        r, _ = np.nonzero(dark)
        out[level] = (float((r.mean() - centre) / half) if len(r) else 0.0, len(r))
    return out


def test_nerve_roots_sink_dorsally_without_the_sign_and_spread_with_it() -> None:
    base = dataclasses.replace(phantom_spec_random(4), dsca_mm2_by_level=dict.fromkeys(LEVELS, 150.0),
                               canal_ap_mm_by_level=dict.fromkeys(LEVELS, 16.0), canal_width_mm_by_level=dict.fromkeys(LEVELS, 24.0))
    signs = {"L1-L2": False, "L2-L3": True, "L3-L4": False, "L4-L5": True, "L5-S1": False}
    rows = _root_rows(dataclasses.replace(base, sedimentation_sign_by_level=signs))
    for level, sign in signs.items():
        position, count = rows[level]
        assert count >= 10, (level, count)
        if sign:  # spread: the roots' mean lies near the sac's centre
            assert abs(position) < 0.3, (level, position)
        else:  # sedimented: in the posterior (dorsal) half
            assert position > 0.4, (level, position)
    # without roots the CSF has no dark pixels; the labels never change with the roots
    bare = dataclasses.replace(base, nerve_roots=0)
    assert all(count == 0 for _, count in _root_rows(bare).values())
    np.testing.assert_array_equal(render_phantom(bare).series[AXIAL].labels, render_phantom(base).series[AXIAL].labels)


def test_random_sedimentation_sign_follows_stenosis() -> None:
    present: dict[str, list[bool]] = {"severe": [], "moderate": [], "normal": []}
    for seed in range(120):
        spec = phantom_spec_random(seed)
        assert Anatomy(spec).measurements()["L4-L5"]["sedimentation_sign"] is spec.sedimentation_sign_by_level["L4-L5"]
        for level in LEVELS:
            dsca = spec.dsca_mm2_by_level[level]
            present["severe" if dsca < 75 else "moderate" if dsca < 100 else "normal"].append(spec.sedimentation_sign_by_level[level])
    rate = {k: float(np.mean(v)) for k, v in present.items()}
    assert rate["severe"] > 0.7 and 0.25 < rate["moderate"] < 0.65 and rate["normal"] < 0.2, rate
