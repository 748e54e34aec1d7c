"""Write a rendered phantom to disk: DICOM series, ground-truth label volumes, measurements.

Layout of one case folder:

    dicom/sagittal_t2/0001.dcm ...    one folder per series, InstanceNumber order
    dicom/axial_t2/0001.dcm ...
    truth/<SeriesInstanceUID>.npz     labels (uint8 z, y, x), sop_instance_uids (same order)
    truth/measurements.json           exact ground truth from the analytic model

Everything is a function of (spec, patient_id, patient_name): the same inputs give the same
bytes, UIDs included (UIDs are hashed from them with pydicom's generate_uid).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from ml.labels import LABEL_MAP
from ml.phantom.render import SERIES_KEYS, PhantomRendering, RenderedSeries, render_phantom
from ml.phantom.spec import PhantomSpec

UID_NAMESPACE = "spinereview-phantom-v1"


@dataclass(frozen=True)
class PhantomCase:
    out_dir: Path
    spec: PhantomSpec
    patient_id: str
    study_instance_uid: str
    frame_of_reference_uid: str
    series_uids: dict[str, str]
    """Series key ("sagittal_t2", "axial_t2") -> SeriesInstanceUID."""
    sop_instance_uids: dict[str, tuple[str, ...]]
    """Series key -> SOPInstanceUIDs in volume (z) order."""
    dicom_dirs: dict[str, Path]
    truth_files: dict[str, Path]
    """Series key -> truth npz."""
    measurements_path: Path
    measurements: dict[str, Any]


def _ds(value: float) -> str:
    """Decimal String of at most 16 characters, exact for the 0.01 mm values we use."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if len(text) > 16:
        raise ValueError(f"value {value} does not fit a DICOM DS")
    return text


def _savez_deterministic(path: Path, **arrays: np.ndarray[Any, Any]) -> None:
    """np.savez_compressed, but with fixed zip timestamps so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())


def _uid(*parts: object) -> str:
    return str(generate_uid(entropy_srcs=[UID_NAMESPACE, *map(str, parts)]))


def _check_text(name: str, value: str, max_len: int) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len or "\\" in value:
        raise ValueError(
            f"{name} must be a non-empty string of at most {max_len} characters without "
            f"backslashes, got {value!r}"
        )


def _slice_dataset(
    series: RenderedSeries,
    k: int,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame_uid: str,
    study_date: str,
) -> FileDataset:
    geom = series.geometry
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "SPINEREVIEW_ML"
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = study_date
    ds.StudyTime = "090000"
    ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = f"09{series.series_number:02d}00"
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.Manufacturer = "SpineReview"
    ds.ManufacturerModelName = "Lumbar spine phantom"
    ds.InstitutionName = "Synthetic"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "MR LUMBAR SPINE (synthetic phantom)"
    ds.SeriesDescription = series.description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "LSPINE"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "SK"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = _ds(geom.slice_thickness_mm)
    if geom.spacing_between_slices_mm is not None:
        ds.SpacingBetweenSlices = _ds(geom.spacing_between_slices_mm)
    ds.RepetitionTime = "3500"
    ds.EchoTime = "100"
    ds.EchoTrainLength = 16
    ds.MagneticFieldStrength = "1.5"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds(v) for v in geom.positions_mm[k]]
    ds.ImageOrientationPatient = [_ds(v) for v in geom.orientation]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(float(np.dot(geom.positions_mm[k], geom.normal)))
    ds.ImageComments = "Synthetic phantom image; not a patient."
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = geom.rows
    ds.Columns = geom.columns
    ds.PixelSpacing = [_ds(v) for v in geom.pixel_spacing_mm]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.WindowCenter = _ds(series.window_center)
    ds.WindowWidth = _ds(series.window_width)
    ds.PixelData = np.ascontiguousarray(series.image[k], dtype="<u2").tobytes()
    return ds


def write_phantom_case(
    spec: PhantomSpec,
    out_dir: str | os.PathLike[str],
    *,
    patient_id: str,
    patient_name: str,
    rendering: PhantomRendering | None = None,
) -> PhantomCase:
    """Render `spec` (unless `rendering` is given) and write one case folder (see module doc).

    `out_dir` may exist but must not already hold `dicom/` or `truth/`.
    """
    _check_text("patient_id", patient_id, 64)
    _check_text("patient_name", patient_name, 64)
    out = Path(out_dir)
    for sub in ("dicom", "truth"):
        if (out / sub).exists():
            raise ValueError(f"{out / sub} already exists; refusing to overwrite a case")
    if rendering is None:
        rendering = render_phantom(spec)
    elif rendering.spec != spec:
        raise ValueError("rendering was made from a different spec")

    study_uid = _uid(spec.seed, patient_id, "study")
    frame_uid = _uid(spec.seed, patient_id, "frame-of-reference")
    study_date = (datetime.date(2024, 1, 1) + datetime.timedelta(days=spec.seed % 366)).strftime(
        "%Y%m%d"
    )
    series_uids: dict[str, str] = {}
    sop_uids: dict[str, tuple[str, ...]] = {}
    dicom_dirs: dict[str, Path] = {}
    truth_files: dict[str, Path] = {}
    (out / "truth").mkdir(parents=True)
    for key in SERIES_KEYS:
        series = rendering.series[key]
        series_uid = _uid(spec.seed, patient_id, "series", key)
        uids = tuple(
            _uid(spec.seed, patient_id, "instance", key, k) for k in range(len(series.image))
        )
        folder = out / "dicom" / key
        folder.mkdir(parents=True)
        for k, sop_uid in enumerate(uids):
            ds = _slice_dataset(
                series,
                k,
                patient_id=patient_id,
                patient_name=patient_name,
                study_uid=study_uid,
                series_uid=series_uid,
                sop_uid=sop_uid,
                frame_uid=frame_uid,
                study_date=study_date,
            )
            ds.save_as(folder / f"{k + 1:04d}.dcm", enforce_file_format=True)
        truth = out / "truth" / f"{series_uid}.npz"
        _savez_deterministic(truth, labels=series.labels, sop_instance_uids=np.array(uids))
        series_uids[key] = series_uid
        sop_uids[key] = uids
        dicom_dirs[key] = folder
        truth_files[key] = truth

    axial = rendering.series["axial_t2"]
    blocks: dict[str, list[str]] = {}
    for uid, level in zip(sop_uids["axial_t2"], axial.slice_levels, strict=True):
        assert level is not None
        blocks.setdefault(level, []).append(uid)
    measurements: dict[str, Any] = {
        "spec": spec.to_dict(),
        "label_map": {str(k): v for k, v in LABEL_MAP.items()},
        "series": dict(series_uids),
        "study_instance_uid": study_uid,
        "frame_of_reference_uid": frame_uid,
        **{k: v for k, v in rendering.measurements.items() if k != "label_map"},
        "axial_blocks": {
            level: {"sop_instance_uids": uids, "midplane_sop_instance_uid": uids[len(uids) // 2]}
            for level, uids in blocks.items()
        },
        "mid_sagittal_sop_instance_uid": sop_uids["sagittal_t2"][len(sop_uids["sagittal_t2"]) // 2],
    }
    measurements_path = out / "truth" / "measurements.json"
    measurements_path.write_text(json.dumps(measurements, indent=2, sort_keys=True) + "\n")
    return PhantomCase(
        out_dir=out,
        spec=spec,
        patient_id=patient_id,
        study_instance_uid=study_uid,
        frame_of_reference_uid=frame_uid,
        series_uids=series_uids,
        sop_instance_uids=sop_uids,
        dicom_dirs=dicom_dirs,
        truth_files=truth_files,
        measurements_path=measurements_path,
        measurements=measurements,
    )
