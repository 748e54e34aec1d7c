"""PS3.15 Basic Profile de-identification of one data set (pure: no database)."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.uid import MRImageStorage

from spinereview.imaging.deid import (
    BASIC_PROFILE_ACTIONS,
    BurnedInAnnotationError,
    PatientPseudonym,
    dataset_deidentify,
    date_shift,
    text_clean,
)
from tests.unit.imaging.phi_files import FRAME_OF_REFERENCE_UID, PHI_VALUES, PRIVATE_VALUE, SERIES_UIDS, STUDY_UID, phi_slice

PSEUDONYM = PatientPseudonym(patient_id="SR-ABCDE12345", patient_name="ANON^ABCDE12345", date_offset_days=-400)


class CountingMapper:
    """uid_for that remembers what it mapped, numbering new UIDs 2.25.1, 2.25.2, ..."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        return self.mapping.setdefault(uid, f"2.25.{len(self.mapping) + 1}")


def _deidentified(data: bytes, mapper: CountingMapper) -> pydicom.Dataset:
    ds = pydicom.dcmread(io.BytesIO(data))
    dataset_deidentify(ds, pseudonym=PSEUDONYM, uid_for=mapper)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)  # still a valid file
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def test_identity_is_replaced_and_profile_attributes_follow_the_table() -> None:
    ds = _deidentified(phi_slice(), CountingMapper())
    assert ds.PatientName == "ANON^ABCDE12345"
    assert ds.PatientID == "SR-ABCDE12345"
    for keyword in ("IssuerOfPatientID", "OtherPatientIDs", "PatientAddress", "PatientTelephoneNumbers", "PatientAge", "PatientWeight",
                    "InstitutionName", "InstitutionAddress", "PerformingPhysicianName", "OperatorsName", "StationName",
                    "DeviceSerialNumber", "ImageComments", "RequestAttributesSequence"):
        assert keyword not in ds, keyword
    for keyword in ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "ReferringPhysicianName"):
        assert ds[keyword].value in ("", None), keyword
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == "PS3.15 Basic Profile; Clean Descriptors; Modified Dates"
    assert [(c.CodeValue, c.CodingSchemeDesignator) for c in ds.DeidentificationMethodCodeSequence] == [("113100", "DCM"), ("113105", "DCM"), ("113107", "DCM")]
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "SourceApplicationEntityTitle" not in ds.file_meta


def test_private_tags_are_removed() -> None:
    ds = _deidentified(phi_slice(), CountingMapper())
    assert not [e for e in ds.iterall() if e.tag.is_private]
    assert PRIVATE_VALUE.encode() not in ds.to_json().encode()


def test_dates_are_shifted_by_the_patients_offset_and_times_kept() -> None:
    ds = _deidentified(phi_slice(), CountingMapper())
    assert (ds.StudyDate, ds.SeriesDate, ds.AcquisitionDate, ds.ContentDate) == ("20230209", "20230210", "20230211", "20230212")  # 2024-03-15 - 400 d (2024 is a leap year)
    assert ds.StudyTime == "101500"


def test_uids_are_remapped_consistently_and_references_still_resolve() -> None:
    mapper = CountingMapper()
    first = _deidentified(phi_slice(series=0, index=0), mapper)
    other = _deidentified(phi_slice(series=1, index=2), mapper)
    assert first.StudyInstanceUID == other.StudyInstanceUID == mapper.mapping[STUDY_UID]
    assert first.FrameOfReferenceUID == other.FrameOfReferenceUID == mapper.mapping[FRAME_OF_REFERENCE_UID]
    assert other.SeriesInstanceUID == mapper.mapping[SERIES_UIDS[1]] != first.SeriesInstanceUID
    assert other.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID
    assert other.ReferencedImageSequence[0].ReferencedSOPClassUID == MRImageStorage  # registered UIDs are kept
    assert first.SOPClassUID == MRImageStorage
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert all(uid.startswith("2.25.") for uid in mapper.mapping.values())


def test_geometry_and_pixels_are_kept() -> None:
    original = pydicom.dcmread(io.BytesIO(phi_slice(index=1)))
    ds = _deidentified(phi_slice(index=1), CountingMapper())
    assert [float(v) for v in ds.ImagePositionPatient] == [-6.0, -120.5, 95.25]
    assert [float(v) for v in ds.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
    assert [float(v) for v in ds.PixelSpacing] == [0.625, 0.75]
    assert float(ds.SliceThickness) == 4.0
    assert ds.PixelData == original.PixelData


def test_descriptions_are_cleaned_not_dropped() -> None:
    ds = _deidentified(phi_slice(series=1), CountingMapper())
    assert ds.SeriesDescription == "T2 SAG 1"
    assert ds.StudyDescription == "MR LSPINE"
    assert ds.ProtocolName == "LSPINE"


def test_no_original_value_is_left_anywhere_in_the_file() -> None:
    mapper = CountingMapper()
    ds = _deidentified(phi_slice(), mapper)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    for value in [*PHI_VALUES.values(), PRIVATE_VALUE, "Doe", "Jane", "Gregory", "Michaela", *mapper.mapping]:
        assert value.encode() not in data, value


def test_burned_in_annotation_is_refused_before_anything_changes() -> None:
    ds = pydicom.dcmread(io.BytesIO(phi_slice(burned_in="YES")))
    with pytest.raises(BurnedInAnnotationError, match="BurnedInAnnotation is YES"):
        dataset_deidentify(ds, pseudonym=PSEUDONYM, uid_for=CountingMapper())
    assert ds.PatientName == "Doe^Jane^Marie"


def test_date_shift_handles_leap_days_datetimes_and_garbage() -> None:
    assert date_shift("20240301", offset_days=-1) == "20240229"
    assert date_shift("20231231235959.5+0100", offset_days=1) == "20240101235959.5+0100"
    assert date_shift("2024", offset_days=-1) == ""
    assert date_shift("20241340", offset_days=-1) == ""
    assert date_shift("00010101", offset_days=-1) == ""


def test_text_clean_is_case_insensitive() -> None:
    assert text_clean("T2 sag DOE jane", identifying=["Jane", "Doe"]) == "T2 sag"


def test_table_uses_only_dicom_keywords_and_known_actions() -> None:
    from pydicom.datadict import tag_for_keyword

    for keyword in BASIC_PROFILE_ACTIONS:
        tag = tag_for_keyword(keyword)
        assert tag is not None and keyword_for_tag(tag) == keyword, keyword
    assert set(BASIC_PROFILE_ACTIONS.values()) == set("DZXKCU")
    assert BASIC_PROFILE_ACTIONS["StudyInstanceUID"] == "U"
    assert BASIC_PROFILE_ACTIONS["PatientName"] == "D"
