"""Reads of imaging data, scoped by what a user may see."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.db.models import QuerySet

from spinereview.accounts.models import User
from spinereview.core.errors import NotFoundError, PermissionDeniedError
from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy, PseudonymousUid, StudyReidentification


def dicom_study_visible_to(*, user: User, study_instance_uid: str) -> bool:
    """Staff see every study; anyone else only studies that are cases of a reader study they belong to."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return DicomStudy.objects.filter(study_instance_uid=study_instance_uid).exists()
    return DicomStudy.objects.filter(
        study_instance_uid=study_instance_uid,
        cases__reader_study__memberships__user=user,
    ).exists()


GENERATION_FILE = "dicom/.generation"
_local_imports = itertools.count(1)
_local_generation = 0


def instances_generation() -> str:
    """A token that changes whenever an import stores instances: a file every process reads, rewritten after
    each commit (services.instances_generation_bump), and a counter of this process's own imports (so a
    search inside the importing transaction, before the commit, sees them too)."""
    try:
        shared = (Path(settings.MEDIA_ROOT) / GENERATION_FILE).read_text()
    except OSError:
        shared = ""
    return f"{shared}|{_local_generation}"


def instances_generation_local_bump() -> None:
    global _local_generation
    _local_generation = next(_local_imports)


def series_get(*, study_instance_uid: str, series_instance_uid: str) -> DicomSeries:
    try:
        return DicomSeries.objects.select_related("study").get(
            series_instance_uid=series_instance_uid, study__study_instance_uid=study_instance_uid
        )
    except DicomSeries.DoesNotExist:
        raise NotFoundError("No such series in this study") from None


def series_instances(*, series: DicomSeries) -> QuerySet[DicomInstance]:
    return series.instances.order_by("slice_position_mm", "instance_number")


def instance_dataset(instance: DicomInstance) -> pydicom.Dataset:
    return pydicom.dcmread(Path(settings.MEDIA_ROOT) / instance.file_path)


@dataclass(frozen=True)
class SeriesVolume:
    """A series stacked into a (z, y, x) volume in spatial order, with its geometry."""

    volume: np.ndarray
    spacing_mm: tuple[float, float, float]
    sop_instance_uids: tuple[str, ...]
    per_slice_attributes: tuple[dict[str, Any], ...]


_GEOMETRY_TAGS = {"ImagePositionPatient": "00200032", "ImageOrientationPatient": "00200037", "PixelSpacing": "00280030"}


def _slice_attributes(instance: DicomInstance) -> dict[str, Any]:
    """The slice's geometry from the DICOM JSON indexed at import (no file read)."""
    attributes: dict[str, Any] = {}
    for keyword, tag in _GEOMETRY_TAGS.items():
        values = instance.dicom_json.get(tag, {}).get("Value")
        if not values:
            raise ValueError(f"instance {instance.sop_instance_uid} has no {keyword}: its geometry is unknown")
        attributes[keyword] = [float(v) for v in values]
    thickness = instance.dicom_json.get("00180050", {}).get("Value") or [0.0]
    attributes["SliceThickness"] = float(thickness[0])
    return attributes


def series_slice_geometry(*, series: DicomSeries) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    """SOP instance UIDs in spatial order and each slice's geometry attributes, from the index alone."""
    instances = list(series_instances(series=series))
    return tuple(i.sop_instance_uid for i in instances), tuple(_slice_attributes(i) for i in instances)


def series_volume_load(*, series: DicomSeries) -> SeriesVolume:
    instances = list(series_instances(series=series))
    if not instances:
        raise NotFoundError(f"Series {series.series_instance_uid} has no instances")
    shapes = {(i.rows, i.columns) for i in instances}
    if len(shapes) != 1:
        raise ValueError(f"Series {series.series_instance_uid} mixes image sizes {sorted(shapes)}")
    attributes = [_slice_attributes(instance) for instance in instances]
    slices = [instance_dataset(instance).pixel_array.astype(np.float32) for instance in instances]
    row_mm, col_mm = attributes[0]["PixelSpacing"]
    positions = [i.slice_position_mm for i in instances if i.slice_position_mm is not None]
    gaps = np.diff(positions) if len(positions) > 1 else np.array([attributes[0]["SliceThickness"]])
    z_mm = float(np.median(np.abs(gaps))) if len(gaps) else 0.0
    return SeriesVolume(
        volume=np.stack(slices),
        spacing_mm=(z_mm, float(row_mm), float(col_mm)),
        sop_instance_uids=tuple(i.sop_instance_uid for i in instances),
        per_slice_attributes=tuple(attributes),
    )


def series_orientation(*, series: DicomSeries) -> str | None:
    """"sagittal", "coronal" or "axial" from the dominant axis of the slice normal (LPS), else None."""
    first = series.instances.order_by("instance_number").first()
    if first is None:
        return None
    iop = first.dicom_json.get("00200037", {}).get("Value")
    if not iop or len(iop) != 6:
        return None
    normal = np.abs(np.cross(np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float)))
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


@dataclass(frozen=True)
class StudyReidentificationKey:
    """The originals behind one de-identified study: for leads whose study protocol permits re-identification."""

    study_instance_uid: str
    original_study_instance_uid: str
    original_patient_id: str
    original_patient_name: str
    original_accession_number: str
    original_study_date: str
    date_offset_days: int
    # (pseudonymous UID, original UID) for the study's series and instances.
    uids: tuple[tuple[str, str], ...]


def reidentification_permitted(*, user: User, study_instance_uid: str) -> bool:
    """Administrators always; a lead only for a study that is a case of a reader study they lead whose
    ``reidentification_permitted`` flag is set (a ReaderStudy field; absent or False: refused).
    Readers and adjudicators never."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    from spinereview.studies.models import StudyMembership

    memberships = StudyMembership.objects.filter(
        user=user, role=StudyMembership.Role.LEAD, reader_study__cases__dicom_study__study_instance_uid=study_instance_uid
    ).select_related("reader_study")
    return any(getattr(m.reader_study, "reidentification_permitted", False) is True for m in memberships)


def study_reidentification_get(*, user: User, study_instance_uid: str) -> StudyReidentificationKey:
    """The re-identification key of a study; PermissionDeniedError for anyone not permitted (see above)."""
    if not reidentification_permitted(user=user, study_instance_uid=study_instance_uid):
        raise PermissionDeniedError("Re-identification is not permitted for you on this study")
    try:
        record = StudyReidentification.objects.select_related("patient", "dicom_study").get(dicom_study__study_instance_uid=study_instance_uid)
    except StudyReidentification.DoesNotExist:
        raise NotFoundError("This study has no re-identification record") from None
    series = list(DicomSeries.objects.filter(study=record.dicom_study).values_list("series_instance_uid", flat=True))
    instances = list(DicomInstance.objects.filter(series__study=record.dicom_study).values_list("sop_instance_uid", flat=True))
    pairs = PseudonymousUid.objects.filter(uid__in=[study_instance_uid, *series, *instances]).order_by("uid").values_list("uid", "original_uid")
    return StudyReidentificationKey(
        study_instance_uid=study_instance_uid,
        original_study_instance_uid=record.original_study_instance_uid,
        original_patient_id=record.patient.original_patient_id,
        original_patient_name=record.patient.original_patient_name,
        original_accession_number=record.original_accession_number,
        original_study_date=record.original_study_date,
        date_offset_days=record.patient.date_offset_days,
        uids=tuple((str(a), str(b)) for a, b in pairs),
    )


def series_get_by_original_uid(*, original_series_instance_uid: str) -> DicomSeries:
    """The imported series whose SeriesInstanceUID was ``original_series_instance_uid`` before de-identification.

    For server-side tools that hold files from before import (the demo loader's phantom truth); never
    exposed over HTTP, since it would let anyone who knows an original UID find the patient's study.
    """
    uid = PseudonymousUid.objects.filter(original_uid=original_series_instance_uid).values_list("uid", flat=True).first()
    series = DicomSeries.objects.filter(series_instance_uid=uid or original_series_instance_uid).first()
    if series is None:
        raise NotFoundError(f"No imported series came from {original_series_instance_uid}")
    return series
