"""Readers' own masks: every save a new version of the labelmap of one series, never overwritten."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from spinereview.accounts.models import User
from spinereview.ai.models import AISegmentation
from spinereview.ai.selectors import model_version_for_case
from spinereview.core.errors import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError, PreconditionFailedError
from spinereview.imaging.models import DicomSeries
from spinereview.morphometry import label_voxel_counts
from spinereview.studies.models import Assignment, SegmentationVersion
from spinereview.studies.selectors import ai_segmentation_for_reader, assignment_phase
from spinereview.studies.services.audit import audit_of
from spinereview.studies.services.mask_measurements import level_deltas_for_new_version, mask_level_measurements


def case_series_get(*, assignment: Assignment, series_instance_uid: str) -> DicomSeries:
    series = DicomSeries.objects.filter(case_series__case=assignment.case, series_instance_uid=series_instance_uid).first()
    if series is None:
        raise NotFoundError("No such series in this case")
    return series


def series_shape(series: DicomSeries) -> tuple[int, int, int]:
    """(z, y, x) of a series: slices in spatial order, rows, columns (one image size per series)."""
    sizes = list(series.instances.order_by().values_list("rows", "columns").annotate(slices=Count("pk")))
    if len(sizes) != 1:
        raise ApplicationError(f"series {series.series_instance_uid} mixes image sizes; it cannot hold one labelmap")
    rows, columns, slices = sizes[0]
    return slices, rows, columns


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An .npz archive as np.savez_compressed writes it, but deflated at level 1: a labelmap is mostly
    background, which level 1 packs nearly as small (13 vs 6 kB for a 25 x 256 x 256 mask) in a third
    of the time np.savez_compressed's default level takes (8 vs 21 ms), inside the save request."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def segmentation_labels_load(version: SegmentationVersion) -> np.ndarray:
    with np.load(Path(settings.MEDIA_ROOT) / version.file_path) as stored:
        return np.asarray(stored["labels"])


def _labels_from_bytes(data: bytes, shape: tuple[int, int, int], allowed: set[int]) -> tuple[np.ndarray, dict[int, int]]:
    """The labelmap and its voxel count per label value present."""
    expected = shape[0] * shape[1] * shape[2]
    if len(data) != expected:
        raise ApplicationError(f"The labelmap has {len(data)} bytes; this series needs {expected} (uint8, z*y*x = {shape[0]}*{shape[1]}*{shape[2]})")
    labels = np.frombuffer(data, dtype=np.uint8).reshape(shape)
    counts = label_voxel_counts(labels)
    present = set(counts) - {0}
    stray = sorted(present - allowed)
    if stray:
        raise ApplicationError(f"Label value(s) {', '.join(map(str, stray))} are not in this protocol's segmentation labels ({', '.join(map(str, sorted(allowed)))})")
    return labels, counts


@transaction.atomic
def segmentation_save(
    *, assignment: Assignment, user: User, series_instance_uid: str, base_version: int, data: bytes, source: str = SegmentationVersion.Source.READER
) -> SegmentationVersion:
    """Store the reader's labelmap of one series as a new version (uint8, C order (z, y, x))."""
    if assignment.reader_id != user.pk:
        raise PermissionDeniedError("Only the assigned reader may save this mask")
    # of=("self",): lock the assignment row only; the joined case and study rows would serialise every save of a study
    assignment = Assignment.objects.select_for_update(of=("self",)).select_related("case__reader_study", "case__dicom_study").get(pk=assignment.pk)
    protocol = assignment.case.reader_study.protocol
    if not protocol.get("segmentation"):
        raise ApplicationError("This study's protocol has no segmentation task")
    series = case_series_get(assignment=assignment, series_instance_uid=series_instance_uid)
    current = SegmentationVersion.objects.filter(assignment=assignment, series=series).order_by("-version").first()
    current_number = current.version if current else 0
    if base_version != current_number:
        raise PreconditionFailedError(
            f"This mask was saved elsewhere (version {current_number}); you edited version {base_version}. Load the latest version.",
            extra={"current_version": current_number},
        )
    phase = assignment_phase(assignment=assignment)
    if phase == "done":
        raise ConflictError("This read is submitted and locked; its masks cannot change")
    labels, counts = _labels_from_bytes(data, series_shape(series), {label["value"] for label in protocol["segmentation"]["labels"]})
    number = current_number + 1
    relative = Path("segmentations") / str(assignment.pk) / series.series_instance_uid / f"v{number:05d}.npz"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(npz_bytes(labels=labels))
    partial.replace(target)
    rows, measurement_error = mask_level_measurements(assignment=assignment, series=series, labels=labels, protocol=protocol)
    version = SegmentationVersion.objects.create(
        assignment=assignment,
        series=series,
        version=number,
        phase=phase,
        source=source,
        saved_by=user,
        file_path=str(relative),
        sha256=hashlib.sha256(labels.tobytes()).hexdigest(),
        shape=list(labels.shape),
        voxels_per_label={str(v): n for v, n in counts.items() if v != 0},
        level_measurements=rows,
        measurement_error=measurement_error,
    )
    level_deltas_for_new_version(version=version)
    audit_of(assignment, actor=user.username, action="segmentation.save", details={"series": series.series_instance_uid, "version": number, "phase": phase, "source": source, "sha256": version.sha256})
    return version


def segmentation_from_ai(*, assignment: Assignment, user: User, series_instance_uid: str, base_version: int) -> SegmentationVersion:
    """Start the reader's mask from the AI's: a new version holding the AI labels the protocol asks for.
    Refused while the protocol blinds the AI (the unaided read must not see it)."""
    series = case_series_get(assignment=assignment, series_instance_uid=series_instance_uid)
    ai = ai_segmentation_for_reader(assignment=assignment, series_id=series.pk)
    if ai is None:
        if assignment.reader_id == user.pk and not AISegmentation.objects.filter(series=series, model_version=model_version_for_case(case=assignment.case)).exists():
            raise NotFoundError("The AI has not segmented this series yet")
        raise PermissionDeniedError("The AI's mask is hidden until your unaided read is submitted")
    ai_labels = np.load(Path(settings.MEDIA_ROOT) / ai.file_path)
    protocol = assignment.case.reader_study.protocol
    if not protocol.get("segmentation"):
        raise ApplicationError("This study's protocol has no segmentation task")
    ai_value_by_name = {name: int(value) for value, name in ai.label_map.items()}
    copied = np.zeros(ai_labels.shape, dtype=np.uint8)
    for label in protocol["segmentation"]["labels"]:
        if label["name"] in ai_value_by_name:
            copied[ai_labels == ai_value_by_name[label["name"]]] = label["value"]
    return segmentation_save(
        assignment=assignment, user=user, series_instance_uid=series_instance_uid, base_version=base_version, data=copied.tobytes(), source=SegmentationVersion.Source.AI_COPY
    )
