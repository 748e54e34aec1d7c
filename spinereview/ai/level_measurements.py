"""The per-level quantities (DSCA, canal AP diameter, disc heights, paraspinal muscles) derived from an
examination's AI masks, and the image sources the muscles' fat fraction is read from (shared with the
readers' masks, see studies/services/segmentations.py)."""

from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from spinereview.ai.models import AILevelMeasurement, AISegmentation, ModelVersion
from spinereview.core.errors import ApplicationError, NotFoundError
from spinereview.imaging.models import DicomSeries, DicomStudy
from spinereview.imaging.selectors import series_orientation, series_slice_geometry, series_volume_load
from spinereview.morphometry import (
    AXIAL_QUANTITIES,
    LUMBAR_DISC_LEVELS,
    SAGITTAL_QUANTITIES,
    FatWater,
    SeriesGeometry,
    SignalIntensityModel,
    axial_level_rows,
    named_disc_centres,
    sagittal_level_rows,
)

logger = logging.getLogger(__name__)

# The grade fields of a level not (yet) graded by the model's grader (stenosis and its other tasks).
UNGRADED: dict[str, Any] = {"grade_index": None, "grade_name": "", "grade_probabilities": None, "grader_version": "", "task_grades": {}}

DISC_LABEL_NAME = "intervertebral_disc"
VERTEBRAL_BODY_LABEL_NAME = "vertebral_body"
MUSCLE_LABEL_NAMES = ("paraspinal_muscle_left", "paraspinal_muscle_right")
# Dixon outputs name themselves in ImageType (Siemens DIXON\FAT, GE FAT/WATER, Philips F/W) or the description.
_FAT_TOKENS, _WATER_TOKENS = {"FAT", "F"}, {"WATER", "W"}
_FAT_DESCRIPTION = re.compile(r"(^|[^a-z])fat([^a-z]|$)|_f$", re.IGNORECASE)
_WATER_DESCRIPTION = re.compile(r"(^|[^a-z])water([^a-z]|$)|_w$", re.IGNORECASE)


def label_values(label_map: dict[str, str]) -> dict[str, int]:
    """Structure name -> label value, from a stored ``{"value": "name"}`` label map."""
    return {name: int(value) for value, name in label_map.items()}


def _label_value(label_map: dict[str, str], name: str) -> int:
    for value, label_name in label_map.items():
        if label_name == name:
            return int(value)
    raise ApplicationError(f"the model's label map has no '{name}' label")


def _dixon_kind(series: DicomSeries) -> str | None:
    first = series.instances.order_by("instance_number").first()
    tokens = {str(v).upper() for v in ((first.dicom_json.get("00080008") or {}).get("Value") or [])[2:]} if first else set()
    fat = bool(tokens & _FAT_TOKENS) or bool(_FAT_DESCRIPTION.search(series.series_description))
    water = bool(tokens & _WATER_TOKENS) or bool(_WATER_DESCRIPTION.search(series.series_description))
    if fat != water:
        return "fat" if fat else "water"
    return None


def fat_water_for_series(*, series: DicomSeries) -> FatWater | None:
    """The examination's axial fat/water (Dixon) pair, with its own geometry, if it has exactly one:
    two axial series of one acquisition grid, one fat and one water image. None otherwise."""
    found: dict[str, list[DicomSeries]] = {"fat": [], "water": []}
    for other in DicomSeries.objects.filter(study_id=series.study_id, modality="MR").exclude(pk=series.pk):
        kind = _dixon_kind(other)
        if kind is not None and series_orientation(series=other) == "axial":
            found[kind].append(other)
    if len(found["fat"]) != 1 or len(found["water"]) != 1:
        if found["fat"] or found["water"]:
            logger.info(
                "Study %s: %d fat and %d water series; no unique fat/water pair", series.study_id, len(found["fat"]), len(found["water"])
            )
        return None
    try:
        fat, water = series_volume_load(series=found["fat"][0]), series_volume_load(series=found["water"][0])
        geometry = SeriesGeometry.from_dicom_attributes(fat.per_slice_attributes)
        if fat.volume.shape != water.volume.shape or geometry != SeriesGeometry.from_dicom_attributes(water.per_slice_attributes):
            logger.info("Study %s: the fat and water series are not on one grid; not a pair", series.study_id)
            return None
        return FatWater(fat.volume, water.volume, geometry)
    except (ValueError, NotFoundError) as exc:
        logger.warning("Study %s: fat/water pair not readable: %s", series.study_id, exc)
        return None


def muscle_intensity_model(*, series: DicomSeries) -> SignalIntensityModel | None:
    """The configured intensity model for this series' weighting (settings.MUSCLE_FAT_INTENSITY_MODELS,
    ``{"T1": {...}, "T2": {...}}`` of :class:`SignalIntensityModel` arguments in the stored pixel values),
    or None when there is none for it."""
    from spinereview.studies.selectors import series_weighting

    models: dict[str, Any] = getattr(settings, "MUSCLE_FAT_INTENSITY_MODELS", None) or {}
    weighting = series_weighting(series=series)
    config = models.get(weighting) if weighting else None
    if not config:
        return None
    try:
        return SignalIntensityModel(**config)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"MUSCLE_FAT_INTENSITY_MODELS[{weighting!r}]: {exc}") from None


def muscle_fat_sources(*, series: DicomSeries, labels: np.ndarray, values: dict[str, int]) -> dict[str, Any]:
    """What the muscles' fat fraction is read from for a mask of ``series``: the fat/water pair when the
    examination has one, else the series' own image through the configured intensity model, else
    nothing (the CSA is measured all the same). Images are loaded only for masks with muscles."""
    muscle_values = [values[name] for name in MUSCLE_LABEL_NAMES if name in values]
    if not muscle_values or not np.isin(labels, muscle_values).any():
        return {}
    pair = fat_water_for_series(series=series)
    if pair is not None:
        return {"fat_water": pair}
    model = muscle_intensity_model(series=series)
    if model is None:
        return {}
    try:
        loaded = series_volume_load(series=series)
    except (ValueError, NotFoundError) as exc:
        logger.warning("Series %s: image not readable for the muscle fat fraction: %s", series.series_instance_uid, exc)
        return {}
    return {"image": loaded.volume, "intensity_model": model}


def ai_segmentations_by_orientation(*, study: DicomStudy, model_version: ModelVersion) -> dict[str, AISegmentation]:
    """The model's mask of the examination's first sagittal and first axial series."""
    by_orientation: dict[str, AISegmentation] = {}
    for segmentation in AISegmentation.objects.filter(series__study=study, model_version=model_version).select_related("series").order_by("created"):
        orientation = series_orientation(series=segmentation.series)
        if orientation is not None:
            by_orientation.setdefault(orientation, segmentation)
    return by_orientation


def segmentation_with_geometry(segmentation: AISegmentation) -> tuple[np.ndarray, SeriesGeometry]:
    labels = np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path)
    sop_instance_uids, attributes = series_slice_geometry(series=segmentation.series)
    if sop_instance_uids != tuple(segmentation.sop_instance_uids):
        raise ApplicationError(f"series {segmentation.series.series_instance_uid} changed since its AI result was made")
    sizes = sorted(set(segmentation.series.instances.values_list("rows", "columns")))
    if labels.ndim != 3 or len(sizes) != 1 or tuple(labels.shape[1:]) != tuple(sizes[0]):
        raise ValueError(
            f"the AI mask of series {segmentation.series.series_instance_uid} has shape {labels.shape}; "
            f"the series has {len(sop_instance_uids)} slices of rows x columns {sizes}"
        )
    return labels, SeriesGeometry.from_dicom_attributes(attributes)


def ai_level_measurements_compute(*, dicom_study_id: str, model_version_id: str) -> list[AILevelMeasurement]:
    """Per disc level, from the AI's sagittal (levels, disc heights) and axial (DSCA, canal AP diameter,
    paraspinal muscles) masks of one examination; then the readers' per-level deltas against them."""
    study = DicomStudy.objects.get(pk=dicom_study_id)
    model_version = ModelVersion.objects.get(pk=model_version_id)
    by_orientation = ai_segmentations_by_orientation(study=study, model_version=model_version)
    if "sagittal" not in by_orientation or "axial" not in by_orientation:
        return []  # the other series' job has not finished yet: it will call again
    sagittal, axial = by_orientation["sagittal"], by_orientation["axial"]
    axial_rows: dict[str, dict[str, Any]] = {}
    sagittal_rows: dict[str, dict[str, Any]] = {}
    try:
        sag_labels, sag_geometry = segmentation_with_geometry(sagittal)
        ax_labels, ax_geometry = segmentation_with_geometry(axial)
        named, flag = named_disc_centres(
            sag_labels,
            sag_geometry,
            disc_label=_label_value(sagittal.label_map, DISC_LABEL_NAME),
            vertebral_body_label=_label_value(sagittal.label_map, VERTEBRAL_BODY_LABEL_NAME),
        )
    except ValueError as exc:  # no usable geometry, a mask of the wrong shape: every level says so, none keeps old numbers
        named, flag = {}, f"the AI's masks cannot be measured: {exc}"
    if named:  # with no disc found there is nothing to place the axial slices against: every level is flagged
        values = label_values(axial.label_map)
        try:
            sources = muscle_fat_sources(series=axial.series, labels=ax_labels, values=values)
            axial_rows = {r["level"]: r for r in axial_level_rows(ax_labels, ax_geometry, named, label_values=values, **sources)}
        except ValueError as exc:  # e.g. an empty axial mask: a flag, never 0 mm2 (which would read as severe)
            flag = f"{flag}; {exc}" if flag else str(exc)
        # Disc heights are extra quantities: one that cannot be measured is left empty, never guessed,
        # and does not flag the level's DSCA.
        try:
            rows = sagittal_level_rows(sag_labels, sag_geometry, named, label_values=label_values(sagittal.label_map))
            sagittal_rows = {r["level"]: r for r in rows}
        except ValueError as exc:
            logger.info("AI disc heights not measured for study %s: %s", study.pk, exc)
    measurements = []
    with transaction.atomic():
        for level in LUMBAR_DISC_LEVELS:
            axial_row = axial_rows.get(level, {})
            sagittal_row = sagittal_rows.get(level, {})
            errors = {**axial_row.get("errors", {}), **sagittal_row.get("errors", {})}
            dsca = axial_row.get("dsca_mm2")
            level_flag = flag if dsca is not None else (flag or errors.get("dsca_mm2") or "no axial slice near this disc level")
            row, _ = AILevelMeasurement.objects.update_or_create(
                dicom_study=study,
                model_version=model_version,
                level=level,
                defaults={
                    "axial_slice_index": axial_row.get("axial_slice_index") if dsca is not None else None,
                    "distance_to_disc_mm": axial_row.get("distance_to_disc_mm") if dsca is not None else None,
                    **{quantity: axial_row.get(quantity) for quantity in AXIAL_QUANTITIES},
                    **{quantity: sagittal_row.get(quantity) for quantity in SAGITTAL_QUANTITIES},
                    "muscle_fat_method": axial_row.get("muscle_fat_method", ""),
                    "errors": errors,
                    "flag": level_flag[:300],
                    # graded again on the (possibly new) axial slice by ai.level_grades, on a gpu worker
                    **UNGRADED,
                },
            )
            measurements.append(row)
        from spinereview.studies.services.mask_measurements import level_deltas_refresh

        level_deltas_refresh(dicom_study=study, model_version=model_version)
        if model_version.grader:
            from spinereview.ai.level_grades import level_grades_enqueue

            transaction.on_commit(partial(level_grades_enqueue, dicom_study_id=str(study.pk), model_version_id=str(model_version.pk)))
    return measurements
