"""NIfTI volumes (image, optional label volume) turned into a DICOM MR series with the right geometry.

Pure (nibabel, pydicom, numpy; no Django). The voxel grid is kept exactly: voxel axis 2 becomes
the slice stack, axis 0 the image rows and axis 1 the image columns, so ``data[:, :, k]`` is
slice k. Geometry comes from the NIfTI affine (voxel (i, j, k) -> RAS+ mm, NIfTI-1 convention),
converted to DICOM's LPS+ patient coordinates:

    LPS = diag(-1, -1, 1) @ RAS
    ImageOrientationPatient = [unit(A_lps[:, 1]), unit(A_lps[:, 0])]   (row direction = along columns)
    PixelSpacing            = [|A[:, 0]|, |A[:, 1]|]                   (row spacing, column spacing; mm)
    ImagePositionPatient_k  = A_lps @ (0, 0, k, 1)
    SliceThickness = SpacingBetweenSlices = |A[:, 2]|

DICOM needs orthogonal row and column directions, so a sheared affine is refused. Files whose
affine is a placeholder (the 1 mm volumes in shared/data/spine-real: identity affine) take an
explicit ``orientation`` (three nibabel axis codes, e.g. "IPR": axis 0 points Inferior, axis 1
Posterior, axis 2 Right) and ``spacing_mm``, which replace the file's directions and voxel sizes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

# A .nii.gz larger than this once decompressed is refused (a decompression bomb, not a spine MRI).
MAX_NIFTI_BYTES = 1 << 30
_AXIS_CODES = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class NiftiError(ValueError):
    """The NIfTI file or the options given with it cannot make a DICOM series; the message says why."""


@dataclass(frozen=True)
class NiftiVolume:
    data: np.ndarray  # voxel array as stored (i, j, k)
    affine_ras: np.ndarray  # 4 x 4, voxel -> RAS+ mm


@dataclass(frozen=True)
class DicomSeriesFromNifti:
    """The DICOM files of one converted volume; UIDs are those written in the files (before import)."""

    files: tuple[bytes, ...]
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uids: tuple[str, ...]  # slice k = axis-2 index k
    spacing_mm: tuple[float, float, float]  # (slice, row, column)


def _decompressed(data: bytes, *, name: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                if out.tell() > MAX_NIFTI_BYTES:
                    raise NiftiError(f"{name}: decompresses to more than {MAX_NIFTI_BYTES >> 20} MiB; refused")
    except (OSError, EOFError) as exc:
        raise NiftiError(f"{name}: broken gzip stream ({exc})") from None
    return out.getvalue()


def nifti_read(data: bytes, *, name: str) -> NiftiVolume:
    """A 3-D NIfTI-1 or NIfTI-2 volume (optionally gzipped) from bytes; broken headers give NiftiError."""
    raw = _decompressed(data, name=name)
    image = None
    for kind in (nib.Nifti1Image, nib.Nifti2Image):
        try:
            image = kind.from_bytes(raw)
            break
        except Exception:  # nibabel raises many types for bad headers
            continue
    if image is None:
        raise NiftiError(f"{name}: not a readable NIfTI-1/NIfTI-2 file (bad or truncated header)")
    if len(image.shape) != 3 and not (len(image.shape) == 4 and image.shape[3] == 1):
        raise NiftiError(f"{name}: a 3-D volume is needed; this one has shape {image.shape}")
    if any(n < 1 for n in image.shape[:3]) or int(np.prod(image.shape[:3])) > MAX_NIFTI_BYTES // 2:
        raise NiftiError(f"{name}: absurd dimensions {image.shape}")
    try:
        voxels = np.asanyarray(image.dataobj)
    except Exception as exc:
        raise NiftiError(f"{name}: voxel data cannot be read ({exc}); the file is truncated or its header lies") from None
    voxels = voxels.reshape(image.shape[:3])
    affine = np.asarray(image.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or not np.all(np.isfinite(voxels)):
        raise NiftiError(f"{name}: the affine or the voxel values are not finite")
    return NiftiVolume(data=voxels, affine_ras=affine)


def affine_override(affine_ras: np.ndarray, *, orientation: str | None = None, spacing_mm: tuple[float, float, float] | None = None) -> np.ndarray:
    """The affine with its axis directions replaced by ``orientation`` (nibabel axis codes, e.g. "IPR")
    and/or its voxel sizes by ``spacing_mm``; the origin is kept."""
    affine = np.array(affine_ras, dtype=float)
    directions = affine[:3, :3] / np.where(np.linalg.norm(affine[:3, :3], axis=0) == 0, 1, np.linalg.norm(affine[:3, :3], axis=0))
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    if orientation is not None:
        codes = orientation.upper()
        anatomical_axes = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
        if len(codes) != 3 or any(c not in anatomical_axes for c in codes) or {anatomical_axes[c] for c in codes} != {0, 1, 2}:
            raise NiftiError(f"orientation {orientation!r} must be three axis codes, one each from R/L, A/P and S/I (e.g. IPR)")
        directions = np.array([_AXIS_CODES[c] for c in codes], dtype=float).T
    if spacing_mm is not None:
        if len(spacing_mm) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing_mm):
            raise NiftiError(f"spacing_mm {spacing_mm} must be three positive numbers (mm)")
        sizes = np.asarray(spacing_mm, dtype=float)
    affine[:3, :3] = directions * sizes
    return affine


def _uid(seed: bytes, role: str) -> str:
    """A UID under 2.25 from a hash: the same file and options give the same UIDs, so re-import is idempotent."""
    return f"2.25.{int.from_bytes(hashlib.sha256(seed + role.encode()).digest()[:16], 'big')}"


def _pixels(data: np.ndarray, *, name: str) -> tuple[np.ndarray, float, float, bool]:
    """Stored integers (uint16 or int16), rescale slope and intercept, signedness."""
    if np.issubdtype(data.dtype, np.integer) or np.array_equal(data, np.round(data)):
        low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
        if low >= 0 and high <= 65535:
            return data.astype(np.uint16), 1.0, 0.0, False
        if low >= -32768 and high <= 32767:
            return data.astype(np.int16), 1.0, 0.0, True
    low, high = float(data.min()), float(data.max())
    slope = (high - low) / 65535.0 if high > low else 1.0
    stored = np.round((data.astype(np.float64) - low) / slope).astype(np.uint16)
    return stored, slope, low, False


def _ds(value: float) -> str:
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


def nifti_to_dicom_series(
    volume: NiftiVolume,
    *,
    source_bytes: bytes,
    patient_id: str,
    series_description: str,
    series_number: int = 1,
    study_instance_uid: str | None = None,
) -> DicomSeriesFromNifti:
    """One MR Image Storage file per axis-2 slice, with geometry from ``volume.affine_ras`` (see module docstring)."""
    affine = _RAS_TO_LPS @ np.asarray(volume.affine_ras, dtype=float)
    columns_axis, rows_axis, slice_axis = affine[:3, 1], affine[:3, 0], affine[:3, 2]
    row_mm, col_mm, slice_mm = (float(np.linalg.norm(v)) for v in (rows_axis, columns_axis, slice_axis))
    if min(row_mm, col_mm, slice_mm) <= 0:
        raise NiftiError("the affine has a zero-length voxel axis; give spacing_mm")
    row_dir, col_dir, normal = columns_axis / col_mm, rows_axis / row_mm, slice_axis / slice_mm
    if abs(float(np.dot(row_dir, col_dir))) > 1e-4 or abs(float(np.dot(np.cross(row_dir, col_dir), normal))) < 1 - 1e-4:
        raise NiftiError("the affine is sheared (voxel axes not orthogonal); DICOM slices need orthogonal rows, columns and normal")
    stored, slope, intercept, signed = _pixels(volume.data, name="volume")
    seed = hashlib.sha256(source_bytes).digest() + json.dumps(np.round(affine, 6).tolist()).encode() + patient_id.encode()
    study_uid = study_instance_uid or _uid(seed, "study")
    series_uid, frame_uid = _uid(seed, "series"), _uid(seed, "frame")
    rows, columns, slices = stored.shape
    files: list[bytes] = []
    sop_uids: list[str] = []
    for k in range(slices):
        sop_uid = _uid(seed, f"instance-{k}")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality = "MR"
        ds.PatientID = patient_id
        ds.PatientName = patient_id
        ds.StudyDescription = "Imported from NIfTI"
        ds.SeriesDescription = series_description[:64]
        ds.SeriesNumber, ds.InstanceNumber = series_number, k + 1
        ds.DerivationDescription = "Converted from NIfTI by SpineReview"
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [_ds(v) for v in (affine @ np.array([0.0, 0.0, k, 1.0]))[:3]]
        ds.PixelSpacing = [_ds(row_mm), _ds(col_mm)]
        ds.SliceThickness = _ds(slice_mm)
        ds.SpacingBetweenSlices = _ds(slice_mm)
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1 if signed else 0
        if slope != 1.0 or intercept != 0.0:
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = _ds(slope), _ds(intercept), "US"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k]).astype(stored.dtype.newbyteorder("<")).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
        sop_uids.append(sop_uid)
    return DicomSeriesFromNifti(
        files=tuple(files),
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        sop_instance_uids=tuple(sop_uids),
        spacing_mm=(slice_mm, row_mm, col_mm),
    )


def labels_zyx(labels: NiftiVolume, image: NiftiVolume, *, name: str) -> np.ndarray:
    """The label volume as (slice, row, column) = (axis 2, axis 0, axis 1), matching the converted image."""
    if labels.data.shape != image.data.shape:
        raise NiftiError(f"{name}: label volume shape {labels.data.shape} differs from the image's {image.data.shape}")
    values = labels.data
    if not np.array_equal(values, np.round(values)) or values.min() < 0 or values.max() > 255:
        raise NiftiError(f"{name}: labels must be whole numbers 0..255")
    return np.ascontiguousarray(np.transpose(values.astype(np.uint8), (2, 0, 1)))
