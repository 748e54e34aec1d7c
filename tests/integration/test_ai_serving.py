"""Serving AI models: per-study activation, the ML-engineer role, the model and job pages and APIs,
checkpoint uploads, progress, queue position and ETA."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from ml.checkpoint import model_version as checkpoint_version
from ml.training.train import PRESETS, train
from spinereview.accounts.models import User
from spinereview.ai import selectors
from spinereview.ai.models import InferenceJob, ModelVersion, StudyModel
from spinereview.ai.services import inference_jobs_request, model_version_activate, model_version_verify, reader_study_model_clear
from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy
from spinereview.studies.models import AuditEvent, Case, ReaderStudy, StudyMembership
from tests.factories import make_membership, make_reader_study, make_user

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


# --- the model and job pages and APIs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint folder written by the training code (a few iterations: weights, config, metrics, card)."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny-serving"
    cfg = dataclasses.replace(
        PRESETS["test"],
        preset="serving-test",
        cases=1,
        iterations=2,
        batch_size=2,
        canvas=64,
        heldout_cases=1,
        time_budget_s=None,
        name="tiny-serving",
        threads=1,
    )
    train(cfg, out, log=lambda _: None)
    return out


def _zip_folder(folder: Path, *, top: str | None = "tiny-serving", skip: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name not in skip:
                relative = path.relative_to(folder).as_posix()
                zf.write(path, f"{top}/{relative}" if top else relative)
    return buffer.getvalue()


def _client(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def people() -> dict[str, User]:
    study, other = make_reader_study(slug="alpha"), make_reader_study(slug="beta")
    people = {name: make_user(username=name) for name in ("engineer", "lead", "reader", "adjudicator", "otherlead")}
    people["engineer"].groups.add(Group.objects.get(name="ML engineers"))
    make_membership(reader_study=study, user=people["lead"], role=StudyMembership.Role.LEAD)
    make_membership(reader_study=study, user=people["reader"], role=StudyMembership.Role.READER)
    make_membership(reader_study=study, user=people["adjudicator"], role=StudyMembership.Role.ADJUDICATOR)
    make_membership(reader_study=other, user=people["otherlead"], role=StudyMembership.Role.LEAD)
    add_case(study, make_series(slices=3))
    add_case(other, make_series(slices=2))
    return people


def _stored_models(media_root: Path) -> list[str]:
    root = media_root / "models"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_upload_a_checkpoint_zip_or_folder_and_refuse_broken_ones(
    people: dict[str, User], tiny_checkpoint: Path, media_root: Path, tmp_path: Path
) -> None:
    engineer = _client(people["engineer"])
    url = "/api/v1/ai/model-versions/"
    before = _stored_models(media_root)

    def post(files: list[tuple[str, bytes]], *, paths: list[str] | None = None, activate: bool = False) -> Any:
        data: dict[str, Any] = {
            "files": [SimpleUploadedFile(name.rsplit("/", 1)[-1], content) for name, content in files],
            "activate": activate,
        }
        data["paths"] = paths if paths is not None else [name for name, _ in files]
        return engineer.post(url, data, format="multipart")

    def folder_files(folder: Path) -> list[tuple[str, bytes]]:
        return [(f"tiny-serving/{p.relative_to(folder).as_posix()}", p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]

    # refused, each with its reason, storing nothing
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    weights = (broken / "weights.pt").read_bytes()
    (broken / "weights.pt").write_bytes(weights[: len(weights) // 2])
    response = post([("broken.zip", _zip_folder(broken))])
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Checkpoint refused: weights.pt is not a readable torch checkpoint")
    response = post([("tiny.zip", _zip_folder(tiny_checkpoint, skip=("config.json",)))])
    assert response.status_code == 400 and "has no config.json" in response.json()["detail"]
    assert "/tmp" not in response.json()["detail"] and ".upload-" not in response.json()["detail"]
    response = post([("evil", b"x")], paths=["../evil"])
    assert response.status_code == 400 and "unsafe file name" in response.json()["detail"]
    response = post([("a.zip", b"not a zip at all")])
    assert response.status_code == 400 and "the .zip is unreadable" in response.json()["detail"]
    response = post([("weights.pt", weights)], paths=["a", "b"])
    assert response.status_code == 400 and "2 paths for 1 files" in response.json()["detail"]
    assert _stored_models(media_root) == before
    assert not ModelVersion.objects.exists()

    # accepted: the zip, stored under MEDIA_ROOT/models/<version>/ and registered with its card and scores;
    # usable (and the default it asked to be) once a worker has loaded its weights
    response = post([("tiny-serving.zip", _zip_folder(tiny_checkpoint))], activate=True)
    assert response.status_code == 201, response.json()
    body = response.json()
    version = body["version"]
    # the checkpoint's own version: its weights and its calibration offsets (ml.checkpoint.model_version)
    assert version == checkpoint_version("tiny-serving", tiny_checkpoint / "weights.pt", json.loads((tiny_checkpoint / "config.json").read_text()))
    assert (body["status"], body["is_default"], body["created_now"]) == ("verifying", False, True)
    uploaded = ModelVersion.objects.get(version=version)
    refused_activation = engineer.post(f"/api/v1/ai/model-versions/{uploaded.pk}/activate/", {}, format="json")
    assert refused_activation.status_code == 400 and "still being verified" in refused_activation.json()["detail"]
    assert model_version_verify(model_version_id=str(uploaded.pk)).status == ModelVersion.Status.READY  # type: ignore[union-attr]
    body = engineer.get(url).json()[0]
    assert (body["status"], body["is_default"], body["refusal"]) == ("ready", True, "")
    assert body["model_card"] == (tiny_checkpoint / "model_card.md").read_text()
    assert body["metrics"] == json.loads((tiny_checkpoint / "metrics.json").read_text())
    stored = media_root / "models" / version
    assert (stored / "weights.pt").read_bytes() == (tiny_checkpoint / "weights.pt").read_bytes()
    assert ModelVersion.objects.get().path == str(stored.resolve())
    assert _stored_models(media_root) == sorted([*before, version])
    # the same folder again (a browser folder upload): nothing new
    response = post(folder_files(tiny_checkpoint))
    assert (response.status_code, response.json()["created_now"], response.json()["version"]) == (200, False, version)
    assert ModelVersion.objects.count() == 1 and _stored_models(media_root) == sorted([*before, version])


def test_weights_that_do_not_fit_their_architecture_are_refused_by_the_worker(
    people: dict[str, User], tiny_checkpoint: Path, media_root: Path, tmp_path: Path
) -> None:
    """The web process checks what it can without torch; the worker's load finds weights for another
    architecture, refuses the version with the reason and removes its files; it can never be activated."""
    engineer = _client(people["engineer"])
    other_arch = tmp_path / "other-arch"
    shutil.copytree(tiny_checkpoint, other_arch)
    config = json.loads((other_arch / "config.json").read_text())
    # one more class, its calibration offsets too: a config consistent in itself, whose weights do not fit it
    calibration = config["calibration"] | {"logit_offsets": [*config["calibration"]["logit_offsets"], 0.0]}
    (other_arch / "config.json").write_text(json.dumps(config | {"classes": config["classes"] + 1, "calibration": calibration}))
    response = engineer.post("/api/v1/ai/model-versions/", {"files": [SimpleUploadedFile("other.zip", _zip_folder(other_arch))], "activate": True}, format="multipart")
    assert response.status_code == 201 and response.json()["status"] == "verifying"
    uploaded = ModelVersion.objects.get(version=response.json()["version"])
    assert Path(uploaded.path).is_dir()
    refused = model_version_verify(model_version_id=str(uploaded.pk))
    assert refused is not None and refused.status == ModelVersion.Status.REFUSED
    assert "does not match the architecture" in refused.refusal and str(tmp_path) not in refused.refusal
    assert not Path(uploaded.path).exists() and not refused.is_active
    assert model_version_verify(model_version_id=str(uploaded.pk)).status == ModelVersion.Status.REFUSED  # type: ignore[union-attr]  # twice: unchanged
    for body in ({}, {"reader_study": "alpha"}):
        answer = engineer.post(f"/api/v1/ai/model-versions/{uploaded.pk}/activate/", body, format="json")
        assert answer.status_code == 400 and "cannot be used" in answer.json()["detail"]
    listed = engineer.get("/api/v1/ai/model-versions/").json()
    assert [(m["status"], m["refusal"][:19]) for m in listed] == [("refused", "Checkpoint refused:")]


def test_the_web_side_of_an_upload_never_imports_torch(tiny_checkpoint: Path) -> None:
    """Web processes have no torch (the web image installs no ml extra): the checks an upload runs there
    must not import it."""
    code = (
        "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'spinereview.settings'); django.setup(); "
        "import spinereview.ai.apis, spinereview.ai.views, spinereview.urls; "
        "from ml.inference.api import checkpoint_describe; "
        f"checkpoint_describe({str(tiny_checkpoint)!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'; print('no torch')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ | {"DEBUG": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("no torch")


def test_who_may_do_what(people: dict[str, User]) -> None:
    default, special = make_model_version("default", active=True), make_model_version("special")
    clients = {name: _client(user) for name, user in people.items()}
    # readers and adjudicators: no AI management at all, pages or API
    for name in ("reader", "adjudicator"):
        for url in ("/api/v1/ai/model-versions/", "/api/v1/ai/jobs/", "/api/v1/ai/reader-studies/alpha/model/"):
            assert clients[name].get(url).status_code == 403
        assert (
            clients[name].post(f"/api/v1/ai/model-versions/{special.pk}/activate/", {"reader_study": "alpha"}, format="json").status_code
            == 403
        )
        assert clients[name].post("/api/v1/ai/reader-studies/alpha/run/").status_code == 403
        page = Client()
        page.force_login(people[name])
        assert page.get("/ai/").status_code == 403 and page.get("/ai/jobs/").status_code == 403
        assert "AI models" not in page.get("/").content.decode()
    assert APIClient().get("/api/v1/ai/model-versions/").status_code in (401, 403)
    assert not StudyModel.objects.exists() and not InferenceJob.objects.exists()

    # a lead: lists models, chooses one for their own study only, never the global default nor uploads
    lead = clients["lead"]
    assert [m["version"] for m in lead.get("/api/v1/ai/model-versions/").json()] == [default.version, special.version]
    assert lead.post(f"/api/v1/ai/model-versions/{special.pk}/activate/", {}, format="json").status_code == 403
    assert lead.post(f"/api/v1/ai/model-versions/{special.pk}/activate/", {"reader_study": "beta"}, format="json").status_code == 404
    assert lead.post("/api/v1/ai/model-versions/", {"files": [SimpleUploadedFile("a.zip", b"x")]}, format="multipart").status_code == 403
    assert ModelVersion.objects.get(is_active=True) == default and not StudyModel.objects.exists()
    response = lead.post(f"/api/v1/ai/model-versions/{special.pk}/activate/", {"reader_study": "alpha"}, format="json")
    assert response.status_code == 200 and response.json() == {"model_version": special.version, "queued": 1, "jobs": 1}
    assert lead.get("/api/v1/ai/reader-studies/alpha/model/").json()["version"] == special.version
    assert lead.get("/api/v1/ai/reader-studies/beta/model/").status_code == 404
    # the lead sees the jobs of their study, not the other study's
    clients["otherlead"].post("/api/v1/ai/reader-studies/beta/run/")
    jobs = lead.get("/api/v1/ai/jobs/").json()
    assert [(j["model_version"], j["cases"], j["status"], j["slices"]) for j in jobs] == [
        (special.version, ["alpha/Case 001"], "queued", 3)
    ]
    assert len(clients["engineer"].get("/api/v1/ai/jobs/").json()) == 2
    assert clients["otherlead"].get(f"/api/v1/ai/jobs/{jobs[0]['id']}/").status_code == 404
    assert lead.delete("/api/v1/ai/reader-studies/alpha/model/").status_code == 204
    assert lead.get("/api/v1/ai/reader-studies/alpha/model/").json()["version"] == default.version

    # the ML engineer: the global default
    response = clients["engineer"].post(f"/api/v1/ai/model-versions/{special.pk}/activate/", {}, format="json")
    assert response.status_code == 200 and ModelVersion.objects.get(is_active=True) == special


def test_retry_a_failed_job_and_run_over_a_study(people: dict[str, User]) -> None:
    model = make_model_version("default", active=True)
    lead = _client(people["lead"])
    response = lead.post("/api/v1/ai/reader-studies/alpha/run/")
    assert response.json() == {"model_version": model.version, "queued": 1, "jobs": 1}
    assert lead.post("/api/v1/ai/reader-studies/alpha/run/").json() == {"model_version": model.version, "queued": 0, "jobs": 1}
    job = InferenceJob.objects.get()
    assert lead.post(f"/api/v1/ai/jobs/{job.pk}/retry/").status_code == 409  # queued, not failed
    InferenceJob.objects.filter(pk=job.pk).update(
        status=InferenceJob.Status.FAILED, error="ValueError: model folder gone", attempts=1, progress=0.4
    )
    failed = lead.get("/api/v1/ai/jobs/?status=failed").json()
    assert [(j["status"], j["error"], j["progress_percent"]) for j in failed] == [("failed", "ValueError: model folder gone", 40.0)]
    response = lead.post(f"/api/v1/ai/jobs/{job.pk}/retry/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["progress_percent"], response.json()["queue_position"]) == ("queued", 0.0, 1)
    assert _client(people["otherlead"]).post(f"/api/v1/ai/jobs/{job.pk}/retry/").status_code == 404


def test_pages_for_the_ml_engineer_and_the_lead(people: dict[str, User]) -> None:
    default = make_model_version("default", active=True)
    special = make_model_version("special")
    engineer = Client()
    engineer.force_login(people["engineer"])
    page = engineer.get("/ai/").content.decode()
    assert "Register a model" in page and "Make global default" in page and default.version in page and "0.970" in page
    assert 'href="/ai/"' in engineer.get("/").content.decode()  # the nav link
    response = engineer.post("/ai/", {"action": "activate", "model_version": special.pk, "reader_study": "beta"})
    assert "Study" in response.content.decode() and StudyModel.objects.get().model_version == special

    lead = Client()
    lead.force_login(people["lead"])
    page = lead.get("/ai/").content.decode()
    assert "Register a model" not in page and "Make global default" not in page
    assert 'data-study="alpha"' in page and 'data-study="beta"' not in page
    response = lead.post("/ai/", {"action": "activate", "model_version": special.pk, "reader_study": "beta"})
    assert "No such reader study, or you do not lead it" in response.content.decode()
    response = lead.post("/ai/", {"action": "activate", "model_version": special.pk})
    assert "Only ML engineers choose the global default" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True) == default
    response = lead.post("/ai/jobs/", {"action": "run", "reader_study": "alpha"})
    assert "1 series, 1 queued or running" in response.content.decode()
    jobs_page = lead.get("/ai/jobs/").content.decode()
    # the queue is global: beta's job (queued when the engineer chose its model) is ahead of alpha's
    assert 'data-status="queued"' in jobs_page and "#2" in jobs_page and "alpha/Case 001" in jobs_page and "beta/" not in jobs_page
