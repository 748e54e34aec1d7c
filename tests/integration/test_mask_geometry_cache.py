"""The slice geometry a mask save measures with is cached per import generation: read from the index once,
and read again as soon as an import adds instances to the series."""

from __future__ import annotations

import io

import pydicom
import pytest

from spinereview.imaging.models import DicomSeries
from spinereview.imaging.services import ImportSource, dicom_instances_import
from spinereview.studies.services.mask_measurements import _geometry
from tests.dicom_files import mr_slice

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _slice(z_mm: float) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(mr_slice(z_mm=z_mm, study_uid="1.2.826.0.1.61", series_uid="1.2.826.0.1.61.1")))
    ds.SliceThickness = 1.0
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _import(*z_mm: float) -> DicomSeries:
    dicom_instances_import(sources=[ImportSource(f"{z}.dcm", _slice(z)) for z in z_mm])
    return DicomSeries.objects.get()


def test_geometry_is_read_once_then_again_after_an_import_adds_a_slice(django_assert_num_queries: object) -> None:
    series = _import(0.0, 1.0, 2.0)
    assert len(_geometry(series).slices) == 3
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert len(_geometry(series).slices) == 3
    series = _import(3.0)
    geometry = _geometry(series)
    assert len(geometry.slices) == 4
    assert [float(s.image_position_mm[2]) for s in geometry.slices] == [0.0, 1.0, 2.0, 3.0]
