"""What one synthetic patient looks like: the chosen anatomy, signal and acquisition.

Every length is in millimetres, every area in mm². A spec is plain data: the analytic model
(`ml.phantom.anatomy`) turns it into geometry, the renderer into images and label volumes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.labels import LEVELS, SIDES, VERTEBRAE

TISSUES = (
    "fat",
    "soft_tissue",
    "muscle",
    "bone_marrow",
    "cortical_bone",
    "posterior_elements",
    "nucleus",
    "annulus",
    "epidural_fat",
    "csf",
    "dura",
)
"""Tissues with a T2 signal of their own (arbitrary units before the global scale)."""

DEFAULT_TISSUE_SIGNAL: dict[str, float] = {
    "fat": 900.0,
    "soft_tissue": 330.0,
    "muscle": 240.0,
    "bone_marrow": 470.0,
    "cortical_bone": 90.0,
    "posterior_elements": 300.0,
    "nucleus": 950.0,
    "annulus": 260.0,
    "epidural_fat": 720.0,
    "csf": 1400.0,
    "dura": 330.0,
}

MAX_SAC_TO_CANAL_AREA = 0.85
"""The dural sac must leave epidural space: DSCA <= 0.85 x canal cross-sectional area."""


def _levels_dict(name: str, value: Any, low: float, high: float) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict keyed by level, got {type(value).__name__}")
    unknown = sorted(set(value) - set(LEVELS))
    if unknown:
        raise ValueError(
            f"{name}: unknown level {unknown[0]!r}; valid levels: {', '.join(LEVELS)}"
        )
    missing = [lv for lv in LEVELS if lv not in value]
    if missing:
        raise ValueError(f"{name}: missing level(s) {', '.join(missing)}")
    out: dict[str, float] = {}
    for level in LEVELS:
        v = float(value[level])
        if not math.isfinite(v) or not low <= v <= high:
            raise ValueError(f"{name}[{level!r}] = {v} is outside [{low}, {high}]")
        out[level] = v
    return out


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} = {value} is outside [{low}, {high}]")


@dataclass(frozen=True)
class PhantomSpec:
    """One synthetic patient. Per-level values are at the disc mid-plane of that level.

    Disc heights are measured along patient z in the mid-sagittal plane, at 10 % of the disc's
    antero-posterior depth inside its anterior and posterior edges (anterior, posterior) and at
    its centre (middle); between these the disc surface is the quadratic through the three.
    """

    seed: int
    dsca_mm2_by_level: dict[str, float] = field(hash=False)
    canal_ap_mm_by_level: dict[str, float] = field(hash=False)
    canal_width_mm_by_level: dict[str, float] = field(hash=False)
    disc_height_anterior_mm_by_level: dict[str, float] = field(hash=False)
    disc_height_middle_mm_by_level: dict[str, float] = field(hash=False)
    disc_height_posterior_mm_by_level: dict[str, float] = field(hash=False)
    fat_fraction_by_side: dict[str, float] = field(hash=False)
    body_height_mm_by_vertebra: dict[str, float] = field(
        hash=False, default_factory=lambda: {v: 26.0 for v in VERTEBRAE} | {"S1": 32.0}
    )
    disc_signal_by_level: dict[str, float] = field(
        hash=False, default_factory=lambda: dict.fromkeys(LEVELS, 1.0)
    )
    """Nucleus signal relative to a healthy disc (1.0); degenerate discs are darker."""
    sedimentation_sign_by_level: dict[str, bool] = field(
        hash=False, default_factory=lambda: dict.fromkeys(LEVELS, False)
    )
    """Nerve root sedimentation sign at the disc mid-plane (Barz et al., Spine 2010;35:892-7):
    False (negative, normal) = the cauda equina roots lie dorsally in the sac, sunk by gravity in
    the supine patient; True (positive) = they float, spread through the sac and its ventral half."""
    nerve_roots: int = 12
    """Cauda equina roots drawn in the dural sac (T2-dark dots in the CSF); 0 draws none. They
    change the image only: the sac's label, area and every measured value stay the same."""
    body_width_mm: float = 42.0
    body_depth_mm: float = 31.0
    muscle_scale: float = 1.0
    subcutaneous_fat_mm: float = 15.0
    spine_origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Patient (x, y, z): x, y of the vertebral-body axis, z of the L5-S1 disc mid-plane."""
    tissue_signal: dict[str, float] = field(
        hash=False, default_factory=lambda: dict(DEFAULT_TISSUE_SIGNAL)
    )
    signal_scale: float = 1.0
    noise_fraction: float = 0.03
    """Rician noise sigma as a fraction of the CSF signal."""
    bias_amplitude: float = 0.15
    """Size of the smooth multiplicative bias field (log scale)."""
    # acquisition
    sagittal_matrix: int = 256
    sagittal_pixel_mm: float = 0.9375
    sagittal_slices: int = 15
    sagittal_thickness_mm: float = 3.5
    sagittal_spacing_mm: float = 4.0
    axial_matrix: int = 256
    axial_pixel_mm: float = 0.78125
    axial_slices_per_level: int = 5
    axial_thickness_mm: float = 3.5
    axial_spacing_mm: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        set_ = object.__setattr__
        dsca = _levels_dict("dsca_mm2_by_level", self.dsca_mm2_by_level, 20.0, 400.0)
        ap = _levels_dict("canal_ap_mm_by_level", self.canal_ap_mm_by_level, 5.0, 30.0)
        width = _levels_dict("canal_width_mm_by_level", self.canal_width_mm_by_level, 8.0, 40.0)
        for level in LEVELS:
            canal_area = math.pi * ap[level] * width[level] / 4.0
            if dsca[level] > MAX_SAC_TO_CANAL_AREA * canal_area:
                raise ValueError(
                    f"dsca_mm2_by_level[{level!r}] = {dsca[level]} does not fit the canal "
                    f"({ap[level]} x {width[level]} mm, area {canal_area:.1f} mm²): it must be "
                    f"at most {MAX_SAC_TO_CANAL_AREA} x the canal area"
                )
        set_(self, "dsca_mm2_by_level", dsca)
        set_(self, "canal_ap_mm_by_level", ap)
        set_(self, "canal_width_mm_by_level", width)
        for part in ("anterior", "middle", "posterior"):
            name = f"disc_height_{part}_mm_by_level"
            set_(self, name, _levels_dict(name, getattr(self, name), 2.0, 25.0))
        set_(self, "disc_signal_by_level",
             _levels_dict("disc_signal_by_level", self.disc_signal_by_level, 0.1, 1.5))

        sign = self.sedimentation_sign_by_level
        if not isinstance(sign, dict) or set(sign) != set(LEVELS) or not all(
            isinstance(v, bool) for v in sign.values()
        ):
            raise ValueError(
                f"sedimentation_sign_by_level must map each of {', '.join(LEVELS)} to true or false"
            )
        set_(self, "sedimentation_sign_by_level", {lv: sign[lv] for lv in LEVELS})
        roots = self.nerve_roots
        if not isinstance(roots, int) or isinstance(roots, bool) or not 0 <= roots <= 40:
            raise ValueError(f"nerve_roots must be an int in [0, 40], got {roots!r}")

        fat = self.fat_fraction_by_side
        if not isinstance(fat, dict) or set(fat) != set(SIDES):
            raise ValueError(
                f"fat_fraction_by_side must have exactly the keys {SIDES}, got {fat!r}"
            )
        for side in SIDES:
            _check_range(f"fat_fraction_by_side[{side!r}]", float(fat[side]), 0.0, 0.95)
        set_(self, "fat_fraction_by_side", {s: float(fat[s]) for s in SIDES})

        heights = self.body_height_mm_by_vertebra
        if not isinstance(heights, dict) or set(heights) != set(VERTEBRAE):
            raise ValueError(
                f"body_height_mm_by_vertebra must have exactly the keys {VERTEBRAE}"
            )
        for v in VERTEBRAE:
            _check_range(f"body_height_mm_by_vertebra[{v!r}]", float(heights[v]), 10.0, 50.0)
        set_(self, "body_height_mm_by_vertebra", {v: float(heights[v]) for v in VERTEBRAE})

        signal = self.tissue_signal
        if not isinstance(signal, dict) or set(signal) != set(TISSUES):
            raise ValueError(f"tissue_signal must have exactly the keys {TISSUES}")
        for t in TISSUES:
            _check_range(f"tissue_signal[{t!r}]", float(signal[t]), 0.0, 4000.0)
        set_(self, "tissue_signal", {t: float(signal[t]) for t in TISSUES})

        _check_range("body_width_mm", self.body_width_mm, 25.0, 70.0)
        _check_range("body_depth_mm", self.body_depth_mm, 20.0, 50.0)
        _check_range("muscle_scale", self.muscle_scale, 0.5, 1.6)
        _check_range("subcutaneous_fat_mm", self.subcutaneous_fat_mm, 2.0, 40.0)
        _check_range("signal_scale", self.signal_scale, 0.05, 10.0)
        _check_range("noise_fraction", self.noise_fraction, 0.0, 0.3)
        _check_range("bias_amplitude", self.bias_amplitude, 0.0, 0.6)
        origin = tuple(float(v) for v in self.spine_origin_mm)
        if len(origin) != 3 or not all(math.isfinite(v) and abs(v) < 1000 for v in origin):
            raise ValueError(f"spine_origin_mm must be 3 finite numbers, got {origin!r}")
        set_(self, "spine_origin_mm", origin)
        for name in ("sagittal_matrix", "axial_matrix"):
            n = getattr(self, name)
            if not isinstance(n, int) or not 32 <= n <= 1024:
                raise ValueError(f"{name} must be an int in [32, 1024], got {n!r}")
        for name in ("sagittal_slices", "axial_slices_per_level"):
            n = getattr(self, name)
            if not isinstance(n, int) or not 1 <= n <= 64 or n % 2 == 0:
                raise ValueError(
                    f"{name} must be an odd int in [1, 63] (a slice on the centre plane), "
                    f"got {n!r}"
                )
        for name in ("sagittal_pixel_mm", "axial_pixel_mm"):
            _check_range(name, getattr(self, name), 0.2, 4.0)
        for prefix in ("sagittal", "axial"):
            thick = getattr(self, f"{prefix}_thickness_mm")
            spacing = getattr(self, f"{prefix}_spacing_mm")
            _check_range(f"{prefix}_thickness_mm", thick, 0.5, 10.0)
            _check_range(f"{prefix}_spacing_mm", spacing, thick, 15.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["spine_origin_mm"] = list(self.spine_origin_mm)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhantomSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown PhantomSpec field(s): {', '.join(unknown)}")
        kwargs = dict(data)
        if "spine_origin_mm" in kwargs:
            kwargs["spine_origin_mm"] = tuple(kwargs["spine_origin_mm"])
        return cls(**kwargs)


def _r2(v: float) -> float:
    """Round to 0.01 mm so that values print exactly in JSON and DICOM."""
    return round(float(v), 2)


SEDIMENTATION_SIGN_PROBABILITY = ((75.0, 0.85), (100.0, 0.45), (math.inf, 0.1))
"""P(sign positive) for DSCA below each bound: the sign goes with stenosis (Barz et al. found it
in 94 % of patients with stenosis and in none of the controls), with a floor of exceptions."""


def sedimentation_signs_random(seed: int, dsca_mm2_by_level: dict[str, float]) -> dict[str, bool]:
    """The sedimentation sign per level for a random patient, from its own random stream (so the
    other draws of a seed stay what they were before roots were drawn)."""
    rng = np.random.default_rng([0x5ED1, seed])
    out = {}
    for level in LEVELS:
        p = next(p for bound, p in SEDIMENTATION_SIGN_PROBABILITY if dsca_mm2_by_level[level] < bound)
        out[level] = bool(rng.random() < p)
    return out


def phantom_spec_random(seed: int) -> PhantomSpec:
    """A realistic random patient: one severely stenotic level (DSCA < 75 mm²), one
    moderately stenotic (75-100 mm²), the others normal (100-180 mm²)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng([0x5E1E, seed])
    # stenosis is most common at L4-L5, then L3-L4, L5-S1
    order = rng.choice(len(LEVELS), size=2, replace=False, p=[0.08, 0.14, 0.26, 0.34, 0.18])
    dsca: dict[str, float] = {}
    for i, level in enumerate(LEVELS):
        if i == order[0]:
            dsca[level] = _r2(rng.uniform(50.0, 74.0))
        elif i == order[1]:
            dsca[level] = _r2(rng.uniform(76.0, 99.0))
        else:
            dsca[level] = _r2(rng.uniform(105.0, 180.0))
    ap: dict[str, float] = {}
    width: dict[str, float] = {}
    for level in LEVELS:
        ratio = rng.uniform(0.55, 0.75)  # sac / canal area
        aspect = rng.uniform(1.3, 1.7)  # canal width / AP
        canal_area = dsca[level] / ratio
        ap_mm = 2.0 * math.sqrt(canal_area / (math.pi * aspect))
        ap[level] = _r2(ap_mm)
        width[level] = _r2(ap_mm * aspect)
    signal = {lv: _r2(rng.uniform(0.35, 1.1)) for lv in LEVELS}
    middle = {lv: _r2(rng.uniform(7.5, 12.0) * (0.75 + 0.25 * signal[lv])) for lv in LEVELS}
    anterior = {lv: _r2(middle[lv] * rng.uniform(0.95, 1.25)) for lv in LEVELS}
    posterior = {lv: _r2(middle[lv] * rng.uniform(0.6, 0.85)) for lv in LEVELS}
    fat = {s: _r2(rng.uniform(0.02, 0.45)) for s in SIDES}
    heights = {v: _r2(rng.uniform(24.0, 29.0)) for v in VERTEBRAE}
    heights["S1"] = _r2(rng.uniform(28.0, 36.0))
    tissue = {t: _r2(s * rng.uniform(0.85, 1.15)) for t, s in DEFAULT_TISSUE_SIGNAL.items()}
    return PhantomSpec(
        sedimentation_sign_by_level=sedimentation_signs_random(seed, dsca),
        seed=seed,
        dsca_mm2_by_level=dsca,
        canal_ap_mm_by_level=ap,
        canal_width_mm_by_level=width,
        disc_height_anterior_mm_by_level=anterior,
        disc_height_middle_mm_by_level=middle,
        disc_height_posterior_mm_by_level=posterior,
        fat_fraction_by_side=fat,
        body_height_mm_by_vertebra=heights,
        disc_signal_by_level=signal,
        body_width_mm=_r2(rng.uniform(38.0, 48.0)),
        body_depth_mm=_r2(rng.uniform(28.0, 35.0)),
        muscle_scale=_r2(rng.uniform(0.8, 1.2)),
        subcutaneous_fat_mm=_r2(rng.uniform(6.0, 30.0)),
        spine_origin_mm=(
            _r2(rng.uniform(-8.0, 8.0)),
            _r2(rng.uniform(-30.0, 10.0)),
            _r2(rng.uniform(-160.0, -60.0)),
        ),
        tissue_signal=tissue,
        signal_scale=_r2(rng.uniform(0.6, 1.8)),
        noise_fraction=_r2(rng.uniform(0.015, 0.05)),
        bias_amplitude=_r2(rng.uniform(0.05, 0.25)),
    )
