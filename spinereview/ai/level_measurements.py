"""The per-level quantities (DSCA, canal AP diameter, disc heights) derived from an examination's AI masks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from spinereview.ai.models import AILevelMeasurement, AISegmentation, ModelVersion
from spinereview.core.errors import ApplicationError
from spinereview.imaging.models import DicomStudy
from spinereview.imaging.selectors import series_orientation, series_slice_geometry
from spinereview.morphometry import (
    LUMBAR_DISC_LEVELS,
    SeriesGeometry,
    StructureHeights,
    assign_levels,
    axial_slice_levels,
    canal_ap_by_level_mm,
    disc_centres,
    disc_heights_mm,
    dsca_by_level_mm2,
    heights_by_name,
    intervertebral_discs,
)

logger = logging.getLogger(__name__)

DISC_LABEL_NAME = "intervertebral_disc"
VERTEBRAL_BODY_LABEL_NAME = "vertebral_body"
DURAL_SAC_LABEL_NAME = "dural_sac"
SPINAL_CANAL_LABEL_NAME = "spinal_canal"


def _label_value(label_map: dict[str, str], name: str) -> int:
    for value, label_name in label_map.items():
        if label_name == name:
            return int(value)
    raise ApplicationError(f"the model's label map has no '{name}' label")


def _segmentation_with_geometry(segmentation: AISegmentation) -> tuple[np.ndarray, SeriesGeometry]:
    labels = np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path)
    sop_instance_uids, attributes = series_slice_geometry(series=segmentation.series)
    if sop_instance_uids != tuple(segmentation.sop_instance_uids):
        raise ApplicationError(f"series {segmentation.series.series_instance_uid} changed since its AI result was made")
    return labels, SeriesGeometry.from_dicom_attributes(attributes)


def ai_level_measurements_compute(*, dicom_study_id: str, model_version_id: str) -> list[AILevelMeasurement]:
    """DSCA per disc level from the AI's sagittal (levels) and axial (dural sac) masks of one examination."""
    study = DicomStudy.objects.get(pk=dicom_study_id)
    model_version = ModelVersion.objects.get(pk=model_version_id)
    by_orientation: dict[str, AISegmentation] = {}
    for segmentation in AISegmentation.objects.filter(series__study=study, model_version=model_version).select_related("series"):
        orientation = series_orientation(series=segmentation.series)
        if orientation is not None:
            by_orientation.setdefault(orientation, segmentation)
    if "sagittal" not in by_orientation or "axial" not in by_orientation:
        return []  # the other series' job has not finished yet: it will call again
    sagittal, axial = by_orientation["sagittal"], by_orientation["axial"]
    sag_labels, sag_geometry = _segmentation_with_geometry(sagittal)
    ax_labels, ax_geometry = _segmentation_with_geometry(axial)
    centres = intervertebral_discs(
        disc_centres(sag_labels, sag_geometry, _label_value(sagittal.label_map, DISC_LABEL_NAME)),
        disc_centres(sag_labels, sag_geometry, _label_value(sagittal.label_map, VERTEBRAL_BODY_LABEL_NAME)),
    )
    assignment = assign_levels(centres, LUMBAR_DISC_LEVELS)
    flag = assignment.reason if assignment.ambiguous else ""
    named = assignment.centres_by_level(allow_ambiguous=True)
    per_level = {}
    ap_by_level: dict[str, float | None] = {}
    heights: dict[str, StructureHeights] = {}
    if named:  # with no disc found there is nothing to place the axial slices against: every level is flagged
        slice_levels = axial_slice_levels(ax_geometry, named)
        try:
            per_level = dsca_by_level_mm2(ax_labels, ax_geometry, slice_levels, _label_value(axial.label_map, DURAL_SAC_LABEL_NAME))
        except ValueError as exc:  # e.g. no dural sac on any axial slice: a flag, never 0 mm2 (which would read as severe)
            flag = f"{flag}; {exc}" if flag else str(exc)
        # AP diameter and disc heights are extra quantities: one that cannot be measured is left empty,
        # never guessed, and does not flag the level's DSCA.
        canal_labels = [_label_value(axial.label_map, name) for name in (SPINAL_CANAL_LABEL_NAME, DURAL_SAC_LABEL_NAME)]
        for level in LUMBAR_DISC_LEVELS:
            try:
                ap = canal_ap_by_level_mm(ax_labels, ax_geometry, slice_levels, canal_labels, levels=[level]).get(level)
            except ValueError:
                ap = None
            ap_by_level[level] = ap.ap_mm if ap is not None else None
        try:
            disc_heights = disc_heights_mm(sag_labels, sag_geometry, _label_value(sagittal.label_map, DISC_LABEL_NAME))
            heights = heights_by_name(disc_heights, named)
        except ValueError as exc:
            logger.info("AI disc heights not measured for study %s: %s", study.pk, exc)
    rows = []
    with transaction.atomic():
        for level in LUMBAR_DISC_LEVELS:
            value = per_level.get(level)
            measured = value is not None and value.measured
            row, _ = AILevelMeasurement.objects.update_or_create(
                dicom_study=study,
                model_version=model_version,
                level=level,
                defaults={
                    "dsca_mm2": value.dsca_mm2 if measured and value else None,
                    "min_dsca_mm2": value.min_dsca_mm2 if measured and value else None,
                    "axial_slice_index": value.slice_index if measured and value else None,
                    "distance_to_disc_mm": value.distance_mm if measured and value else None,
                    "ap_diameter_mm": ap_by_level.get(level),
                    "disc_height_anterior_mm": heights[level].anterior_mm if level in heights else None,
                    "disc_height_middle_mm": heights[level].middle_mm if level in heights else None,
                    "disc_height_posterior_mm": heights[level].posterior_mm if level in heights else None,
                    "flag": flag if measured else (flag or "no axial slice near this disc level"),
                },
            )
            rows.append(row)
    return rows
