"""The analytic lumbar spine: exact shapes in DICOM patient coordinates (LPS, mm).

+x is the patient's left, +y posterior, +z superior. The spine's axis runs along patient z
(no lordosis), so every disc mid-plane is an axial plane z = const and the ground truth can be
read off the formulas:

- vertebral bodies T12, L1-L5, S1: superellipse cylinders |x/rx|^n + |y/ry|^n <= 1 (n = 2.5)
  whose end plates follow the disc surfaces;
- discs T12-L1 (not a measured level) and L1-L2 ... L5-S1: the same superellipse, occupying
  |z - z_mid| <= h(u)/2 with u = (y - y_axis) / ry_disc in [-1, 1] and h the quadratic through
  the anterior (u = -0.8), middle (u = 0) and posterior (u = +0.8) heights of the spec;
- spinal canal: ellipse (semi-axes width/2 in x, AP/2 in y) whose anterior edge lies just
  behind the bodies; the dural sac is the concentric ellipse of the same aspect scaled to the
  chosen area. Both change smoothly along z (cosine interpolation between knots at every disc
  mid-plane and at every vertebral mid-height), so at a disc mid-plane the sac area is exactly
  the spec's DSCA and the canal AP diameter exactly the spec's canal AP;
- paraspinal muscles (multifidus + erector spinae) left/right: ellipses posterior-lateral of
  the canal, growing inferiorly;
- cauda equina roots: T2-dark discs of radius ROOT_RADIUS_MM in the dural sac's CSF, in the
  dorsal crescent at a level without the sedimentation sign and spread through the sac at a level
  with it; they move smoothly between levels and carry no label of their own (dural sac);
- psoas, vessels, posterior elements and fat are drawn for
  realism but carry no label (background).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.labels import (
    DURAL_SAC,
    INTERVERTEBRAL_DISC,
    LEVELS,
    PARASPINAL_MUSCLE_LEFT,
    PARASPINAL_MUSCLE_RIGHT,
    SPINAL_CANAL,
    VERTEBRAE,
    VERTEBRAL_BODY,
)
from ml.phantom.spec import PhantomSpec

FloatArray = NDArray[np.float64]

DISCS = ("T12-L1", *LEVELS)
"""Discs drawn, superior to inferior. T12-L1 is anatomy only, not a measured level."""
BODIES = ("T12", *VERTEBRAE)
SUPERELLIPSE_N = 2.5
MEASURE_U = 0.8
"""Disc heights are taken at u = -0.8 (anterior), 0 (middle), +0.8 (posterior)."""
CANAL_GAP_MM = 1.5
"""Posterior longitudinal ligament: gap between the bodies/discs and the canal."""
ARCH_THICKNESS_MM = 5.0
DURA_MM = 0.6
CORTEX_MM = 1.3
ROOT_RADIUS_MM = 0.8
ROOT_SPREAD = 0.68
"""Root centres stay within this fraction of the sac's semi-axes (inside the dura)."""


@dataclass(frozen=True)
class DiscGeometry:
    name: str
    z_mid_mm: float
    rx_mm: float
    ry_mm: float
    height_anterior_mm: float
    height_middle_mm: float
    height_posterior_mm: float

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """h(u) = c0 + c1 u + c2 u² through the three measured heights."""
        ha, hm, hp = self.height_anterior_mm, self.height_middle_mm, self.height_posterior_mm
        return (hm, (hp - ha) / (2 * MEASURE_U), ((ha + hp) / 2 - hm) / MEASURE_U**2)


def _cosine_interp(z: FloatArray, knots_z: FloatArray, values: FloatArray) -> FloatArray:
    """Piecewise cosine interpolation (zero slope at every knot); constant outside. `values` is
    (knots,) or (knots, ...): the result is z.shape + values.shape[1:]."""
    zc = np.clip(z, knots_z[0], knots_z[-1])
    j = np.clip(np.searchsorted(knots_z, zc, side="right") - 1, 0, len(knots_z) - 2)
    z0 = knots_z[j]
    z1 = knots_z[j + 1]
    t = (zc - z0) / (z1 - z0)
    w = (0.5 - 0.5 * np.cos(np.pi * t)).reshape(t.shape + (1,) * (values.ndim - 1))
    result: FloatArray = values[j] + (values[j + 1] - values[j]) * w
    return result


def nerve_root_knots(spec: PhantomSpec) -> FloatArray:
    """(levels, roots, 2) position of each cauda equina root at each disc mid-plane, in the dural
    sac's unit disc (u along x = the sac's semi-axis a, v along y = b; +v is posterior). A negative
    sedimentation sign puts every root in the dorsal crescent (the roots lie on the posterior wall
    of the supine patient's sac); a positive one spreads them through the whole sac."""
    rng = np.random.default_rng([0x2007, spec.seed])
    n = spec.nerve_roots
    out = np.zeros((len(LEVELS), n, 2))
    for i, level in enumerate(LEVELS):
        if spec.sedimentation_sign_by_level[level]:
            phi = rng.uniform(0.0, 2 * np.pi, n)
            rho = ROOT_SPREAD * np.sqrt(rng.uniform(0.02, 1.0, n))
        else:
            phi = np.pi / 2 + rng.uniform(-1.0, 1.0, n)
            rho = rng.uniform(0.45, ROOT_SPREAD, n)
        out[i, :, 0], out[i, :, 1] = rho * np.cos(phi), rho * np.sin(phi)
    return out


class Anatomy:
    """Exact geometry of one PhantomSpec, with vectorised point classification."""

    def __init__(self, spec: PhantomSpec) -> None:
        self.spec = spec
        x0, y0, z_l5s1 = spec.spine_origin_mm
        self.x0 = x0
        self.y0 = y0
        w, d = spec.body_width_mm / 2.0, spec.body_depth_mm / 2.0
        self.body_rx = np.array([w * (0.9 + 0.04 * i) for i in range(len(BODIES))])
        self.body_ry = np.array([d * (0.92 + 0.03 * i) for i in range(len(BODIES))])

        heights = {
            "T12-L1": tuple(
                0.9 * getattr(spec, f"disc_height_{p}_mm_by_level")["L1-L2"]
                for p in ("anterior", "middle", "posterior")
            )
        }
        for level in LEVELS:
            heights[level] = tuple(
                getattr(spec, f"disc_height_{p}_mm_by_level")[level]
                for p in ("anterior", "middle", "posterior")
            )
        body_h = {"T12": spec.body_height_mm_by_vertebra["L1"] - 1.0}
        body_h.update(spec.body_height_mm_by_vertebra)
        # disc mid-planes from L5-S1 upwards: centre-to-centre = half discs + body (at middle)
        z_mid = [z_l5s1]
        for j in range(len(DISCS) - 1, 0, -1):
            below, above = DISCS[j], DISCS[j - 1]
            body_between = BODIES[j]  # vertebra between disc j-1 and disc j
            z_mid.append(
                z_mid[-1] + heights[below][1] / 2 + body_h[body_between] + heights[above][1] / 2
            )
        z_mid.reverse()
        self.discs = tuple(
            DiscGeometry(
                name=name,
                z_mid_mm=z_mid[j],
                rx_mm=1.02 * (self.body_rx[j] + self.body_rx[j + 1]) / 2,
                ry_mm=1.02 * (self.body_ry[j] + self.body_ry[j + 1]) / 2,
                height_anterior_mm=heights[name][0],
                height_middle_mm=heights[name][1],
                height_posterior_mm=heights[name][2],
            )
            for j, name in enumerate(DISCS)
        )
        self.disc_z = np.array([dg.z_mid_mm for dg in self.discs])
        self.disc_rx = np.array([dg.rx_mm for dg in self.discs])
        self.disc_ry = np.array([dg.ry_mm for dg in self.discs])
        self.disc_coef = np.array([dg.coefficients for dg in self.discs])
        self.disc_hm = np.array([dg.height_middle_mm for dg in self.discs])
        last = self.discs[-1]
        self.s1_bottom_z = last.z_mid_mm - last.height_middle_mm / 2 - body_h["S1"]
        first = self.discs[0]
        t12_top = first.z_mid_mm + first.height_middle_mm / 2 + body_h["T12"]
        self.body_mid_z = np.array(
            [(t12_top + first.z_mid_mm + first.height_middle_mm / 2) / 2]
            + [(self.disc_z[i - 1] + self.disc_z[i]) / 2 for i in range(1, len(DISCS))]
            + [(self.s1_bottom_z + last.z_mid_mm - last.height_middle_mm / 2) / 2]
        )
        self.canal_front_y = y0 + max(self.body_ry.max(), self.disc_ry.max()) + CANAL_GAP_MM

        # cauda equina roots: knots at the measured discs' mid-planes, ascending z for interpolation
        order = np.argsort(self.disc_z[1:])
        self._root_knot_z = self.disc_z[1:][order]
        self._root_knots = nerve_root_knots(spec)[order] if spec.nerve_roots else None

        # canal/sac knots: disc mid-planes carry the spec; mid-vertebral knots are roomier
        normal = (150.0, 16.0, 23.0)  # dsca, AP, width
        disc_vals = [normal] + [
            (
                spec.dsca_mm2_by_level[lv],
                spec.canal_ap_mm_by_level[lv],
                spec.canal_width_mm_by_level[lv],
            )
            for lv in LEVELS
        ]
        knots: list[tuple[float, float, float, float]] = []
        for i, zb in enumerate(self.body_mid_z):
            neighbours = [disc_vals[j] for j in (i - 1, i) if 0 <= j < len(disc_vals)]
            knots.append(
                (
                    float(zb),
                    max([normal[0]] + [n[0] for n in neighbours]),
                    max([normal[1]] + [n[1] for n in neighbours]),
                    max([normal[2]] + [n[2] for n in neighbours]),
                )
            )
        knots += [(float(z), *v) for z, v in zip(self.disc_z, disc_vals, strict=True)]
        knots.sort()
        k = np.array(knots)
        self._knot_z = k[:, 0]
        self._knot_dsca = k[:, 1]
        self._knot_ap = k[:, 2]
        self._knot_width = k[:, 3]
        self.z_top_disc = float(self.disc_z[0])
        self.z_bottom_disc = float(self.disc_z[-1])

    # ---- exact ground truth -------------------------------------------------------------

    def disc(self, level: str) -> DiscGeometry:
        for dg in self.discs:
            if dg.name == level:
                return dg
        raise ValueError(f"unknown disc {level!r}; valid discs: {', '.join(DISCS)}")

    def canal_at(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """(canal a, canal b, sac a, sac b, centre y) at heights z; a along x, b along y."""
        area = _cosine_interp(z, self._knot_z, self._knot_dsca)
        a_c = _cosine_interp(z, self._knot_z, self._knot_width) / 2
        b_c = _cosine_interp(z, self._knot_z, self._knot_ap) / 2
        scale = np.minimum(np.sqrt(area / (np.pi * a_c * b_c)), 0.95)
        return a_c, b_c, scale * a_c, scale * b_c, self.canal_front_y + b_c

    def measurements(self) -> dict[str, dict[str, float | bool]]:
        """Per level: the exact quantities the masks should reproduce, and the sedimentation sign."""
        out: dict[str, dict[str, float | bool]] = {}
        for level in LEVELS:
            dg = self.disc(level)
            z = np.array([dg.z_mid_mm])
            a_c, b_c, a_s, b_s, yc = (float(v[0]) for v in self.canal_at(z))
            out[level] = {
                "dsca_mm2": self.spec.dsca_mm2_by_level[level],
                "canal_ap_mm": self.spec.canal_ap_mm_by_level[level],
                "canal_width_mm": self.spec.canal_width_mm_by_level[level],
                "disc_height_anterior_mm": dg.height_anterior_mm,
                "disc_height_middle_mm": dg.height_middle_mm,
                "disc_height_posterior_mm": dg.height_posterior_mm,
                "disc_midplane_z_mm": dg.z_mid_mm,
                "disc_height_anterior_y_mm": self.y0 - MEASURE_U * dg.ry_mm,
                "disc_height_middle_y_mm": self.y0,
                "disc_height_posterior_y_mm": self.y0 + MEASURE_U * dg.ry_mm,
                "disc_ap_depth_mm": 2 * dg.ry_mm,
                "canal_center_y_mm": yc,
                "canal_anterior_y_mm": yc - b_c,
                "canal_posterior_y_mm": yc + b_c,
                "dural_sac_semi_axis_x_mm": a_s,
                "dural_sac_semi_axis_y_mm": b_s,
                "dural_sac_computed_area_mm2": math.pi * a_s * b_s,
                "sedimentation_sign": self.spec.sedimentation_sign_by_level[level],
            }
        return out

    # ---- classification ---------------------------------------------------------------

    def classify(
        self, x: FloatArray, y: FloatArray, z: FloatArray, *, with_signal: bool = True
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32] | None]:
        """Label (and noiseless T2 signal) at points x, y, z.

        The three arrays only need to broadcast together: pass z as (rows, 1) for a sagittal
        slice or (1, 1) for an axial one, and everything that depends on z alone is computed
        once per row or slice instead of once per pixel.
        """
        spec = self.spec
        sig_t = spec.tissue_signal
        x, y, z = np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
        shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
        labels = np.zeros(shape, dtype=np.uint8)
        signal = np.zeros(shape, dtype=np.float32) if with_signal else None

        def full(a: NDArray[Any]) -> NDArray[Any]:
            return np.broadcast_to(a, shape)

        def put(target: NDArray[Any], mask: NDArray[np.bool_], value: Any) -> None:
            m = full(mask)
            target[m] = value if np.ndim(value) == 0 else full(value)[m]

        dx = x - self.x0
        dy = y - self.y0
        adx = np.abs(dx)
        ady = np.abs(dy)
        # progress of z from T12-L1 (0) to L5-S1 (1): muscles and psoas grow inferiorly
        t = np.clip((self.z_top_disc - z) / (self.z_top_disc - self.z_bottom_disc), 0.0, 1.0)

        if signal is not None:
            # skin outline and subcutaneous fat; soft tissue inside
            oy = dy - 12.0
            put(signal, (dx / 150.0) ** 2 + (oy / 120.0) ** 2 <= 1.0, sig_t["fat"])
            f = spec.subcutaneous_fat_mm
            inner = (dx / (150.0 - f)) ** 2 + (oy / (120.0 - f)) ** 2 <= 1.0
            texture = 1.0 + 0.12 * np.cos(x / 13.0 + 1.0) * np.cos(y / 17.0) * np.cos(z / 23.0)
            put(signal, inner, sig_t["soft_tissue"] * texture)
            # aorta and vena cava (flow voids) above the bifurcation at L4
            above_l4 = z > self.body_mid_z[4]
            ry_front = self.body_ry[3]
            aorta = (dx - 12.0) ** 2 + (dy + ry_front + 13.0) ** 2 <= 10.0**2
            ivc = ((dx + 19.0) / 12.0) ** 2 + ((dy + ry_front + 11.0) / 9.0) ** 2 <= 1
            put(signal, (aorta | ivc) & above_l4, 0.1 * sig_t["muscle"])
            # psoas (muscle, unlabeled)
            fp = 0.3 + 1.0 * t
            ax_p, ay_p = 9.0 * fp + 2.0, 11.0 * fp + 2.0
            cx_p = self.body_rx[3] + 0.8 * ax_p
            psoas = ((adx - cx_p) / ax_p) ** 2 + ((dy + 2.0) / ay_p) ** 2 <= 1.0
            put(signal, psoas & (z > self.s1_bottom_z), sig_t["muscle"])

        # paraspinal muscles (labelled), fat-infiltrated per side, in a thin fat envelope
        fm = spec.muscle_scale * (0.85 + 0.3 * t)
        ax_m, ay_m = 17.0 * fm, 22.0 * fm
        cy_m = self.canal_front_y + 6.0 + ay_m
        q_muscle = ((adx - (7.0 + ax_m)) / ax_m) ** 2 + ((y - cy_m) / ay_m) ** 2
        muscle = q_muscle <= 1.0
        left = full(muscle & (dx > 0))
        right = full(muscle & (dx < 0))
        labels[left] = PARASPINAL_MUSCLE_LEFT
        labels[right] = PARASPINAL_MUSCLE_RIGHT
        if signal is not None:
            put(signal, (q_muscle > 1.0) & (q_muscle < 1.35), 0.85 * sig_t["fat"])
            for side, mask in (("left", left), ("right", right)):
                ff = spec.fat_fraction_by_side[side]
                signal[mask] = (1 - ff) * sig_t["muscle"] + ff * sig_t["fat"]

        # canal and posterior elements
        a_c, b_c, a_s, b_s, yc = self.canal_at(z)
        dyc = y - yc
        in_canal = full((dx / a_c) ** 2 + (dyc / b_c) ** 2 <= 1.0)
        arch = (dx / (a_c + ARCH_THICKNESS_MM)) ** 2 + (dyc / (b_c + ARCH_THICKNESS_MM)) ** 2 <= 1
        arch = arch & ~in_canal & (dyc > -0.4 * b_c)
        near_mid = np.min(np.abs(z[..., None] - self.body_mid_z[:-1]), axis=-1) < 10.0
        spinous = (adx < 3.0) & (dyc > b_c + 2.0) & (dyc < b_c + 45.0) & near_mid
        posterior = full(arch | spinous)
        labels[posterior & (labels > 0)] = 0
        if signal is not None:
            signal[posterior] = sig_t["posterior_elements"]

        # vertebral bodies and discs
        i = np.searchsorted(-self.disc_z, -z)  # vertebra between disc i-1 and disc i
        j_above = np.clip(i - 1, 0, len(DISCS) - 1)
        j_below = np.clip(i, 0, len(DISCS) - 1)
        use_above = np.abs(z - self.disc_z[j_above]) < np.abs(z - self.disc_z[j_below])
        j = np.where(use_above, j_above, j_below)  # nearest disc

        def half_height(jj: NDArray[np.intp]) -> FloatArray:
            u = np.clip(dy / self.disc_ry[jj], -1.0, 1.0)
            c = self.disc_coef[jj]
            h: FloatArray = np.maximum(c[..., 0] + c[..., 1] * u + c[..., 2] * u * u, 1.0)
            return h / 2

        def superellipse(ax: FloatArray, ay: FloatArray) -> FloatArray:
            # |t|^2.5 as t² sqrt(t): several times faster than a float power
            r: FloatArray = ax * ax * np.sqrt(ax) + ay * ay * np.sqrt(ay)
            return r

        assert SUPERELLIPSE_N == 2.5
        r_disc = superellipse(adx / self.disc_rx[j], ady / self.disc_ry[j])
        hh = half_height(j)
        dz_disc = np.abs(z - self.disc_z[j])
        in_disc = full((r_disc <= 1.0) & (dz_disc <= hh))

        rx_b, ry_b = self.body_rx[i], self.body_ry[i]
        r_body = superellipse(adx / rx_b, ady / ry_b)
        z_low = np.where(
            i <= len(DISCS) - 1, self.disc_z[j_below] + half_height(j_below), self.s1_bottom_z
        )
        z_high = np.where(i >= 1, self.disc_z[j_above] - half_height(j_above), np.inf)
        in_body = full((r_body <= 1.0) & (z > z_low) & (z < z_high)) & ~in_disc
        labels[in_body] = VERTEBRAL_BODY
        labels[in_disc] = INTERVERTEBRAL_DISC
        if signal is not None:
            rim = np.minimum(rx_b, ry_b)
            cortex = (r_body ** (1 / SUPERELLIPSE_N) > 1 - CORTEX_MM / rim) | (
                np.minimum(z - z_low, z_high - z) < CORTEX_MM
            )
            put(signal, in_body & ~cortex, sig_t["bone_marrow"])
            put(signal, in_body & cortex, sig_t["cortical_bone"])
            level_signal = np.array(
                [1.0] + [spec.disc_signal_by_level[lv] for lv in LEVELS]
            )[j]
            nucleus = (r_disc < 0.45) & (dz_disc < 0.7 * hh)
            put(signal, in_disc & nucleus, sig_t["nucleus"] * level_signal)
            put(signal, in_disc & ~nucleus, sig_t["annulus"])

        # canal content: epidural space, dural sac
        q_sac = (dx / a_s) ** 2 + (dyc / b_s) ** 2
        in_sac = full(q_sac <= 1.0)
        labels[in_canal] = SPINAL_CANAL
        labels[in_sac] = DURAL_SAC
        if signal is not None:
            signal[in_canal] = sig_t["epidural_fat"]
            dura = (np.sqrt(q_sac) > 1 - DURA_MM / np.minimum(a_s, b_s)) & in_sac
            put(signal, in_sac & ~dura, sig_t["csf"])
            put(signal, dura, sig_t["dura"])
            if self._root_knots is not None:
                self._draw_roots(signal, dx, dyc, z, a_s, b_s, in_sac & ~dura)
        return labels, signal

    def roots_at(self, z: FloatArray) -> FloatArray:
        """z.shape + (roots, 2): each root's (u, v) in the sac's unit disc at heights z."""
        if self._root_knots is None:
            return np.zeros(np.shape(z) + (0, 2))
        return _cosine_interp(np.asarray(z, float), self._root_knot_z, self._root_knots)

    def _draw_roots(self, signal: NDArray[np.float32], dx: FloatArray, dyc: FloatArray, z: FloatArray,
                    a_s: FloatArray, b_s: FloatArray, csf: NDArray[np.bool_]) -> None:
        """Roots as T2-dark discs (the dura's signal) in the CSF; the label stays dural sac."""
        uv = self.roots_at(z)
        hit = np.zeros(signal.shape, dtype=bool)
        for k in range(uv.shape[-2]):
            hit |= (dx - uv[..., k, 0] * a_s) ** 2 + (dyc - uv[..., k, 1] * b_s) ** 2 <= ROOT_RADIUS_MM**2
        signal[hit & csf] = self.spec.tissue_signal["dura"]
