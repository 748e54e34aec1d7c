"""De-identification on import: no original identifying value is stored or served anywhere.

Imports a study full of PHI (names, IDs, dates, UIDs, institution, physicians, private tags)
through the upload API, then searches the stored files, every database row outside the
re-identification tables, the API and DICOMweb responses, and the log records for each original.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import pytest
from django.apps import apps
from django.core import serializers
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from spinereview.core.errors import PermissionDeniedError
from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy, PseudonymousPatient, PseudonymousUid, StudyReidentification
from spinereview.imaging.selectors import series_get_by_original_uid, study_reidentification_get
from spinereview.imaging.services import ImportRejectedError, ImportSource, dicom_instances_import
from spinereview.studies.models import ReaderStudy, StudyMembership
from tests.factories import make_membership, make_reader_study, make_user
from tests.unit.imaging.phi_files import PHI_VALUES, SERIES_UIDS, STUDY_UID, original_uids, phi_slice, phi_strings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

_REIDENTIFICATION_TABLES = {PseudonymousPatient, PseudonymousUid, StudyReidentification}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for series in (0, 1):
            for index in range(3):
                archive.writestr(f"s{series}/IM{index}.dcm", phi_slice(series=series, index=index))
    return buffer.getvalue()


def _found(blob: bytes | str, strings: list[str]) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [s for s in strings if s.encode() in data]


@pytest.fixture
def imported(media_root: Path, caplog: pytest.LogCaptureFixture) -> dict[str, object]:
    caplog.set_level(logging.DEBUG)
    study = make_reader_study()
    lead, reader, admin = make_user(username="lead"), make_user(username="reader"), make_user(username="admin", is_staff=True)
    make_membership(reader_study=study, user=lead, role=StudyMembership.Role.LEAD)
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    client = Client()
    client.force_login(lead)
    response = client.post("/api/v1/imaging/upload/", {"files": [SimpleUploadedFile("DOE_JANE.zip", _zip())], "reader_study": study.slug})
    assert response.status_code == 201, response.content
    return {"response": response, "lead": lead, "reader": reader, "admin": admin, "study": study}


def test_nothing_original_is_stored_or_served(imported: dict[str, object], media_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    strings = phi_strings()
    assert _found(imported["response"].content, strings) == []  # type: ignore[attr-defined]
    # Files on disk.
    study = DicomStudy.objects.get()
    files = [media_root / i.file_path for i in DicomInstance.objects.all()]
    assert len(files) == 6
    for path in files:
        assert _found(path.read_bytes(), strings) == [], path
    # Every database row outside the re-identification tables.
    for model in apps.get_models():
        if model in _REIDENTIFICATION_TABLES:
            continue
        dump = serializers.serialize("json", model._default_manager.all())
        assert _found(dump, strings) == [], model.__name__
    # ... while the re-identification tables do hold them (the search above can find them).
    assert _found(serializers.serialize("json", PseudonymousPatient.objects.all()), strings) == sorted(
        [PHI_VALUES["PatientName"], PHI_VALUES["PatientID"], PHI_VALUES["IssuerOfPatientID"], "Doe", "Jane", "Marie"]
    )
    # What readers are served.
    client = Client()
    client.force_login(imported["reader"])  # type: ignore[arg-type]
    for series in study.series.all():
        metadata = client.get(f"/dicomweb/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/metadata")
        assert metadata.status_code == 200
        assert _found(metadata.content, strings) == []
        for instance in series.instances.all():
            frame = client.get(f"/dicomweb/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}/frames/1")
            assert frame.status_code == 200
            assert _found(frame.content, strings) == []
    assignments = client.get("/api/v1/assignments/")
    assert _found(assignments.content, strings) == []
    # Logs.
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert any("Imported 6 instance(s)" in r.getMessage() for r in records)
    assert _found("\n".join(f"{r.getMessage()} {r.args}" for r in records), strings) == []


def test_study_is_pseudonymous_consistent_and_geometry_kept(imported: dict[str, object]) -> None:
    study = DicomStudy.objects.get()
    assert study.study_instance_uid.startswith("2.25.")
    assert study.patient_id.startswith("SR-") and study.patient_name.startswith("ANON^")
    patient = PseudonymousPatient.objects.get()
    assert -3652 <= patient.date_offset_days <= -366
    series = list(DicomSeries.objects.order_by("series_number"))
    assert [s.series_description for s in series] == ["T2 SAG 0", "T2 SAG 1"]
    assert series[0].frame_of_reference_uid == series[1].frame_of_reference_uid != ""
    first = series[0].instances.order_by("instance_number").first()
    assert first is not None
    for instance in DicomInstance.objects.all():
        assert instance.dicom_json["00081140"]["Value"][0]["00081155"]["Value"] == [first.sop_instance_uid]
        assert instance.dicom_json["00120062"]["Value"] == ["YES"]
        assert instance.dicom_json["00280030"]["Value"] == [0.625, 0.75]
    assert [i.slice_position_mm for i in series[0].instances.all()] == [2.0, 6.0, 10.0]  # normal (-1, 0, 0): position = -x


def test_reimport_maps_to_the_same_pseudonyms_and_is_idempotent(imported: dict[str, object]) -> None:
    result = dicom_instances_import(sources=[ImportSource("again.dcm", phi_slice(series=1, index=2))])
    assert (result.instances_created, result.instances_skipped) == (0, 1)
    assert result.study_instance_uids == (DicomStudy.objects.get().study_instance_uid,)
    assert PseudonymousPatient.objects.count() == 1


def test_reidentification_for_administrators_never_for_readers(imported: dict[str, object]) -> None:
    study = DicomStudy.objects.get()
    key = study_reidentification_get(user=imported["admin"], study_instance_uid=study.study_instance_uid)  # type: ignore[arg-type]
    assert (key.original_study_instance_uid, key.original_patient_id, key.original_patient_name) == (STUDY_UID, "MRN-4711-0815", "Doe^Jane^Marie")
    assert (key.original_accession_number, key.original_study_date) == ("ACC998877", "20240315")
    assert key.date_offset_days == PseudonymousPatient.objects.get().date_offset_days
    assert {original for _, original in key.uids} == original_uids() - {"1.2.826.0.1.3680043.9.4711.9"}
    for user in ("reader", "lead"):  # a lead only where the reader study permits it; not set here
        with pytest.raises(PermissionDeniedError):
            study_reidentification_get(user=imported[user], study_instance_uid=study.study_instance_uid)  # type: ignore[arg-type]
    assert series_get_by_original_uid(original_series_instance_uid=SERIES_UIDS[1]).series_number == 2


def test_reidentification_for_leads_of_permitting_studies(imported: dict[str, object]) -> None:
    study = DicomStudy.objects.get()
    reader_study = imported["study"]
    ReaderStudy.objects.filter(pk=reader_study.pk).update(reidentification_permitted=True)  # type: ignore[attr-defined]
    key = study_reidentification_get(user=imported["lead"], study_instance_uid=study.study_instance_uid)  # type: ignore[arg-type]
    assert key.original_patient_id == "MRN-4711-0815"
    with pytest.raises(PermissionDeniedError):
        study_reidentification_get(user=imported["reader"], study_instance_uid=study.study_instance_uid)  # type: ignore[arg-type]


def test_burned_in_annotation_refuses_the_batch() -> None:
    with pytest.raises(ImportRejectedError) as info:
        dicom_instances_import(sources=[ImportSource("ok.dcm", phi_slice()), ImportSource("burned.dcm", phi_slice(index=1, burned_in="YES"))])
    assert info.value.extra["errors"][0]["file"] == "burned.dcm"
    assert "BurnedInAnnotation is YES" in info.value.extra["errors"][0]["error"]
    assert (DicomStudy.objects.count(), PseudonymousPatient.objects.count(), PseudonymousUid.objects.count()) == (0, 0, 0)
