"""Reads of a reader study for reports: the compact agreement summary, the tidy observations the full
statistics report is computed from (:func:`study_inputs`), the fingerprint that says when a cached report
is stale, and the rows of the exports. Every function here takes a study the caller may supervise:
scoping by user happens in :func:`reader_study_for_reports`, once."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from spinereview.accounts.models import User
from spinereview.agreement import cohen_kappa_score, dice_per_label, dice_score, hd95_error, percent_agreement_score
from spinereview.ai.models import AILevelMeasurement, AISegmentation, ModelVersion
from spinereview.ai.selectors import (
    ai_condition_confidence,
    ai_condition_grade,
    ai_condition_source,
    ai_grade_method,
    ai_graded_conditions,
    ai_grades_method,
    ai_level_grade,
    model_version_for_reader_study,
)
from spinereview.core.errors import NotFoundError
from spinereview.imaging.models import DicomSeries, ReferenceSegmentation
from spinereview.imaging.selectors import series_instances, series_slice_geometry
from spinereview.reports.analysis import (
    AI_RATER,
    PHASES,
    REPORT_SCHEMA_VERSION,
    ConditionSpec,
    GradeObservation,
    MaskComparison,
    ReferenceGrade,
    StudyInputs,
    ValueObservation,
)
from spinereview.studies.models import (
    Assignment,
    Case,
    Grade,
    LevelDelta,
    Measurement,
    ReaderStudy,
    ReadVersion,
    ReferenceRead,
    SegmentationVersion,
)
from spinereview.studies.protocols import condition_categories
from spinereview.studies.selectors import reader_studies_supervised


@dataclass(frozen=True)
class PairAgreement:
    rater_a: str
    rater_b: str
    n: int
    kappa_quadratic: float
    percent_agreement: float


@dataclass(frozen=True)
class StructureDice:
    structure: str
    n_series: int
    mean_dice: float
    min_dice: float


@dataclass(frozen=True)
class ConditionAgreement:
    """Kappa per rater pair on one more AI-graded condition (the protocol's ai_grader_tasks)."""

    condition: str
    condition_label: str
    categories: tuple[str, ...]
    pairs: tuple[PairAgreement, ...]
    ai_grades_flagged: tuple[str, ...]


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _pairs_dicts(pairs: Sequence[PairAgreement]) -> list[dict[str, Any]]:
    return [
        {"rater_a": p.rater_a, "rater_b": p.rater_b, "n": p.n, "kappa_quadratic": _clean(p.kappa_quadratic), "percent_agreement": _clean(p.percent_agreement)}
        for p in pairs
    ]


@dataclass(frozen=True)
class AgreementSummary:
    reader_study: str
    condition: str
    condition_label: str
    categories: tuple[str, ...]
    model_version: str | None
    n_cases: int
    readers: tuple[str, ...]
    submitted_reads: dict[str, int]
    pairs: tuple[PairAgreement, ...]
    dice: tuple[StructureDice, ...]
    ai_grades_flagged: tuple[str, ...]
    mask_deltas: tuple[QuantityDelta, ...] = ()
    ai_grade_method: str | None = None
    other_conditions: tuple[ConditionAgreement, ...] = ()
    """The protocol's further AI-graded conditions (e.g. the sedimentation sign), each with its own pairs."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "reader_study": self.reader_study,
            "condition": self.condition,
            "condition_label": self.condition_label,
            "categories": list(self.categories),
            "model_version": self.model_version,
            "n_cases": self.n_cases,
            "readers": list(self.readers),
            "submitted_reads": self.submitted_reads,
            "pairs": _pairs_dicts(self.pairs),
            "other_conditions": [
                {
                    "condition": c.condition,
                    "condition_label": c.condition_label,
                    "categories": list(c.categories),
                    "pairs": _pairs_dicts(c.pairs),
                    "ai_grades_flagged": list(c.ai_grades_flagged),
                }
                for c in self.other_conditions
            ],
            "dice_ai_vs_reference": [
                {"structure": d.structure, "n_series": d.n_series, "mean_dice": _clean(d.mean_dice), "min_dice": _clean(d.min_dice)} for d in self.dice
            ],
            "ai_grades_flagged": list(self.ai_grades_flagged),
            "ai_grade_method": self.ai_grade_method,
            "mask_deltas_vs_ai": [
                {"quantity": d.quantity, "n": d.n, "mean_delta": round(d.mean_delta, 3), "mean_abs_delta": round(d.mean_abs_delta, 3)} for d in self.mask_deltas
            ],
        }


@dataclass(frozen=True)
class QuantityDelta:
    """Reader masks minus the AI's, over every level where both measured a quantity (stored deltas)."""

    quantity: str
    n: int
    mean_delta: float
    mean_abs_delta: float


def _mask_deltas(reader_study: ReaderStudy, model_version: ModelVersion) -> list[QuantityDelta]:
    """From the per-level deltas stored on save (studies.LevelDelta) of each live, non-calibration mask's newest version."""
    masks = [m.segmentation_version_id for m in masks_latest(reader_study=reader_study) if not m.is_calibration and m.kind == Assignment.Kind.LIVE]
    by_quantity: dict[str, list[float]] = {}
    rows = LevelDelta.objects.filter(segmentation_version_id__in=masks, model_version=model_version, delta__isnull=False)
    for quantity, delta in rows.values_list("quantity", "delta"):
        if delta is not None:
            by_quantity.setdefault(quantity, []).append(float(delta))
    return [
        QuantityDelta(quantity, len(deltas), float(np.mean(deltas)), float(np.mean(np.abs(deltas)))) for quantity, deltas in sorted(by_quantity.items())
    ]


def _submitted_grades(reader_study: ReaderStudy, condition: str) -> dict[str, dict[tuple[str, str], str]]:
    """reader -> (case id, level) -> grade, from each assignment's latest submitted version."""
    grades = (
        Grade.objects.filter(
            read_version__submitted=True,
            read_version__assignment__case__reader_study=reader_study,
            condition=condition,
        )
        .select_related("read_version__assignment__reader")
        .order_by("read_version__assignment_id", "read_version__version")
    )
    ratings: dict[str, dict[tuple[str, str], str]] = {}
    for grade in grades:  # later versions overwrite earlier ones in this in-memory view only
        assignment = grade.read_version.assignment
        ratings.setdefault(assignment.reader.username, {})[(str(assignment.case_id), grade.level)] = grade.value
    return ratings


def _ai_grades(cases: list[Case], model_version: ModelVersion, grade_of: Callable[[AILevelMeasurement], tuple[str | None, str]]) -> tuple[dict[tuple[str, str], str], list[str]]:
    by_study = {case.dicom_study_id: case for case in cases}
    grades: dict[tuple[str, str], str] = {}
    missing: dict[tuple[str, str], list[str]] = {}
    for row in AILevelMeasurement.objects.filter(dicom_study_id__in=by_study, model_version=model_version).order_by("level"):
        case = by_study[row.dicom_study_id]
        value, why = grade_of(row)
        if value is None:
            missing.setdefault((case.label, why), []).append(row.level)
        else:
            grades[(str(case.pk), row.level)] = value
    return grades, [f"{label} ({', '.join(levels)}): {why}" for (label, why), levels in sorted(missing.items())]


def _dice(cases: list[Case], model_version: ModelVersion) -> list[StructureDice]:
    per_structure: dict[str, list[float]] = {}
    series_ids = [cs.series_id for case in cases for cs in case.case_series.all()]
    references = {r.series_id: r for r in ReferenceSegmentation.objects.filter(series_id__in=series_ids)}
    for segmentation in AISegmentation.objects.filter(series_id__in=references, model_version=model_version):
        reference = references[segmentation.series_id]
        if list(reference.sop_instance_uids) != list(segmentation.sop_instance_uids):
            continue  # slices not aligned: never compare masks of different geometry
        truth = np.load(Path(settings.MEDIA_ROOT) / reference.file_path)
        predicted = np.load(Path(settings.MEDIA_ROOT) / segmentation.file_path)
        label_map = {int(k): v for k, v in reference.label_map.items()}
        for name, overlap in dice_per_label(truth, predicted, label_map).items():
            if not math.isnan(overlap.dice):
                per_structure.setdefault(name, []).append(overlap.dice)
    return [
        StructureDice(structure=name, n_series=len(values), mean_dice=float(np.mean(values)), min_dice=float(np.min(values)))
        for name, values in sorted(per_structure.items())
    ]


def agreement_summary(*, reader_study: ReaderStudy) -> AgreementSummary:
    protocol = reader_study.protocol
    condition = (protocol.get("ai_grade") or {}).get("condition") or protocol["conditions"][0]["key"]
    categories = condition_categories(protocol, condition)
    cases = list(Case.objects.filter(reader_study=reader_study).prefetch_related("case_series"))
    ratings = _submitted_grades(reader_study, condition)
    readers = sorted(ratings)
    submitted = {reader: len({case for case, _ in items}) for reader, items in ratings.items()}
    model_version = model_version_for_reader_study(reader_study=reader_study)
    flagged: list[str] = []
    dice: list[StructureDice] = []
    mask_deltas: list[QuantityDelta] = []
    method = None
    if model_version is not None:
        method = ai_grade_method(ai_grade=protocol.get("ai_grade") or {}, model_version=model_version)
        ai_grade = protocol.get("ai_grade") or {}
        ratings[AI_RATER], flagged = _ai_grades(cases, model_version, partial(ai_level_grade, ai_grade=ai_grade, categories=categories, model_version=model_version))
        dice = _dice(cases, model_version)
        mask_deltas = _mask_deltas(reader_study, model_version)
    pairs = _rater_pairs(ratings, readers + ([AI_RATER] if model_version is not None else []), categories)
    others = []
    for other in ai_graded_conditions(protocol):
        if other == condition:
            continue
        other_ratings = _submitted_grades(reader_study, other)
        other_flagged: list[str] = []
        if model_version is not None:
            other_ratings[AI_RATER], other_flagged = _ai_grades(cases, model_version, partial(ai_condition_grade, protocol=protocol, condition=other, model_version=model_version))
        other_categories = condition_categories(protocol, other)
        others.append(
            ConditionAgreement(
                condition=other,
                condition_label=next((c.get("label", other) for c in protocol["conditions"] if c["key"] == other), other),
                categories=tuple(other_categories),
                pairs=tuple(_rater_pairs(other_ratings, sorted(set(other_ratings) - {AI_RATER}) + ([AI_RATER] if model_version is not None else []), other_categories)),
                ai_grades_flagged=tuple(other_flagged),
            )
        )
    return AgreementSummary(
        reader_study=reader_study.name,
        condition=condition,
        condition_label=next((c.get("label", condition) for c in protocol["conditions"] if c["key"] == condition), condition),
        categories=tuple(categories),
        model_version=model_version.version if model_version else None,
        n_cases=len(cases),
        readers=tuple(readers),
        submitted_reads=submitted,
        pairs=tuple(pairs),
        dice=tuple(dice),
        ai_grades_flagged=tuple(flagged),
        mask_deltas=tuple(mask_deltas),
        ai_grade_method=method,
        other_conditions=tuple(others),
    )


def _rater_pairs(ratings: dict[str, dict[tuple[str, str], str]], raters: list[str], categories: list[str]) -> list[PairAgreement]:
    """Quadratic-weighted kappa and exact agreement of every pair of raters over the items both graded."""
    pairs = []
    for a, b in itertools.combinations(raters, 2):
        common = sorted(set(ratings.get(a, {})) & set(ratings.get(b, {})))
        if not common:
            pairs.append(PairAgreement(a, b, 0, float("nan"), float("nan")))
            continue
        ra = [ratings[a][key] for key in common]
        rb = [ratings[b][key] for key in common]
        kappa = cohen_kappa_score(ra, rb, categories=categories, weights="quadratic").kappa
        pairs.append(PairAgreement(a, b, len(common), kappa, percent_agreement_score(ra, rb, categories=categories)))
    return pairs


# --------------------------------------------------------------------------- the full report's inputs

SUBMITTED_KINDS = (Assignment.Kind.LIVE, Assignment.Kind.WASHOUT)
# Per-level quantities of reader masks and the AI's (morphometry.per_level), as "mask.<name>" in the report.
MASK_QUANTITIES = (
    "dsca_mm2",
    "min_dsca_mm2",
    "ap_diameter_mm",
    "disc_height_anterior_mm",
    "disc_height_middle_mm",
    "disc_height_posterior_mm",
    "muscle_csa_left_mm2",
    "muscle_csa_right_mm2",
    "muscle_fat_fraction_left_percent",
    "muscle_fat_fraction_right_percent",
)


def reader_study_for_reports(*, user: User, slug: str) -> ReaderStudy:
    """The study, if the user may see its results (lead, adjudicator, staff); readers never may."""
    reader_study = reader_studies_supervised(user=user).filter(slug=slug).first()
    if reader_study is None:
        raise NotFoundError("No such reader study, or you do not lead it")
    return reader_study


@dataclass(frozen=True)
class SubmittedRead:
    """The newest submitted version of one assignment in one phase."""

    read_version_id: uuid.UUID
    case_id: uuid.UUID
    case_label: str
    is_calibration: bool
    reader: str
    kind: str
    phase: str
    version: int
    submitted_at: datetime
    elapsed_s: float


def submitted_reads_latest(*, reader_study: ReaderStudy) -> list[SubmittedRead]:
    """Each assignment's newest submitted read per phase (earlier submitted versions are superseded),
    ordered by case label, case, reader, kind, phase."""
    rows = (
        ReadVersion.objects.filter(assignment__case__reader_study=reader_study, submitted=True)
        .order_by("assignment_id", "phase", "version")
        .values_list(
            "id", "assignment__case_id", "assignment__case__label", "assignment__case__is_calibration", "assignment__reader__username",
            "assignment__kind", "phase", "version", "created", "elapsed_s",
        )
    )
    latest: dict[tuple[uuid.UUID, str], SubmittedRead] = {}
    for row in rows:
        read = SubmittedRead(*row)
        latest[(read.case_id, read.reader + "\0" + read.kind + "\0" + read.phase)] = read
    order = {phase: i for i, phase in enumerate(PHASES)}
    return sorted(latest.values(), key=lambda r: (r.case_label, str(r.case_id), r.reader, r.kind, order.get(r.phase, 9)))


def grades_by_read(read_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str, str]]]:
    grades: dict[uuid.UUID, list[tuple[str, str, str]]] = {}
    ids = list(read_ids)
    for start in range(0, len(ids), 5000):
        for read_id, level, condition, value in Grade.objects.filter(read_version_id__in=ids[start : start + 5000]).values_list("read_version_id", "level", "condition", "value"):
            grades.setdefault(read_id, []).append((level, condition, value))
    return grades


def measurements_by_read(read_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str, dict[str, float]]]]:
    measurements: dict[uuid.UUID, list[tuple[str, str, dict[str, float]]]] = {}
    ids = list(read_ids)
    for start in range(0, len(ids), 5000):
        rows = Measurement.objects.filter(read_version_id__in=ids[start : start + 5000]).order_by("key", "level", "measurement_id")
        for read_id, key, level, values in rows.values_list("read_version_id", "key", "level", "values"):
            measurements.setdefault(read_id, []).append((key, level, values))
    return measurements


@dataclass(frozen=True)
class MaskRead:
    """The newest mask version of one assignment, series and phase, with its per-level DSCA."""

    segmentation_version_id: uuid.UUID
    case_id: uuid.UUID
    case_label: str
    is_calibration: bool
    reader: str
    kind: str
    phase: str
    version: int
    saved_at: datetime
    series_id: uuid.UUID
    file_path: str
    level_measurements: list[dict[str, Any]]


def masks_latest(*, reader_study: ReaderStudy) -> list[MaskRead]:
    rows = (
        SegmentationVersion.objects.filter(assignment__case__reader_study=reader_study, assignment__kind__in=SUBMITTED_KINDS)
        .order_by("assignment_id", "series_id", "phase", "version")
        .values_list(
            "id", "assignment__case_id", "assignment__case__label", "assignment__case__is_calibration", "assignment__reader__username",
            "assignment__kind", "phase", "version", "created", "series_id", "file_path", "level_measurements", "assignment_id",
        )
    )
    latest: dict[tuple[Any, ...], MaskRead] = {}
    for row in rows:
        mask = MaskRead(*row[:12])
        latest[(row[12], mask.series_id, mask.phase)] = mask
    return sorted(latest.values(), key=lambda m: (m.case_label, str(m.case_id), m.reader, m.kind, m.phase, str(m.series_id)))


def reference_grades(*, reader_study: ReaderStudy) -> list[tuple[Case, str, str, str, str, int]]:
    """Reference grade per (case, level, condition): the newest adjudicated reference read of the case
    where it grades the item, else the newest majority vote. Rows (case, level, condition, value,
    source, version), calibration cases left out."""
    newest: dict[tuple[uuid.UUID, str], ReferenceRead] = {}
    for reference in ReferenceRead.objects.filter(
        case__reader_study=reader_study, case__is_calibration=False, source__in=[ReferenceRead.Source.ADJUDICATED, ReferenceRead.Source.MAJORITY]
    ).select_related("case").order_by("case_id", "source", "version"):
        newest[(reference.case_id, reference.source)] = reference
    items: dict[tuple[uuid.UUID, str, str], tuple[Case, str, str, str, str, int]] = {}
    for source in (ReferenceRead.Source.MAJORITY, ReferenceRead.Source.ADJUDICATED):  # adjudicated overrides
        for (_, ref_source), reference in newest.items():
            if ref_source != source:
                continue
            for grade in reference.grades:
                key = (reference.case_id, grade["level"], grade["condition"])
                items[key] = (reference.case, grade["level"], grade["condition"], grade["value"], source, reference.version)
    return sorted(items.values(), key=lambda r: (r[0].label, str(r[0].pk), r[1], r[2]))


@dataclass(frozen=True)
class AIGradeRow:
    case: Case
    level: str
    dsca_mm2: float | None
    """The level's DSCA, on its first row only (see ai_level_rows)."""
    condition: str | None
    grade: str | None
    flag: str
    grade_source: str = ""
    """"grader" or "dsca" (ai.selectors.ai_condition_source)."""
    grader_version: str = ""
    grade_confidence: float | None = None
    """The grader's probability of the class it chose."""
    no_grade_reason: str = ""


def ai_level_rows(*, reader_study: ReaderStudy, model_version: ModelVersion | None) -> list[AIGradeRow]:
    """The study's model's grade of each of the protocol's AI-graded conditions per level of each
    non-calibration case (ai.selectors.ai_condition_grade: the grader's or the DSCA cut-offs'; none where
    the level assignment is flagged, the sac was not found or the level was not graded, with the reason):
    one row per (case, level, condition), or per (case, level) with condition None when the protocol has
    the AI grade nothing. The level's DSCA is on its first row only, so that every level's area is counted
    once by whoever adds or averages the rows."""
    if model_version is None:
        return []
    protocol = reader_study.protocol
    conditions: list[str | None] = [*ai_graded_conditions(protocol)] or [None]
    sources = {c: ai_condition_source(protocol=protocol, condition=c, model_version=model_version) for c in conditions if c}
    cases = {c.dicom_study_id: c for c in Case.objects.filter(reader_study=reader_study, is_calibration=False)}
    rows = []
    for row in AILevelMeasurement.objects.filter(dicom_study_id__in=cases, model_version=model_version):
        for position, condition in enumerate(conditions):
            grade, why = ai_condition_grade(row, protocol=protocol, condition=condition, model_version=model_version) if condition else (None, "")
            source = sources.get(condition, "") if condition else ""
            rows.append(
                AIGradeRow(
                    cases[row.dicom_study_id], row.level, row.dsca_mm2 if not row.flag and position == 0 else None, condition, grade, row.flag,
                    grade_source=source,
                    grader_version=row.grader_version if source == "grader" else "",
                    grade_confidence=ai_condition_confidence(row, protocol=protocol, condition=condition) if source == "grader" and condition else None,
                    no_grade_reason=why,
                )
            )
    levels = {level: i for i, level in enumerate(protocol["levels"])}
    order = {condition: i for i, condition in enumerate(conditions)}
    return sorted(rows, key=lambda r: (r.case.label, str(r.case.pk), levels.get(r.level, 99), r.level, order[r.condition]))


def _series_spacing_mm(series: DicomSeries) -> tuple[tuple[str, ...], tuple[float, float, float]]:
    sop_instance_uids, attributes = series_slice_geometry(series=series)
    positions = [p for p in series_instances(series=series).values_list("slice_position_mm", flat=True) if p is not None]
    gaps = np.abs(np.diff(positions)) if len(positions) > 1 else np.array([attributes[0]["SliceThickness"] or 1.0])
    row_mm, column_mm = attributes[0]["PixelSpacing"]
    return sop_instance_uids, (float(np.median(gaps)) or 1.0, float(row_mm), float(column_mm))


def mask_comparisons(*, reader_study: ReaderStudy, masks: Sequence[MaskRead], model_version: ModelVersion | None) -> list[MaskComparison]:
    """Dice and HD95 of each reader mask (live reads, non-calibration cases) against the active model's
    mask of the same series and slices, per protocol label."""
    segmentation = reader_study.protocol.get("segmentation")
    if model_version is None or not segmentation:
        return []
    comparisons = []
    series_cache: dict[uuid.UUID, tuple[tuple[str, ...], tuple[float, float, float]]] = {}
    ai_by_series = {s.series_id: s for s in AISegmentation.objects.filter(model_version=model_version, series_id__in={m.series_id for m in masks})}
    for mask in masks:
        ai = ai_by_series.get(mask.series_id)
        if ai is None or mask.is_calibration or mask.kind != Assignment.Kind.LIVE:
            continue
        if mask.series_id not in series_cache:
            series_cache[mask.series_id] = _series_spacing_mm(DicomSeries.objects.get(pk=mask.series_id))
        sop_instance_uids, spacing_mm = series_cache[mask.series_id]
        if tuple(ai.sop_instance_uids) != sop_instance_uids:
            continue  # the AI read other slices: never compare masks of different geometry
        with np.load(Path(settings.MEDIA_ROOT) / mask.file_path) as stored:
            reader_labels = np.asarray(stored["labels"])
        ai_labels = np.load(Path(settings.MEDIA_ROOT) / ai.file_path)
        if ai_labels.shape != reader_labels.shape:
            continue
        ai_values = {name: int(value) for value, name in ai.label_map.items()}
        for label in segmentation["labels"]:
            if label["name"] not in ai_values:
                continue
            mine = reader_labels == label["value"]
            theirs = ai_labels == ai_values[label["name"]]
            if not mine.any() and not theirs.any():
                continue
            comparisons.append(
                MaskComparison(
                    case=str(mask.case_id), reader=mask.reader, phase=mask.phase, structure=label["name"],
                    dice=dice_score(mine, theirs), hd95_mm=hd95_error(mine, theirs, spacing_mm),
                )
            )
    return comparisons


def measurement_quantities(key: str, values: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [(f"{key}.{name}", float(value)) for name, value in sorted(values.items()) if isinstance(value, int | float) and not isinstance(value, bool)]


def study_inputs(*, reader_study: ReaderStudy, n_resamples: int = 1000, seed: int = 0, with_mask_overlaps: bool = True) -> StudyInputs:
    """Every observation the statistics report needs: live and washout reads of non-calibration cases,
    reference grades, the active model's grades and DSCA, and reader-mask comparisons with the AI
    (``with_mask_overlaps=False`` skips the last, which reads mask files, for callers that need values only)."""
    protocol = reader_study.protocol
    conditions = []
    for condition in protocol["conditions"]:
        conditions.append(ConditionSpec(condition["key"], condition.get("label", condition["key"]), tuple(condition_categories(protocol, condition["key"]))))
        for sub in condition.get("sub_questions", []):
            conditions.append(ConditionSpec(sub["key"], sub.get("label", sub["key"]), tuple(condition_categories(protocol, sub["key"]))))
    reads = [r for r in submitted_reads_latest(reader_study=reader_study) if not r.is_calibration and r.kind in SUBMITTED_KINDS]
    grades_of_read = grades_by_read(r.read_version_id for r in reads)
    measurements_of_read = measurements_by_read(r.read_version_id for r in reads)
    grades: list[GradeObservation] = []
    values: list[ValueObservation] = []
    for read in reads:
        case = str(read.case_id)
        for level, condition, value in grades_of_read.get(read.read_version_id, []):
            grades.append(GradeObservation(case, read.reader, read.kind, read.phase, level, condition, value))
        for key, level, measured in measurements_of_read.get(read.read_version_id, []):
            for quantity, number in measurement_quantities(key, measured):
                values.append(ValueObservation(case, read.reader, read.kind, read.phase, level, quantity, number))
    masks = [m for m in masks_latest(reader_study=reader_study) if not m.is_calibration]
    for mask in masks:
        for row in mask.level_measurements:
            for quantity in MASK_QUANTITIES:
                if row.get(quantity) is not None:
                    values.append(ValueObservation(str(mask.case_id), mask.reader, mask.kind, mask.phase, row["level"], f"mask.{quantity}", float(row[quantity])))
    model_version = model_version_for_reader_study(reader_study=reader_study)
    ai_rows = ai_level_rows(reader_study=reader_study, model_version=model_version)
    ai_grades = tuple(GradeObservation(str(r.case.pk), AI_RATER, "live", "", r.level, r.condition, r.grade) for r in ai_rows if r.grade is not None and r.condition)
    for r in ai_rows:
        if r.dsca_mm2 is not None:  # on each level's first row only: one area per level, however many conditions the AI grades
            for quantity in ("dsca.area_mm2", "mask.dsca_mm2"):
                values.append(ValueObservation(str(r.case.pk), AI_RATER, "live", "", r.level, quantity, float(r.dsca_mm2)))
    if model_version is not None:  # the AI's other mask quantities, against the readers' masks
        non_calibration = {c.dicom_study_id: c for c in Case.objects.filter(reader_study=reader_study, is_calibration=False)}
        for ai_row in AILevelMeasurement.objects.filter(dicom_study_id__in=non_calibration, model_version=model_version):
            for quantity in MASK_QUANTITIES[1:]:
                value = getattr(ai_row, quantity)
                if value is not None and not (ai_row.flag and quantity == "min_dsca_mm2"):
                    values.append(ValueObservation(str(non_calibration[ai_row.dicom_study_id].pk), AI_RATER, "live", "", ai_row.level, f"mask.{quantity}", float(value)))
    flagged = sorted({f"AI level assignment flagged for case {r.case.label}: {r.flag}" for r in ai_rows if r.flag})
    ungraded: dict[tuple[str, str, str], list[str]] = {}
    for r in ai_rows:
        if r.grade is None and r.condition and not r.flag:
            ungraded.setdefault((r.case.label, r.condition, r.no_grade_reason), []).append(r.level)
    flagged += [f"No AI {condition} grade for case {label} ({', '.join(levels)}): {why}" for (label, condition, why), levels in sorted(ungraded.items())]
    if model_version is not None and ai_graded_conditions(protocol):
        flagged.insert(0, f"The AI's grades: {ai_grades_method(protocol=protocol, model_version=model_version)}")
    return StudyInputs(
        levels=tuple(protocol["levels"]),
        conditions=tuple(conditions),
        grades=tuple(grades),
        values=tuple(values),
        reference=tuple(ReferenceGrade(str(c.pk), level, condition, value, source) for c, level, condition, value, source, _ in reference_grades(reader_study=reader_study)),
        ai_grades=ai_grades,
        masks=tuple(mask_comparisons(reader_study=reader_study, masks=masks, model_version=model_version)) if with_mask_overlaps else (),
        model_version=model_version.version if model_version else None,
        n_resamples=n_resamples,
        seed=seed,
        notes=tuple(flagged),
    )


def study_fingerprint(*, reader_study: ReaderStudy, n_resamples: int = 1000, seed: int = 0) -> str:
    """sha256 of everything a report depends on (row ids of immutable rows, the protocol, the active
    model and its per-level results, bootstrap settings, the report schema): equal fingerprints mean
    the report would be the same."""
    model_version = model_version_for_reader_study(reader_study=reader_study)
    case_studies = Case.objects.filter(reader_study=reader_study).values_list("dicom_study_id", flat=True)
    parts: dict[str, Any] = {
        "schema": REPORT_SCHEMA_VERSION,
        "protocol": reader_study.protocol,
        "bootstrap": [n_resamples, seed],
        "cases": sorted(str(v) for v in Case.objects.filter(reader_study=reader_study).values_list("id", "is_calibration")),
        "reads": sorted(str(v) for v in ReadVersion.objects.filter(assignment__case__reader_study=reader_study, submitted=True).values_list("id", flat=True)),
        "masks": sorted(str(v) for v in SegmentationVersion.objects.filter(assignment__case__reader_study=reader_study).values_list("id", flat=True)),
        "references": sorted(str(v) for v in ReferenceRead.objects.filter(case__reader_study=reader_study).values_list("id", flat=True)),
        "model": model_version.version if model_version else None,
        "ai": sorted(
            str(v) for v in AILevelMeasurement.objects.filter(model_version=model_version, dicom_study_id__in=case_studies).values_list("id", "dsca_mm2", "flag", "grade_index", "grader_version", "task_grades", "errors")
        ) if model_version else [],
        "grader": model_version.grader if model_version else None,
        "level_deltas": sorted(
            str(v) for v in LevelDelta.objects.filter(segmentation_version__assignment__case__reader_study=reader_study).values_list("id", "delta")
        ),
        "ai_masks": sorted(str(v) for v in AISegmentation.objects.filter(model_version=model_version, series__case_series__case__reader_study=reader_study).values_list("id", flat=True)) if model_version else [],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def continuous_values(*, reader_study: ReaderStudy) -> dict[tuple[str, str, str], dict[tuple[str, str], float]]:
    """(phase, quantity, rater) -> (case id, level) -> value of live reads (the AI's in every phase), for plots."""
    inputs = study_inputs(reader_study=reader_study, with_mask_overlaps=False)
    phases = sorted({v.phase for v in inputs.values if v.reader != AI_RATER}) or ["unaided"]
    values: dict[tuple[str, str, str], dict[tuple[str, str], float]] = {}
    for v in inputs.values:
        if v.kind != Assignment.Kind.LIVE:
            continue
        for phase in phases if v.reader == AI_RATER else [v.phase]:
            values.setdefault((phase, v.quantity, v.reader), {})[(v.case, v.level)] = v.value
    return values
