"""The AI API (mounted under /api/v1/ai/): model versions, activation, uploads, inference jobs.

ML engineers (ai.manage_models) and staff do everything; a study lead lists models, activates one for
their own study, runs it over the study and retries their study's failed jobs; anyone else gets 403."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spinereview.accounts.models import User
from spinereview.ai import selectors, services
from spinereview.ai.models import InferenceJob, ModelVersion
from spinereview.ai.serializers import (
    ActivateInputSerializer,
    InferenceJobSerializer,
    JobsQueuedSerializer,
    ModelUploadInputSerializer,
    ModelUploadSerializer,
    ModelVersionSerializer,
    inference_job_payload,
    model_version_payload,
)
from spinereview.core.errors import ApplicationError, NotFoundError, PermissionDeniedError
from spinereview.studies.models import ReaderStudy
from spinereview.studies.serializers import ErrorSerializer

MAX_JOBS_LISTED = 500


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    if not selectors.user_sees_ai_pages(user=user):
        raise PermissionDeniedError("Only ML engineers and study leads manage AI models")
    return user


def _require_model_manager(user: User) -> None:
    if not selectors.user_manages_models(user=user):
        raise PermissionDeniedError("Only ML engineers register models and choose the global default")


def managed_study(*, user: User, slug: str) -> ReaderStudy:
    """A study whose model the user may choose: 404 when it does not exist or they do not lead it."""
    study = selectors.reader_studies_ai_managed(user=user).filter(slug=slug).first()
    if study is None:
        raise NotFoundError("No such reader study, or you do not lead it")
    return study


def _model_payloads(model_versions: list[ModelVersion]) -> list[dict[str, object]]:
    slugs = selectors.study_model_slugs()
    return [model_version_payload(m, slugs.get(m.pk, [])) for m in model_versions]


class ModelVersionsApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        responses={200: ModelVersionSerializer(many=True), 403: ErrorSerializer},
        description="Registered model versions, the default first.",
    )
    def get(self, request: Request) -> Response:
        _user(request)
        return Response(_model_payloads(list(selectors.model_version_list())))

    @extend_schema(
        request={"multipart/form-data": ModelUploadInputSerializer},
        responses={201: ModelUploadSerializer, 200: ModelUploadSerializer, 400: ErrorSerializer, 403: ErrorSerializer},
        description=(
            "Upload a checkpoint folder (its files with their paths, or one .zip of it). Its config, label map and weights archive "
            "are checked and it is stored under MEDIA_ROOT/models/<version>/ with status 'verifying'; a corrupt or incomplete folder "
            "is refused with the reason and nothing is stored. A gpu worker then loads the weights into the architecture: the "
            "version becomes 'ready' (and the global default when `activate` was asked) or 'refused' with the reason. "
            "200 when the version was registered before."
        ),
    )
    def post(self, request: Request) -> Response:
        user = _user(request)
        _require_model_manager(user)
        files = request.FILES.getlist("files")
        paths = request.data.getlist("paths") if hasattr(request.data, "getlist") else []
        if paths and len(paths) != len(files):
            raise ApplicationError(f"{len(paths)} paths for {len(files)} files: give one path per file, or none")
        activate = ModelUploadInputSerializer(data={"activate": request.data.get("activate", False)}, partial=True)
        activate.is_valid(raise_exception=True)
        named = [(path or f.name or "", f) for path, f in zip(paths or [None] * len(files), files, strict=True)]
        model_version, created = services.model_version_upload(
            files=named, activate=bool(activate.validated_data.get("activate")), actor=user.username
        )
        body = _model_payloads([model_version])[0] | {"created_now": created}
        return Response(body, status=201 if created else 200)


class ModelVersionActivateApi(APIView):
    @extend_schema(
        request=ActivateInputSerializer,
        responses={200: JobsQueuedSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
        description=(
            "Make this version the global default (ML engineers), or the model of one reader study (its lead too); "
            "for a study, the model is queued on the study's series it has not segmented yet."
        ),
    )
    def post(self, request: Request, pk: str) -> Response:
        user = _user(request)
        payload = ActivateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        model_version = selectors.model_version_get(model_version_id=pk)
        slug = payload.validated_data.get("reader_study")
        study = None
        if slug:
            study = managed_study(user=user, slug=slug)
        else:
            _require_model_manager(user)
        before = set(InferenceJob.objects.filter(model_version=model_version).values_list("pk", flat=True))
        jobs = services.model_version_activate(model_version=model_version, reader_study=study, actor=user.username)
        return Response({"model_version": model_version.version, "queued": sum(1 for j in jobs if j.pk not in before), "jobs": len(jobs)})


class StudyModelApi(APIView):
    @extend_schema(
        responses={200: ModelVersionSerializer, 204: None, 403: ErrorSerializer, 404: ErrorSerializer},
        description="The study's model (its own, else the default); 204 when there is none.",
    )
    def get(self, request: Request, slug: str) -> Response:
        study = managed_study(user=_user(request), slug=slug)
        model_version = selectors.model_version_for_reader_study(reader_study=study)
        if model_version is None:
            return Response(status=204)
        return Response(_model_payloads([model_version])[0])

    @extend_schema(
        responses={204: None, 403: ErrorSerializer, 404: ErrorSerializer}, description="The study goes back to the global default model."
    )
    def delete(self, request: Request, slug: str) -> Response:
        user = _user(request)
        services.reader_study_model_clear(reader_study=managed_study(user=user, slug=slug), actor=user.username)
        return Response(status=204)


class StudyRunApi(APIView):
    @extend_schema(
        request=None,
        responses={200: JobsQueuedSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
        description="Run the study's model over every series of its cases (series it has segmented already are left as they are).",
    )
    def post(self, request: Request, slug: str) -> Response:
        user = _user(request)
        study = managed_study(user=user, slug=slug)
        model_version = selectors.model_version_for_reader_study(reader_study=study)
        before = set(InferenceJob.objects.filter(model_version=model_version).values_list("pk", flat=True))
        jobs = services.inference_jobs_request_for_study(reader_study=study, actor=user.username)
        return Response(
            {
                "model_version": model_version.version if model_version else None,
                "queued": sum(1 for j in jobs if j.pk not in before),
                "jobs": len(jobs),
            }
        )


STATUS_PARAMETER = OpenApiParameter("status", str, enum=["queued", "running", "succeeded", "failed"], required=False)


class InferenceJobsApi(APIView):
    @extend_schema(
        parameters=[STATUS_PARAMETER],
        responses={200: InferenceJobSerializer(many=True), 403: ErrorSerializer},
        description=f"Inference jobs the user may see, newest first (at most {MAX_JOBS_LISTED}), with progress, queue position and ETA.",
    )
    def get(self, request: Request) -> Response:
        user = _user(request)
        jobs = selectors.jobs_filter_by_status(selectors.inference_job_list(user=user), request.query_params.get("status", ""))
        rows = selectors.inference_job_rows(user=user, jobs=list(jobs.order_by("-created")[:MAX_JOBS_LISTED]), now=timezone.now())
        return Response([inference_job_payload(r.job, r.queue, r.cases) for r in rows])


class InferenceJobApi(APIView):
    @extend_schema(responses={200: InferenceJobSerializer, 403: ErrorSerializer, 404: ErrorSerializer})
    def get(self, request: Request, pk: str) -> Response:
        user = _user(request)
        job = selectors.inference_job_get(user=user, job_id=pk)
        (row,) = selectors.inference_job_rows(user=user, jobs=[job], now=timezone.now())
        return Response(inference_job_payload(row.job, row.queue, row.cases))


class InferenceJobRetryApi(APIView):
    @extend_schema(
        request=None,
        responses={200: InferenceJobSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
        description="Queue a failed job again.",
    )
    def post(self, request: Request, pk: str) -> Response:
        user = _user(request)
        job = services.inference_job_retry(job=selectors.inference_job_get(user=user, job_id=pk), actor=user.username)
        (row,) = selectors.inference_job_rows(user=user, jobs=[selectors.inference_job_get(user=user, job_id=job.pk)], now=timezone.now())
        return Response(inference_job_payload(row.job, row.queue, row.cases))
