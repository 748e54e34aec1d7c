"""DICOMweb (PS3.18) at /dicomweb/: QIDO-RS, WADO-RS (retrieve, metadata, frames, rendered, thumbnail), STOW-RS.

Authentication: the browser session (the viewer) or ``Authorization: Token <key>`` (tools).
Access: every study-scoped resource answers 404 to a user who may not see the study (staff see
all; others only studies that are cases of a reader study they belong to); searches return only
visible studies. STOW-RS is for administrators, or for leads naming a reader study they lead
(``?reader_study=<slug>``); stored instances are de-identified like every other import, so the
UIDs in the response are the pseudonymous ones.

Frames, rendered images and instances never change once stored: they carry an ETag and a
year-long private Cache-Control, and If-None-Match gives 304. Cross-origin use is allowed for
the origins in ``settings.DICOMWEB_CORS_ORIGINS`` (environment variable
SPINEREVIEW_DICOMWEB_CORS_ORIGINS, comma-separated, ``*`` for any; empty: same origin only).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.db.models import Count, JSONField, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from spinereview.accounts.models import User
from spinereview.core.errors import NotFoundError
from spinereview.imaging import selectors
from spinereview.imaging.models import DicomInstance, DicomSeries, DicomStudy
from spinereview.imaging.qido import QidoError, QidoQuery, dataset_matches, qido_query_parse

logger = logging.getLogger(__name__)

EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)
_IMMUTABLE = "private, max-age=31536000, immutable"
_REVALIDATE = "private, no-cache"
DICOM_JSON = "application/dicom+json"
# Media types of compressed frames (PS3.18 Table 8.7.3-2); uncompressed frames are application/octet-stream.
_FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}
MAX_STOW_BYTES = 1 << 30
THUMBNAIL_PX = 128

View = Callable[..., HttpResponseBase]


class DicomwebError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


# --- authentication, access, CORS -------------------------------------------------------------


def _cors_origins() -> list[str]:
    return list(getattr(settings, "DICOMWEB_CORS_ORIGINS", []) or [])


def _with_cors(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    origin = request.headers.get("Origin")
    allowed = _cors_origins()
    if origin and ("*" in allowed or origin in allowed):
        response["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
        response["Access-Control-Expose-Headers"] = "ETag, Warning, Content-Type, Content-Length"
        if "*" not in allowed:
            response["Vary"] = "Origin"
    return response


def _preflight(request: HttpRequest) -> HttpResponseBase:
    response = HttpResponse(status=204)
    response["Allow"] = "GET, POST, OPTIONS"
    if request.headers.get("Origin"):
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Authorization, Accept, Content-Type, If-None-Match"
        response["Access-Control-Max-Age"] = "600"
    return _with_cors(request, response)


class _TtlCache:
    """A small per-process cache with expiry: a viewer's burst of frame requests costs no database query.

    Used for successful token look-ups and positive study-visibility answers (30 s: a revoked token or
    membership stops working within 30 s) and for instance rows (stored instances never change).
    """

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl_s, value)

    def clear(self) -> None:
        self._entries.clear()


_TOKENS = _TtlCache(30, 1024)
_VISIBLE = _TtlCache(30, 8192)
_INSTANCES = _TtlCache(300, 8192)
_METADATA = _TtlCache(300, 256)
_QIDO = _TtlCache(30, 1024)
_SERIES_INSTANCES = _TtlCache(300, 256)


def caches_clear() -> None:
    """Forget cached tokens, visibility and instances (tests; after revoking access in a hurry)."""
    for cache in (_TOKENS, _VISIBLE, _INSTANCES, _METADATA, _QIDO, _SERIES_INSTANCES):
        cache.clear()


def _authenticate(request: HttpRequest) -> tuple[User, bool]:
    """The user and whether they came by session (CSRF applies) rather than by token."""
    user = request.user
    if user.is_authenticated:
        return user, True  # type: ignore[return-value]
    header = request.headers.get("Authorization", "")
    cached = _TOKENS.get(header) if header else None
    if cached is not None:
        return cached, False
    try:
        authenticated = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed as exc:
        raise DicomwebError(401, str(exc.detail)) from None
    if authenticated is None:
        raise DicomwebError(401, "Authentication required (session or 'Authorization: Token <key>')")
    _TOKENS.put(header, authenticated[0])
    return authenticated[0], False


def _visible(user: User, study_uid: str) -> bool:
    if user.is_staff:
        return DicomStudy.objects.filter(study_instance_uid=study_uid).exists()
    if _VISIBLE.get((user.pk, study_uid)):
        return True
    visible = selectors.dicom_study_visible_to(user=user, study_instance_uid=study_uid)
    if visible:
        _VISIBLE.put((user.pk, study_uid), True)
    return visible


def dicomweb_endpoint(methods: tuple[str, ...] = ("GET",)) -> Callable[[View], View]:
    """Authentication, method check, CORS and error mapping for one DICOMweb view (``view(request, user, **kwargs)``)."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
            if request.method == "OPTIONS":
                return _preflight(request)
            if request.method not in methods and not (request.method == "HEAD" and "GET" in methods):
                response: HttpResponseBase = _error(405, f"{request.method} is not supported here; use {', '.join(methods)}")
                response["Allow"] = ", ".join((*methods, "OPTIONS"))
                return _with_cors(request, response)
            try:
                user, by_session = _authenticate(request)
                if by_session and request.method == "POST":
                    rejected = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, view, (), {})
                    if rejected is not None:
                        return _with_cors(request, rejected)
                response = view(request, user, **kwargs)
            except DicomwebError as exc:
                response = _error(exc.status, exc.message)
            except QidoError as exc:
                response = _error(400, str(exc))
            except NotFoundError as exc:
                response = _error(404, exc.message)
            return _with_cors(request, response)

        return wrapper

    return decorate


def _study(user: User, study_uid: str) -> DicomStudy:
    study = DicomStudy.objects.filter(study_instance_uid=study_uid).first()
    if study is None or (not user.is_staff and not _visible(user, study_uid)):
        raise DicomwebError(404, "No such study, or you may not see it")
    return study


def _series(user: User, study_uid: str, series_uid: str) -> DicomSeries:
    try:
        series = selectors.series_get(study_instance_uid=study_uid, series_instance_uid=series_uid)
    except NotFoundError:
        _study(user, study_uid)  # 404 for the study first, so a hidden study's series are not revealed
        raise
    if not user.is_staff and not _visible(user, study_uid):
        raise DicomwebError(404, "No such study, or you may not see it")
    return series


def _instance(user: User, study_uid: str, series_uid: str, sop_uid: str) -> DicomInstance:
    """The instance, in at most one query; 404 alike for a missing instance and a study the user may not see."""
    key = (study_uid, series_uid, sop_uid)
    instance: DicomInstance | None = _INSTANCES.get(key)
    if instance is None:
        instance = (
            DicomInstance.objects.select_related("series__study")
            .filter(sop_instance_uid=sop_uid, series__series_instance_uid=series_uid, series__study__study_instance_uid=study_uid)
            .first()
        )
        if instance is None:
            _series(user, study_uid, series_uid)  # names what is missing: the study, the series or the instance
            raise DicomwebError(404, "No such instance in this series")
        _INSTANCES.put(key, instance)
    if not user.is_staff and not _visible(user, study_uid):
        raise DicomwebError(404, "No such study, or you may not see it")
    return instance


def _etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    candidates = {c.strip().removeprefix("W/") for c in header.split(",") if c.strip()}
    return "*" in candidates or etag in candidates


def _immutable(request: HttpRequest, key: str, build: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """ETag from ``key`` (what the content depends on); 304 when the client already has it."""
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    response = HttpResponse(status=304) if _etag_matches(request, etag) else build()
    response["ETag"] = etag
    response["Cache-Control"] = _IMMUTABLE
    return response


# --- Accept negotiation -----------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    media_type: str  # e.g. multipart/related
    params: dict[str, str]
    q: float


def accept_parse(header: str | None) -> list[MediaRange]:
    """The Accept header as media ranges, highest q first (header order kept among equals)."""
    return list(_accept_parse(header))


@functools.lru_cache(maxsize=256)  # a viewer sends the same few headers with every request
def _accept_parse(header: str | None) -> tuple[MediaRange, ...]:
    if not header or not header.strip():
        return (MediaRange("*/*", {}, 1.0),)
    ranges = []
    for part in _split_outside_quotes(header, ","):
        pieces = _split_outside_quotes(part, ";")
        if not pieces or not pieces[0].strip():
            continue
        params = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        ranges.append(MediaRange(pieces[0].strip().lower(), params, q))
    return tuple(sorted(ranges, key=lambda r: -r.q))


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _type_matches(wanted: str, offered: str) -> bool:
    if wanted in ("*", "*/*"):
        return True
    major, _, minor = wanted.partition("/")
    return wanted == offered or (minor == "*" and offered.startswith(major + "/"))


# --- stored files -----------------------------------------------------------------------------


def _path(instance: DicomInstance) -> Path:
    return Path(settings.MEDIA_ROOT) / instance.file_path


def _explicit_little_endian(instance: DicomInstance) -> bytes:
    """The stored instance in Explicit VR Little Endian, decompressing or re-encoding when stored otherwise."""
    if instance.transfer_syntax_uid == EXPLICIT_VR_LITTLE_ENDIAN:
        return _path(instance).read_bytes()
    dataset = pydicom.dcmread(_path(instance))
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        dataset.decompress()
    else:
        pixels = dataset.pixel_array
        dataset.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
        dataset["PixelData"].VR = "OB" if pixels.dtype.itemsize == 1 else "OW"
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def _instance_transfer_syntax(ranges: list[MediaRange], stored: str) -> str:
    """Which syntax to send application/dicom instances in: the stored one or Explicit VR Little Endian."""
    for media in ranges:
        if media.media_type in ("*/*", "multipart/*"):
            return stored if stored == EXPLICIT_VR_LITTLE_ENDIAN else EXPLICIT_VR_LITTLE_ENDIAN
        if media.media_type == "multipart/related" and media.params.get("type", "application/dicom") in (
            "application/dicom",
            "application/*",
            "*/*",
        ):
            wanted = media.params.get("transfer-syntax", EXPLICIT_VR_LITTLE_ENDIAN)
            if wanted in ("*", stored):
                return stored
            if wanted == EXPLICIT_VR_LITTLE_ENDIAN:
                return EXPLICIT_VR_LITTLE_ENDIAN
    raise DicomwebError(
        406,
        'Instances are served as multipart/related; type="application/dicom" with transfer-syntax=* (as stored), '
        f"the stored syntax, or {EXPLICIT_VR_LITTLE_ENDIAN} (Explicit VR Little Endian)",
    )


# What a retrieve needs of an instance row (the DICOM JSON is not read: it is most of the row).
_RETRIEVE_FIELDS = ("sop_instance_uid", "transfer_syntax_uid", "file_path")


def _multipart_instances(request: HttpRequest, instances: Iterable[DicomInstance]) -> HttpResponseBase:
    """The instances as multipart/related application/dicom, streamed file by file.

    Instances sent as stored are read whole from their files (one read each, no copy into a joined
    part) and the response carries a Content-Length, so the server sends it as is rather than chunked.
    """
    instances = list(instances)
    if not instances:
        raise DicomwebError(404, "Nothing to retrieve")
    ranges = accept_parse(request.headers.get("Accept"))
    syntaxes = [_instance_transfer_syntax(ranges, i.transfer_syntax_uid) for i in instances]
    boundary = hashlib.sha256(b"".join(i.sop_instance_uid.encode() for i in instances)).hexdigest()[:32]
    heads = [f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={syntax}\r\n\r\n".encode() for syntax in syntaxes]
    closing = f"--{boundary}--\r\n".encode()
    as_stored = [syntax == instance.transfer_syntax_uid for instance, syntax in zip(instances, syntaxes, strict=True)]
    length: int | None = None
    if all(as_stored):
        try:
            length = sum(len(head) + _path(instance).stat().st_size + 2 for head, instance in zip(heads, instances, strict=True)) + len(
                closing
            )
        except OSError:
            length = None  # a missing file fails below, where the body is read

    def body() -> Iterator[bytes]:
        # One chunk per instance (CRLF, part header, file): no small write after a large one for Nagle's
        # algorithm to hold back until the client acknowledges.
        lead = b""
        for instance, head, stored in zip(instances, heads, as_stored, strict=True):
            yield b"".join((lead, head, _path(instance).read_bytes() if stored else _explicit_little_endian(instance)))
            lead = b"\r\n"
        yield lead + closing

    single = syntaxes[0] if len(set(syntaxes)) == 1 else None
    content_type = (
        'multipart/related; type="application/dicom"' + (f"; transfer-syntax={single}" if single else "") + f"; boundary={boundary}"
    )
    response = StreamingHttpResponse(body(), content_type=content_type)
    if length is not None:
        response["Content-Length"] = str(length)
    return response


# --- QIDO-RS ----------------------------------------------------------------------------------

_STUDY_TAGS = (
    "00080005",
    "00080020",
    "00080030",
    "00080050",
    "00080090",
    "00100010",
    "00100020",
    "00100030",
    "00100040",
    "0020000D",
    "00200010",
    "00081030",
)
_SERIES_TAGS = ("00080005", "00080060", "0008103E", "00080021", "00080031", "0020000E", "00200011", "0020000D")
_INSTANCE_TAGS = ("00080005", "00080016", "00080018", "00200013", "00280010", "00280011", "00280100", "00280008", "0020000E", "0020000D")


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/dicomweb")


def _visible_studies(user: User) -> QuerySet[DicomStudy]:
    studies = DicomStudy.objects.all()
    if user.is_staff:
        return studies
    return studies.filter(cases__reader_study__memberships__user=user).distinct()


def _sample(model_filter: str) -> Subquery:
    return Subquery(
        DicomInstance.objects.filter(**{model_filter: OuterRef("pk")})
        .order_by("slice_position_mm", "instance_number")
        .values("dicom_json")[:1],
        output_field=JSONField(),
    )


def _respond(query: QidoQuery, rows: list[tuple[dict[str, Any], dict[str, Any]]], default_tags: tuple[str, ...]) -> HttpResponseBase:
    """Filter (candidate, row) pairs, page them, and answer with the row's default, matched and included attributes."""
    matched = [(candidate, row) for candidate, row in rows if dataset_matches(candidate, query.filters)]
    page = matched[query.offset : query.offset + query.limit] if query.limit else matched[query.offset :]
    wanted = set(default_tags) | {tag for tag, _, _ in query.filters} | set(query.include_tags)
    payload = []
    for candidate, row in page:
        item = dict(row)
        for tag in sorted(wanted):
            if tag not in item and tag in candidate:
                item[tag] = candidate[tag]
        if query.include_all:
            for tag, value in candidate.items():
                item.setdefault(tag, value)
        payload.append(dict(sorted(item.items())))
    response = JsonResponse(payload, safe=False, content_type=DICOM_JSON)
    if query.fuzzy_requested:
        response["Warning"] = '299 SpineReview: "fuzzymatching is not supported; exact and wildcard matching were used"'
    if len(matched) > query.offset + len(page) and query.limit:
        response["Warning"] = '299 SpineReview: "The number of results exceeded the limit; use offset for more"'
    return response


def _study_rows(request: HttpRequest, studies: QuerySet[DicomStudy]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    annotated = studies.order_by("study_date", "created").annotate(
        sample=_sample("series__study"), n_series=Count("series", distinct=True), n_instances=Count("series__instances")
    )
    studies_list = list(annotated)
    modalities: dict[Any, set[str]] = {}
    for study_id, modality in (
        DicomSeries.objects.filter(study__in=[s.pk for s in studies_list]).values_list("study_id", "modality").distinct()
    ):
        modalities.setdefault(study_id, set()).add(modality)
    rows = []
    base = _base(request)
    for study in studies_list:
        sample: dict[str, Any] = study.sample or {}  # type: ignore[attr-defined]
        row = {tag: sample[tag] for tag in _STUDY_TAGS if tag in sample}
        row["0020000D"] = {"vr": "UI", "Value": [study.study_instance_uid]}
        row["00080061"] = {"vr": "CS", "Value": sorted(modalities.get(study.pk, set()))}
        row["00201206"] = {"vr": "IS", "Value": [study.n_series]}  # type: ignore[attr-defined]
        row["00201208"] = {"vr": "IS", "Value": [study.n_instances]}  # type: ignore[attr-defined]
        row["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
        row["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{study.study_instance_uid}"]}
        study_level = {tag: value for tag, value in sample.items() if tag[:4] in ("0008", "0010", "0012", "0020", "0032")}
        rows.append(({**study_level, **row}, row))
    return rows


def _series_rows(request: HttpRequest, series_qs: QuerySet[DicomSeries]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    rows = []
    base = _base(request)
    for series in (
        series_qs.select_related("study")
        .order_by("series_number", "created")
        .annotate(sample=_sample("series"), n_instances=Count("instances"))
    ):
        sample: dict[str, Any] = series.sample or {}  # type: ignore[attr-defined]
        study_uid = series.study.study_instance_uid
        row = {tag: sample[tag] for tag in _SERIES_TAGS if tag in sample}
        row["0020000E"] = {"vr": "UI", "Value": [series.series_instance_uid]}
        row["0020000D"] = {"vr": "UI", "Value": [study_uid]}
        row["00080060"] = {"vr": "CS", "Value": [series.modality]}
        row["00201209"] = {"vr": "IS", "Value": [series.n_instances]}  # type: ignore[attr-defined]
        row["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
        row["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{study_uid}/series/{series.series_instance_uid}"]}
        rows.append(({**sample, **row}, row))
    return rows


def _instance_rows(request: HttpRequest, instances: QuerySet[DicomInstance]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    rows = []
    base = _base(request)
    for instance in instances.select_related("series__study").order_by("series__series_number", "slice_position_mm", "instance_number"):
        sample = instance.dicom_json
        series_uid, study_uid = instance.series.series_instance_uid, instance.series.study.study_instance_uid
        row = {tag: sample[tag] for tag in _INSTANCE_TAGS if tag in sample}
        row["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
        row["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}"]}
        rows.append((sample, row))
    return rows


def _query(request: HttpRequest) -> QidoQuery:
    return qido_query_parse([(name, value) for name, values in request.GET.lists() for value in values])


def _qido(request: HttpRequest, user: User, build: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """A search answer, cached per process under (query, user, import generation) for 30 s.

    Every import that stores an instance changes the generation (a file under MEDIA_ROOT, read
    without a database query): a search never misses a stored study. A user's own answers are
    reused for at most 30 s, the same bound as the visibility cache.
    """
    newest = selectors.instances_generation()
    key = (request.get_full_path(), request.get_host(), "staff" if user.is_staff else user.pk, newest)
    cached = _QIDO.get(key)
    if cached is not None:
        body, warning = cached
        response = HttpResponse(body, content_type=DICOM_JSON)
        if warning:
            response["Warning"] = warning
        return response
    built = build()
    if built.status_code == 200 and isinstance(built, HttpResponse):
        _QIDO.put(key, (built.content, built.get("Warning")))
    return built


@dicomweb_endpoint(("GET", "POST"))
def studies(request: HttpRequest, user: User) -> HttpResponseBase:
    """GET: QIDO-RS search for studies. POST: STOW-RS."""
    if request.method == "POST":
        return _stow(request, user, study_uid=None)
    defaults = _STUDY_TAGS + ("00080061", "00201206", "00201208", "00081190", "00080056")
    return _qido(request, user, lambda: _respond(_query(request), _study_rows(request, _visible_studies(user)), defaults))


@dicomweb_endpoint(("GET",))
def search_series(request: HttpRequest, user: User, study_uid: str | None = None) -> HttpResponseBase:
    def build() -> HttpResponseBase:
        series = DicomSeries.objects.filter(study__in=_visible_studies(user))
        if study_uid is not None:
            series = series.filter(study=_study(user, study_uid))
        return _respond(_query(request), _series_rows(request, series), _SERIES_TAGS + ("00201209", "00081190", "00080056"))

    return _qido(request, user, build)


@dicomweb_endpoint(("GET",))
def search_instances(request: HttpRequest, user: User, study_uid: str | None = None, series_uid: str | None = None) -> HttpResponseBase:
    def build() -> HttpResponseBase:
        instances = DicomInstance.objects.filter(series__study__in=_visible_studies(user))
        if study_uid is not None and series_uid is not None:
            instances = instances.filter(series=_series(user, study_uid, series_uid))
        elif study_uid is not None:
            instances = instances.filter(series__study=_study(user, study_uid))
        return _respond(_query(request), _instance_rows(request, instances), _INSTANCE_TAGS + ("00081190", "00080056"))

    return _qido(request, user, build)


# --- WADO-RS retrieve and metadata ------------------------------------------------------------


@dicomweb_endpoint(("GET", "POST"))
def study(request: HttpRequest, user: User, study_uid: str) -> HttpResponseBase:
    """GET: the study's instances (multipart application/dicom). POST: STOW-RS into this study."""
    if request.method == "POST":
        return _stow(request, user, study_uid=study_uid)
    found = _study(user, study_uid)
    instances = (
        DicomInstance.objects.filter(series__study=found).order_by("series__series_number", "slice_position_mm").only(*_RETRIEVE_FIELDS)
    )
    return _multipart_instances(request, instances)


@dicomweb_endpoint(("GET",))
def series_retrieve(request: HttpRequest, user: User, study_uid: str, series_uid: str) -> HttpResponseBase:
    # The series' files, cached per process under the import generation (any import changes it, so a
    # new instance is never left out); access is checked on every request as _series does.
    key = (study_uid, series_uid, selectors.instances_generation())
    instances: list[DicomInstance] | None = _SERIES_INSTANCES.get(key)
    if instances is None:
        instances = list(selectors.series_instances(series=_series(user, study_uid, series_uid)).only(*_RETRIEVE_FIELDS))
        _SERIES_INSTANCES.put(key, instances)
    elif not user.is_staff and not _visible(user, study_uid):
        raise DicomwebError(404, "No such study, or you may not see it")
    return _multipart_instances(request, instances)


@dicomweb_endpoint(("GET",))
def instance_retrieve(request: HttpRequest, user: User, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponseBase:
    instance = _instance(user, study_uid, series_uid, sop_uid)
    syntax = _instance_transfer_syntax(accept_parse(request.headers.get("Accept")), instance.transfer_syntax_uid)
    return _immutable(request, f"instance|{sop_uid}|{syntax}", lambda: _multipart_instances(request, [instance]))


def _metadata(request: HttpRequest, instances: QuerySet[DicomInstance]) -> HttpResponseBase:
    """DICOM JSON of the instances with a BulkDataURI for pixel data; ETag from the instance list.

    The body is cached per process under its ETag (instances never change; a new instance changes
    the ETag), so a viewer reopening a series costs two small queries.
    """
    base = _base(request)
    sops = list(instances.values_list("sop_instance_uid", flat=True))
    etag = '"' + hashlib.sha256("|".join(sops).encode()).hexdigest()[:32] + '"'
    if _etag_matches(request, etag):
        response: HttpResponseBase = HttpResponse(status=304)
    else:
        body = _METADATA.get((etag, base))
        if body is None:
            payload = []
            for instance in instances.select_related("series__study"):
                study_uid, series_uid = instance.series.study.study_instance_uid, instance.series.series_instance_uid
                item = dict(instance.dicom_json)
                frames = int((item.get("00280008", {}).get("Value") or [1])[0] or 1)
                frame_list = ",".join(str(n) for n in range(1, frames + 1))
                item["7FE00010"] = {
                    "vr": "OW",
                    "BulkDataURI": f"{base}/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}/frames/{frame_list}",
                }
                payload.append(item)
            body = json.dumps(payload, separators=(",", ":")).encode()
            _METADATA.put((etag, base), body)
        response = HttpResponse(body, content_type=DICOM_JSON)
    # A series can gain instances, so metadata is revalidated (cheap 304) rather than cached blindly.
    response["ETag"] = etag
    response["Cache-Control"] = _REVALIDATE
    return response


@dicomweb_endpoint(("GET",))
def study_metadata(request: HttpRequest, user: User, study_uid: str) -> HttpResponseBase:
    found = _study(user, study_uid)
    instances = DicomInstance.objects.filter(series__study=found).order_by("series__series_number", "slice_position_mm", "instance_number")
    return _metadata(request, instances)


@dicomweb_endpoint(("GET",))
def series_metadata(request: HttpRequest, user: User, study_uid: str, series_uid: str) -> HttpResponseBase:
    series = _series(user, study_uid, series_uid)
    return _metadata(request, selectors.series_instances(series=series))


@dicomweb_endpoint(("GET",))
def instance_metadata(request: HttpRequest, user: User, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponseBase:
    instance = _instance(user, study_uid, series_uid, sop_uid)
    return _metadata(request, DicomInstance.objects.filter(pk=instance.pk))


# --- frames -----------------------------------------------------------------------------------


def _frame_numbers(frames: str) -> list[int]:
    try:
        numbers = [int(part) for part in frames.split(",")]
    except ValueError:
        raise DicomwebError(400, f"Frame list {frames!r} must be comma-separated frame numbers") from None
    return numbers


def _frame_choice(ranges: list[MediaRange], stored: str) -> tuple[str, str]:
    """(part media type, transfer syntax) to send frames in, from the Accept header.

    application/octet-stream is uncompressed (Explicit VR Little Endian pixel bytes), also for
    transfer-syntax=*; the stored bitstream of a compressed instance is sent when the client asks
    for its media type (image/jls, image/jp2, ...) with transfer-syntax=* or the stored syntax,
    or for application/octet-stream with exactly the stored syntax.
    """
    compressed_type = _FRAME_MEDIA_TYPES.get(stored)
    for media in ranges:
        if media.media_type == "multipart/related":
            part_type = media.params.get("type", "application/octet-stream")
        elif media.media_type in ("*/*", "application/octet-stream"):
            part_type = media.media_type
        else:
            continue
        wanted = media.params.get("transfer-syntax")
        if (
            compressed_type
            and wanted in ("*", stored)
            and part_type != "application/octet-stream"
            and _type_matches(part_type, compressed_type)
        ):
            return compressed_type, stored
        if compressed_type and wanted == stored and part_type == "application/octet-stream":
            return "application/octet-stream", stored
        if _type_matches(part_type, "application/octet-stream") and wanted in (None, "*", EXPLICIT_VR_LITTLE_ENDIAN):
            return "application/octet-stream", EXPLICIT_VR_LITTLE_ENDIAN
    raise DicomwebError(
        406,
        'Frames are served as multipart/related; type="application/octet-stream" (uncompressed, transfer-syntax '
        f"{EXPLICIT_VR_LITTLE_ENDIAN} or *)"
        + (f', or type="{compressed_type}" with transfer-syntax=* or {stored}' if compressed_type else ""),
    )


def _json_int(instance: DicomInstance, tag: str, default: int) -> int:
    values = instance.dicom_json.get(tag, {}).get("Value") or [default]
    return int(values[0] if values[0] not in (None, "") else default)


def _frames_direct(instance: DicomInstance, numbers: list[int]) -> list[bytes] | None:
    """Uncompressed little-endian frames read straight from the stored file (one seek per frame), or None."""
    if instance.pixel_data_offset is None or instance.transfer_syntax_uid != EXPLICIT_VR_LITTLE_ENDIAN:
        return None
    bits, samples = _json_int(instance, "00280100", 0), _json_int(instance, "00280002", 1)
    if bits not in (8, 16) or samples != 1:
        return None
    count = _json_int(instance, "00280008", 1)
    for number in numbers:
        if not 1 <= number <= count:
            raise DicomwebError(404, f"Frame {number} does not exist; the instance has {count} frame(s)")
    size = instance.rows * instance.columns * bits // 8
    out = []
    with open(_path(instance), "rb") as stored:
        for number in numbers:
            stored.seek(instance.pixel_data_offset + (number - 1) * size)
            out.append(stored.read(size))
    return out


def _frames(instance: DicomInstance, numbers: list[int], syntax: str) -> list[bytes]:
    if syntax == EXPLICIT_VR_LITTLE_ENDIAN:
        direct = _frames_direct(instance, numbers)
        if direct is not None:
            return direct
    dataset = selectors.instance_dataset(instance)
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    for number in numbers:
        if not 1 <= number <= count:
            raise DicomwebError(404, f"Frame {number} does not exist; the instance has {count} frame(s)")
    if syntax != EXPLICIT_VR_LITTLE_ENDIAN:
        fragments = list(generate_frames(dataset.PixelData, number_of_frames=count))
        return [fragments[n - 1] for n in numbers]
    if (
        instance.transfer_syntax_uid == EXPLICIT_VR_LITTLE_ENDIAN
        and int(dataset.BitsAllocated) in (8, 16)
        and dataset.get("SamplesPerPixel", 1) == 1
    ):
        # Stored uncompressed little endian: the frame is a slice of the pixel bytes, no decoding.
        size = int(dataset.Rows) * int(dataset.Columns) * int(dataset.BitsAllocated) // 8
        raw = dataset.PixelData
        return [raw[(n - 1) * size : n * size] for n in numbers]
    pixels = dataset.pixel_array
    if count == 1:
        pixels = pixels[np.newaxis]
    return [pixels[n - 1].astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes() for n in numbers]


@dicomweb_endpoint(("GET",))
def instance_frames(request: HttpRequest, user: User, study_uid: str, series_uid: str, sop_uid: str, frames: str) -> HttpResponseBase:
    instance = _instance(user, study_uid, series_uid, sop_uid)
    numbers = _frame_numbers(frames)
    part_type, syntax = _frame_choice(accept_parse(request.headers.get("Accept")), instance.transfer_syntax_uid)

    def build() -> HttpResponseBase:
        parts = _frames(instance, numbers, syntax)
        boundary = hashlib.sha256(f"{sop_uid}|{frames}".encode()).hexdigest()[:32]
        head = f"--{boundary}\r\nContent-Type: {part_type}; transfer-syntax={syntax}\r\n\r\n".encode()
        chunks: list[bytes] = []
        for part in parts:
            chunks += (head, part, b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return HttpResponse(
            b"".join(chunks), content_type=f'multipart/related; type="{part_type}"; transfer-syntax={syntax}; boundary={boundary}'
        )

    return _immutable(request, f"frames|{sop_uid}|{frames}|{syntax}", build)


# --- rendered and thumbnail -------------------------------------------------------------------


def _window(params: dict[str, str], dataset: pydicom.Dataset, values: np.ndarray) -> tuple[float, float]:
    if "window" in params:
        try:
            center, width, *_ = (float(v) for v in params["window"].split(","))
        except ValueError:
            raise DicomwebError(400, f"window={params['window']!r} must be center,width[,function]") from None
        if width <= 0:
            raise DicomwebError(400, "window width must be positive")
        return center, width
    center_attr, width_attr = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center_attr is not None and width_attr is not None:
        center = float(center_attr[0] if isinstance(center_attr, pydicom.multival.MultiValue) else center_attr)
        width = float(width_attr[0] if isinstance(width_attr, pydicom.multival.MultiValue) else width_attr)
        if width > 0:
            return center, width
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1.0)


def _render(instance: DicomInstance, frame: int, params: dict[str, str], *, thumbnail: bool, media_type: str) -> bytes:
    from PIL import Image

    dataset = selectors.instance_dataset(instance)
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    if not 1 <= frame <= count:
        raise DicomwebError(404, f"Frame {frame} does not exist; the instance has {count} frame(s)")
    pixels = dataset.pixel_array
    pixels = pixels[frame - 1] if count > 1 else pixels
    if pixels.ndim != 2:
        raise DicomwebError(406, "Only single-channel (grayscale) images can be rendered")
    values = pixels.astype(np.float64) * float(dataset.get("RescaleSlope", 1) or 1) + float(dataset.get("RescaleIntercept", 0) or 0)
    center, width = _window(params, dataset, values)
    # PS3.3 C.11.2.1.2.1 linear function: (x - (c - 0.5)) / (w - 1) + 0.5, clipped to [0, 1].
    scaled = np.clip((values - (center - 0.5)) / max(width - 1, 1e-6) + 0.5, 0, 1)
    if str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        scaled = 1 - scaled
    image = Image.fromarray(np.round(scaled * 255).astype(np.uint8), mode="L")
    viewport = params.get("viewport")
    if viewport or thumbnail:
        try:
            width_px, height_px = (int(v) for v in (viewport or f"{THUMBNAIL_PX},{THUMBNAIL_PX}").split(",")[:2])
        except ValueError:
            raise DicomwebError(400, f"viewport={viewport!r} must be width,height in pixels") from None
        if not (1 <= width_px <= 4096 and 1 <= height_px <= 4096):
            raise DicomwebError(400, "viewport width and height must be 1..4096 pixels")
        image.thumbnail((width_px, height_px))
    buffer = io.BytesIO()
    if media_type == "image/png":
        image.save(buffer, format="PNG")
    else:
        try:
            quality = int(params.get("quality", "90"))
        except ValueError:
            raise DicomwebError(400, "quality must be 1..100") from None
        image.save(buffer, format="JPEG", quality=min(max(quality, 1), 100))
    return buffer.getvalue()


def _rendered_type(request: HttpRequest) -> str:
    explicit = request.GET.get("accept")
    ranges = [MediaRange(explicit, {}, 1.0)] if explicit else accept_parse(request.headers.get("Accept"))
    for media in ranges:
        for offered in ("image/jpeg", "image/png"):
            if _type_matches(media.media_type, offered):
                return offered
    raise DicomwebError(406, "Rendered images are image/jpeg or image/png")


def _rendered_response(request: HttpRequest, instance: DicomInstance, frame: int, *, thumbnail: bool) -> HttpResponseBase:
    media_type = _rendered_type(request)
    params = {k: str(v) for k, v in request.GET.items() if k in ("window", "viewport", "quality")}
    key = f"rendered|{instance.sop_instance_uid}|{frame}|{thumbnail}|{media_type}|{sorted(params.items())}"
    return _immutable(
        request,
        key,
        lambda: HttpResponse(_render(instance, frame, params, thumbnail=thumbnail, media_type=media_type), content_type=media_type),
    )


@dicomweb_endpoint(("GET",))
def instance_rendered(
    request: HttpRequest, user: User, study_uid: str, series_uid: str, sop_uid: str, frames: str = "1"
) -> HttpResponseBase:
    numbers = _frame_numbers(frames)
    if len(numbers) != 1:
        raise DicomwebError(400, "Render one frame at a time")
    return _rendered_response(request, _instance(user, study_uid, series_uid, sop_uid), numbers[0], thumbnail=False)


@dicomweb_endpoint(("GET",))
def instance_thumbnail(request: HttpRequest, user: User, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponseBase:
    return _rendered_response(request, _instance(user, study_uid, series_uid, sop_uid), 1, thumbnail=True)


def _middle(instances: QuerySet[DicomInstance]) -> DicomInstance:
    ordered = list(instances.order_by("slice_position_mm", "instance_number").only("pk"))
    if not ordered:
        raise DicomwebError(404, "Nothing to show")
    return DicomInstance.objects.get(pk=ordered[len(ordered) // 2].pk)


@dicomweb_endpoint(("GET",))
def series_thumbnail(request: HttpRequest, user: User, study_uid: str, series_uid: str) -> HttpResponseBase:
    return _rendered_response(request, _middle(_series(user, study_uid, series_uid).instances.all()), 1, thumbnail=True)


@dicomweb_endpoint(("GET",))
def study_thumbnail(request: HttpRequest, user: User, study_uid: str) -> HttpResponseBase:
    first = _study(user, study_uid).series.order_by("series_number", "created").first()
    if first is None:
        raise DicomwebError(404, "Nothing to show")
    return _rendered_response(request, _middle(first.instances.all()), 1, thumbnail=True)


# --- STOW-RS ----------------------------------------------------------------------------------


def multipart_parts(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, content) of each part of a multipart/related body; DicomwebError 400 when malformed."""
    ranges = accept_parse(content_type)
    if not ranges or ranges[0].media_type != "multipart/related":
        raise DicomwebError(415, 'STOW-RS takes multipart/related; type="application/dicom"')
    params = ranges[0].params
    if params.get("type", "application/dicom") != "application/dicom":
        raise DicomwebError(415, f"STOW-RS here takes application/dicom parts, not {params.get('type')}")
    boundary = params.get("boundary")
    if not boundary:
        raise DicomwebError(400, "The Content-Type has no boundary")
    delimiter = b"--" + boundary.encode()
    # Where each delimiter starts: parts are found by position and each part's content is sliced once
    # (a STOW of 15 slices of 512 KiB is otherwise copied four times over).
    starts = []
    at = body.find(delimiter)
    while at >= 0:
        starts.append(at)
        at = body.find(delimiter, at + len(delimiter))
    if len(starts) < 2 or not body.startswith(b"--", starts[-1] + len(delimiter)):
        raise DicomwebError(400, "The multipart body is malformed: no closing boundary")
    parts = []
    for begin, end in zip(starts, starts[1:], strict=False):
        begin += len(delimiter)
        if body.startswith(b"\r\n", begin, end):
            begin += 2
        if body.startswith(b"\r\n", begin, end):  # a part without headers: application/dicom by default
            head, content_start = b"", begin + 2
        else:
            separator = body.find(b"\r\n\r\n", begin, end)
            if separator < 0:
                raise DicomwebError(400, "A multipart part has no header/body separator")
            head, content_start = body[begin:separator], separator + 4
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        part_type = headers.get("content-type", "application/dicom").split(";")[0].strip().lower()
        if part_type != "application/dicom":
            raise DicomwebError(415, f"A part is {part_type}; only application/dicom parts are accepted")
        if end - content_start >= 2 and body.startswith(b"\r\n", end - 2, end):
            end -= 2
        parts.append((headers, body[content_start:end]))
    if not parts:
        raise DicomwebError(400, "The multipart body has no parts")
    return parts


def _referenced_uids(data: bytes) -> tuple[str, str]:
    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID"])
        return str(header.get("SOPClassUID", "")), str(header.get("SOPInstanceUID", ""))
    except Exception:
        return "", ""


def _sop_item(sop_class: str, sop_uid: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_uid:
        item["00081155"] = {"vr": "UI", "Value": [sop_uid]}
    item.update(extra or {})
    return item


def _stow(request: HttpRequest, user: User, *, study_uid: str | None) -> HttpResponseBase:
    from spinereview.imaging.services import (
        ImportRejectedError,
        ImportResult,
        ImportSource,
        import_once_more_on_race,
        import_retried_by_caller,
    )
    from spinereview.studies.models import ReaderStudy
    from spinereview.studies.selectors import reader_studies_supervised
    from spinereview.studies.services import cases_import

    reader_study: ReaderStudy | None = None
    slug = request.GET.get("reader_study")
    if slug:
        reader_study = reader_studies_supervised(user=user).filter(slug=slug).first()
        if reader_study is None:
            raise DicomwebError(403, "You do not lead that reader study")
    elif not user.is_staff:
        raise DicomwebError(403, "Storing needs ?reader_study=<slug> of a reader study you lead, or an administrator")
    length = int(request.headers.get("Content-Length") or 0)
    if length > MAX_STOW_BYTES:
        raise DicomwebError(413, f"At most {MAX_STOW_BYTES >> 20} MiB per STOW-RS request")
    parts = multipart_parts(request.read(MAX_STOW_BYTES + 1), request.headers.get("Content-Type", ""))
    sources = [ImportSource(name=f"part {n}", data=content) for n, (_, content) in enumerate(parts, start=1)]
    if study_uid is not None:
        wrong = [source for source in sources if not _in_study(source.data, study_uid)]
        if wrong:
            failed = [_sop_item(*_referenced_uids(source.data), {"00081197": {"vr": "US", "Value": [0xA900]}}) for source in wrong]
            return JsonResponse({"00081198": {"vr": "SQ", "Value": failed}}, status=409, content_type=DICOM_JSON)

    def import_whole() -> ImportResult:
        # The view's transaction is retried whole on a lost race: the import needs no savepoint of its own.
        with import_retried_by_caller():
            return cases_import(sources=sources, reader_study=reader_study)

    try:
        result = import_once_more_on_race(import_whole)
    except ImportRejectedError as exc:
        reasons = {e["file"]: e["error"] for e in exc.extra.get("errors", [])}
        failed = []
        for source in sources:
            # 0xC000: cannot understand; 0x0110: processing failure (refused with the rest of the batch).
            code = 0xC000 if source.name in reasons else 0x0110
            failed.append(_sop_item(*_referenced_uids(source.data), {"00081197": {"vr": "US", "Value": [code]}}))
        logger.info("STOW-RS refused %d instance(s)", len(sources))
        response = JsonResponse({"00081198": {"vr": "SQ", "Value": failed}}, status=409, content_type=DICOM_JSON)
        response["Warning"] = (
            f'299 SpineReview: "{exc.message} ' + "; ".join(f"{k}: {v}" for k, v in reasons.items()).replace('"', "'")[:900] + '"'
        )
        return response
    base = _base(request)
    items = [
        _sop_item(
            stored.sop_class_uid,
            stored.sop_instance_uid,
            {
                "00081190": {
                    "vr": "UR",
                    "Value": [
                        f"{base}/studies/{stored.study_instance_uid}/series/{stored.series_instance_uid}/instances/{stored.sop_instance_uid}"
                    ],
                }
            },
        )
        for stored in result.stored_instances  # one per part, in the order sent
    ]
    payload: dict[str, Any] = {"00081199": {"vr": "SQ", "Value": items}}
    if len(result.study_instance_uids) == 1:
        payload["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{result.study_instance_uids[0]}"]}
    return JsonResponse(payload, status=200, content_type=DICOM_JSON)


def _in_study(data: bytes, study_uid: str) -> bool:
    """Whether an instance stored to /studies/{study_uid} belongs there (by its own or its pseudonymous UID)."""
    from spinereview.imaging.models import PseudonymousUid

    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    except Exception:
        return True  # unreadable: the import itself names the problem
    own = str(header.get("StudyInstanceUID", ""))
    return own == study_uid or PseudonymousUid.objects.filter(original_uid=own, uid=study_uid).exists()
