"""Payloads of the AI API: model versions, activation, uploads, inference jobs and the queue."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from spinereview.ai.models import InferenceJob, ModelVersion
from spinereview.ai.selectors import QueueEntry


class ModelVersionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.CharField(help_text='"<name>@<first 12 hex of the weights\' sha256>"')
    is_default = serializers.BooleanField(help_text="The global default: the model of every study that has not chosen its own")
    reader_studies = serializers.ListField(child=serializers.SlugField(), help_text="Slugs of the studies that chose this model")
    architecture = serializers.CharField()
    encoder = serializers.CharField()
    label_map = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(help_text="metrics.json of the checkpoint folder (held-out scores, timings)")
    model_card = serializers.CharField(help_text="model_card.md of the checkpoint folder (Markdown)")
    registered_by = serializers.CharField()
    created = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=["verifying", "ready", "refused"],
        help_text="verifying: an upload whose weights a gpu worker is loading; only a ready version can be activated",
    )
    refusal = serializers.CharField(help_text="Why a refused upload's weights could not be used; empty otherwise")
    grader = serializers.DictField(
        help_text='The stenosis grader in its grader/ folder: {"name", "version", "grades" (mildest first), "heldout" '
        '({"n", "accuracy", "linear_weighted_kappa"})}; {} without one'
    )


def model_version_payload(model_version: ModelVersion, study_slugs: list[str]) -> dict[str, Any]:
    return {
        "id": model_version.pk,
        "name": model_version.name,
        "version": model_version.version,
        "is_default": model_version.is_active,
        "reader_studies": sorted(study_slugs),
        "architecture": str(model_version.config.get("architecture", "")),
        "encoder": str(model_version.config.get("encoder", "")),
        "label_map": model_version.label_map,
        "metrics": model_version.metrics,
        "model_card": model_version.model_card,
        "registered_by": model_version.registered_by,
        "created": model_version.created,
        "status": model_version.status,
        "refusal": model_version.refusal,
        "grader": model_version.grader,
    }


class ModelUploadInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    files = serializers.ListField(
        child=serializers.FileField(), help_text="The checkpoint folder's files (weights.pt, config.json, ...), or one .zip of the folder"
    )
    paths = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Each file's path inside the folder (a browser folder upload's webkitRelativePath), in the order of files",
    )
    activate = serializers.BooleanField(required=False, default=False, help_text="Also make it the global default")


class ModelUploadSerializer(ModelVersionSerializer):
    created_now = serializers.BooleanField(help_text="False when this version was registered before (nothing stored again)")


class ActivateInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    reader_study = serializers.SlugField(
        required=False, allow_null=True, default=None, help_text="Activate for this study only; omitted or null: the global default"
    )


class JobsQueuedSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model_version = serializers.CharField(allow_null=True)
    queued = serializers.IntegerField(help_text="Jobs created now")
    jobs = serializers.IntegerField(help_text="Jobs of this model on the study's series, new or not")


class InferenceJobSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=InferenceJob.Status.choices)
    progress_percent = serializers.FloatField()
    queue_position = serializers.IntegerField(allow_null=True, help_text="1 = next to start; null unless queued")
    eta_seconds = serializers.FloatField(allow_null=True, help_text="Seconds until done, from measured throughput; null if unknown")
    throughput_slices_per_s = serializers.FloatField(allow_null=True)
    throughput_source = serializers.CharField()
    model_version = serializers.CharField()
    series_instance_uid = serializers.CharField()
    series_description = serializers.CharField()
    cases = serializers.ListField(child=serializers.CharField(), help_text='"<study slug>/<case label>" of the cases showing this series')
    slices = serializers.IntegerField(allow_null=True)
    attempts = serializers.IntegerField()
    error = serializers.CharField(help_text="Why the last attempt failed")
    worker = serializers.CharField()
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)
    compute_seconds = serializers.FloatField(allow_null=True)


def inference_job_payload(job: InferenceJob, entry: QueueEntry | None, cases: list[str]) -> dict[str, Any]:
    return {
        "id": job.pk,
        "status": job.status,
        "progress_percent": round(100.0 * job.progress, 1),
        "queue_position": entry.position if entry else None,
        "eta_seconds": round(entry.eta_seconds, 1) if entry and entry.eta_seconds is not None else None,
        "throughput_slices_per_s": round(entry.throughput_slices_per_s, 2) if entry and entry.throughput_slices_per_s else None,
        "throughput_source": entry.throughput_source if entry else "",
        "model_version": job.model_version.version,
        "series_instance_uid": job.series.series_instance_uid,
        "series_description": job.series.series_description,
        "cases": cases,
        "slices": job.slices,
        "attempts": job.attempts,
        "error": job.error,
        "worker": job.worker,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "compute_seconds": round(job.compute_seconds, 3) if job.compute_seconds is not None else None,
    }
