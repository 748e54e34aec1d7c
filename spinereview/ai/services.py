"""Model registration and activation, inference jobs and their queue (the per-level quantities from AI
masks: ai/level_measurements.py)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinereview.ai.level_grades import level_grades_reset
from spinereview.ai.models import AISegmentation, InferenceJob, ModelVersion, StudyModel
from spinereview.ai.selectors import model_version_default, model_version_for_reader_study, reader_study_series_ids
from spinereview.core.errors import ApplicationError, ConflictError
from spinereview.imaging.models import DicomSeries
from spinereview.imaging.selectors import series_volume_load
from spinereview.studies.models import ReaderStudy
from spinereview.studies.services.audit import audit_record

logger = logging.getLogger(__name__)

MODELS_MEDIA_FOLDER = "models"
MAX_CHECKPOINT_FILES = 64
MAX_CHECKPOINT_BYTES = 2 * 1024**3
# Progress is written at most this often (each batch would be one UPDATE per few slices on a GPU).
PROGRESS_WRITE_INTERVAL_S = 0.5
# An uploaded version still unverified after this long has its verification queued again.
VERIFY_RETRY_AFTER_S = 300.0


class UploadedPart(Protocol):
    size: int | None

    def chunks(self) -> Iterable[bytes]: ...


def model_version_register(*, path: Path, activate: bool, actor: str = "", verify_weights: bool = False) -> ModelVersion:
    """Register a checkpoint folder written by `python -m ml train`; refuse an invalid one with the reason.
    With `verify_weights` the weights are loaded on the CPU first (imports torch)."""
    from ml.inference.api import checkpoint_describe, checkpoint_verify

    try:
        info = checkpoint_verify(path) if verify_weights else checkpoint_describe(path)
    except ValueError as exc:
        raise ApplicationError(f"Checkpoint refused: {exc}") from None
    card = Path(path) / "model_card.md"
    with transaction.atomic():
        model_version, _ = ModelVersion.objects.get_or_create(
            version=info.model_version,
            defaults={
                "name": info.name,
                "path": str(Path(path).resolve()),
                "label_map": {str(k): v for k, v in info.label_map.items()},
                "config": info.config,
                "metrics": info.metrics,
                "model_card": card.read_text(errors="replace")[:100_000] if card.is_file() else "",
                "registered_by": actor,
                "grader": info.grader,
            },
        )
        if model_version.grader != info.grader and Path(model_version.path) == Path(path).resolve():
            # the same segmenter weights with a grader added, retrained or removed (train-grader --into):
            # its grades so far came from another grader, so they are graded again
            model_version.grader = info.grader
            model_version.save(update_fields=["grader", "modified"])
            logger.info("Model version %s: stenosis grader now %s", model_version.version, info.grader.get("version") or "none")
            level_grades_reset(model_version=model_version)
        if activate:
            model_version_activate(model_version=model_version, reader_study=None, actor=actor or "command line")
    return model_version


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts or any(part in ("", ".") for part in path.parts[:-1]):
        raise ApplicationError(f"Checkpoint refused: unsafe file name {name!r} in the upload")
    return path


def _checkpoint_root(folder: Path) -> Path:
    """The folder holding config.json: the upload itself, or its single top-level folder (a zipped folder,
    or a browser folder upload, whose paths start with the folder's name)."""
    if (folder / "config.json").exists():
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def model_version_upload(*, files: list[tuple[str, UploadedPart]], activate: bool, actor: str) -> tuple[ModelVersion, bool]:
    """Store an uploaded checkpoint folder under MEDIA_ROOT/models/<version>/ and register it.

    `files` are (path relative to the folder, file) pairs: either the files of the folder (a browser folder
    upload) or one .zip of it. The folder is checked whole (config, label map, weights archive CRCs, the
    weights loading into the architecture) before anything is kept: a refused upload stores nothing.
    Returns (model version, created); uploading a version already registered changes nothing."""
    if not files:
        raise ApplicationError("Checkpoint refused: no files uploaded")
    if len(files) > MAX_CHECKPOINT_FILES:
        raise ApplicationError(f"Checkpoint refused: {len(files)} files; a checkpoint folder has at most {MAX_CHECKPOINT_FILES}")
    root = Path(settings.MEDIA_ROOT) / MODELS_MEDIA_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=root))
    try:
        total = 0
        for name, part in files:
            relative = _safe_relative(name)
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for chunk in part.chunks():
                    total += len(chunk)
                    if total > MAX_CHECKPOINT_BYTES:
                        raise ApplicationError(f"Checkpoint refused: more than {MAX_CHECKPOINT_BYTES // 1024**3} GiB")
                    out.write(chunk)
        if len(files) == 1 and files[0][0].lower().endswith(".zip"):
            archive = staging / _safe_relative(files[0][0])
            _unzip_checkpoint(archive, staging / "folder")
            folder = _checkpoint_root(staging / "folder")
        else:
            folder = _checkpoint_root(staging)
        # The web process never imports torch: here the folder's config, label map and weights archive are
        # checked; a gpu worker loads the weights into the architecture (model_version_verify) before use.
        from ml.inference.api import checkpoint_describe

        try:
            info = checkpoint_describe(folder)
        except ValueError as exc:
            # the reason names the staging folder: say it of the upload instead
            raise ApplicationError(f"Checkpoint refused: {str(exc).replace(str(folder.resolve()), 'the upload')}") from None
        existing = ModelVersion.objects.filter(version=info.model_version).first()
        if existing is not None:
            if activate and existing.status == ModelVersion.Status.READY:
                model_version_activate(model_version=existing, reader_study=None, actor=actor)
            return existing, False
        final = root / info.model_version
        if final.exists():  # a folder left by an earlier attempt whose registration did not land
            shutil.rmtree(final)
        os.replace(folder, final)
        try:
            with transaction.atomic():
                model_version = model_version_register(path=final, activate=False, actor=actor)
                model_version.status = ModelVersion.Status.VERIFYING
                model_version.activate_when_ready = activate
                model_version.save(update_fields=["status", "activate_when_ready", "modified"])
                transaction.on_commit(partial(_verify_enqueue, model_version_id=str(model_version.pk)))
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return model_version, True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify_enqueue(*, model_version_id: str) -> None:
    from spinereview.ai.tasks import model_version_verify_run

    try:
        model_version_verify_run.delay(model_version_id=model_version_id)
    except Exception:  # the broker is down: the version stays "verifying" and the sweeper publishes it again
        logger.warning("Could not queue the verification of model version %s; the sweeper will retry", model_version_id, exc_info=True)


def model_version_verify(*, model_version_id: str) -> ModelVersion | None:
    """On a gpu worker (torch installed): build the model and load the uploaded weights (and the grader's).
    A version that loads becomes ready (and the global default if its upload asked for it); one that does
    not is refused with the reason and its files are removed. Safe to run twice."""
    from ml.inference.api import checkpoint_verify

    model_version = ModelVersion.objects.filter(pk=model_version_id).first()
    if model_version is None or model_version.status != ModelVersion.Status.VERIFYING:
        return model_version
    try:
        checkpoint_verify(model_version.path)
    except ValueError as exc:
        reason = str(exc).replace(str(Path(model_version.path).resolve()), "the upload")
        refused = _verification_record(model_version, ModelVersion.Status.REFUSED, refusal=f"Checkpoint refused: {reason}"[:4000])
        if refused.status == ModelVersion.Status.REFUSED:
            shutil.rmtree(model_version.path, ignore_errors=True)
            logger.info("Model version %s refused on verification: %s", model_version.version, reason)
        return refused
    return _verification_record(model_version, ModelVersion.Status.READY)


def _verification_record(model_version: ModelVersion, status: str, *, refusal: str = "") -> ModelVersion:
    """Write the outcome of a verification, unless another run wrote one first; a ready version that
    asked for it becomes the global default in the same transaction."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
        if locked.status != ModelVersion.Status.VERIFYING:
            return locked
        locked.status, locked.refusal = status, refusal
        activate = locked.activate_when_ready and status == ModelVersion.Status.READY
        locked.activate_when_ready = False
        locked.save(update_fields=["status", "refusal", "activate_when_ready", "modified"])
        if activate:
            model_version_activate(model_version=locked, reader_study=None, actor=locked.registered_by or "upload")
    return locked


def model_versions_verify_sweep(*, waiting_for_s: float = VERIFY_RETRY_AFTER_S) -> list[str]:
    """Queue again the verification of uploads waiting for one longer than `waiting_for_s` (the broker was
    down at upload, or the worker was lost); verifying twice is harmless."""
    cutoff = timezone.now() - timedelta(seconds=waiting_for_s)
    waiting = [
        str(pk) for pk in ModelVersion.objects.filter(status=ModelVersion.Status.VERIFYING, modified__lte=cutoff).values_list("pk", flat=True)
    ]
    for model_version_id in waiting:
        _verify_enqueue(model_version_id=model_version_id)
    return waiting


def _unzip_checkpoint(archive: Path, out: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) > MAX_CHECKPOINT_FILES:
                raise ApplicationError(f"Checkpoint refused: the zip holds {len(members)} files; at most {MAX_CHECKPOINT_FILES}")
            if sum(m.file_size for m in members) > MAX_CHECKPOINT_BYTES:
                raise ApplicationError("Checkpoint refused: the zip unpacks to more than 2 GiB")
            for member in members:
                target = out / _safe_relative(member.filename)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ApplicationError(f"Checkpoint refused: the .zip is unreadable ({exc})") from None


def model_version_activate(*, model_version: ModelVersion, reader_study: ReaderStudy | None, actor: str) -> list[InferenceJob]:
    """Make `model_version` the global default (reader_study None) or the model of one reader study.

    A study's choice also queues the model on the study's series that it has not segmented yet, so its
    readers see this model's output. Returns the jobs queued. Only a verified (ready) version may be used."""
    if model_version.status == ModelVersion.Status.VERIFYING:
        raise ApplicationError(f"{model_version.version} is still being verified on a worker; activate it once it is ready")
    if model_version.status == ModelVersion.Status.REFUSED:
        raise ApplicationError(f"{model_version.version} cannot be used: {model_version.refusal}")
    with transaction.atomic():
        if reader_study is None:
            ModelVersion.objects.exclude(pk=model_version.pk).filter(is_active=True).update(is_active=False)
            if not model_version.is_active:
                model_version.is_active = True
                model_version.save(update_fields=["is_active", "modified"])
            return []
        previous = StudyModel.objects.filter(reader_study=reader_study).select_related("model_version").first()
        StudyModel.objects.update_or_create(reader_study=reader_study, defaults={"model_version": model_version, "activated_by": actor})
        audit_record(
            actor=actor,
            action="ai.model_activate",
            object_type="reader_study",
            object_id=str(reader_study.pk),
            reader_study_id=reader_study.pk,
            details={"model_version": model_version.version, "previous": previous.model_version.version if previous else None},
        )
        return inference_jobs_request_for_study(reader_study=reader_study, actor=actor)


def reader_study_model_clear(*, reader_study: ReaderStudy, actor: str) -> None:
    """The study goes back to the global default model."""
    with transaction.atomic():
        deleted, _ = StudyModel.objects.filter(reader_study=reader_study).delete()
        if deleted:
            audit_record(
                actor=actor,
                action="ai.model_activate",
                object_type="reader_study",
                object_id=str(reader_study.pk),
                reader_study_id=reader_study.pk,
                details={"model_version": None, "default": getattr(model_version_default(), "version", None)},
            )


def _models_for_series(series: DicomSeries) -> set[ModelVersion]:
    """The models a new series needs: the model of each reader study holding its examination, or the
    global default when it belongs to none."""
    studies = ReaderStudy.objects.filter(cases__dicom_study_id=series.study_id).distinct()
    wanted = {m for m in (model_version_for_reader_study(reader_study=s) for s in studies) if m is not None}
    if not wanted and not studies:
        default = model_version_default()
        if default is not None:
            wanted.add(default)
    return wanted


def inference_jobs_request(*, series_ids: Iterable[str | uuid.UUID], model_version: ModelVersion | None = None) -> list[InferenceJob]:
    """Queue a model on each MR series, once per series and model version: `model_version`, or the model of
    each reader study the series' examination belongs to (the global default outside any study)."""
    jobs = []
    with transaction.atomic():
        series_list = DicomSeries.objects.filter(pk__in=list(series_ids), modality="MR").order_by("study_id", "created")
        for series in series_list:
            models = {model_version} if model_version is not None else _models_for_series(series)
            if not models:
                logger.warning("No model version for series %s: left without AI", series.series_instance_uid)
            for model in sorted(models, key=lambda m: m.version):
                job, created = InferenceJob.objects.get_or_create(
                    series=series, model_version=model, defaults={"slices": series.instances.count()}
                )
                if created:
                    transaction.on_commit(partial(inference_job_publish, job_id=job.pk))
                jobs.append(job)
    return jobs


def inference_jobs_request_for_study(*, reader_study: ReaderStudy, actor: str) -> list[InferenceJob]:
    """Run the study's model over every series of its cases (series already done are left as they are)."""
    model_version = model_version_for_reader_study(reader_study=reader_study)
    if model_version is None:
        raise ApplicationError("No model version is active for this study: activate one first")
    return inference_jobs_request(series_ids=reader_study_series_ids(reader_study=reader_study), model_version=model_version)


def inference_job_retry(*, job: InferenceJob, actor: str) -> InferenceJob:
    """Queue a failed job again."""
    with transaction.atomic():
        locked = InferenceJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != InferenceJob.Status.FAILED:
            raise ConflictError(f"Only a failed job can be retried; this one is {locked.status}")
        locked.status = InferenceJob.Status.QUEUED
        locked.progress = 0.0
        locked.published = None
        locked.finished = None
        locked.save(update_fields=["status", "progress", "published", "finished", "modified"])
        logger.info("Inference job %s retried by %s (was: %s)", locked.pk, actor, locked.error[:200])
        transaction.on_commit(partial(inference_job_publish, job_id=locked.pk))
    return locked


def inference_job_publish(*, job_id: uuid.UUID | str) -> bool:
    """Hand a queued job to the broker and note when. Called after the commit that queued it: when the broker
    cannot be reached the job stays queued and unpublished, and the sweeper publishes it later."""
    from spinereview.ai.tasks import inference_job_run

    try:
        inference_job_run.delay(job_id=str(job_id))
    except Exception:
        logger.exception("Could not publish inference job %s: the sweeper will retry", job_id)
        return False
    InferenceJob.objects.filter(pk=job_id, status=InferenceJob.Status.QUEUED).update(published=timezone.now())
    return True


def inference_jobs_sweep(*, unpublished_after_s: float | None = None, stalled_after_s: float | None = None) -> list[uuid.UUID]:
    """Publish again the jobs the queue lost: queued but never published (the broker was down at commit),
    and running without a sign of life for `stalled_after_s` (their worker died and its message is gone).
    Idempotent: a job published twice runs once (inference_job_execute skips a finished job)."""
    now = timezone.now()
    unpublished_after_s = settings.INFERENCE_SWEEP_UNPUBLISHED_S if unpublished_after_s is None else unpublished_after_s
    stalled_after_s = settings.INFERENCE_SWEEP_STALLED_S if stalled_after_s is None else stalled_after_s
    lost = list(
        InferenceJob.objects.filter(
            status=InferenceJob.Status.QUEUED, published__isnull=True, created__lte=now - timedelta(seconds=unpublished_after_s)
        ).values_list("pk", flat=True)
    )
    stalled = list(
        InferenceJob.objects.filter(
            status=InferenceJob.Status.RUNNING, heartbeat__lte=now - timedelta(seconds=stalled_after_s)
        ).values_list("pk", flat=True)
    )
    published = []
    for job_id in lost + stalled:
        if job_id in stalled:
            # back to queued so that the page says so; a late heartbeat from a live worker sets it running again
            InferenceJob.objects.filter(pk=job_id, status=InferenceJob.Status.RUNNING).update(
                status=InferenceJob.Status.QUEUED, published=None
            )
        if inference_job_publish(job_id=job_id):
            published.append(job_id)
    if published:
        logger.warning("Sweeper re-published %d inference job(s): %s", len(published), ", ".join(map(str, published)))
    return published


def _worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _save_labels_atomically(labels: np.ndarray, target: Path) -> None:
    """Write beside the target, then rename: an attempt killed mid-write never leaves a half file, and two
    attempts of one job never interleave their bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".npy", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            np.save(out, labels)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def inference_job_execute(*, job_id: str) -> InferenceJob | None:
    """Run one job; safe to run twice (a finished job is left as it is; a redelivered one runs again and
    still yields exactly one AI segmentation)."""
    with transaction.atomic():
        job = InferenceJob.objects.select_for_update().select_related("series", "model_version").filter(pk=job_id).first()
        if job is None:
            logger.warning("Inference job %s no longer exists", job_id)
            return None
        if job.status == InferenceJob.Status.SUCCEEDED:
            return job
        job.status = InferenceJob.Status.RUNNING
        job.started = job.heartbeat = timezone.now()
        job.attempts += 1
        job.error = ""
        job.progress = 0.0
        job.worker = _worker_name()
        job.save(update_fields=["status", "started", "heartbeat", "attempts", "error", "progress", "worker", "modified"])
    attempt = job.attempts
    t0 = time.perf_counter()
    try:
        from ml.inference.api import axis_directions_from_dicom, load_segmenter

        loaded = series_volume_load(series=job.series)
        nz = int(loaded.volume.shape[0])  # stored with the result (the job was queued with its instance count)
        first, last = loaded.per_slice_attributes[0], loaded.per_slice_attributes[-1]
        directions = axis_directions_from_dicom(
            first["ImageOrientationPatient"],
            first["ImagePositionPatient"],
            last["ImagePositionPatient"] if len(loaded.per_slice_attributes) > 1 else None,
        )
        # load_segmenter builds the model once per worker process and returns it on later calls.
        segmenter = load_segmenter(job.model_version.path, batch_size=settings.INFERENCE_BATCH_SLICES)
        last_write = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last_write[0] < PROGRESS_WRITE_INTERVAL_S:
                return  # the last batch's 100 % is written with the result, in the same commit
            last_write[0] = now
            # only this attempt's row: a later attempt (redelivery) owns the job once it has started
            InferenceJob.objects.filter(pk=job.pk, attempts=attempt).update(
                progress=done / total, heartbeat=timezone.now(), status=InferenceJob.Status.RUNNING
            )

        result = segmenter.segment(loaded.volume, loaded.spacing_mm, axis_directions=directions, progress=progress)
        if result.model_version != job.model_version.version:
            raise ApplicationError(
                f"checkpoint at {job.model_version.path} is now {result.model_version}, registered as {job.model_version.version}"
            )
        relative = f"segmentations/ai/{job.series.series_instance_uid}/{job.pk}.npy"
        _save_labels_atomically(result.labels.astype(np.uint8), Path(settings.MEDIA_ROOT) / relative)
        with transaction.atomic():
            current = InferenceJob.objects.select_for_update().get(pk=job.pk)
            if current.status == InferenceJob.Status.SUCCEEDED:
                return current  # another attempt finished first: its result stands
            AISegmentation.objects.get_or_create(
                job=job,
                defaults={
                    "series": job.series,
                    "model_version": job.model_version,
                    "label_map": {str(k): v for k, v in result.label_map.items()},
                    "shape": list(result.labels.shape),
                    "sop_instance_uids": list(loaded.sop_instance_uids),
                    "file_path": relative,
                },
            )
            current.status = InferenceJob.Status.SUCCEEDED
            current.finished = timezone.now()
            current.progress = 1.0
            current.slices = nz
            current.compute_seconds = time.perf_counter() - t0
            current.save(update_fields=["status", "finished", "progress", "slices", "compute_seconds", "modified"])
            study_id, model_version_id = str(job.series.study_id), str(job.model_version_id)
            transaction.on_commit(lambda: _measurements_enqueue(dicom_study_id=study_id, model_version_id=model_version_id))
        return current
    except Exception as exc:
        logger.exception("Inference job %s failed", job_id)
        InferenceJob.objects.filter(pk=job.pk).exclude(status=InferenceJob.Status.SUCCEEDED).update(
            status=InferenceJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished=timezone.now()
        )
        job.refresh_from_db()
        return job


def _measurements_enqueue(*, dicom_study_id: str, model_version_id: str) -> None:
    from spinereview.ai.tasks import ai_level_measurements_run

    ai_level_measurements_run.delay(dicom_study_id=dicom_study_id, model_version_id=model_version_id)
