"""Conformance with a client nobody on the project wrote: dicomweb-client against a live server."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import JPEG2000Lossless
from rest_framework.authtoken.models import Token

from spinereview.imaging.dicomweb import caches_clear
from spinereview.imaging.models import DicomInstance
from tests.dicom_files import mr_slice
from tests.factories import make_user
from tests.unit.imaging.encoded_files import encoded_slice, sample_pixels

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    caches_clear()  # tokens, visibility and instances are cached per process; each test starts clean


def test_store_search_and_retrieve_with_dicomweb_client(live_server: object) -> None:
    token = Token.objects.create(user=make_user(username="tool", is_staff=True))
    client = DICOMwebClient(url=f"{live_server.url}/dicomweb", headers={"Authorization": f"Token {token.key}"})  # type: ignore[attr-defined]
    pixels = sample_pixels()
    files = [pydicom.dcmread(io.BytesIO(mr_slice(z_mm=float(z), study_uid="1.2.41", series_uid="1.2.41.1", rows=8, columns=6))) for z in range(3)]
    files.append(pydicom.dcmread(io.BytesIO(encoded_slice(JPEG2000Lossless, pixels, study_uid="1.2.41", series_uid="1.2.41.2"))))
    stored = client.store_instances(files)
    new_uids = [item.ReferencedSOPInstanceUID for item in stored.ReferencedSOPSequence]
    assert len(new_uids) == 4 and set(new_uids) == set(DicomInstance.objects.values_list("sop_instance_uid", flat=True))
    (study,) = client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"})
    study_uid = study["0020000D"]["Value"][0]
    assert study["00201208"]["Value"] == [4]
    series = client.search_for_series(study_uid)
    assert sorted(s["00201209"]["Value"][0] for s in series) == [1, 3]
    plain = next(s["0020000E"]["Value"][0] for s in series if s["00201209"]["Value"][0] == 3)
    instances = client.search_for_instances(study_uid, plain, limit=2)
    assert len(instances) == 2
    metadata = client.retrieve_series_metadata(study_uid, plain)
    assert [m["00200032"]["Value"][2] for m in metadata] == [0.0, 1.0, 2.0]
    sop = metadata[0]["00080018"]["Value"][0]
    (frame,) = client.retrieve_instance_frames(study_uid, plain, sop, frame_numbers=[1])
    assert np.frombuffer(frame, "<u2").tolist() == list(range(48))
    retrieved = client.retrieve_series(study_uid, plain)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(m["00080018"]["Value"][0] for m in metadata)
    assert all(ds.PatientIdentityRemoved == "YES" for ds in retrieved)
    compressed = next(s["0020000E"]["Value"][0] for s in series if s["00201209"]["Value"][0] == 1)
    (instance,) = client.search_for_instances(study_uid, compressed)
    sop_j2k = instance["00080018"]["Value"][0]
    as_stored = client.retrieve_instance(study_uid, compressed, sop_j2k, media_types=(("application/dicom", "*"),))
    assert as_stored.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert np.array_equal(as_stored.pixel_array, pixels)
    # dicomweb-client asks for transfer-syntax=* unless told otherwise; ask for Explicit VR Little Endian.
    uncompressed = client.retrieve_instance(study_uid, compressed, sop_j2k, media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert uncompressed.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(uncompressed.pixel_array, pixels)
