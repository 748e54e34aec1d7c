"""Every supported transfer syntax is accepted and decodes to the original pixels (no database)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000, UID, HTJ2KLossless, JPEGBaseline8Bit, JPEGLSNearLossless

from spinereview.imaging.deid import PatientPseudonym, dataset_deidentify
from spinereview.imaging.services import SUPPORTED_TRANSFER_SYNTAXES, ImportRejectedError, ImportSource, parse_sources
from tests.unit.imaging.encoded_files import LOSSLESS, LOSSY, encoded_slice, sample_pixels

PIXELS = sample_pixels()
# Bounds for this image: JPEG-LS near-lossless guarantees |error| <= NEAR (2); baseline JPEG at quality 95
# on 8-bit data and JPEG 2000 at 4:1 on 12-bit noisy data were measured at 6 and 27 (mean 5.9).
LOSSY_MAX_ERROR = {JPEGBaseline8Bit: 8, JPEGLSNearLossless: 2, JPEG2000: 40}


def _stored_again(parsed_dataset: pydicom.Dataset) -> pydicom.Dataset:
    """What ingest stores: the data set de-identified and written back in its own transfer syntax."""
    dataset_deidentify(parsed_dataset, pseudonym=PatientPseudonym("SR-1", "ANON^1", -400), uid_for=lambda uid: "2.25." + str(abs(hash(uid))))
    buffer = io.BytesIO()
    parsed_dataset.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda s: UID(s).name)
def test_lossless_syntaxes_decode_exactly_after_ingest(syntax: str) -> None:
    (parsed,) = parse_sources([ImportSource("a.dcm", encoded_slice(syntax, PIXELS))])
    assert parsed.dataset.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(parsed.dataset.pixel_array, PIXELS)
    stored = _stored_again(parsed.dataset)
    assert stored.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(stored.pixel_array, PIXELS)


@pytest.mark.parametrize("syntax", LOSSY, ids=lambda s: UID(s).name)
def test_lossy_syntaxes_decode_close_to_the_original(syntax: str) -> None:
    original = (PIXELS >> 4).astype(np.uint8) if syntax == JPEGBaseline8Bit else PIXELS
    (parsed,) = parse_sources([ImportSource("a.dcm", encoded_slice(syntax, original))])
    error = np.abs(_stored_again(parsed.dataset).pixel_array.astype(int) - original.astype(int))
    assert 0 < error.max() <= LOSSY_MAX_ERROR[UID(syntax)]


def test_supported_list_is_the_documented_one() -> None:
    assert len(SUPPORTED_TRANSFER_SYNTAXES) == 13  # 4 uncompressed (deflated included) + 9 compressed
    assert all(UID(s).is_transfer_syntax for s in SUPPORTED_TRANSFER_SYNTAXES)


def test_unsupported_syntax_is_named() -> None:
    data = encoded_slice(LOSSLESS[0], PIXELS)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51 not decoded: refused before"])
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(ImportRejectedError) as info:
        parse_sources([ImportSource("h.dcm", buffer.getvalue())])
    assert info.value.extra["errors"][0]["error"].startswith("transfer syntax 1.2.840.10008.1.2.4.201 (High-Throughput JPEG 2000 Image Compression (Lossless Only)) is not supported")
