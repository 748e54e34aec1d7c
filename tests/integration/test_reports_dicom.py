"""DICOM SEG, DICOM SR (TID 1500) and NIfTI exports, read back with highdicom and nibabel."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pytest
from django.test import Client
from pydicom.sr.codedict import codes

from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion
from spinereview.studies.models import ReadVersion
from spinereview.studies.services import assignment_create, segmentation_save
from tests.integration import test_reports

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

reports_study = test_reports.reports_study  # the shared study fixture
API = "/api/v1/reader-studies/reports-study"
# A 1 x 4 x 3 mask: dural sac (protocol value 4) in the upper rows, spinal canal (3) around it.
MASK = np.array([[[4, 4, 0], [4, 3, 0], [3, 3, 0], [0, 0, 0]]], dtype=np.uint8)


def _lead(study: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(study["users"]["lead"])
    return client


@pytest.fixture
def masks(reports_study: dict[str, Any], media_root: Path) -> dict[str, Any]:
    case = reports_study["cases"]["Case 001"]
    series = case.case_series.get().series
    reader = reports_study["users"]["r3"]
    assignment = assignment_create(case=case, reader=reader)
    version = segmentation_save(assignment=assignment, user=reader, series_instance_uid=series.series_instance_uid, base_version=0, data=MASK.tobytes())
    model = ModelVersion.objects.create(name="unet-demo", version="unet-demo@0123456789ab", path="/none", label_map={"3": "spinal_canal", "4": "dural_sac"}, config={}, is_active=True)
    job = InferenceJob.objects.create(series=series, model_version=model, status=InferenceJob.Status.SUCCEEDED)
    ai_labels = np.array([[[4, 4, 4], [4, 3, 0], [3, 0, 0], [0, 0, 0]]], dtype=np.uint8)
    (media_root / "segmentations/ai").mkdir(parents=True, exist_ok=True)
    relative = f"segmentations/ai/{job.pk}.npy"
    np.save(media_root / relative, ai_labels)
    ai = AISegmentation.objects.create(
        job=job, series=series, model_version=model, label_map={"3": "spinal_canal", "4": "dural_sac"}, shape=[1, 4, 3],
        sop_instance_uids=[series.instances.get().sop_instance_uid], file_path=relative,
    )  # fmt: skip
    return reports_study | {"version": version, "ai": ai, "ai_labels": ai_labels, "series": series}


def test_reader_mask_as_dicom_seg_reads_back_with_highdicom(masks: dict[str, Any]) -> None:
    response = _lead(masks).get(f"{API}/segmentations/{masks['version'].pk}/seg.dcm")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    seg = hd.seg.segread(io.BytesIO(response.content))
    assert seg.SegmentationType == "BINARY" and seg.ContentCreatorName == "r3^"
    sac, canal = seg.get_segment_description(2), seg.get_segment_description(1)  # protocol values 3, 4 -> segments 1, 2
    assert (canal.segment_label, sac.segment_label) == ("Spinal canal", "Dural sac")
    assert (canal.segmented_property_type.value, canal.segmented_property_type.scheme_designator) == ("61853006", "SCT")
    assert (sac.segmented_property_type.value, sac.segmented_property_type.meaning) == ("18545000", "Dura mater")
    assert sac.segmented_property_category == codes.SCT.AnatomicalStructure
    assert canal.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.MANUAL
    source_uid = masks["series"].instances.get().sop_instance_uid
    pixels = seg.get_pixels_by_source_instance([source_uid], combine_segments=True)
    assert pixels.shape == (1, 4, 3)
    np.testing.assert_array_equal(pixels, np.where(MASK == 4, 2, np.where(MASK == 3, 1, 0)))


def test_ai_mask_as_dicom_seg_names_the_model(masks: dict[str, Any]) -> None:
    response = _lead(masks).get(f"{API}/ai-segmentations/{masks['ai'].pk}/seg.dcm")
    assert response.status_code == 200
    seg = hd.seg.segread(io.BytesIO(response.content))
    description = seg.get_segment_description(2)
    assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    algorithm = description.algorithm_identification
    assert algorithm is not None
    assert (algorithm[0].AlgorithmName, algorithm[0].AlgorithmVersion) == ("unet-demo", "unet-demo@0123456789ab")
    assert "ContentCreatorName" not in seg
    pixels = seg.get_pixels_by_source_instance([masks["series"].instances.get().sop_instance_uid], combine_segments=True)
    np.testing.assert_array_equal(pixels, np.where(masks["ai_labels"] == 4, 2, np.where(masks["ai_labels"] == 3, 1, 0)))


def test_masks_as_nifti_keep_label_values_and_geometry(masks: dict[str, Any]) -> None:
    client = _lead(masks)
    for url, labels in ((f"{API}/segmentations/{masks['version'].pk}/labels.nii.gz", MASK), (f"{API}/ai-segmentations/{masks['ai'].pk}/labels.nii.gz", masks["ai_labels"])):
        response = client.get(url)
        assert response.status_code == 200
        image = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
        np.testing.assert_array_equal(np.asarray(image.dataobj), np.transpose(labels, (2, 1, 0)))
        # position (0, 0, 10) LPS, rows along +x, 0.5 mm pixels, one 4 mm slice -> RAS diag(-0.5, -0.5, 4)
        np.testing.assert_allclose(image.affine, np.array([[-0.5, 0, 0, 0], [0, -0.5, 0, 0], [0, 0, 4, 10], [0, 0, 0, 1]], dtype=float))


def test_read_measurements_as_tid_1500_sr(masks: dict[str, Any]) -> None:
    read = ReadVersion.objects.get(assignment__reader__username="r1", assignment__case__label="Case 001", submitted=True)
    response = _lead(masks).get(f"{API}/reads/{read.pk}/sr.dcm")
    assert response.status_code == 200
    sr = hd.sr.srread(io.BytesIO(response.content))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    report = hd.sr.MeasurementReport.from_sequence([sr])  # the document root is the TID 1500 container
    (group,) = report.get_image_measurement_groups()
    (measurement,) = group.get_measurements()
    assert measurement.name == codes.SCT.Diameter and measurement.value == 11.5 and measurement.unit.value == "mm"
    assert group.tracking_identifier == "ap_diameter.length_mm L4-L5"
    assert [s.value.value for s in group.finding_sites] == ["243923001"]  # Level of L4/L5 intervertebral disc
    names = [item.PersonName for item in sr.ContentSequence if item.ConceptNameCodeSequence[0].CodeValue == "121008"]  # Person Observer Name
    assert names == ["r1^"]


def test_unknown_or_other_studies_masks_are_not_found(masks: dict[str, Any]) -> None:
    client = _lead(masks)
    assert client.get(f"{API}/segmentations/00000000-0000-4000-8000-000000000000/seg.dcm").status_code == 404
    read_without_measurements = ReadVersion.objects.filter(submitted=False).first()
    if read_without_measurements is not None:
        assert client.get(f"{API}/reads/{read_without_measurements.pk}/sr.dcm").status_code == 404  # unsubmitted
    reader = Client()
    reader.force_login(masks["users"]["r3"])  # the mask's own reader: still not a supervisor
    assert reader.get(f"{API}/segmentations/{masks['version'].pk}/seg.dcm").status_code == 404


def test_reader_masks_are_compared_with_the_ai_in_the_report(masks: dict[str, Any]) -> None:
    from spinereview.agreement import hd95_error
    from spinereview.reports.selectors import study_inputs
    from spinereview.reports.services import agreement_report_compute

    comparisons = {m.structure: m for m in study_inputs(reader_study=masks["study"]).masks}
    assert set(comparisons) == {"dural_sac", "spinal_canal"} and {m.reader for m in comparisons.values()} == {"r3"}
    assert comparisons["dural_sac"].dice == pytest.approx(6 / 7)  # 3 reader voxels, 4 AI voxels, 3 shared
    assert comparisons["spinal_canal"].dice == pytest.approx(4 / 5)  # 3 and 2 voxels, 2 shared
    spacing_mm = (4.0, 0.5, 0.5)  # one 4 mm slice of 0.5 mm pixels
    assert comparisons["dural_sac"].hd95_mm == pytest.approx(hd95_error(MASK == 4, masks["ai_labels"] == 4, spacing_mm))
    rows = {r["structure"]: r for r in agreement_report_compute(reader_study=masks["study"], n_resamples=100).report["masks"]}
    assert rows["dural_sac"]["dice"]["estimate"] == pytest.approx(6 / 7) and rows["dural_sac"]["n"] == 1
    assert rows["dural_sac"]["dice"]["ci_low"] is None  # one patient: no bootstrap interval
