"""Per-level quantities of a reader's mask on every save, and the reader-minus-AI deltas stored for the
compare view and the reports.

The quantities come from :mod:`spinereview.morphometry.per_level`, the same code the AI's masks go
through (ai/level_measurements.py), so a delta compares like with like. The disc levels that place
an axial mask's slices come from the reader's own sagittal mask when it names them without doubt,
else from the AI's sagittal mask of the case's model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from spinereview.ai.level_measurements import DISC_LABEL_NAME, VERTEBRAL_BODY_LABEL_NAME, label_values, muscle_fat_sources
from spinereview.ai.models import AILevelMeasurement, AISegmentation, ModelVersion
from spinereview.ai.selectors import model_version_for_case
from spinereview.imaging.models import DicomSeries, DicomStudy
from spinereview.imaging.selectors import instances_generation, series_orientation, series_slice_geometry
from spinereview.morphometry import (
    AXIAL_QUANTITIES,
    SAGITTAL_QUANTITIES,
    SeriesGeometry,
    axial_level_rows,
    check_measurable,
    named_disc_centres,
    sagittal_level_rows,
)
from spinereview.studies.models import Assignment, LevelDelta, SegmentationVersion

logger = logging.getLogger(__name__)

DELTA_QUANTITIES = AXIAL_QUANTITIES + SAGITTAL_QUANTITIES
"""Quantities whose reader-minus-AI difference is stored per level (names of AILevelMeasurement fields)."""

Centres = dict[str, tuple[float, float, float]]
CENTRES_CACHE_SECONDS = 24 * 3600


def _slice_orientation(geometry: SeriesGeometry) -> str:
    normal = np.abs(geometry.slices[0].normal)
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def _geometry(series: DicomSeries) -> SeriesGeometry:
    """The series' slice geometry, read from the index once per import generation: masks are saved on every
    stroke, and a series changes only when an import stores instances (which changes the generation)."""
    key = f"series-geometry:{series.pk}:{series.series_instance_uid}:{instances_generation()}"
    attributes = cache.get(key)
    if attributes is None:
        _, attributes = series_slice_geometry(series=series)
        cache.set(key, attributes, CENTRES_CACHE_SECONDS)
    return SeriesGeometry.from_dicom_attributes(attributes)


def _named_centres_cached(key: str, compute: Callable[[], tuple[Centres, str]]) -> tuple[Centres, str]:
    """Disc centres of an immutable mask (a saved version, an AI result), computed once per mask:
    masks are saved on every stroke, and naming the discs is the costly part of measuring one."""
    cached = cache.get(key)
    if cached is None:
        try:
            cached = compute()
        except (ValueError, KeyError, OSError) as exc:
            logger.info("%s does not name the disc levels: %s", key, exc)
            cached = ({}, f"not readable: {exc}")
        cache.set(key, cached, CENTRES_CACHE_SECONDS)
    return cached  # type: ignore[no-any-return]


def _sagittal_series(series_ids: set[Any]) -> list[DicomSeries]:
    return [series for series in DicomSeries.objects.filter(pk__in=series_ids) if series_orientation(series=series) == "sagittal"]


def _reader_sagittal_centres(assignment: Assignment, values: dict[str, int]) -> tuple[Centres, str]:
    """Disc centres named on the reader's newest sagittal mask, if it names all levels without doubt."""
    from spinereview.studies.services.segmentations import segmentation_labels_load

    if DISC_LABEL_NAME not in values or VERTEBRAL_BODY_LABEL_NAME not in values:
        return {}, ""
    versions = assignment.segmentation_versions
    for series in _sagittal_series(set(versions.values_list("series_id", flat=True).distinct())):
        version = versions.filter(series=series).order_by("-version").first()
        if version is None:
            continue
        named, flag = _named_centres_cached(
            f"sr:disc-centres:mask:{version.pk}",
            lambda: named_disc_centres(
                segmentation_labels_load(version),  # noqa: B023 - called at once, inside this iteration
                _geometry(series),  # noqa: B023
                disc_label=values[DISC_LABEL_NAME],
                vertebral_body_label=values[VERTEBRAL_BODY_LABEL_NAME],
            ),
        )
        if named and not flag:
            return named, f"your sagittal mask (version {version.version})"
    return {}, ""


def _ai_sagittal_centres(assignment: Assignment) -> tuple[Centres, str, str]:
    """Disc centres named on the AI's sagittal mask of the case's model, their source, and its flag."""
    model_version = model_version_for_case(case=assignment.case)
    if model_version is None:
        return {}, "", ""
    segmentations = AISegmentation.objects.filter(series__study=assignment.case.dicom_study, model_version=model_version)
    by_series = {segmentation.series_id: segmentation for segmentation in segmentations}
    for series in _sagittal_series(set(by_series)):
        segmentation = by_series[series.pk]
        values = label_values(segmentation.label_map)
        named, flag = _named_centres_cached(
            f"sr:disc-centres:ai:{segmentation.pk}",
            lambda: named_disc_centres(
                np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path),  # noqa: B023 - called at once
                _geometry(series),  # noqa: B023
                disc_label=values[DISC_LABEL_NAME],  # noqa: B023
                vertebral_body_label=values[VERTEBRAL_BODY_LABEL_NAME],  # noqa: B023
            ),
        )
        if named:
            return named, f"the AI's sagittal mask ({model_version.version})", flag
    return {}, "", ""


def _rounded(rows: list[dict[str, Any]], source: str, flag: str) -> list[dict[str, Any]]:
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float):
                row[key] = round(value, 2)
        row["levels_from"] = source
        if flag:
            row["levels_flag"] = flag
    return rows


def mask_level_measurements(
    *, assignment: Assignment, series: DicomSeries, labels: np.ndarray, protocol: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """The per-level rows of one reader mask, or ``([], why)`` when the mask cannot be measured at all
    (empty, the series' geometry missing or unusable, no way to name the levels, a coronal series)."""
    values = {label["name"]: int(label["value"]) for label in protocol["segmentation"]["labels"]}
    levels = list(protocol["levels"])
    try:
        geometry = _geometry(series)
    except ValueError as exc:
        return [], f"the series has no usable geometry, so its masks cannot be measured: {exc}"
    try:
        check_measurable(labels, geometry, "mask")
        orientation = _slice_orientation(geometry)
        if orientation == "coronal":
            return [], "a coronal series has no per-level measurements"
        named: Centres = {}
        source = flag = ""
        if orientation == "sagittal" and DISC_LABEL_NAME in values and VERTEBRAL_BODY_LABEL_NAME in values:
            own, own_flag = named_disc_centres(
                labels, geometry, disc_label=values[DISC_LABEL_NAME], vertebral_body_label=values[VERTEBRAL_BODY_LABEL_NAME]
            )
            if own and not own_flag:
                named, source = own, "this mask"
        if not named:
            named, source = _reader_sagittal_centres(assignment, values)
        if not named:
            named, source, flag = _ai_sagittal_centres(assignment)
        if orientation == "sagittal":
            if not named:
                return (
                    [],
                    "the disc levels cannot be named: this mask has no disc between two vertebral bodies and there is no AI sagittal mask yet",
                )
            return _rounded(sagittal_level_rows(labels, geometry, named, label_values=values, levels=levels), source, flag), ""
        if not named:
            return (
                [],
                "the disc levels are not known yet: draw the discs and vertebral bodies on the sagittal series, or wait for the AI's sagittal mask",
            )
        sources = muscle_fat_sources(series=series, labels=labels, values=values)
        return _rounded(axial_level_rows(labels, geometry, named, label_values=values, levels=levels, **sources), source, flag), ""
    except ValueError as exc:
        return [], str(exc)


def _latest_versions(dicom_study: DicomStudy) -> list[SegmentationVersion]:
    latest: dict[tuple[Any, ...], SegmentationVersion] = {}
    for version in SegmentationVersion.objects.filter(assignment__case__dicom_study=dicom_study).order_by("version"):
        latest[(version.assignment_id, version.series_id, version.phase)] = version
    return list(latest.values())


def _ai_value(row: AILevelMeasurement | None, quantity: str) -> float | None:
    if row is None:
        return None
    if quantity in ("dsca_mm2", "min_dsca_mm2") and row.flag:
        return None  # a flagged level's DSCA is not the AI's answer (the compare view and reports agree)
    value = getattr(row, quantity)
    return None if value is None else round(float(value), 2)  # to the reader values' precision: equal masks give 0, not 0.004


@transaction.atomic
def level_deltas_refresh(
    *, model_version: ModelVersion, versions: list[SegmentationVersion] | None = None, dicom_study: DicomStudy | None = None
) -> int:
    """Store reader-minus-AI per level and quantity for the given mask versions (default: the newest
    version of each assignment, series and phase of ``dicom_study``) against ``model_version``'s
    per-level measurements. Where either side has no value the row keeps the other and no delta."""
    if versions is None:
        if dicom_study is None:
            raise ValueError("give versions or dicom_study")
        versions = _latest_versions(dicom_study)
    if not versions:
        return 0
    studies = {v.assignment.case.dicom_study_id for v in versions} if dicom_study is None else {dicom_study.pk}
    ai_rows = {
        (row.dicom_study_id, row.level): row
        for row in AILevelMeasurement.objects.filter(dicom_study_id__in=studies, model_version=model_version)
    }
    LevelDelta.objects.filter(segmentation_version__in=versions, model_version=model_version).delete()
    deltas = []
    for version in versions:
        study_id = dicom_study.pk if dicom_study is not None else version.assignment.case.dicom_study_id
        for row in version.level_measurements:
            ai_row = ai_rows.get((study_id, row["level"]))
            for quantity in DELTA_QUANTITIES:
                if quantity not in row:
                    continue
                reader, ai = row[quantity], _ai_value(ai_row, quantity)
                if reader is None and ai is None:
                    continue
                delta = round(reader - ai, 3) if reader is not None and ai is not None else None
                deltas.append(
                    LevelDelta(
                        segmentation_version=version,
                        model_version=model_version,
                        level=row["level"],
                        quantity=quantity,
                        reader_value=reader,
                        ai_value=ai,
                        delta=delta,
                    )
                )
    LevelDelta.objects.bulk_create(deltas)
    return len(deltas)


def level_deltas_for_new_version(*, version: SegmentationVersion) -> None:
    """The deltas of a just-saved mask against the case's model (none while the case has no model). The
    versions it supersedes (same assignment, series and phase) lose theirs: nothing reads them, and masks
    are saved on every stroke."""
    LevelDelta.objects.filter(
        segmentation_version__assignment_id=version.assignment_id,
        segmentation_version__series_id=version.series_id,
        segmentation_version__phase=version.phase,
        segmentation_version__version__lt=version.version,
    ).delete()
    model_version = model_version_for_case(case=version.assignment.case)
    if model_version is not None:
        level_deltas_refresh(model_version=model_version, versions=[version])
