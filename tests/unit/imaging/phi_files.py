"""DICOM files full of identifying information, to prove de-identification removes every bit of it."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

ROOT = "1.2.826.0.1.3680043.9.4711"
STUDY_UID = f"{ROOT}.1"
SERIES_UIDS = (f"{ROOT}.1.1", f"{ROOT}.1.2")
FRAME_OF_REFERENCE_UID = f"{ROOT}.9"

# Every identifying value the files below carry; none may survive import anywhere.
PHI_VALUES = {
    "PatientName": "Doe^Jane^Marie",
    "PatientID": "MRN-4711-0815",
    "IssuerOfPatientID": "StElsewhereMRN",
    "OtherPatientIDs": "OLD-99-123",
    "PatientBirthDate": "19610203",
    "PatientAddress": "12 Harbour Lane, Springfield",
    "PatientTelephoneNumbers": "555-0142",
    "PatientAge": "063Y",
    "PatientWeight": "71.5",
    "AccessionNumber": "ACC998877",
    "StudyID": "STID-31337",
    "InstitutionName": "St Elsewhere Hospital",
    "InstitutionAddress": "1 Hospital Road, Springfield",
    "ReferringPhysicianName": "House^Gregory",
    "PerformingPhysicianName": "Quinn^Michaela",
    "OperatorsName": "Tech^Tammy",
    "StationName": "MRIROOM3",
    "DeviceSerialNumber": "SN-55501",
    "StudyDate": "20240315",
    "SeriesDate": "20240316",
    "AcquisitionDate": "20240317",
    "ContentDate": "20240318",
    "ImageComments": "Jane reports back pain since the fall",
    "RequestedProcedureID": "RPID-2468",
}
PRIVATE_VALUE = "Jane Doe private note 8642"


def phi_slice(*, series: int = 0, index: int = 0, rows: int = 4, columns: int = 5, z_mm: float | None = None, burned_in: str = "NO") -> bytes:
    """Slice ``index`` of series ``series`` (0 or 1) of one PHI-laden study; slices reference slice 0 of series 0."""
    sop_uid = f"{SERIES_UIDS[series]}.{index + 1}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.SourceApplicationEntityTitle = "STELSEWHERE_PACS"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UIDS[series]
    ds.FrameOfReferenceUID = FRAME_OF_REFERENCE_UID
    ds.Modality = "MR"
    for keyword, value in PHI_VALUES.items():
        if keyword != "RequestedProcedureID":
            setattr(ds, keyword, value)
    ds.PatientSex = "F"
    ds.StudyTime = "101500"
    ds.StudyDescription = "MR LSPINE Doe St Elsewhere Hospital"
    ds.SeriesDescription = f"T2 SAG Jane {series}"
    ds.ProtocolName = "LSPINE MRIROOM3"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = index + 1
    ds.BurnedInAnnotation = burned_in
    request = Dataset()
    request.RequestedProcedureID = PHI_VALUES["RequestedProcedureID"]
    ds.RequestAttributesSequence = Sequence([request])
    reference = Dataset()
    reference.ReferencedSOPClassUID = MRImageStorage
    reference.ReferencedSOPInstanceUID = f"{SERIES_UIDS[0]}.1"
    ds.ReferencedImageSequence = Sequence([reference])
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.ImagePositionPatient = [z_mm if z_mm is not None else 4.0 * index - 10.0, -120.5, 95.25]
    ds.PixelSpacing = [0.625, 0.75]
    ds.SliceThickness = 4.0
    ds.PixelData = (np.arange(rows * columns, dtype="<u2") + 100 * index).tobytes()
    block = ds.private_block(0x0009, "ACME PHI", create=True)
    block.add_new(0x01, "LO", PRIVATE_VALUE)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def original_uids() -> set[str]:
    """Every UID in the study that is not a registered (class or transfer syntax) UID."""
    return {STUDY_UID, *SERIES_UIDS, FRAME_OF_REFERENCE_UID} | {f"{s}.{i}" for s in SERIES_UIDS for i in range(1, 4)}


def phi_strings() -> list[str]:
    """Original values to look for; names also by their components (Doe, Jane, ...)."""
    strings = {v for v in PHI_VALUES.values()} | {PRIVATE_VALUE, "STELSEWHERE_PACS"}
    strings |= {part for v in ("Doe^Jane^Marie", "House^Gregory", "Quinn^Michaela", "Tech^Tammy") for part in v.split("^")}
    strings |= {STUDY_UID, *SERIES_UIDS, FRAME_OF_REFERENCE_UID}
    return sorted(strings)
