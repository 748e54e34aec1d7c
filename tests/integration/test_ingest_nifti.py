"""NIfTI import on PostgreSQL: a real 1 mm spine volume becomes a sagittal DICOM series with its labels."""

from __future__ import annotations

import io
import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy, ReferenceSegmentation
from spinereview.imaging.nifti import nifti_read
from spinereview.imaging.selectors import series_orientation, series_volume_load
from spinereview.imaging.services import ImportRejectedError, ImportSource, nifti_import
from spinereview.studies.models import Case, StudyMembership
from tests.factories import make_membership, make_reader_study, make_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "spine-real"


def _voxels(path: Path) -> np.ndarray:
    return nifti_read(path.read_bytes(), name=path.name).data


@pytest.mark.skipif(not (REAL / "IVD_11_image.nii.gz").is_file(), reason="shared real data not present")
def test_real_volume_imports_with_1mm_spacing_sagittal_and_labels(media_root: Path) -> None:
    out = io.StringIO()
    call_command(
        "import_nifti", str(REAL / "IVD_11_image.nii.gz"), "--labels", str(REAL / "IVD_11_labels.nii.gz"),
        "--orientation", "IPR", "--spacing-mm", "1,1,1", stdout=out,
    )
    assert "Imported 67 slice(s) (0 already stored)" in out.getvalue()
    series = DicomSeries.objects.get()
    assert series.instances.count() == 67
    assert series_orientation(series=series) == "sagittal"
    volume = series_volume_load(series=series)
    assert volume.volume.shape == (67, 221, 221)
    assert volume.spacing_mm == (1.0, 1.0, 1.0)
    original = _voxels(REAL / "IVD_11_image.nii.gz")
    # Slice k is the file's axis-2 plane k: IPR puts k at LPS x = -k mm, the normal is (-1, 0, 0), so the spatial order is k.
    assert all(np.array_equal(volume.volume[k], original[:, :, k].astype(np.float32)) for k in (0, 5, 66))
    reference = ReferenceSegmentation.objects.get(series=series)
    assert reference.shape == [67, 221, 221]
    labels = np.load(media_root / reference.file_path)
    assert tuple(reference.sop_instance_uids) == volume.sop_instance_uids
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3, 4, 5]
    manifest_counts = {str(v): int((_voxels(REAL / "IVD_11_labels.nii.gz") == v).sum()) for v in range(1, 6)}
    assert {str(v): int((labels == v).sum()) for v in range(1, 6)} == manifest_counts
    assert reference.label_map == {str(v): f"label {v}" for v in range(1, 6)}
    # Re-import is idempotent.
    call_command("import_nifti", str(REAL / "IVD_11_image.nii.gz"), "--orientation", "IPR", "--spacing-mm", "1,1,1", stdout=io.StringIO())
    assert DicomInstance.objects.count() == 67


@pytest.mark.skipif(not (REAL / "VB2_02_labels.nii.gz").is_file(), reason="shared real data not present")
def test_label_volume_of_another_shape_is_refused_and_nothing_imported(media_root: Path) -> None:
    before = sorted(media_root.rglob("*"))
    with pytest.raises(CommandError, match=r"label volume shape \(381, 381, 77\) differs from the image's \(381, 381, 76\)"):
        call_command("import_nifti", str(REAL / "VB2_02_image.nii.gz"), "--labels", str(REAL / "VB2_02_labels.nii.gz"), "--orientation", "IPR")
    assert DicomStudy.objects.count() == 0
    assert sorted(media_root.rglob("*")) == before


def test_broken_nifti_and_bad_options_are_refused_with_the_file_named(tmp_path: Path) -> None:
    with pytest.raises(ImportRejectedError) as info:
        nifti_import(image=ImportSource("scan.nii.gz", b"\x1f\x8bnot gzip"))
    assert info.value.extra["errors"] == [{"file": "scan.nii.gz", "error": "scan.nii.gz: broken gzip stream (Unknown compression method)"}]
    assert DicomStudy.objects.count() == 0
    (tmp_path / "m.json").write_text(json.dumps({"nope": 1}))
    image = tmp_path / "small.nii.gz"  # a valid volume of our own: the options are what is wrong
    nibabel.save(nibabel.Nifti1Image(np.zeros((6, 5, 4), dtype=np.int16), np.diag([1.0, 1.0, 2.0, 1.0])), image)
    with pytest.raises(CommandError, match="--spacing-mm '1,1' must be three"):
        call_command("import_nifti", str(image), "--spacing-mm", "1,1")
    with pytest.raises(CommandError, match="Cannot read the label map"):
        call_command("import_nifti", str(image), "--label-map", str(tmp_path / "m.json"))
    assert DicomStudy.objects.count() == 0


@pytest.mark.skipif(not (REAL / "VB3_01_image.nii.gz").is_file(), reason="shared real data not present")
def test_nifti_upload_through_the_api_becomes_a_case(media_root: Path) -> None:
    study = make_reader_study()
    lead = make_user(username="lead")
    make_membership(reader_study=study, user=lead, role=StudyMembership.Role.LEAD)
    client = Client()
    client.force_login(lead)
    image = SimpleUploadedFile("VB3_01_image.nii.gz", (REAL / "VB3_01_image.nii.gz").read_bytes())
    bad = client.post("/api/v1/imaging/upload/", {"files": [image], "reader_study": study.slug, "nifti_spacing_mm": "1,x,1"})
    assert (bad.status_code, bad.json()) == (400, {"nifti_spacing_mm": ["three voxel sizes in mm, comma-separated, e.g. 1,1,1"]})
    image.seek(0)
    response = client.post("/api/v1/imaging/upload/", {"files": [image], "reader_study": study.slug, "nifti_orientation": "IPR", "nifti_spacing_mm": "1,1,1"})
    assert response.status_code == 201, response.content
    assert (response.json()["instances_created"], response.json()["new_series"]) == (77, 1)
    series = DicomSeries.objects.get()
    assert series_orientation(series=series) == "sagittal"
    assert series_volume_load(series=series).spacing_mm == (1.0, 1.0, 1.0)
    assert Case.objects.filter(reader_study=study, dicom_study=series.study).count() == 1
    broken = client.post("/api/v1/imaging/upload/", {"files": [SimpleUploadedFile("x.nii", b"\x00" * 500)], "reader_study": study.slug})
    assert broken.status_code == 400
    assert broken.json()["errors"] == [{"file": "x.nii", "error": "x.nii: not a readable NIfTI-1/NIfTI-2 file (bad or truncated header)"}]
    assert DicomInstance.objects.count() == 77
