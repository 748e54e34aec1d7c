"""De-identification of a DICOM data set: PS3.15 Basic Application Level Confidentiality Profile.

Pure (pydicom only, no Django): the caller supplies the pseudonyms, the per-patient date offset
and a UID mapper, so the same original UID always gets the same replacement and references
between instances (ReferencedSOPInstanceUID, FrameOfReferenceUID, ...) still resolve.

Source of the action table: DICOM PS3.15 (2024b), Annex E, Table E.1-1 "Application Level
Confidentiality Profile Attributes", column "Basic Prof.", together with the columns of the two
options applied here:

- 113105 Clean Descriptors Option (column "Clean Desc. Opt."): study/series descriptions and the
  protocol name are *cleaned* (C) instead of removed, because readers need "T2 SAG" to read;
- 113107 Retain Longitudinal Temporal Information with Modified Dates Option (column "Rtn. Long.
  Modif. Dates Opt."): dates are shifted (C) by a whole number of days that is the same for every
  study of a patient, so intervals between examinations are kept; times of day are kept because
  the shift is a whole number of days.

Where the standard leaves a choice by IOD type (X/Z, Z/D, X/Z/D, X/D), the table below takes the
strongest action that keeps the file valid for MR/CT/SEG images: D for type 1 attributes the
index needs (PatientID, PatientName), Z for type 2, X otherwise. Action codes (PS3.15 E.3.1):

    D  replace with a non-zero-length dummy value (here: the caller's pseudonym)
    Z  replace with a zero-length value
    X  remove
    K  keep (sequences are still processed item by item)
    C  clean: dates shifted by the patient's offset; free text stripped of identifying strings
    U  replace the UID by another one, consistently (the caller's ``uid_for``)

Rules for attributes the table does not list (stated here so nothing is implicit): private
attributes (odd groups) are removed (Basic profile: "X" for private attributes; the Retain Safe
Private Option is not applied); curve data (50xx) and overlay data/comments (60xx,3000/4000) are
removed; any other UI attribute whose value is not a UID registered in PS3.6 (SOP classes,
transfer syntaxes, coding schemes stay) is remapped (U); any other DA/DT is shifted (C); any
other PN is emptied (Z); everything else is kept (K), geometry included (ImagePositionPatient,
ImageOrientationPatient, PixelSpacing, SliceThickness).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID_dictionary  # type: ignore[attr-defined]

BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
CLEAN_DESCRIPTORS_CODE = ("113105", "Clean Descriptors Option")
MODIFIED_DATES_CODE = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")
METHOD_CODES = (BASIC_PROFILE_CODE, CLEAN_DESCRIPTORS_CODE, MODIFIED_DATES_CODE)
# DeidentificationMethod is LO (at most 64 characters).
DEIDENTIFICATION_METHOD = "PS3.15 Basic Profile; Clean Descriptors; Modified Dates"

# PS3.15 Table E.1-1, resolved as described in the module docstring. Keyword -> action.
BASIC_PROFILE_ACTIONS: Mapping[str, str] = {
    # Patient identity
    "PatientName": "D",
    "PatientID": "D",
    "IssuerOfPatientID": "X",
    "IssuerOfPatientIDQualifiersSequence": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "PatientBirthName": "X",
    "PatientMotherBirthName": "X",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientSex": "Z",
    "PatientAge": "X",
    "PatientSize": "X",
    "PatientWeight": "X",
    "PatientAddress": "X",
    "PatientTelephoneNumbers": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "PatientPrimaryLanguageCodeSequence": "X",
    "PatientReligiousPreference": "X",
    "PatientComments": "X",
    "PatientState": "X",
    "PatientSexNeutered": "X",
    "MilitaryRank": "X",
    "BranchOfService": "X",
    "EthnicGroup": "X",
    "Occupation": "X",
    "AdditionalPatientHistory": "X",
    "MedicalRecordLocator": "X",
    "MedicalAlerts": "X",
    "Allergies": "X",
    "CountryOfResidence": "X",
    "RegionOfResidence": "X",
    "SmokingStatus": "X",
    "PregnancyStatus": "X",
    "LastMenstrualDate": "X",
    "SpecialNeeds": "X",
    "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X",
    "PatientTransportArrangements": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPatientPhotoSequence": "X",
    "ReferencedPatientAliasSequence": "X",
    # Visit, order, procedure
    "AccessionNumber": "Z",
    "IssuerOfAccessionNumberSequence": "X",
    "StudyID": "Z",
    "AdmissionID": "X",
    "AdmittingDiagnosesDescription": "X",
    "AdmittingDiagnosesCodeSequence": "X",
    "CurrentPatientLocation": "X",
    "PatientInstitutionResidence": "X",
    "ReasonForStudy": "X",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "RequestedProcedureDescription": "X",
    "RequestedProcedureID": "X",
    "RequestedProcedureLocation": "X",
    "RequestAttributesSequence": "X",
    "ReferencedStudySequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X",
    "PerformedProcedureStepID": "X",
    "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepEndDate": "X",
    "PerformedLocation": "X",
    "PerformedStationName": "X",
    "PerformedStationAETitle": "X",
    "ScheduledProcedureStepID": "X",
    "ScheduledProcedureStepDescription": "X",
    "ScheduledProcedureStepLocation": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ScheduledStationName": "X",
    "ScheduledStationAETitle": "X",
    "PlacerOrderNumberImagingServiceRequest": "X",
    "FillerOrderNumberImagingServiceRequest": "X",
    "ImagingServiceRequestComments": "X",
    "RequestedProcedureComments": "X",
    "InterpretationRecorder": "X",
    "InterpretationTranscriber": "X",
    "InterpretationAuthor": "X",
    "InterpretationApproverSequence": "X",
    "InterpretationIDIssuer": "X",
    "InterpretationText": "X",
    "InterpretationDiagnosisDescription": "X",
    "ResultsIDIssuer": "X",
    "ResultsComments": "X",
    "StudyComments": "X",
    "StudyIDIssuer": "X",
    "VisitComments": "X",
    "ServiceEpisodeID": "X",
    "ServiceEpisodeDescription": "X",
    "DischargeDiagnosisDescription": "X",
    # People and places
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ConsultingPhysicianName": "X",
    "ConsultingPhysicianIdentificationSequence": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "OperatorsName": "X",
    "OperatorIdentificationSequence": "X",
    "ContentCreatorName": "Z",
    "ContentCreatorIdentificationCodeSequence": "X",
    "VerifyingObserverName": "D",
    "VerifyingObserverIdentificationCodeSequence": "Z",
    "VerifyingOrganization": "X",
    "PersonName": "D",
    "PersonAddress": "X",
    "PersonTelephoneNumbers": "X",
    "PersonIdentificationCodeSequence": "D",
    "ReviewerName": "X",
    "InstitutionName": "X",
    "InstitutionAddress": "X",
    "InstitutionCodeSequence": "X",
    "InstitutionalDepartmentName": "X",
    "StationName": "X",
    "DeviceSerialNumber": "X",
    "DeviceUID": "U",
    "DetectorID": "X",
    "GantryID": "X",
    "PlateID": "X",
    "CassetteID": "X",
    "GeneratorID": "X",
    "ProtocolName": "C",
    "StudyDescription": "C",
    "SeriesDescription": "C",
    "ImageComments": "X",
    "DerivationDescription": "X",
    "AcquisitionComments": "X",
    "AcquisitionDeviceProcessingDescription": "X",
    "ContrastBolusAgent": "X",
    "FrameComments": "X",
    "TextComments": "X",
    "TextString": "X",
    "TopicAuthor": "X",
    "TopicKeywords": "X",
    "TopicSubject": "X",
    "TopicTitle": "X",
    "DigitalSignaturesSequence": "X",
    "OriginalAttributesSequence": "X",
    "ModifiedAttributesSequence": "X",
    "SourceImageSequence": "K",
    "ReferencedImageSequence": "K",
    # Dates: shifted under the Modified Dates Option
    "StudyDate": "C",
    "SeriesDate": "C",
    "AcquisitionDate": "C",
    "ContentDate": "C",
    "AcquisitionDateTime": "C",
    "InstanceCreationDate": "C",
    "StudyVerifiedDate": "C",
    "StudyReadDate": "C",
    "PerformedProcedureStepStartDateTime": "C",
    # Unique identifiers
    "StudyInstanceUID": "U",
    "SeriesInstanceUID": "U",
    "SOPInstanceUID": "U",
    "MediaStorageSOPInstanceUID": "U",
    "FrameOfReferenceUID": "U",
    "ReferencedFrameOfReferenceUID": "U",
    "RelatedFrameOfReferenceUID": "U",
    "SynchronizationFrameOfReferenceUID": "U",
    "ReferencedSOPInstanceUID": "U",
    "ReferencedSOPInstanceUIDInFile": "U",
    "InstanceCreatorUID": "U",
    "IrradiationEventUID": "U",
    "ConcatenationUID": "U",
    "DimensionOrganizationUID": "U",
    "StorageMediaFileSetUID": "U",
    "TemplateExtensionCreatorUID": "U",
    "TemplateExtensionOrganizationUID": "U",
    "FiducialUID": "U",
    "TrackingUID": "U",
    "UID": "U",
    "TargetUID": "U",
    "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID": "U",
    "TransactionUID": "U",
    "SourceFrameOfReferenceUID": "U",
}

_ACTIONS = frozenset("DZXKCU")
_DUMMY_BY_VR = {"PN": "ANONYMOUS", "LO": "ANONYMOUS", "SH": "ANONYMOUS", "CS": "ANONYMOUS", "ST": "ANONYMOUS", "LT": "ANONYMOUS", "UT": "ANONYMOUS", "DA": "19000101", "TM": "000000", "DT": "19000101000000", "IS": "0", "DS": "0"}
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
# Identifying strings collected before cleaning free text (C on descriptors).
_IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName", "AccessionNumber", "StudyID",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "StationName", "PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
)


def _tag_table(actions: Mapping[str, str]) -> dict[BaseTag, str]:
    table: dict[BaseTag, str] = {}
    for keyword, action in actions.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"de-identification table names {keyword!r}, which is not a DICOM keyword")
        if action not in _ACTIONS:
            raise ValueError(f"de-identification table: action {action!r} for {keyword} is not one of D Z X K C U")
        table[Tag(tag)] = action
    return table


_TABLE = _tag_table(BASIC_PROFILE_ACTIONS)


class BurnedInAnnotationError(ValueError):
    """The pixel data may show identifying text; metadata de-identification cannot remove it."""


@dataclass(frozen=True)
class PatientPseudonym:
    """What replaces one patient's identity: pseudonymous ID and name, and the date offset (days)."""

    patient_id: str
    patient_name: str
    date_offset_days: int


def date_shift(value: str, *, offset_days: int) -> str:
    """A DA (YYYYMMDD) or DT (YYYYMMDD[HHMMSS...]) moved by ``offset_days``; the time part is kept.

    Partial or unparseable dates give "" (zero length): a value that cannot be shifted is not kept.
    """
    value = value.strip()
    if len(value) < 8 or not value[:8].isdigit():
        return ""
    try:
        day = dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return ""
    try:
        shifted = day + dt.timedelta(days=offset_days)
    except OverflowError:
        return ""
    return shifted.strftime("%Y%m%d") + value[8:]


def _identifying_strings(dataset: Dataset) -> list[str]:
    strings: set[str] = set()
    for keyword in _IDENTIFYING_KEYWORDS:
        if keyword not in dataset or dataset[keyword].value in (None, ""):
            continue
        element = dataset[keyword]
        for value in list(element.value) if element.VM > 1 else [element.value]:
            text = str(value)
            strings.add(text)
            strings.update(re.split(r"[\^\s,]+", text))
    # Short fragments ("MR", "Dr") would mangle descriptions without hiding anyone.
    return sorted((s for s in strings if len(s) >= 3), key=len, reverse=True)


def text_clean(value: str, *, identifying: list[str]) -> str:
    """``value`` with every identifying string removed (case-insensitive), spaces collapsed."""
    for needle in identifying:
        value = re.sub(re.escape(needle), "", value, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", value).strip()


def _is_registered_uid(uid: str) -> bool:
    return uid in UID_dictionary


def _default_action(element: DataElement) -> str:
    tag = element.tag
    if tag.is_private:
        return "X"
    if 0x5000 <= tag.group <= 0x50FF or (0x6000 <= tag.group <= 0x60FF and tag.element in (0x3000, 0x4000)):
        return "X"
    if element.VR == "UI":
        return "U"
    if element.VR in ("DA", "DT"):
        return "C"
    if element.VR == "PN":
        return "Z"
    return "K"


def _remap_uids(element: DataElement, uid_for: Callable[[str], str]) -> None:
    if element.value in (None, ""):
        return
    values = list(element.value) if element.VM > 1 else [element.value]
    mapped = [str(v) if _is_registered_uid(str(v)) else uid_for(str(v)) for v in values]
    element.value = mapped if element.VM > 1 else mapped[0]


def _clean(element: DataElement, pseudonym: PatientPseudonym, identifying: list[str]) -> None:
    if element.value in (None, ""):
        return
    values = list(element.value) if element.VM > 1 else [element.value]
    if element.VR in ("DA", "DT"):
        cleaned = [date_shift(str(v), offset_days=pseudonym.date_offset_days) for v in values]
    elif element.VR in _TEXT_VRS:
        cleaned = [text_clean(str(v), identifying=identifying) for v in values]
    else:
        cleaned = [str(v) for v in values]
    element.value = cleaned if element.VM > 1 else cleaned[0]


def _dummy(element: DataElement, pseudonym: PatientPseudonym) -> None:
    if element.keyword == "PatientName":
        element.value = pseudonym.patient_name
    elif element.keyword == "PatientID":
        element.value = pseudonym.patient_id
    elif element.VR == "SQ":
        element.value = Sequence()
    else:
        element.value = _DUMMY_BY_VR.get(element.VR, "")


def _process(dataset: Dataset, pseudonym: PatientPseudonym, uid_for: Callable[[str], str], identifying: list[str]) -> None:
    for tag in list(dataset.keys()):
        element = dataset[tag]
        if tag.group == 0x7FE0 and tag.element == 0x0010:
            continue  # pixel data: kept as stored (burned-in annotation is checked before)
        action = _TABLE.get(Tag(tag)) or _default_action(element)
        if action == "X":
            del dataset[tag]
        elif action == "Z":
            element.value = Sequence() if element.VR == "SQ" else ""
        elif action == "D":
            _dummy(element, pseudonym)
        elif action == "U":
            _remap_uids(element, uid_for)
        elif action == "C":
            _clean(element, pseudonym, identifying)
        if action in ("K", "C", "U") and element.VR == "SQ":
            for item in element.value:
                _process(item, pseudonym, uid_for, identifying)


def burned_in_annotation_check(dataset: Dataset) -> None:
    """Refuse an image whose header says its pixels carry identifying text (BurnedInAnnotation YES)."""
    if str(dataset.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        raise BurnedInAnnotationError(
            "BurnedInAnnotation is YES: the pixels may show the patient's identity, which de-identification of the header "
            "cannot remove; blank the annotation in the pixels first and set BurnedInAnnotation to NO"
        )


def dataset_deidentify(dataset: Dataset, *, pseudonym: PatientPseudonym, uid_for: Callable[[str], str]) -> None:
    """De-identify ``dataset`` in place (file meta included); see the module docstring for the rules.

    ``uid_for(original) -> replacement`` must return the same replacement for the same original
    (within a study at least), so references between instances keep resolving.
    Raises BurnedInAnnotationError before changing anything if BurnedInAnnotation is YES.
    """
    burned_in_annotation_check(dataset)
    identifying = _identifying_strings(dataset)
    _process(dataset, pseudonym, uid_for, identifying)
    dataset.PatientName = pseudonym.patient_name
    dataset.PatientID = pseudonym.patient_id
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
    codes = []
    for value, meaning in METHOD_CODES:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
        codes.append(code)
    dataset.DeidentificationMethodCodeSequence = Sequence(codes)
    dataset.LongitudinalTemporalInformationModified = "MODIFIED"
    old_meta = getattr(dataset, "file_meta", None)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    if old_meta is not None and "TransferSyntaxUID" in old_meta:
        meta.TransferSyntaxUID = old_meta.TransferSyntaxUID
    dataset.file_meta = meta
