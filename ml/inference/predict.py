"""`python -m ml predict`: segment one DICOM series folder and save the labels as .npz."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray

from ml.inference.api import AxisDirections, axis_directions_from_dicom, load_segmenter


@dataclass(frozen=True)
class DicomSeries:
    volume: NDArray[np.float32]
    """(z, y, x), slices ascending along the normal row cosine x column cosine."""
    spacing_mm: tuple[float, float, float]
    axis_directions: AxisDirections
    sop_instance_uids: tuple[str, ...]
    series_instance_uid: str


def read_dicom_series(folder: str | os.PathLike[str]) -> DicomSeries:
    """Read every DICOM image in `folder` (one series) into a volume sorted along the normal."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    datasets = []
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except (pydicom.errors.InvalidDicomError, OSError):
            continue
        if "PixelData" in ds:
            datasets.append(ds)
    return dicom_series_from_datasets(datasets, str(folder))


def dicom_series_from_datasets(datasets: Sequence[pydicom.Dataset], where: str) -> DicomSeries:
    """One series' image datasets (any order) -> volume sorted along the normal."""
    if not datasets:
        raise ValueError(f"no DICOM images in {where}")
    datasets = list(datasets)
    folder = where
    series = {str(ds.SeriesInstanceUID) for ds in datasets}
    if len(series) != 1:
        raise ValueError(f"{folder} holds {len(series)} series; give one series folder")
    iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    for ds in datasets:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], iop, atol=1e-4):
            raise ValueError("slices with different ImageOrientationPatient in one series")
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], normal)))
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    along = positions @ normal
    steps = np.diff(along)
    if np.any(steps < 1e-3):
        raise ValueError("two slices of the series share one position")
    # blocks of axial slices are not evenly spaced: the typical (median) step stands for all
    single = float(getattr(datasets[0], "SpacingBetweenSlices", datasets[0].SliceThickness))
    z_spacing = float(np.median(steps)) if len(steps) else single
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    if any((int(ds.Rows), int(ds.Columns)) != (rows, cols) for ds in datasets):
        raise ValueError("slices of different sizes in one series")
    volume = np.stack([_pixels(ds) for ds in datasets])
    ps = [float(v) for v in datasets[0].PixelSpacing]
    return DicomSeries(
        volume=volume,
        spacing_mm=(z_spacing, ps[0], ps[1]),
        axis_directions=axis_directions_from_dicom(iop.tolist(), positions[0], positions[-1]),
        sop_instance_uids=tuple(str(ds.SOPInstanceUID) for ds in datasets),
        series_instance_uid=next(iter(series)),
    )


def _pixels(ds: pydicom.Dataset) -> NDArray[np.float32]:
    arr = ds.pixel_array.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    result: NDArray[np.float32] = arr * slope + intercept
    return result


def predict_folder(
    model_dir: str | os.PathLike[str], dicom_folder: str | os.PathLike[str],
    out_file: str | os.PathLike[str], *, device: str = "auto",
) -> str:
    """Segment the series in `dicom_folder`; write labels (uint8 z, y, x), sop_instance_uids
    (same order), series_instance_uid, model_version and label_map (JSON) to `out_file`."""
    segmenter = load_segmenter(model_dir, device=device)
    series = read_dicom_series(dicom_folder)
    result = segmenter.segment(
        series.volume, series.spacing_mm, axis_directions=series.axis_directions
    )
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        labels=result.labels,
        sop_instance_uids=np.array(series.sop_instance_uids),
        series_instance_uid=np.array(series.series_instance_uid),
        model_version=np.array(result.model_version),
        label_map=np.array(json.dumps({str(k): v for k, v in result.label_map.items()})),
        spacing_mm=np.array(series.spacing_mm),
    )
    return result.model_version
