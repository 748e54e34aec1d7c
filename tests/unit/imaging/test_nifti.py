"""NIfTI -> DICOM MR series: geometry from the affine, overrides, and broken input (no database)."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pydicom
import pytest

from spinereview.imaging import nifti
from spinereview.imaging.nifti import NiftiError, NiftiVolume, affine_override, labels_zyx, nifti_read, nifti_to_dicom_series


def _nifti_bytes(data: np.ndarray, affine: np.ndarray, *, gz: bool = False) -> bytes:
    raw = nib.Nifti1Image(data, affine).to_bytes()
    return gzip.compress(raw) if gz else raw


def _datasets(data: np.ndarray, affine: np.ndarray) -> list[pydicom.Dataset]:
    volume = nifti_read(_nifti_bytes(data, affine, gz=True), name="v.nii.gz")
    series = nifti_to_dicom_series(volume, source_bytes=b"x", patient_id="P1", series_description="T2")
    return [pydicom.dcmread(io.BytesIO(f)) for f in series.files]


def test_geometry_follows_the_affine_in_lps() -> None:
    # axis 0 -> 0.5 mm towards Inferior, axis 1 -> 0.75 mm Posterior, axis 2 -> 3 mm Right; origin (10, 20, 30) RAS.
    affine = np.array([[0, 0, 3, 10], [0, -0.75, 0, 20], [-0.5, 0, 0, 30], [0, 0, 0, 1]], dtype=float)
    data = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3)
    slices = _datasets(data, affine)
    assert len(slices) == 3
    first, last = slices[0], slices[2]
    assert [float(v) for v in first.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]  # rows go P (LPS +y), columns go I
    assert [float(v) for v in first.PixelSpacing] == [0.5, 0.75]
    assert float(first.SliceThickness) == 3.0
    assert [float(v) for v in first.ImagePositionPatient] == [-10, -20, 30]
    assert [float(v) for v in last.ImagePositionPatient] == [-16, -20, 30]  # 2 slices x 3 mm towards Right = LPS -x
    assert (first.Rows, first.Columns) == (4, 5)
    assert np.array_equal(last.pixel_array, data[:, :, 2])
    assert {s.StudyInstanceUID for s in slices} == {slices[0].StudyInstanceUID}
    assert len({s.SOPInstanceUID for s in slices}) == 3


def test_same_file_gives_the_same_uids() -> None:
    volume = nifti_read(_nifti_bytes(np.zeros((2, 2, 2), np.uint8), np.eye(4)), name="v.nii")
    a = nifti_to_dicom_series(volume, source_bytes=b"same", patient_id="P", series_description="d")
    b = nifti_to_dicom_series(volume, source_bytes=b"same", patient_id="P", series_description="d")
    c = nifti_to_dicom_series(volume, source_bytes=b"other", patient_id="P", series_description="d")
    assert a.sop_instance_uids == b.sop_instance_uids != c.sop_instance_uids


def test_orientation_and_spacing_override_replace_a_placeholder_affine() -> None:
    affine = affine_override(np.eye(4), orientation="IPR", spacing_mm=(1.0, 1.0, 1.0))
    assert affine.tolist() == [[0, 0, 1, 0], [0, -1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]]  # the manifest's suggested affine
    assert affine_override(np.diag([2.0, 2.0, 2.0, 1.0]), spacing_mm=(1.0, 0.5, 4.0)).tolist() == np.diag([1.0, 0.5, 4.0, 1.0]).tolist()
    with pytest.raises(NiftiError, match="one each from R/L, A/P and S/I"):
        affine_override(np.eye(4), orientation="IIR")
    with pytest.raises(NiftiError, match="three positive numbers"):
        affine_override(np.eye(4), spacing_mm=(1.0, 0.0, 1.0))


def test_float_volumes_are_rescaled_and_signed_integers_kept() -> None:
    data = np.linspace(-1.5, 2.5, 8, dtype=np.float32).reshape(2, 2, 2)
    (s0, _) = _datasets(data, np.eye(4))
    restored = s0.pixel_array * float(s0.RescaleSlope) + float(s0.RescaleIntercept)
    assert np.allclose(restored, data[:, :, 0], atol=5e-5)
    (i0, _) = _datasets(np.array([[[-5, 7], [0, 1]], [[2, 3], [4, -32768]]], dtype=np.int16), np.eye(4))
    assert i0.PixelRepresentation == 1
    assert i0.pixel_array.tolist() == [[-5, 0], [2, 4]]


def test_labels_are_reordered_to_slice_row_column() -> None:
    image = NiftiVolume(data=np.zeros((2, 3, 4)), affine_ras=np.eye(4))
    labels = NiftiVolume(data=np.arange(24).reshape(2, 3, 4) % 7, affine_ras=np.eye(4))
    zyx = labels_zyx(labels, image, name="l")
    assert zyx.shape == (4, 2, 3)
    assert zyx[1].tolist() == (labels.data[:, :, 1]).tolist()
    with pytest.raises(NiftiError, match=r"label volume shape \(2, 3, 5\) differs from the image's \(2, 3, 4\)"):
        labels_zyx(NiftiVolume(data=np.zeros((2, 3, 5)), affine_ras=np.eye(4)), image, name="l")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a readable NIfTI"),
        (b"\x00" * 400, "not a readable NIfTI"),
        (b"\x1f\x8b\x08\x00garbage", "broken gzip stream"),
    ],
)
def test_broken_files_are_named(data: bytes, message: str) -> None:
    with pytest.raises(NiftiError, match=message):
        nifti_read(data, name="bad.nii.gz")


def test_truncated_voxels_4d_sheared_and_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    good = _nifti_bytes(np.ones((8, 8, 8), np.uint16), np.eye(4))
    with pytest.raises(NiftiError, match="voxel data cannot be read"):
        nifti_read(good[:-100], name="cut.nii")
    with pytest.raises(NiftiError, match="a 3-D volume is needed"):
        nifti_read(_nifti_bytes(np.ones((2, 2, 2, 3), np.uint8), np.eye(4)), name="4d.nii")
    sheared = np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    with pytest.raises(NiftiError, match="sheared"):
        nifti_to_dicom_series(NiftiVolume(np.ones((2, 2, 2), np.uint8), sheared), source_bytes=b"", patient_id="P", series_description="d")
    monkeypatch.setattr(nifti, "MAX_NIFTI_BYTES", 1000)
    with pytest.raises(NiftiError, match="decompresses to more than"):
        nifti_read(gzip.compress(good), name="bomb.nii.gz")
