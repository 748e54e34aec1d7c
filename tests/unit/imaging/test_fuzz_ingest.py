"""Fuzzing the ingest path: over 1,000 generated malformed inputs, each refused with a clear error or
accepted whole, never an unexpected exception (which the API would turn into a 500).

Deterministic (derandomize=True) so CI sees the same cases every run.
"""

from __future__ import annotations

import gzip
import io
import zipfile

import nibabel as nib
import numpy as np
import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinereview.imaging.nifti import NiftiError, nifti_read
from spinereview.imaging.services import ImportRejectedError, ImportSource, parse_sources, sources_from_zip
from tests.dicom_files import mr_slice


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# Examples per fuzzer (several feed two inputs each): 200 + 300 + 200 + 2 x 150 + 2 x 100 + 100 + 150 = 1,450 inputs.
VALID = mr_slice(rows=8, columns=6)


def _ingest(data: bytes, name: str = "fuzz.dcm") -> None:
    """parse_sources must either accept the file or refuse it with a per-file reason."""
    refused: ImportRejectedError | None = None
    try:
        (parsed,) = parse_sources([ImportSource(name, data)])
    except ImportRejectedError as exc:
        refused = exc
    if refused is not None:
        (error,) = refused.extra["errors"]
        assert error["file"] == name and error["error"].strip(), refused.extra
        return
    rows, columns = int(parsed.dataset.Rows), int(parsed.dataset.Columns)
    assert parsed.dataset.pixel_array.shape[-2:] == (rows, columns)


@fuzz(200)
@given(st.integers(min_value=0, max_value=len(VALID) - 1))
def test_truncated_files(length: int) -> None:
    _ingest(VALID[:length])


@fuzz(300)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(VALID) - 1), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8))
def test_corrupted_bytes(edits: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for position, value in edits:
        data[position] = value
    _ingest(bytes(data))


@fuzz(200)
@given(
    st.integers(min_value=0, max_value=65535),
    st.integers(min_value=0, max_value=65535),
    st.sampled_from([1, 8, 12, 16, 32, 64]),
    st.one_of(st.none(), st.integers(min_value=-5, max_value=100000)),
    st.integers(min_value=0, max_value=200),
)
def test_dimensions_that_disagree_with_the_pixel_data(rows: int, columns: int, bits: int, frames: int | None, pixel_bytes: int) -> None:
    ds = pydicom.dcmread(io.BytesIO(VALID))
    ds.Rows, ds.Columns, ds.BitsAllocated = rows, columns, bits
    ds.BitsStored, ds.HighBit = min(bits, 16), min(bits, 16) - 1
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = bytes(pixel_bytes)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    _ingest(buffer.getvalue())


@fuzz(150)
@given(st.sampled_from(["Rows", "Columns", "SOPInstanceUID", "StudyInstanceUID", "ImagePositionPatient", "PixelSpacing", "Modality"]), st.sampled_from(["LO", "OB", "SQ", "US", "DS", "UI", "FD"]), st.binary(max_size=24))
def test_wrong_value_representations(keyword: str, vr: str, raw: bytes) -> None:
    ds = pydicom.dcmread(io.BytesIO(VALID))
    tag = ds.data_element(keyword).tag  # type: ignore[union-attr]
    del ds[tag]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    # Append the element by hand with the wrong VR (explicit VR little endian), keeping tag order valid enough to parse.
    header = tag.group.to_bytes(2, "little") + tag.element.to_bytes(2, "little") + vr.encode()
    padded = raw + b"\x00" * (len(raw) % 2)
    element = header + (b"\x00\x00" + len(padded).to_bytes(4, "little") if vr in ("OB", "SQ") else len(padded).to_bytes(2, "little")) + padded
    data = buffer.getvalue()
    _ingest(data + element)
    _ingest(data[:200] + element + data[200:])


@fuzz(100)
@given(st.binary(max_size=600))
def test_non_dicom_files(data: bytes) -> None:
    _ingest(data)
    _ingest(b"\x00" * 128 + b"DICM" + data)


@fuzz(100)
@given(st.lists(st.sampled_from(["../../etc/passwd", "/abs/path.dcm", "a/../../b.dcm", "ok.dcm", "..\\\\win.dcm", "dir/", ".hidden", "DICOMDIR", "x" * 300]), min_size=1, max_size=5), st.integers(min_value=0, max_value=3000))
def test_zip_names_and_bombs(names: list[str], limit: int) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, name in enumerate(names):
            archive.writestr(name, VALID if index % 2 == 0 else b"\x00" * 5000)
    refused: ImportRejectedError | None = None
    try:
        sources = list(sources_from_zip(buffer.getvalue(), name="upload.zip", max_bytes=limit))
    except ImportRejectedError as exc:
        refused = exc
    if refused is not None:
        assert "decompression bomb" in refused.message
        return
    assert sum(len(s.data) for s in sources) <= limit
    assert all(s.name.startswith("upload.zip:") for s in sources)
    for source in sources:
        _ingest(source.data, source.name)


def _nifti() -> bytes:
    return nib.Nifti1Image(np.arange(60, dtype=np.uint16).reshape(3, 4, 5), np.eye(4)).to_bytes()


NIFTI = _nifti()


@fuzz(150)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(NIFTI) - 1), st.integers(min_value=0, max_value=255)), min_size=1, max_size=6), st.booleans(), st.integers(min_value=0, max_value=len(NIFTI)))
def test_broken_nifti_headers(edits: list[tuple[int, int]], gz: bool, cut: int) -> None:
    data = bytearray(NIFTI)
    for position, value in edits:
        data[position] = value
    blob = bytes(data[: max(cut, 1)])
    blob = gzip.compress(blob) if gz else blob
    refused: NiftiError | None = None
    try:
        volume = nifti_read(blob, name="scan.nii")
    except NiftiError as exc:
        refused = exc
    if refused is not None:
        assert str(refused).startswith("scan.nii")
        return
    assert volume.data.ndim == 3
