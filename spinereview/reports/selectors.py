"""Agreement of a reader study: reader vs reader, reader vs AI (grades), AI vs reference (masks)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from spinereview.agreement import cohen_kappa_score, dice_per_label, percent_agreement_score
from spinereview.ai.models import AILevelMeasurement, AISegmentation, ModelVersion
from spinereview.imaging.models import ReferenceSegmentation
from spinereview.morphometry import stenosis_grade_from_dsca
from spinereview.studies.models import Case, Grade, ReaderStudy
from spinereview.studies.protocols import condition_categories

AI_RATER = "AI"


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

    def as_dict(self) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 4)

        return {
            "reader_study": self.reader_study,
            "condition": self.condition,
            "condition_label": self.condition_label,
            "categories": list(self.categories),
            "model_version": self.model_version,
            "n_cases": self.n_cases,
            "readers": list(self.readers),
            "submitted_reads": self.submitted_reads,
            "pairs": [
                {"rater_a": p.rater_a, "rater_b": p.rater_b, "n": p.n, "kappa_quadratic": clean(p.kappa_quadratic), "percent_agreement": clean(p.percent_agreement)}
                for p in self.pairs
            ],
            "dice_ai_vs_reference": [
                {"structure": d.structure, "n_series": d.n_series, "mean_dice": clean(d.mean_dice), "min_dice": clean(d.min_dice)} for d in self.dice
            ],
            "ai_grades_flagged": list(self.ai_grades_flagged),
        }


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


def _ai_grades(cases: list[Case], model_version: ModelVersion, protocol: dict[str, Any], categories: list[str]) -> tuple[dict[tuple[str, str], str], list[str]]:
    ai_grade = protocol.get("ai_grade") or {}
    cutoffs = tuple(float(v) for v in ai_grade.get("dsca_cutoffs_mm2", (100.0, 75.0, 50.0)))
    by_study = {case.dicom_study_id: case for case in cases}
    grades: dict[tuple[str, str], str] = {}
    flagged: dict[tuple[str, str], list[str]] = {}
    for row in AILevelMeasurement.objects.filter(dicom_study_id__in=by_study, model_version=model_version).order_by("level"):
        case = by_study[row.dicom_study_id]
        if row.flag:
            flagged.setdefault((case.label, row.flag), []).append(row.level)
        if row.dsca_mm2 is None or row.flag:
            continue
        index = stenosis_grade_from_dsca(row.dsca_mm2, cutoffs_mm2=cutoffs)
        grades[(str(case.pk), row.level)] = categories[min(index, len(categories) - 1)]
    return grades, [f"{label} ({', '.join(levels)}): {flag}" for (label, flag), levels in sorted(flagged.items())]


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
    model_version = ModelVersion.objects.filter(is_active=True).first()
    flagged: list[str] = []
    dice: list[StructureDice] = []
    if model_version is not None:
        ratings[AI_RATER], flagged = _ai_grades(cases, model_version, protocol, categories)
        dice = _dice(cases, model_version)
    pairs = []
    raters = readers + ([AI_RATER] if model_version is not None else [])
    for a, b in itertools.combinations(raters, 2):
        common = sorted(set(ratings.get(a, {})) & set(ratings.get(b, {})))
        if not common:
            pairs.append(PairAgreement(a, b, 0, float("nan"), float("nan")))
            continue
        ra = [ratings[a][key] for key in common]
        rb = [ratings[b][key] for key in common]
        kappa = cohen_kappa_score(ra, rb, categories=categories, weights="quadratic").kappa
        pairs.append(PairAgreement(a, b, len(common), kappa, percent_agreement_score(ra, rb, categories=categories)))
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
    )
