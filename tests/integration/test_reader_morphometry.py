"""Every mask measured on save: the AI's and the reader's go through the same per-level code (DSCA,
canal AP, disc heights, paraspinal muscle CSA and fat fraction from the examination's fat/water pair),
reader-minus-AI deltas are stored and are what the compare view and the agreement summary show, and
masks that cannot be measured say why instead of giving numbers.

The AI here is the phantom's ground truth (as in the end-to-end test), so the AI's numbers are
checked against the phantom's analytic values and the reader's deltas follow from the exact
pixels the reader changed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from ml.labels import LABEL_MAP
from spinereview.ai.level_measurements import ai_level_measurements_compute
from spinereview.ai.models import AILevelMeasurement, AISegmentation, InferenceJob, ModelVersion
from spinereview.imaging.models import DicomInstance, DicomSeries
from spinereview.imaging.services import dicom_instances_import, instances_generation_bump, sources_from_path
from spinereview.morphometry import FAT_WATER_RESAMPLED_METHOD, SignalIntensityModel
from spinereview.reports.selectors import agreement_summary
from spinereview.studies.models import LevelDelta, ReaderStudy, SegmentationVersion, StudyMembership
from spinereview.studies.protocols import DEFAULT_PROTOCOL
from spinereview.studies.services import assignment_create, cases_import
from tests.factories import make_membership, make_reader_study, make_user
from tests.integration.conftest import phantom_cases

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
PROTOCOL = copy.deepcopy(DEFAULT_PROTOCOL) | {
    "segmentation": {"series_role": "axial_t2", "labels": list(LABEL_MAP.values())},
    "compare": True,
}
# The fat/water pair written for the case: these fractions in each side's muscle, F + W = 1000 everywhere.
FAT_FRACTION_PERCENT = {"left": 25.0, "right": 40.0}


def _dixon_series(case_dir: Path, out: Path, truth_axial: np.ndarray, truth_sops: list[str]) -> None:
    """An axial fat and water series on the axial T2's slices, from its DICOM headers."""
    fat = np.zeros(truth_axial.shape, dtype=np.uint16)
    fat[truth_axial == 5] = int(10 * FAT_FRACTION_PERCENT["left"])
    fat[truth_axial == 6] = int(10 * FAT_FRACTION_PERCENT["right"])
    images = {"FAT": fat, "WATER": (1000 - fat).astype(np.uint16)}
    index = {sop: k for k, sop in enumerate(truth_sops)}
    for kind, volume in images.items():
        series_uid = generate_uid()
        for path in sorted((case_dir / "dicom" / "axial_t2").glob("*.dcm")):
            ds = pydicom.dcmread(path)
            k = index[str(ds.SOPInstanceUID)]
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.SeriesDescription = f"AX DIXON {kind}"
            ds.ImageType = ["DERIVED", "PRIMARY", "DIXON", kind]
            ds.SeriesNumber = 7 if kind == "FAT" else 8
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = volume[k].astype("<u2").tobytes()
            (out / kind).mkdir(parents=True, exist_ok=True)
            ds.save_as(out / kind / path.name, enforce_file_format=True)


@pytest.fixture
def case(phantom_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """A phantom examination with its fat/water pair, a reader, and the phantom truth as the AI's masks."""
    case_dir = phantom_cases(phantom_dir)[0]
    truth = json.loads((case_dir / "truth" / "measurements.json").read_text())
    study = make_reader_study(slug="morphometry", protocol=PROTOCOL, ai_visibility=ReaderStudy.AiVisibility.ALWAYS)
    reader = make_user(username="reader-morph")
    make_membership(reader_study=study, user=reader, role=StudyMembership.Role.READER)
    cases_import(sources=sources_from_path(case_dir / "dicom"), reader_study=study)
    case = study.cases.get()
    assignment = assignment_create(case=case, reader=reader)
    model = ModelVersion.objects.create(
        name="phantom-truth",
        version="phantom-truth-morph",
        path="",
        label_map={str(k): v for k, v in LABEL_MAP.items()},
        config={},
        is_active=True,
    )
    by_role: dict[str, dict[str, Any]] = {}
    for case_series in case.case_series.select_related("series"):
        series = case_series.series
        originals = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted((case_dir / "dicom" / case_series.role).glob("*.dcm"))]
        number_by_sop = {str(ds.SOPInstanceUID): int(ds.InstanceNumber) for ds in originals}
        stored = np.load(case_dir / "truth" / f"{originals[0].SeriesInstanceUID}.npz")
        sop_by_number = dict(series.instances.values_list("instance_number", "sop_instance_uid"))
        sops = [sop_by_number[number_by_sop[str(sop)]] for sop in stored["sop_instance_uids"]]
        relative = f"segmentations/ai/{series.series_instance_uid}/truth.npy"
        (Path(settings.MEDIA_ROOT) / relative).parent.mkdir(parents=True, exist_ok=True)
        np.save(Path(settings.MEDIA_ROOT) / relative, stored["labels"].astype(np.uint8))
        job = InferenceJob.objects.create(series=series, model_version=model, status=InferenceJob.Status.SUCCEEDED)
        AISegmentation.objects.create(
            job=job,
            series=series,
            model_version=model,
            label_map=model.label_map,
            shape=list(stored["labels"].shape),
            sop_instance_uids=sops,
            file_path=relative,
        )
        by_role[case_series.role] = {"series": series, "labels": stored["labels"].astype(np.uint8), "ai_file": relative}
        if case_series.role == "axial_t2":
            _dixon_series(case_dir, tmp_path / "dixon", stored["labels"], [str(s) for s in stored["sop_instance_uids"]])
    dicom_instances_import(sources=sources_from_path(tmp_path / "dixon"))
    assert DicomSeries.objects.filter(study=case.dicom_study).count() == 4  # the pair joined the examination
    ai_level_measurements_compute(dicom_study_id=str(case.dicom_study_id), model_version_id=str(model.pk))
    client = APIClient()
    client.force_authenticate(reader)
    return {"study": study, "case": case, "assignment": assignment, "model": model, "truth": truth, "client": client, **by_role}


def _put(setup: dict[str, Any], role: str, data: bytes, version: int) -> Any:
    uid = setup[role]["series"].series_instance_uid
    url = f"/api/v1/assignments/{setup['assignment'].pk}/segmentations/{uid}/labels"
    return setup["client"].put(url, data, content_type="application/octet-stream", headers={"If-Match": f'"{version}"'})


def test_ai_and_reader_masks_are_measured_alike_and_their_deltas_stored_and_shown(case: dict[str, Any]) -> None:
    truth, model = case["truth"], case["model"]
    ai = {row.level: row for row in AILevelMeasurement.objects.filter(model_version=model)}
    axial_spacing = 0.78125  # phantom axial pixels (mm); sagittal 0.9375
    for level in LEVELS:
        row, expected = ai[level], truth["levels"][level]
        assert row.flag == "" and row.errors == {}, (level, row.flag, row.errors)
        assert row.dsca_mm2 == pytest.approx(expected["dsca_mm2"], rel=0.08), level
        assert row.ap_diameter_mm == pytest.approx(expected["canal_ap_mm"], abs=2 * axial_spacing), level
        assert row.disc_height_middle_mm == pytest.approx(expected["disc_height_middle_mm"], abs=2 * 0.9375), level
        assert row.muscle_csa_left_mm2 is not None and row.muscle_csa_left_mm2 > 300.0
        assert row.muscle_fat_fraction_left_percent == pytest.approx(FAT_FRACTION_PERCENT["left"], abs=1e-9)
        assert row.muscle_fat_fraction_right_percent == pytest.approx(FAT_FRACTION_PERCENT["right"], abs=1e-9)
        assert row.muscle_fat_method == FAT_WATER_RESAMPLED_METHOD

    # The reader draws the truth, but takes 40 sac pixels off L4-L5's reference slice and leaves
    # out the left muscle on L3-L4's.
    labels = case["axial_t2"]["labels"].copy()
    k = ai["L4-L5"].axial_slice_index
    rows, cols = np.nonzero(labels[k] == 4)
    labels[k, rows[:40], cols[:40]] = 3
    k3 = ai["L3-L4"].axial_slice_index
    labels[k3][labels[k3] == 5] = 0
    saved = _put(case, "axial_t2", labels.tobytes(), 0)
    assert saved.status_code == 200, saved.json()
    body = saved.json()
    assert body["measurement_error"] == ""
    rows_by_level = {row["level"]: row for row in body["level_measurements"]}
    assert rows_by_level["L4-L5"]["levels_from"] == "the AI's sagittal mask (phantom-truth-morph)"
    assert rows_by_level["L3-L4"]["muscle_csa_left_mm2"] is None
    assert "not labelled on axial slice" in rows_by_level["L3-L4"]["errors"]["muscle_csa_left_mm2"]

    version = SegmentationVersion.objects.get(assignment=case["assignment"], series=case["axial_t2"]["series"])
    deltas = {(d.level, d.quantity): d for d in LevelDelta.objects.filter(segmentation_version=version, model_version=model)}
    removed_mm2 = 40 * axial_spacing**2
    assert deltas[("L4-L5", "dsca_mm2")].delta == pytest.approx(-removed_mm2, abs=0.01)
    for level in ("L1-L2", "L2-L3", "L3-L4", "L5-S1"):
        assert deltas[(level, "dsca_mm2")].delta == 0.0, level
        assert deltas[(level, "ap_diameter_mm")].delta == 0.0, level
        assert deltas[(level, "muscle_fat_fraction_right_percent")].delta == 0.0, level
    left_l3 = deltas[("L3-L4", "muscle_csa_left_mm2")]
    assert (left_l3.reader_value, left_l3.delta) == (None, None) and left_l3.ai_value == round(ai["L3-L4"].muscle_csa_left_mm2 or 0, 2)

    # A later save of the same mask replaces the deltas: the superseded version keeps none.
    assert _put(case, "axial_t2", labels.tobytes(), 1).status_code == 200
    newer = SegmentationVersion.objects.get(assignment=case["assignment"], series=case["axial_t2"]["series"], version=2)
    assert not LevelDelta.objects.filter(segmentation_version=version).exists()
    deltas = {(d.level, d.quantity): d for d in LevelDelta.objects.filter(segmentation_version=newer, model_version=model)}
    assert deltas[("L4-L5", "dsca_mm2")].delta == pytest.approx(-removed_mm2, abs=0.01)

    # The sagittal mask names its own levels; its disc heights match the AI's (the same truth).
    sagittal = _put(case, "sagittal_t2", case["sagittal_t2"]["labels"].tobytes(), 0).json()
    assert sagittal["measurement_error"] == "" and sagittal["level_measurements"][0]["levels_from"] == "this mask"
    sagittal_version = SegmentationVersion.objects.get(assignment=case["assignment"], series=case["sagittal_t2"]["series"])
    heights = LevelDelta.objects.filter(segmentation_version=sagittal_version, quantity="disc_height_middle_mm")
    assert heights.count() == 5 and all(d.delta == 0.0 for d in heights)  # the same truth: exactly 0 at the stored precision

    # The compare view shows the stored deltas, muscles included, with the method of each side.
    compare = case["client"].get(f"/api/v1/assignments/{case['assignment'].pk}/compare/")
    assert compare.status_code == 200
    levels = {row["level"]: row for row in compare.json()["levels"]}
    assert levels["L4-L5"]["dsca_mm2"]["delta"] == deltas[("L4-L5", "dsca_mm2")].delta
    assert levels["L4-L5"]["muscle_fat_fraction_left_percent"] == {"reader": 25.0, "ai": 25.0, "delta": 0.0}
    assert levels["L4-L5"]["muscle_fat_method"] == {"reader": FAT_WATER_RESAMPLED_METHOD, "ai": FAT_WATER_RESAMPLED_METHOD}
    assert levels["L3-L4"]["muscle_csa_left_mm2"]["reader"] is None
    assert levels["L2-L3"]["disc_height_mm"]["delta"] == pytest.approx(0.0, abs=0.01)

    # The agreement summary averages the same stored deltas.
    summary = {row["quantity"]: row for row in agreement_summary(reader_study=case["study"]).as_dict()["mask_deltas_vs_ai"]}
    assert summary["dsca_mm2"]["n"] == 5
    assert summary["dsca_mm2"]["mean_delta"] == pytest.approx(-removed_mm2 / 5, abs=0.01)
    assert summary["muscle_csa_left_mm2"]["n"] == 4  # L3-L4 has no reader value

    # New AI measurements refresh the readers' deltas.
    count = LevelDelta.objects.count()
    LevelDelta.objects.all().delete()
    ai_level_measurements_compute(dicom_study_id=str(case["case"].dicom_study_id), model_version_id=str(model.pk))
    assert LevelDelta.objects.count() == count


def test_masks_that_cannot_be_measured_say_why_through_the_save_api(case: dict[str, Any]) -> None:
    labels = case["axial_t2"]["labels"]
    # Wrong shape for the series: refused, nothing stored.
    refused = _put(case, "axial_t2", labels.tobytes()[:-1], 0)
    assert refused.status_code == 400 and "bytes; this series needs" in refused.json()["detail"]
    assert not SegmentationVersion.objects.exists()
    # Empty: stored (a reader may clear a mask) but not measured, and no delta.
    empty = _put(case, "axial_t2", np.zeros_like(labels).tobytes(), 0)
    assert empty.status_code == 200
    assert empty.json()["measurement_error"] == "the mask is empty (no labelled voxel): nothing to measure"
    assert empty.json()["level_measurements"] == []
    assert not LevelDelta.objects.exists()
    # The series lost a slice's position: no geometry, no numbers.
    instance = DicomInstance.objects.filter(series=case["axial_t2"]["series"]).order_by("instance_number").first()
    assert instance is not None
    original = dict(instance.dicom_json)
    instance.dicom_json = {tag: value for tag, value in instance.dicom_json.items() if tag != "00200032"}
    instance.save(update_fields=["dicom_json"])
    # Only imports change the index, and they change the generation the geometry cache is keyed on: this
    # edit behind the product's back does the same.
    instances_generation_bump()
    broken = _put(case, "axial_t2", labels.tobytes(), 1)
    assert broken.status_code == 200
    assert broken.json()["measurement_error"].startswith("the series has no usable geometry, so its masks cannot be measured")
    assert "ImagePositionPatient" in broken.json()["measurement_error"]
    assert broken.json()["level_measurements"] == [] and not LevelDelta.objects.exists()
    # The AI's measurements of that series say the same, on every level, instead of keeping old numbers.
    compute = {"dicom_study_id": str(case["case"].dicom_study_id), "model_version_id": str(case["model"].pk)}
    ai_level_measurements_compute(**compute)
    for row in AILevelMeasurement.objects.filter(model_version=case["model"]):
        assert row.dsca_mm2 is None and row.muscle_csa_left_mm2 is None and row.ap_diameter_mm is None
        assert "ImagePositionPatient" in row.flag
    # An AI mask whose images are of another size than the series': flagged, never measured on the wrong grid.
    instance.dicom_json = original
    instance.save(update_fields=["dicom_json"])
    np.save(Path(settings.MEDIA_ROOT) / case["axial_t2"]["ai_file"], labels[:, :-1, :])
    ai_level_measurements_compute(**compute)
    for row in AILevelMeasurement.objects.filter(model_version=case["model"]):
        assert row.dsca_mm2 is None and "has shape" in row.flag, row.flag
    # An empty AI mask flags every level instead of reading 0 mm2.
    instance.dicom_json = original
    instance.save(update_fields=["dicom_json"])
    np.save(Path(settings.MEDIA_ROOT) / case["axial_t2"]["ai_file"], np.zeros_like(labels))
    ai_level_measurements_compute(**compute)
    for row in AILevelMeasurement.objects.filter(model_version=case["model"]):
        assert row.dsca_mm2 is None and row.muscle_csa_left_mm2 is None
        assert "axial mask is empty" in row.flag


def test_without_a_fat_water_pair_the_configured_intensity_model_is_used_and_recorded(case: dict[str, Any], settings: Any) -> None:
    for series in DicomSeries.objects.filter(study=case["case"].dicom_study, series_description__startswith="AX DIXON"):
        series.series_description = "AX OTHER"
        series.save(update_fields=["series_description"])
        for instance in series.instances.all():
            instance.dicom_json = {tag: value for tag, value in instance.dicom_json.items() if tag != "00080008"}
            instance.save(update_fields=["dicom_json"])
    compute = {"dicom_study_id": str(case["case"].dicom_study_id), "model_version_id": str(case["model"].pk)}
    # No model for T2 images (the axial series' weighting): CSA measured, fat fraction missing and why.
    settings.MUSCLE_FAT_INTENSITY_MODELS = {"T1": {"muscle_signal": 100.0, "fat_signal": 900.0}}
    ai_level_measurements_compute(**compute)
    row = AILevelMeasurement.objects.get(model_version=case["model"], level="L4-L5")
    assert row.muscle_csa_left_mm2 is not None and row.muscle_fat_fraction_left_percent is None and row.muscle_fat_method == ""
    assert row.errors["muscle_fat_fraction_left_percent"] == "no fat/water pair for this series and no intensity model configured"
    # A T2 model: its method goes with every value.
    config = {"muscle_signal": 50.0, "fat_signal": 4000.0}
    settings.MUSCLE_FAT_INTENSITY_MODELS = {"T2": config}
    ai_level_measurements_compute(**compute)
    method = SignalIntensityModel(muscle_signal=config["muscle_signal"], fat_signal=config["fat_signal"]).method
    for row in AILevelMeasurement.objects.filter(model_version=case["model"]):
        assert row.muscle_fat_method == method
        for value in (row.muscle_fat_fraction_left_percent, row.muscle_fat_fraction_right_percent):
            assert value is not None and 0.0 <= value <= 100.0
    saved = _put(case, "axial_t2", case["axial_t2"]["labels"].tobytes(), 0).json()
    assert {row["muscle_fat_method"] for row in saved["level_measurements"]} == {method}
    # A model that cannot be built is a configuration error, not a silent fallback.
    settings.MUSCLE_FAT_INTENSITY_MODELS = {"T2": {"muscle_signal": 1.0, "fat_signal": 1.0}}
    with pytest.raises(ImproperlyConfigured, match="MUSCLE_FAT_INTENSITY_MODELS\\['T2'\\]"):
        ai_level_measurements_compute(**compute)
