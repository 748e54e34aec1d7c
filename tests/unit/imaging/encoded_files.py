"""One MR slice in each transfer syntax, from a known pixel array, with the encoders at hand.

pydicom encodes RLE, JPEG-LS (pyjpegls) and JPEG 2000 (pylibjpeg-openjpeg) and writes the
uncompressed and deflated syntaxes; JPEG baseline comes from Pillow; no installed package encodes
lossless JPEG (process 14), so ``jpeg_lossless_encode`` below writes one (ITU-T T.81 annex H,
first-order predictor 1, one Huffman table with 5-bit codes for every difference category).
"""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

LOSSLESS = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, RLELossless, JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless)
LOSSY = (JPEGBaseline8Bit, JPEGLSNearLossless, JPEG2000)


def sample_pixels(rows: int = 64, columns: int = 48, *, bits: int = 12, seed: int = 3) -> np.ndarray:
    """A smooth gradient plus noise: compressible, yet every value matters (JPEG 2000 needs at least 32 x 32)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    base = (y * 97 + x * 31) % (1 << bits)
    return np.clip(base + rng.integers(0, 40, size=(rows, columns)), 0, (1 << bits) - 1).astype(np.uint16)


def _bits_writer() -> tuple[list[int], list[int]]:
    return [], [0, 0]  # output bytes, [accumulator, bit count]


def jpeg_lossless_encode(pixels: np.ndarray, *, precision: int = 16) -> bytes:
    """Lossless JPEG (SOF3, predictor 1, point transform 0) of a 2-D unsigned array."""
    rows, columns = pixels.shape
    out = bytearray(b"\xff\xd8")
    out += b"\xff\xc3" + (11).to_bytes(2, "big") + bytes([precision]) + rows.to_bytes(2, "big") + columns.to_bytes(2, "big") + b"\x01\x01\x11\x00"
    bits = [0] * 16
    bits[4] = 17  # 17 categories (0..16), each a 5-bit code: 00000, 00001, ...
    out += b"\xff\xc4" + (3 + 16 + 17).to_bytes(2, "big") + b"\x00" + bytes(bits) + bytes(range(17))
    out += b"\xff\xda" + (8).to_bytes(2, "big") + b"\x01\x01\x00" + b"\x01\x00\x00"  # Ss=1 (predictor Ra), Se=0, Ah/Al=0
    acc, count = 0, 0
    data = bytearray()

    def put(value: int, length: int) -> None:
        nonlocal acc, count
        for i in range(length - 1, -1, -1):
            acc = (acc << 1) | ((value >> i) & 1)
            count += 1
            if count == 8:
                data.append(acc)
                if acc == 0xFF:
                    data.append(0)
                acc, count = 0, 0

    modulus = 1 << 16
    values = pixels.astype(np.int64)
    for r in range(rows):
        for c in range(columns):
            if r == 0 and c == 0:
                prediction = 1 << (precision - 1)
            elif r == 0:
                prediction = int(values[r, c - 1])
            elif c == 0:
                prediction = int(values[r - 1, c])
            else:
                prediction = int(values[r, c - 1])
            diff = (int(values[r, c]) - prediction) % modulus
            if diff > 32768:
                diff -= modulus
            category = 0 if diff == 0 else (16 if diff == 32768 else abs(diff).bit_length())
            put(category, 5)
            if 0 < category < 16:
                put(diff if diff > 0 else diff + (1 << category) - 1, category)
    if count:
        put((1 << (8 - count)) - 1, 8 - count)  # pad with 1-bits
    out += data + b"\xff\xd9"
    return bytes(out)


def _dataset(pixels: np.ndarray, *, bits_stored: int, study_uid: str, series_uid: str, z_mm: float) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (8 if bits_stored == 8 else 16), bits_stored, bits_stored - 1, 0
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, z_mm]
    ds.PixelSpacing = [0.5, 0.5]
    return ds


def encoded_slice(transfer_syntax: str, pixels: np.ndarray, *, study_uid: str = "1.2.3.4", series_uid: str = "1.2.3.4.5", z_mm: float = 0.0) -> bytes:
    """``pixels`` (uint16, 12 bits; uint8 for JPEG baseline) as one MR slice in ``transfer_syntax``."""
    syntax = UID(transfer_syntax)
    bits_stored = 8 if syntax == JPEGBaseline8Bit else 12
    ds = _dataset(pixels, bits_stored=bits_stored, study_uid=study_uid, series_uid=series_uid, z_mm=z_mm)
    if syntax == JPEGBaseline8Bit:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax == JPEGLosslessSV1:
        ds.PixelData = encapsulate([jpeg_lossless_encode(pixels)])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax.is_compressed:
        if syntax == JPEG2000:
            ds.compress(syntax, pixels, j2k_cr=[4])
        elif syntax == JPEGLSNearLossless:
            ds.compress(syntax, pixels, jls_error=2)
        else:
            ds.compress(syntax, pixels)
    else:
        # Uncompressed pixel data is written as given, so it must already be in the syntax's byte order.
        ds.PixelData = pixels.astype(">u2" if syntax == ExplicitVRBigEndian else "<u2").tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
