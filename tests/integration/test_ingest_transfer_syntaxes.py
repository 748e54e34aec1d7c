"""A series whose slices use every lossless transfer syntax: stored, decoded for the AI, served uncompressed."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from pydicom.uid import UID

from spinereview.imaging.models import DicomInstance, DicomSeries
from spinereview.imaging.selectors import series_volume_load
from spinereview.imaging.services import ImportSource, dicom_instances_import
from tests.factories import make_user
from tests.unit.imaging.encoded_files import LOSSLESS, encoded_slice, sample_pixels

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_mixed_syntaxes_decode_to_the_originals_for_volume_and_frames() -> None:
    originals = [sample_pixels(seed=k) for k in range(len(LOSSLESS))]
    sources = [ImportSource(f"{k}.dcm", encoded_slice(s, originals[k], study_uid="1.2.5", series_uid="1.2.5.1", z_mm=2.0 * k)) for k, s in enumerate(LOSSLESS)]
    result = dicom_instances_import(sources=sources)
    assert result.instances_created == len(LOSSLESS)
    series = DicomSeries.objects.get()
    stored = [UID(i.transfer_syntax_uid) for i in series.instances.order_by("slice_position_mm")]
    assert stored == [UID(s) for s in LOSSLESS]
    volume = series_volume_load(series=series)
    assert volume.spacing_mm == (2.0, 0.5, 0.5)
    assert np.array_equal(volume.volume, np.stack(originals).astype(np.float32))
    client = Client()
    client.force_login(make_user(username="admin", is_staff=True))
    for k, instance in enumerate(DicomInstance.objects.order_by("slice_position_mm")):
        response = client.get(f"/dicomweb/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}/instances/{instance.sop_instance_uid}/frames/1")
        assert response.status_code == 200
        boundary = response["Content-Type"].split("boundary=")[1]
        part = response.content.split(b"\r\n\r\n", 1)[1].rsplit(f"\r\n--{boundary}--".encode(), 1)[0]
        assert np.array_equal(np.frombuffer(part, dtype="<u2").reshape(64, 48), originals[k]), UID(LOSSLESS[k]).name
