"""WADO-RS metadata and frames, with per-study access."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from spinereview.imaging.selectors import series_get_by_original_uid
from spinereview.imaging.services import ImportSource
from spinereview.studies.models import StudyMembership
from spinereview.studies.services import cases_import
from tests.dicom_files import mr_slice
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ORIGINAL_STUDY, ORIGINAL_SERIES = "1.2.826.0.1.7", "1.2.826.0.1.7.1"
# Pseudonymous UIDs given at import (de-identification remaps every UID); set by the fixture.
STUDY = SERIES = ""


@pytest.fixture
def member() -> object:
    global STUDY, SERIES
    study = make_reader_study()
    result = cases_import(
        sources=[ImportSource(f"{i}.dcm", mr_slice(z_mm=float(i), study_uid=ORIGINAL_STUDY, series_uid=ORIGINAL_SERIES, rows=4, columns=3)) for i in range(2)],
        reader_study=study,
    )
    (STUDY,) = result.study_instance_uids
    SERIES = series_get_by_original_uid(original_series_instance_uid=ORIGINAL_SERIES).series_instance_uid
    user = make_user(username="member")
    make_membership(reader_study=study, user=user, role=StudyMembership.Role.READER)
    return user


def test_series_metadata_is_dicom_json_in_spatial_order(member: object) -> None:
    client = Client()
    client.force_login(member)  # type: ignore[arg-type]
    response = client.get(f"/dicomweb/studies/{STUDY}/series/{SERIES}/metadata")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    items = response.json()
    assert [item["00200032"]["Value"][2] for item in items] == [0.0, 1.0]
    assert items[0]["00280010"] == {"vr": "US", "Value": [4]}
    assert items[0]["7FE00010"]["BulkDataURI"].endswith("/frames/1")


def test_frame_is_multipart_uncompressed_little_endian(member: object) -> None:
    client = Client()
    client.force_login(member)  # type: ignore[arg-type]
    sop = client.get(f"/dicomweb/studies/{STUDY}/series/{SERIES}/metadata").json()[0]["00080018"]["Value"][0]
    response = client.get(f"/dicomweb/studies/{STUDY}/series/{SERIES}/instances/{sop}/frames/1", HTTP_ACCEPT='multipart/related; type="application/octet-stream"')
    assert response.status_code == 200
    content_type = response["Content-Type"]
    assert content_type.startswith('multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1')
    boundary = content_type.split("boundary=")[1]
    body = response.content
    head, rest = body.split(b"\r\n\r\n", 1)
    assert head.startswith(f"--{boundary}".encode())
    pixels = rest[: 4 * 3 * 2]
    assert np.frombuffer(pixels, dtype="<u2").tolist() == list(range(12))
    assert rest[4 * 3 * 2 :] == f"\r\n--{boundary}--\r\n".encode()
    missing = client.get(f"/dicomweb/studies/{STUDY}/series/{SERIES}/instances/{sop}/frames/2")
    assert missing.status_code == 404


def test_token_authentication_and_access_control(member: object) -> None:
    url = f"/dicomweb/studies/{STUDY}/series/{SERIES}/metadata"
    assert Client().get(url).status_code == 401
    token = Token.objects.create(user=member)  # type: ignore[misc]
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    assert Client().get(url, HTTP_AUTHORIZATION="Token wrong").status_code == 401
    stranger = make_user(username="stranger")
    client = Client()
    client.force_login(stranger)
    assert client.get(url).status_code == 404
