"""The stored file of an imported instance: what services._encoded writes is what pydicom's save_as writes.

_encoded copies the elements de-identification left unchanged straight from the received bytes (the
pixel data among them) and has pydicom encode only the others; the file must be byte for byte the one
``save_as(enforce_file_format=True)`` makes of the de-identified data set, whatever the encoding."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from spinereview.imaging import services
from tests.dicom_files import mr_slice
from tests.unit.imaging.encoded_files import LOSSLESS, encoded_slice, sample_pixels
from tests.unit.imaging.phi_files import PHI_VALUES, phi_slice


@dataclass(frozen=True)
class _Patient:
    patient_id: str = "SR-0A1B2C3D4E"
    patient_name: str = "ANON^0A1B2C3D4E"
    date_offset_days: int = -400


class _Pseudonyms:
    def __init__(self) -> None:
        self.uids: dict[str, str] = {}

    def uid_for(self, original: str) -> str:
        return self.uids.setdefault(original, f"2.25.{len(self.uids) + 1000}")

    def patient_for(self, dataset: Dataset) -> _Patient:
        return _Patient()


def _stored(data: bytes) -> tuple[bytes, bytes]:
    """(the file _deidentified stores, what save_as writes of the same de-identified data set)."""
    done = services._deidentified(services._parse(services.ImportSource("x.dcm", data)), _Pseudonyms())  # type: ignore[arg-type]
    buffer = io.BytesIO()
    done.item.dataset.save_as(buffer, enforce_file_format=True)
    if done.pixel_data_at is not None:  # where the copied pixels went: where a search of the file finds them
        assert done.pixel_data_at == services.pixel_data_offset(buffer.getvalue(), done.item.dataset)
    return done.item.data, buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(mr_slice(rows=64, columns=48), id="explicit-le"),
        pytest.param(phi_slice(), id="phi-with-sequences-and-private-tags"),
        *(pytest.param(encoded_slice(str(syntax), sample_pixels()), id=str(syntax.name)) for syntax in LOSSLESS),
    ],
)
def test_the_stored_file_is_what_save_as_writes(data: bytes) -> None:
    stored, expected = _stored(data)
    assert stored == expected
    ds: Any = pydicom.dcmread(io.BytesIO(stored))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_unchanged_elements_and_pixels_are_copied_from_the_file_as_received() -> None:
    data = mr_slice(rows=64, columns=48)
    stored, _ = _stored(data)
    original: Any = pydicom.dcmread(io.BytesIO(data))
    ds: Any = pydicom.dcmread(io.BytesIO(stored))
    assert ds.PixelData == original.PixelData and ds.ImagePositionPatient == original.ImagePositionPatient
    done = services._deidentified(services._parse(services.ImportSource("x.dcm", data)), _Pseudonyms())  # type: ignore[arg-type]
    assert done.pixel_data_at is not None
    assert done.item.data[done.pixel_data_at :] == original.PixelData
    assert ds.SOPInstanceUID != original.SOPInstanceUID and ds.StudyInstanceUID != original.StudyInstanceUID
    phi_stored, _ = _stored(phi_slice())
    assert [value for value in PHI_VALUES.values() if str(value).encode() in phi_stored] == []
