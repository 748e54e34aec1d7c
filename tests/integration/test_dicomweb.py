"""DICOMweb (PS3.18) at /dicomweb/: QIDO-RS, WADO-RS, STOW-RS, caching, CORS and per-study access."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.test import Client
from PIL import Image
from pydicom.uid import JPEGLSLossless
from rest_framework.authtoken.models import Token

from spinereview.accounts.models import User
from spinereview.imaging.dicomweb import caches_clear
from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy
from spinereview.imaging.selectors import series_get_by_original_uid
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import StudyMembership
from spinereview.studies.services import cases_import
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user
from tests.unit.imaging.encoded_files import encoded_slice, sample_pixels
from tests.unit.imaging.phi_files import phi_slice

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    caches_clear()  # tokens, visibility and instances are cached per process; each test starts clean

ORIGINAL_STUDY, ORIGINAL_SERIES = "1.2.826.0.1.7", "1.2.826.0.1.7.1"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'


@dataclass(frozen=True)
class Imported:
    member: User
    lead: User
    study: str  # pseudonymous UIDs given at import
    series: str
    sops: tuple[str, ...]  # in spatial order

    def url(self, suffix: str = "") -> str:
        return f"/dicomweb/studies/{self.study}/series/{self.series}{suffix}"


@pytest.fixture
def imported() -> Imported:
    study = make_reader_study()
    result = cases_import(
        sources=[ImportSource(f"{i}.dcm", mr_slice(z_mm=float(i), study_uid=ORIGINAL_STUDY, series_uid=ORIGINAL_SERIES, rows=4, columns=3)) for i in range(2)],
        reader_study=study,
    )
    (study_uid,) = result.study_instance_uids
    series = series_get_by_original_uid(original_series_instance_uid=ORIGINAL_SERIES)
    member, lead = make_user(username="member"), make_user(username="lead")
    make_membership(reader_study=study, user=member, role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=lead, role=StudyMembership.Role.LEAD)
    sops = tuple(i.sop_instance_uid for i in series.instances.order_by("slice_position_mm"))
    return Imported(member=member, lead=lead, study=study_uid, series=series.series_instance_uid, sops=sops)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _parts(response: object) -> list[tuple[str, bytes]]:
    content_type = response["Content-Type"]  # type: ignore[index]
    boundary = content_type.split("boundary=")[1].strip('"')
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content  # type: ignore[attr-defined]
    parts = []
    for chunk in body.split(f"--{boundary}".encode())[1:-1]:
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        parts.append((head.decode().split(":", 1)[1].strip(), content.removesuffix(b"\r\n")))
    return parts


# --- WADO-RS metadata and frames (the viewer's use) ----------------------------------------------


def test_series_metadata_is_dicom_json_in_spatial_order(imported: Imported) -> None:
    response = _client(imported.member).get(imported.url("/metadata"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    items = response.json()
    assert [item["00200032"]["Value"][2] for item in items] == [0.0, 1.0]
    assert items[0]["00280010"] == {"vr": "US", "Value": [4]}
    assert items[0]["7FE00010"]["BulkDataURI"] == f"http://testserver{imported.url('/instances/')}{imported.sops[0]}/frames/1"
    again = _client(imported.member).get(imported.url("/metadata"), HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_frame_is_multipart_uncompressed_little_endian_with_etag(imported: Imported) -> None:
    client = _client(imported.member)
    response = client.get(imported.url(f"/instances/{imported.sops[0]}/frames/1"), HTTP_ACCEPT=FRAME_ACCEPT)
    assert response.status_code == 200
    content_type = response["Content-Type"]
    assert content_type.startswith('multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1')
    ((part_type, pixels),) = _parts(response)
    assert part_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert np.frombuffer(pixels, dtype="<u2").tolist() == list(range(12))
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    cached = client.get(imported.url(f"/instances/{imported.sops[0]}/frames/1"), HTTP_ACCEPT=FRAME_ACCEPT, HTTP_IF_NONE_MATCH=response["ETag"])
    assert (cached.status_code, cached.content) == (304, b"")
    cornerstone = client.get(imported.url(f"/instances/{imported.sops[0]}/frames/1"), HTTP_ACCEPT="multipart/related; type=application/octet-stream; transfer-syntax=*")
    assert _parts(cornerstone) == [(part_type, pixels)]
    assert client.get(imported.url(f"/instances/{imported.sops[0]}/frames/2")).status_code == 404
    assert client.get(imported.url(f"/instances/{imported.sops[0]}/frames/1"), HTTP_ACCEPT="image/webp").status_code == 406


def test_compressed_frames_are_negotiated(imported: Imported) -> None:
    staff = make_user(username="admin", is_staff=True)
    pixels = sample_pixels()
    cases_import(sources=[ImportSource("jls.dcm", encoded_slice(JPEGLSLossless, pixels, study_uid="1.2.9", series_uid="1.2.9.1"))], reader_study=None)
    instance = DicomInstance.objects.get(transfer_syntax_uid=JPEGLSLossless)
    url = f"/dicomweb/studies/{instance.series.study.study_instance_uid}/series/{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    client = _client(staff)
    ((kind, raw),) = _parts(client.get(f"{url}/frames/1", HTTP_ACCEPT=FRAME_ACCEPT))
    assert kind.endswith("transfer-syntax=1.2.840.10008.1.2.1")
    assert np.array_equal(np.frombuffer(raw, "<u2").reshape(64, 48), pixels)
    ((kind, bitstream),) = _parts(client.get(f"{url}/frames/1", HTTP_ACCEPT='multipart/related; type="image/jls"; transfer-syntax=*'))
    assert kind == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert bitstream[:2] == b"\xff\xd8" and len(bitstream) < pixels.nbytes
    # Whole instance: as stored with transfer-syntax=*, else transcoded to Explicit VR Little Endian.
    ((kind, stored),) = _parts(client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*'))
    assert kind == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80"
    ((kind, plain),) = _parts(client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"'))
    assert kind == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    decoded = pydicom.dcmread(io.BytesIO(plain))
    assert decoded.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(decoded.pixel_array, pixels)
    assert np.array_equal(pydicom.dcmread(io.BytesIO(stored)).pixel_array, pixels)
    refused = client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90')
    assert refused.status_code == 406


# --- WADO-RS retrieve, rendered, thumbnail --------------------------------------------------------


def test_series_and_study_retrieve_are_multipart_dicom(imported: Imported) -> None:
    client = _client(imported.member)
    parts = _parts(client.get(imported.url(), HTTP_ACCEPT='multipart/related; type="application/dicom"'))
    assert [pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID for _, data in parts] == list(imported.sops)
    assert len(_parts(client.get(f"/dicomweb/studies/{imported.study}"))) == 2
    study_metadata = client.get(f"/dicomweb/studies/{imported.study}/metadata").json()
    assert [m["00080018"]["Value"][0] for m in study_metadata] == list(imported.sops)
    (instance_metadata,) = client.get(imported.url(f"/instances/{imported.sops[1]}/metadata")).json()
    assert instance_metadata["00120062"] == {"vr": "CS", "Value": ["YES"]}


def test_rendered_and_thumbnail_apply_the_window(imported: Imported) -> None:
    client = _client(imported.member)
    png = client.get(imported.url(f"/instances/{imported.sops[0]}/rendered"), {"window": "5.5,12"}, HTTP_ACCEPT="image/png")
    assert png["Content-Type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(png.content)))
    # PS3.3 linear window c=5.5, w=12: y = clip((x - 5) / 11 + 0.5, 0, 1) * 255 -> x=0: 11.6, x=6: 150.8, x=11: 255.
    assert image.shape == (4, 3)
    assert (int(image[0, 0]), int(image[2, 0]), int(image[3, 2])) == (12, 151, 255)
    jpeg = client.get(imported.url(f"/instances/{imported.sops[0]}/frames/1/rendered"))
    assert jpeg["Content-Type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
    thumbnail = client.get(imported.url("/thumbnail"), {"viewport": "2,2"}, HTTP_ACCEPT="image/png")
    assert Image.open(io.BytesIO(thumbnail.content)).size == (1, 2)  # 3 x 4 pixels fitted into 2 x 2, aspect kept
    assert client.get(f"/dicomweb/studies/{imported.study}/thumbnail").status_code == 200
    assert client.get(imported.url(f"/instances/{imported.sops[0]}/rendered"), {"window": "5,0"}).status_code == 400


# --- QIDO-RS --------------------------------------------------------------------------------------


def test_qido_studies_matching_wildcards_ranges_includefield_and_paging(imported: Imported) -> None:
    # A second study with dates: StudyDate 20240315 shifted 366..3652 days back lies in 2014-03-15 .. 2023-03-15.
    cases_import(sources=[ImportSource("phi.dcm", phi_slice())], reader_study=None)
    staff = _client(make_user(username="admin", is_staff=True))
    everything = staff.get("/dicomweb/studies").json()
    assert len(everything) == 2
    mine = DicomStudy.objects.get(study_instance_uid=imported.study)
    found = staff.get("/dicomweb/studies", {"PatientID": mine.patient_id}).json()
    assert [s["0020000D"]["Value"][0] for s in found] == [imported.study]
    assert found[0]["00201208"] == {"vr": "IS", "Value": [2]}
    assert found[0]["00080061"] == {"vr": "CS", "Value": ["MR"]}
    assert len(staff.get("/dicomweb/studies", {"PatientName": "anon^*"}).json()) == 2
    assert [s["0020000D"]["Value"][0] for s in staff.get("/dicomweb/studies", {"00100020": mine.patient_id[:-1] + "?"}).json()] == [imported.study]
    assert staff.get("/dicomweb/studies", {"StudyInstanceUID": f"1.2.3,{imported.study}"}).json()[0]["0020000D"]["Value"] == [imported.study]
    dated = DicomStudy.objects.exclude(pk=mine.pk).get()
    assert "20140315" <= dated.study_date <= "20230315"
    in_range = staff.get("/dicomweb/studies", {"StudyDate": "20140101-20230331"}).json()
    assert [s["0020000D"]["Value"][0] for s in in_range] == [dated.study_instance_uid]
    assert in_range[0]["00080020"] == {"vr": "DA", "Value": [dated.study_date]}
    assert staff.get("/dicomweb/studies", {"StudyDate": "20240101-"}).json() == []
    assert len(staff.get("/dicomweb/studies", {"StudyDate": f"-{dated.study_date}"}).json()) == 1
    paged = [staff.get("/dicomweb/studies", {"limit": "1", "offset": str(k)}).json() for k in range(3)]
    assert [len(p) for p in paged] == [1, 1, 0]
    assert paged[0][0]["0020000D"] != paged[1][0]["0020000D"]
    with_field = staff.get("/dicomweb/studies", {"PatientID": mine.patient_id, "includefield": "PatientIdentityRemoved"}).json()
    assert with_field[0]["00120062"] == {"vr": "CS", "Value": ["YES"]}
    fuzzy = staff.get("/dicomweb/studies", {"fuzzymatching": "true"})
    assert "fuzzymatching is not supported" in fuzzy["Warning"]
    bad = staff.get("/dicomweb/studies", {"NotAKeyword": "1"})
    assert (bad.status_code, bad.json()["detail"]) == (400, "NotAKeyword is not a DICOM keyword or tag")
    assert staff.get("/dicomweb/studies", {"limit": "-1"}).status_code == 400
    # A reader finds only the studies of their reader studies.
    assert [s["0020000D"]["Value"][0] for s in _client(imported.member).get("/dicomweb/studies").json()] == [imported.study]


def test_qido_series_and_instances(imported: Imported) -> None:
    client = _client(imported.member)
    (series,) = client.get(f"/dicomweb/studies/{imported.study}/series").json()
    assert series["0020000E"]["Value"] == [imported.series]
    assert series["00201209"] == {"vr": "IS", "Value": [2]}
    assert client.get("/dicomweb/series", {"Modality": "CT"}).json() == []
    instances = client.get(imported.url("/instances")).json()
    assert [i["00080018"]["Value"][0] for i in instances] == list(imported.sops)
    assert instances[0]["00081190"]["Value"][0].endswith(imported.url(f"/instances/{imported.sops[0]}"))
    assert len(client.get("/dicomweb/instances", {"SOPInstanceUID": imported.sops[1]}).json()) == 1


# --- STOW-RS --------------------------------------------------------------------------------------


def _multipart(files: list[bytes], boundary: str = "b0undary") -> bytes:
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + f + b"\r\n" for f in files)
    return body + f"--{boundary}--\r\n".encode()


STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=b0undary'


def test_stow_stores_deidentified_and_answers_with_the_new_uids(imported: Imported) -> None:
    token = Token.objects.create(user=make_user(username="admin", is_staff=True))
    files = [mr_slice(z_mm=float(z), study_uid="1.2.77", series_uid="1.2.77.1") for z in range(3)]
    originals = [str(pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID) for f in files]
    response = Client().post("/dicomweb/studies", _multipart(files), content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    stored = [item["00081155"]["Value"][0] for item in response.json()["00081199"]["Value"]]
    assert len(stored) == 3 and not set(stored) & set(originals)
    assert set(stored) == set(DicomInstance.objects.filter(series__series_instance_uid=series_get_by_original_uid(original_series_instance_uid="1.2.77.1").series_instance_uid).values_list("sop_instance_uid", flat=True))
    again = Client().post("/dicomweb/studies", _multipart(files), content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert [i["00081155"]["Value"][0] for i in again.json()["00081199"]["Value"]] == stored  # idempotent


def test_stow_refuses_bad_input_whole_and_checks_rights(imported: Imported) -> None:
    admin = Token.objects.create(user=make_user(username="admin", is_staff=True))
    before = DicomInstance.objects.count()
    good = mr_slice(study_uid="1.2.78", series_uid="1.2.78.1")
    response = Client().post("/dicomweb/studies", _multipart([good, b"not dicom at all"]), content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {admin.key}")
    assert response.status_code == 409
    failed = response.json()["00081198"]["Value"]
    assert [f["00081197"]["Value"] for f in failed] == [[0x0110], [0xC000]]
    assert "part 2: not a DICOM file" in response["Warning"]
    assert DicomInstance.objects.count() == before
    broken = Client().post("/dicomweb/studies", b"--b0undary\r\nno end", content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {admin.key}")
    assert broken.status_code == 400
    wrong_type = Client().post("/dicomweb/studies", b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Token {admin.key}")
    assert wrong_type.status_code == 415
    reader = Token.objects.create(user=imported.member)
    assert Client().post("/dicomweb/studies", _multipart([good]), content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {reader.key}").status_code == 403
    lead = Token.objects.create(user=imported.lead)
    slug = StudyMembership.objects.get(user=imported.lead).reader_study.slug
    stored = Client().post(f"/dicomweb/studies?reader_study={slug}", _multipart([good]), content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {lead.key}")
    assert stored.status_code == 200
    assert DicomSeries.objects.filter(study__cases__reader_study__slug=slug).count() == 2


def test_stow_one_instance_at_a_time_grows_one_series_and_a_bad_batch_leaves_it_as_it_was(imported: Imported, media_root: Path) -> None:
    """Instances STOWed one per request into a known series join it (one study, one re-identification row);
    a batch with one unreadable part is refused whole: the series keeps its instances and no file is left."""
    from spinereview.imaging.models import PseudonymousUid, StudyReidentification

    admin = Token.objects.create(user=make_user(username="admin", is_staff=True))
    auth = {"HTTP_AUTHORIZATION": f"Token {admin.key}"}
    singles = [mr_slice(z_mm=float(z), study_uid=ORIGINAL_STUDY, series_uid=ORIGINAL_SERIES, rows=4, columns=3) for z in (2, 3)]
    for data in singles:
        response = Client().post("/dicomweb/studies", _multipart([data]), content_type=STOW_TYPE, **auth)  # type: ignore[arg-type]
        assert response.status_code == 200, response.content
        assert response.json()["00081190"]["Value"][0].endswith(f"/studies/{imported.study}")
    series = DicomSeries.objects.get(series_instance_uid=imported.series)
    assert series.instances.count() == 4
    assert DicomStudy.objects.filter(study_instance_uid=imported.study).count() == 1
    assert StudyReidentification.objects.filter(dicom_study__study_instance_uid=imported.study).count() == 1
    files_before = sorted(media_root.rglob("*.dcm"))
    mappings_before = PseudonymousUid.objects.count()
    batch = [*singles, mr_slice(z_mm=4.0, study_uid=ORIGINAL_STUDY, series_uid=ORIGINAL_SERIES, rows=4, columns=3), b"DICM but truncated"]
    refused = Client().post("/dicomweb/studies", _multipart(batch), content_type=STOW_TYPE, **auth)  # type: ignore[arg-type]
    assert refused.status_code == 409
    assert [f["00081197"]["Value"] for f in refused.json()["00081198"]["Value"]] == [[0x0110], [0x0110], [0x0110], [0xC000]]
    assert series.instances.count() == 4
    assert PseudonymousUid.objects.count() == mappings_before
    assert sorted(media_root.rglob("*.dcm")) == files_before
    accepted = Client().post("/dicomweb/studies", _multipart(batch[:3]), content_type=STOW_TYPE, **auth)  # type: ignore[arg-type]
    assert accepted.status_code == 200
    assert series.instances.count() == 5  # the two already stored are skipped, the new one added
    assert len(accepted.json()["00081199"]["Value"]) == 3


@pytest.mark.parametrize("losses", [1, 2])
def test_stow_that_loses_a_race_is_retried_whole_once(imported: Imported, media_root: Path, monkeypatch: pytest.MonkeyPatch, losses: int) -> None:
    """A STOW whose rows collide with a concurrent import's (IntegrityError) is rolled back whole and run again;
    a second collision refuses it with 409, nothing stored and no file left."""
    from django.db import IntegrityError

    from spinereview.imaging import services

    original = services._rows_insert
    left = {"n": losses}

    def racing(*args: object, **kwargs: object) -> object:
        if left["n"]:
            left["n"] -= 1
            raise IntegrityError("duplicate key value violates unique constraint (simulated concurrent import)")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services, "_rows_insert", racing)
    admin = Token.objects.create(user=make_user(username="admin", is_staff=True))
    files_before = sorted(media_root.rglob("*"))
    counts_before = (DicomStudy.objects.count(), DicomSeries.objects.count(), DicomInstance.objects.count())
    files = [mr_slice(z_mm=float(z), study_uid="1.2.79", series_uid="1.2.79.1") for z in range(2)]
    response = Client().post("/dicomweb/studies", _multipart(files), content_type=STOW_TYPE, HTTP_AUTHORIZATION=f"Token {admin.key}")
    if losses == 1:
        assert response.status_code == 200, response.content
        assert (DicomStudy.objects.count(), DicomSeries.objects.count(), DicomInstance.objects.count()) == tuple(
            n + k for n, k in zip(counts_before, (1, 1, 2), strict=True)
        )
        stored = [item["00081155"]["Value"][0] for item in response.json()["00081199"]["Value"]]
        assert DicomInstance.objects.filter(sop_instance_uid__in=stored).count() == 2
    else:
        assert response.status_code == 409
        assert "being imported concurrently" in response["Warning"]
        assert (DicomStudy.objects.count(), DicomSeries.objects.count(), DicomInstance.objects.count()) == counts_before
        assert sorted(media_root.rglob("*")) == files_before


# --- authentication, access, CORS -----------------------------------------------------------------


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("bad token", 401), ("stranger", 404), ("reader", 200), ("lead", 200), ("admin", 200)])
def test_access_by_role(imported: Imported, who: str, status: int) -> None:
    client = Client()
    headers = {}
    if who == "bad token":
        headers["HTTP_AUTHORIZATION"] = "Token wrong"
    elif who == "stranger":
        client.force_login(make_user(username="stranger"))
    elif who == "reader":
        headers["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=imported.member).key}"
    elif who == "lead":
        client.force_login(imported.lead)
    elif who == "admin":
        client.force_login(make_user(username="admin", is_staff=True))
    for url in (imported.url("/metadata"), imported.url(f"/instances/{imported.sops[0]}/frames/1"), f"/dicomweb/studies/{imported.study}/series"):
        assert client.get(url, **headers).status_code == status, url  # type: ignore[arg-type]
    searched = client.get("/dicomweb/studies", **headers)  # type: ignore[arg-type]
    if status == 404:
        assert searched.json() == []


def test_cors_is_off_by_default_and_follows_the_setting(imported: Imported, settings: object) -> None:
    client = _client(imported.member)
    plain = client.get(imported.url("/metadata"), HTTP_ORIGIN="https://viewer.example")
    assert "Access-Control-Allow-Origin" not in plain
    settings.DICOMWEB_CORS_ORIGINS = ["https://viewer.example"]  # type: ignore[attr-defined]
    allowed = client.get(imported.url("/metadata"), HTTP_ORIGIN="https://viewer.example")
    assert allowed["Access-Control-Allow-Origin"] == "https://viewer.example"
    assert "ETag" in allowed["Access-Control-Expose-Headers"]
    other = client.get(imported.url("/metadata"), HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other
    preflight = Client().options(imported.url("/metadata"), HTTP_ORIGIN="https://viewer.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert preflight.status_code == 204
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]


def test_search_answers_are_cached_but_never_miss_a_new_import(imported: Imported) -> None:
    staff = _client(make_user(username="admin", is_staff=True))
    first = staff.get("/dicomweb/studies")
    assert [s["0020000D"]["Value"][0] for s in first.json()] == [imported.study]
    assert staff.get("/dicomweb/studies").content == first.content
    cases_import(sources=[ImportSource("n.dcm", mr_slice(study_uid="1.2.66", series_uid="1.2.66.1"))], reader_study=None)
    assert len(staff.get("/dicomweb/studies").json()) == 2
    assert len(_client(imported.member).get("/dicomweb/studies").json()) == 1  # the reader's own answer, not the staff one


def test_series_retrieve_is_cached_but_never_misses_a_new_instance_nor_skips_access(imported: Imported) -> None:
    member = _client(imported.member)
    first = member.get(imported.url(), HTTP_ACCEPT='multipart/related; type="application/dicom"')
    assert int(first["Content-Length"]) == len(b"".join(first.streaming_content))  # type: ignore[attr-defined]
    assert len(_parts(member.get(imported.url()))) == 2
    extra = mr_slice(z_mm=9.0, study_uid=ORIGINAL_STUDY, series_uid=ORIGINAL_SERIES, rows=4, columns=3)
    (stored,) = cases_import(sources=[ImportSource("extra.dcm", extra)], reader_study=None).stored_instances
    assert (stored.study_instance_uid, stored.series_instance_uid) == (imported.study, imported.series)
    assert [pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID for _, data in _parts(member.get(imported.url()))] == [*imported.sops, stored.sop_instance_uid]
    assert _client(make_user(username="outsider")).get(imported.url()).status_code == 404  # cached files, access still checked
