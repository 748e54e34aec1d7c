"""Serving AI models: per-study activation, the ML-engineer role, the model and job pages and APIs,
checkpoint uploads, progress, queue position and ETA."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from spinereview.ai import selectors
from spinereview.ai.models import InferenceJob, ModelVersion, StudyModel
from spinereview.ai.services import inference_jobs_request, model_version_activate, reader_study_model_clear
from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy
from spinereview.studies.models import AuditEvent, Case, ReaderStudy
from tests.factories import make_reader_study

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def make_model_version(name: str, *, active: bool = False) -> ModelVersion:
    return ModelVersion.objects.create(
        name=name,
        version=f"{name}@{uuid.uuid4().hex[:12]}",
        path=f"/models/{name}",
        label_map={"1": "vertebral_body"},
        config={"architecture": "unet", "encoder": "tu-mobilenetv3_small_100"},
        metrics={"heldout": {"by_structure": {"vertebral_body": {"dice": 0.97, "iou": 0.94}}}},
        is_active=active,
    )


def make_series(*, slices: int = 3, study: DicomStudy | None = None) -> DicomSeries:
    study = study or DicomStudy.objects.create(study_instance_uid=f"1.2.{uuid.uuid4().int % 10**20}")
    series = DicomSeries.objects.create(study=study, series_instance_uid=f"1.3.{uuid.uuid4().int % 10**20}", modality="MR")
    for k in range(slices):
        DicomInstance.objects.create(
            series=series,
            sop_instance_uid=f"1.4.{uuid.uuid4().int % 10**20}",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
            instance_number=k + 1,
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            rows=8,
            columns=8,
            file_path="x.dcm",
            dicom_json={},
        )
    return series


def add_case(study: ReaderStudy, series: DicomSeries) -> Case:
    return Case.objects.create(
        reader_study=study, dicom_study=series.study, label=f"Case {Case.objects.filter(reader_study=study).count() + 1:03d}"
    )


def test_a_study_uses_its_own_model_else_the_global_default() -> None:
    default, special = make_model_version("default", active=True), make_model_version("special")
    chosen, plain = make_reader_study(), make_reader_study()
    assert selectors.model_version_for_reader_study(reader_study=chosen) == default

    chosen_series, plain_series, loose_series = make_series(slices=4), make_series(slices=2), make_series(slices=5)
    add_case(chosen, chosen_series)
    add_case(plain, plain_series)
    queued = model_version_activate(model_version=special, reader_study=chosen, actor="lead")

    assert selectors.model_version_for_reader_study(reader_study=chosen) == special
    assert selectors.model_version_for_case(case=chosen.cases.get()) == special
    assert selectors.model_version_for_reader_study(reader_study=plain) == default
    assert ModelVersion.objects.get(is_active=True) == default  # the default is untouched
    # activating for a study queues the study's model on its series
    assert [(j.series, j.model_version, j.slices) for j in queued] == [(chosen_series, special, 4)]
    event = AuditEvent.objects.get(action="ai.model_activate")
    assert (event.actor, event.details) == ("lead", {"model_version": special.version, "previous": None})

    # a new series runs each model of the studies holding its examination; outside any study, the default
    jobs = inference_jobs_request(series_ids=[chosen_series.pk, plain_series.pk, loose_series.pk])
    assert sorted((j.series_id, j.model_version.name) for j in jobs) == sorted(
        [(chosen_series.pk, "special"), (plain_series.pk, "default"), (loose_series.pk, "default")]
    )
    assert InferenceJob.objects.count() == 3  # the chosen study's job was not queued twice

    # a new global default changes the studies that follow it, not the one that chose
    newer = make_model_version("newer")
    assert model_version_activate(model_version=newer, reader_study=None, actor="ml") == []
    assert list(ModelVersion.objects.filter(is_active=True)) == [newer]
    assert selectors.model_version_for_reader_study(reader_study=plain) == newer
    assert selectors.model_version_for_reader_study(reader_study=chosen) == special

    reader_study_model_clear(reader_study=chosen, actor="lead")
    assert selectors.model_version_for_reader_study(reader_study=chosen) == newer
    assert not StudyModel.objects.exists()


def test_no_model_at_all_queues_nothing() -> None:
    series = make_series()
    assert inference_jobs_request(series_ids=[series.pk]) == []
    assert not InferenceJob.objects.exists()


def test_queue_position_and_eta_from_measured_throughput() -> None:
    fast, slow = make_model_version("fast", active=True), make_model_version("slow")
    now = timezone.now()
    # measured: fast 100 slices in 10 s + 50 in 5 s = 10 slices/s; slow: 20 slices in 10 s = 2 slices/s
    for model, slices, seconds in ((fast, 100, 10.0), (fast, 50, 5.0), (slow, 20, 10.0)):
        InferenceJob.objects.create(
            series=make_series(slices=1),
            model_version=model,
            status=InferenceJob.Status.SUCCEEDED,
            slices=slices,
            compute_seconds=seconds,
            started=now - timedelta(minutes=5),
            finished=now - timedelta(minutes=4),
        )
    running = InferenceJob.objects.create(
        series=make_series(), model_version=fast, status=InferenceJob.Status.RUNNING, slices=40, progress=0.5, started=now
    )
    first = InferenceJob.objects.create(series=make_series(), model_version=slow, slices=10, published=now - timedelta(seconds=30))
    second = InferenceJob.objects.create(series=make_series(), model_version=fast, slices=30, published=now - timedelta(seconds=20))
    failed = InferenceJob.objects.create(series=make_series(), model_version=fast, status=InferenceJob.Status.FAILED, error="boom")

    assert selectors.throughput_slices_per_s(model_version=fast) == pytest.approx(10.0)
    assert selectors.throughput_slices_per_s(model_version=slow) == pytest.approx(2.0)
    queue = selectors.inference_queue(now=now)
    assert failed.pk not in queue
    assert queue[running.pk].position is None
    assert queue[running.pk].eta_seconds == pytest.approx(2.0)  # 20 slices left at 10/s
    assert (queue[first.pk].position, queue[first.pk].eta_seconds) == (1, pytest.approx(2.0 + 5.0))  # then 10 at 2/s
    assert (queue[second.pk].position, queue[second.pk].eta_seconds) == (2, pytest.approx(7.0 + 3.0))  # then 30 at 10/s
    assert queue[second.pk].throughput_source == "this model"

    # a model never measured borrows the others' throughput (and says so)
    unmeasured = make_model_version("unmeasured")
    third = InferenceJob.objects.create(series=make_series(), model_version=unmeasured, slices=17, published=now)
    entry = selectors.inference_queue(now=now)[third.pk]
    assert entry.position == 3 and entry.throughput_source == "other models"
    assert entry.throughput_slices_per_s == pytest.approx(170 / 25)
    assert entry.eta_seconds == pytest.approx(10.0 + 17 / (170 / 25))


def test_ml_engineer_group_holds_the_permission() -> None:
    group = Group.objects.get(name="ML engineers")
    assert list(group.permissions.values_list("content_type__app_label", "codename")) == [("ai", "manage_models")]
