"""Render a PhantomSpec into MR-like T2 series and label volumes, in memory.

Geometry convention (the one every part of SpineReview relies on): pixel (row r, column c) of
slice k lies at patient position

    IPP_k + c * PixelSpacing[1] * rowcos + r * PixelSpacing[0] * colcos

with ImageOrientationPatient = rowcos + colcos. Volumes are (z, y, x) = (slice, row, column),
slices sorted ascending along the slice normal n = rowcos x colcos; InstanceNumber follows the
same order.

Images: per-tissue T2 signal averaged over three planes across the slice thickness (partial
volume through the slice) and blurred by a half-pixel Gaussian point spread in plane, times a
smooth multiplicative bias field, with Rician noise. Labels: the analytic shape containing each
voxel centre (no partial volume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

from ml.labels import LABEL_MAP, LEVELS
from ml.phantom.anatomy import Anatomy
from ml.phantom.spec import PhantomSpec

SAGITTAL = "sagittal_t2"
AXIAL = "axial_t2"
SERIES_KEYS = (SAGITTAL, AXIAL)

SAGITTAL_ORIENTATION = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
AXIAL_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
THICKNESS_SAMPLES = (-1.0 / 3.0, 0.0, 1.0 / 3.0)
"""Sub-planes across the slice thickness, as fractions of it, averaged for partial volume."""


@dataclass(frozen=True)
class SeriesGeometry:
    """Where the voxels of one series lie in patient coordinates (LPS, mm)."""

    orientation: tuple[float, float, float, float, float, float]
    positions_mm: NDArray[np.float64]
    """(slices, 3) ImagePositionPatient of each slice, in volume order."""
    pixel_spacing_mm: tuple[float, float]
    """(row spacing, column spacing) = DICOM PixelSpacing."""
    rows: int
    columns: int
    slice_thickness_mm: float
    spacing_between_slices_mm: float | None
    """Set for a contiguous stack; None for the axial series made of separate blocks."""
    nominal_slice_spacing_mm: float

    @property
    def row_cosine(self) -> NDArray[np.float64]:
        return np.array(self.orientation[:3])

    @property
    def column_cosine(self) -> NDArray[np.float64]:
        return np.array(self.orientation[3:])

    @property
    def normal(self) -> NDArray[np.float64]:
        return np.cross(self.row_cosine, self.column_cosine)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """(z, y, x) spacing as the segmentation API takes it."""
        return (
            self.nominal_slice_spacing_mm,
            self.pixel_spacing_mm[0],
            self.pixel_spacing_mm[1],
        )

    def pixel_centres(self, k: int, offset_mm: float = 0.0) -> tuple[NDArray[np.float64], ...]:
        """Patient x, y, z of slice k's pixel centres, moved offset_mm along the normal.

        Each coordinate comes back in the smallest shape that broadcasts to (rows, columns):
        (1, 1) when constant over the slice, (rows, 1) or (1, columns) when it varies along
        one image axis only.
        """
        r = np.arange(self.rows, dtype=np.float64)[:, None]
        c = np.arange(self.columns, dtype=np.float64)[None, :]
        rc, cc, n = self.row_cosine, self.column_cosine, self.normal
        p0 = self.positions_mm[k] + offset_mm * n
        dr, dc = self.pixel_spacing_mm
        out = []
        for a in range(3):
            v = np.full((1, 1), p0[a])
            if rc[a] != 0.0:
                v = v + c * dc * rc[a]
            if cc[a] != 0.0:
                v = v + r * dr * cc[a]
            out.append(v)
        return tuple(out)


@dataclass(frozen=True)
class RenderedSeries:
    key: str
    description: str
    series_number: int
    image: NDArray[np.uint16]
    """(z, y, x) MR signal, MONOCHROME2."""
    labels: NDArray[np.uint8]
    """(z, y, x) ground-truth labels (ml.labels.LABEL_MAP)."""
    geometry: SeriesGeometry
    slice_levels: tuple[str | None, ...]
    """Per slice, the disc level whose axial block holds it (None for sagittal slices)."""
    window_center: float
    window_width: float


@dataclass(frozen=True)
class PhantomRendering:
    spec: PhantomSpec
    series: dict[str, RenderedSeries]
    measurements: dict[str, Any]
    """Exact ground truth (see measurements_from_anatomy)."""


def _bias(spec: PhantomSpec, x: NDArray[np.float64], y: NDArray[np.float64],
          z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Smooth multiplicative field over the patient, the same for both series (a coil
    sensitivity): exp of a random quadratic in normalised coordinates."""
    rng = np.random.default_rng([0xB1A5, spec.seed])
    c = rng.normal(0.0, 1.0, size=9) * spec.bias_amplitude
    x0, y0, z0 = spec.spine_origin_mm
    u, v, w = (x - x0) / 120.0, (y - y0 - 60.0) / 120.0, (z - z0 - 90.0) / 150.0
    poly = (c[0] * u + c[1] * v + c[2] * w + c[3] * u * u + c[4] * v * v + c[5] * w * w
            + c[6] * u * v + c[7] * v * w + c[8] * u * w)
    result: NDArray[np.float64] = np.exp(0.5 * poly)
    return result


def _render_series(
    anatomy: Anatomy, geometry: SeriesGeometry, noise_key: int
) -> tuple[NDArray[np.uint16], NDArray[np.uint8], float, float]:
    spec = anatomy.spec
    nz = len(geometry.positions_mm)
    image = np.zeros((nz, geometry.rows, geometry.columns), dtype=np.float32)
    labels = np.zeros((nz, geometry.rows, geometry.columns), dtype=np.uint8)
    for k in range(nz):
        acc = np.zeros((geometry.rows, geometry.columns), dtype=np.float32)
        for frac in THICKNESS_SAMPLES:
            x, y, z = geometry.pixel_centres(k, frac * geometry.slice_thickness_mm)
            lab, sig = anatomy.classify(x, y, z, with_signal=True)
            assert sig is not None
            acc += sig
            if frac == 0.0:
                labels[k] = lab
                bias = np.broadcast_to(_bias(spec, x, y, z), acc.shape)
        acc /= len(THICKNESS_SAMPLES)
        image[k] = gaussian_filter(acc, sigma=0.5, mode="nearest") * bias
    sigma = spec.noise_fraction * spec.tissue_signal["csf"]
    rng = np.random.default_rng([0x7015E, spec.seed, noise_key])
    n1 = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    noisy = np.sqrt((image + n1) ** 2 + n2**2) * spec.signal_scale
    out = np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
    lo, hi = np.percentile(out, [1.0, 99.5])
    return out, labels, float(round((lo + hi) / 2)), float(max(round(hi - lo), 1))


def sagittal_geometry(spec: PhantomSpec, anatomy: Anatomy) -> SeriesGeometry:
    n, ps = spec.sagittal_matrix, spec.sagittal_pixel_mm
    rowcos = np.array(SAGITTAL_ORIENTATION[:3])
    colcos = np.array(SAGITTAL_ORIENTATION[3:])
    normal = np.cross(rowcos, colcos)
    # column n/2 on y = spine axis + 25 mm, row n/2 at the middle of T12-L1 ... S1
    centre = np.array([
        anatomy.x0,
        anatomy.y0 + 25.0,
        (anatomy.z_top_disc + anatomy.s1_bottom_z) / 2,
    ])
    corner = centre - (n // 2) * ps * rowcos - (n // 2) * ps * colcos
    half = spec.sagittal_slices // 2
    positions = np.array([
        corner + (k - half) * spec.sagittal_spacing_mm * normal
        for k in range(spec.sagittal_slices)
    ])
    return SeriesGeometry(
        orientation=SAGITTAL_ORIENTATION,
        positions_mm=positions,
        pixel_spacing_mm=(ps, ps),
        rows=n,
        columns=n,
        slice_thickness_mm=spec.sagittal_thickness_mm,
        spacing_between_slices_mm=spec.sagittal_spacing_mm,
        nominal_slice_spacing_mm=spec.sagittal_spacing_mm,
    )


def axial_geometry(spec: PhantomSpec, anatomy: Anatomy) -> tuple[SeriesGeometry, tuple[str, ...]]:
    n, ps = spec.axial_matrix, spec.axial_pixel_mm
    rowcos = np.array(AXIAL_ORIENTATION[:3])
    colcos = np.array(AXIAL_ORIENTATION[3:])
    normal = np.cross(rowcos, colcos)
    half = spec.axial_slices_per_level // 2
    slices: list[tuple[float, str]] = []
    for level in LEVELS:
        z_mid = anatomy.disc(level).z_mid_mm
        slices += [
            (z_mid + (k - half) * spec.axial_spacing_mm, level)
            for k in range(spec.axial_slices_per_level)
        ]
    slices.sort()  # ascending along the normal (+z): inferior to superior
    # column n/2 on the spine axis (x), row n/2 28 mm behind it
    corner_xy = np.array([anatomy.x0, anatomy.y0 + 28.0, 0.0]) - (n // 2) * ps * (rowcos + colcos)
    positions = np.array([corner_xy + z * normal for z, _ in slices])
    geometry = SeriesGeometry(
        orientation=AXIAL_ORIENTATION,
        positions_mm=positions,
        pixel_spacing_mm=(ps, ps),
        rows=n,
        columns=n,
        slice_thickness_mm=spec.axial_thickness_mm,
        spacing_between_slices_mm=None,
        nominal_slice_spacing_mm=spec.axial_spacing_mm,
    )
    return geometry, tuple(level for _, level in slices)


def measurements_from_anatomy(anatomy: Anatomy) -> dict[str, Any]:
    spec = anatomy.spec
    return {
        "coordinate_system": "DICOM patient (LPS), millimetres",
        "label_map": {str(k): v for k, v in LABEL_MAP.items()},
        "levels": anatomy.measurements(),
        "fat_fraction": dict(spec.fat_fraction_by_side),
        "spine_axis_x_mm": anatomy.x0,
        "spine_axis_y_mm": anatomy.y0,
        "notes": (
            "Exact values from the analytic model. dsca_mm2: dural sac area in the axial plane "
            "of the disc mid-plane. canal_ap_mm: antero-posterior (patient y) diameter of the "
            "canal (labels 3 and 4) in that plane, on the spine axis. Disc heights: along "
            "patient z in the mid-sagittal plane x = spine_axis_x_mm, at the y positions "
            "given. The T12-L1 disc and T12 body are drawn but not measured levels: count "
            "discs from the sacrum upwards. fat_fraction: fat signal fraction of the "
            "paraspinal muscle (multifidus and erector spinae) per side."
        ),
    }


def render_phantom(spec: PhantomSpec) -> PhantomRendering:
    """Render both series of one synthetic patient, in memory (no files, no UIDs)."""
    anatomy = Anatomy(spec)
    sag_geom = sagittal_geometry(spec, anatomy)
    ax_geom, ax_levels = axial_geometry(spec, anatomy)
    series: dict[str, RenderedSeries] = {}
    for key, geom, levels, description, number, noise_key in (
        (SAGITTAL, sag_geom, (None,) * len(sag_geom.positions_mm), "SAG T2 TSE", 2, 1),
        (AXIAL, ax_geom, ax_levels, "AX T2 TSE", 3, 2),
    ):
        image, labels, wc, ww = _render_series(anatomy, geom, noise_key)
        series[key] = RenderedSeries(
            key=key,
            description=description,
            series_number=number,
            image=image,
            labels=labels,
            geometry=geom,
            slice_levels=tuple(levels),
            window_center=wc,
            window_width=ww,
        )
    return PhantomRendering(spec=spec, series=series, measurements=measurements_from_anatomy(anatomy))
