"""DICOM parsing and validation before anything is stored (no database)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGBaseline8Bit

from spinereview.imaging.services import ImportRejectedError, ImportSource, parse_sources, slice_position_mm, sources_from_zip
from tests.dicom_files import mr_slice


def test_valid_slice_parses_with_its_position_along_the_normal() -> None:
    (parsed,) = parse_sources([ImportSource("a.dcm", mr_slice(z_mm=-42.5))])
    assert parsed.slice_position_mm == -42.5
    assert slice_position_mm(parsed.dataset) == -42.5


def test_one_bad_file_refuses_the_whole_batch_and_names_every_problem() -> None:
    good = ImportSource("good.dcm", mr_slice())
    text = ImportSource("notes.txt", b"this is not dicom")
    truncated = ImportSource("cut.dcm", mr_slice()[:-20])
    with pytest.raises(ImportRejectedError) as info:
        parse_sources([good, text, truncated])
    assert "2 of 3 file(s)" in info.value.message
    errors = {e["file"]: e["error"] for e in info.value.extra["errors"]}
    assert set(errors) == {"notes.txt", "cut.dcm"}
    assert "not a DICOM file" in errors["notes.txt"]
    assert "pixel data" in errors["cut.dcm"]


def test_missing_attributes_and_bad_uids_are_named() -> None:
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(mr_slice()))
    del ds.SeriesInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer)
    ds2 = dcmread(io.BytesIO(mr_slice()))
    ds2.StudyInstanceUID = "1.2.3/../../etc"
    buffer2 = io.BytesIO()
    ds2.save_as(buffer2)
    with pytest.raises(ImportRejectedError) as info:
        parse_sources([ImportSource("a.dcm", buffer.getvalue()), ImportSource("b.dcm", buffer2.getvalue())])
    errors = {e["file"]: e["error"] for e in info.value.extra["errors"]}
    assert errors["a.dcm"] == "missing required attribute(s): SeriesInstanceUID"
    assert "is not a valid DICOM UID" in errors["b.dcm"]


def test_undecodable_compressed_pixels_are_refused_with_the_syntax_named() -> None:
    with pytest.raises(ImportRejectedError) as info:
        parse_sources([ImportSource("j.dcm", mr_slice(transfer_syntax=JPEGBaseline8Bit))])
    assert info.value.extra["errors"][0]["error"].startswith("pixel data cannot be decoded (JPEG Baseline (Process 1)): ")


def test_empty_batch_and_bad_zip() -> None:
    with pytest.raises(ImportRejectedError, match="no files were given"):
        parse_sources([])
    with pytest.raises(ImportRejectedError, match="not a readable zip"):
        list(sources_from_zip(b"PK-not-really", name="x.zip"))


def test_pixel_data_offset_points_at_the_pixels_of_uncompressed_files_only() -> None:
    from pydicom import dcmread
    from pydicom.uid import JPEGLSLossless

    from spinereview.imaging.services import pixel_data_offset
    from tests.unit.imaging.encoded_files import encoded_slice, sample_pixels

    data = mr_slice(rows=8, columns=6)
    offset = pixel_data_offset(data, dcmread(io.BytesIO(data)))
    assert offset == len(data) - 96
    assert data[offset:] == bytes(np.arange(48, dtype="<u2").tobytes())
    compressed = encoded_slice(JPEGLSLossless, sample_pixels())
    assert pixel_data_offset(compressed, dcmread(io.BytesIO(compressed))) is None


def _mr_slice_with(**changes: object) -> bytes:
    """mr_slice() with some attributes set (None: removed)."""
    ds = pydicom.dcmread(io.BytesIO(mr_slice()))
    for keyword, value in changes.items():
        if value is None:
            del ds[keyword]
        else:
            setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"PixelData": bytes(80)}, "less than expected (80 vs 96 bytes)"),
        ({"NumberOfFrames": 2}, "less than expected (96 vs 192 bytes)"),
        ({"BitsAllocated": 12}, "'Bits Allocated' value of '12' is invalid"),
        ({"PhotometricInterpretation": None}, "Missing required element: (0028,0004)"),
        ({"SamplesPerPixel": 2}, "'Samples per Pixel' value of '2' is invalid"),
    ],
)
def test_uncompressed_pixels_that_do_not_fit_their_description_are_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ImportRejectedError) as info:
        parse_sources([ImportSource("bad.dcm", _mr_slice_with(**changes))])
    error = info.value.extra["errors"][0]["error"]
    assert error.startswith("pixel data cannot be decoded (Explicit VR Little Endian): ") and reason in error, error


def test_uncompressed_pixels_with_trailing_padding_are_accepted() -> None:
    (parsed,) = parse_sources([ImportSource("padded.dcm", _mr_slice_with(PixelData=bytes(120)))])
    assert int(parsed.dataset.Rows) == 8
