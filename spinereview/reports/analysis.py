"""The statistics of one reader study, computed from tidy observations: no Django, no database.

The Django side (:mod:`spinereview.reports.selectors`) turns a study's submitted reads, reference reads,
AI results and mask overlaps into a :class:`StudyInputs`; :func:`report_compute` turns that into one
JSON-ready dict. Keeping the computation free of the ORM makes it testable with exact values, cheap to
benchmark, and reproducible from a data freeze (the same inputs and seed give the same numbers).

What is compared (calibration cases and calibration assignments are left out before this point):

* ``pairwise`` -- every pair of raters (readers, and ``AI`` for the condition the AI grades) per phase
  (``unaided``/``aided``), condition and level (each level, and ``all`` levels pooled): percent
  agreement, Cohen's kappa unweighted / linear / quadratic over the protocol's fixed category list,
  the confusion matrix; pooled rows carry patient-clustered bootstrap CIs (clusters = cases).
* ``multirater`` -- per phase, condition and level: Fleiss' kappa (items every reader graded),
  Krippendorff's alpha (ordinal, missing ratings allowed), Gwet's AC2 (quadratic weights), and the
  mean of the reader-pair quadratic kappas.
* ``vs_reference`` -- each reader (and the AI) against the reference grade of each item (the newest
  adjudicated reference read of the case where it grades the item, else the newest majority vote):
  kappas with CIs, accuracy, per-class precision / recall / F1, macro-F1, confusion matrix.
* ``intra_reader`` -- a reader's live read against the same reader's washout re-read of the case.
* ``aided_vs_unaided`` -- per reader in two-phase studies: how far the AI-aided read moved from the
  unaided one, and each phase's accuracy and quadratic kappa against the reference.
* ``continuous`` -- per phase and quantity (reader measurements ``<key>.<field>``, e.g.
  ``dsca.area_mm2``, ``disc_height.middle_mm``; reader-mask DSCA ``mask.dsca_mm2``; the AI's DSCA
  enters both DSCA quantities): per rater pair ICC(A,1) with its F-based CI, Bland-Altman, MAE and
  Lin's CCC; across all readers ICC(A,1) on the items every reader measured, with an F-based and a
  patient-clustered bootstrap CI.
* ``masks`` -- reader masks against the AI's: mean Dice (bootstrap CI) and median HD95 per reader,
  phase and structure.
* ``per_case`` -- per case and phase: readers, items, share of items on which every reader agreed.

Statistics come from :mod:`spinereview.agreement`; nothing here re-implements one. A comparison with
too few items for a statistic gives ``None`` for it (JSON ``null``), never a made-up number.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinereview.agreement import (
    bland_altman,
    classification_scores,
    cluster_bootstrap_ci,
    cohen_kappa_score,
    cohen_kappa_statistic,
    concordance_correlation_score,
    fleiss_kappa_score,
    gwet_ac_score,
    icc_score,
    icc_statistic,
    krippendorff_alpha_score,
    mean_absolute_error,
    mean_statistic,
    percent_agreement_score,
)

AI_RATER = "AI"
ALL_LEVELS = "all"
WEIGHTS = ("none", "linear", "quadratic")
PHASES = ("unaided", "aided")
REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ConditionSpec:
    """A graded question of the protocol with its fixed, ordered category codes (mildest first)."""

    key: str
    label: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class GradeObservation:
    """One grade of one submitted read: ``kind`` is the assignment kind (``live`` or ``washout``)."""

    case: str
    reader: str
    kind: str
    phase: str
    level: str
    condition: str
    value: str


@dataclass(frozen=True)
class ValueObservation:
    """One continuous value: a reader's measurement, a reader-mask DSCA, or the AI's DSCA (reader ``AI``)."""

    case: str
    reader: str
    kind: str
    phase: str
    level: str
    quantity: str
    value: float


@dataclass(frozen=True)
class ReferenceGrade:
    case: str
    level: str
    condition: str
    value: str
    source: str


@dataclass(frozen=True)
class MaskComparison:
    """A reader's mask of one structure against the AI's on the same series."""

    case: str
    reader: str
    phase: str
    structure: str
    dice: float
    hd95_mm: float


@dataclass(frozen=True)
class StudyInputs:
    levels: tuple[str, ...]
    conditions: tuple[ConditionSpec, ...]
    grades: tuple[GradeObservation, ...]
    values: tuple[ValueObservation, ...] = ()
    reference: tuple[ReferenceGrade, ...] = ()
    # The AI's grades (reader "AI"); they are compared with every phase's reads.
    ai_grades: tuple[GradeObservation, ...] = ()
    masks: tuple[MaskComparison, ...] = ()
    model_version: str | None = None
    n_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    notes: tuple[str, ...] = field(default_factory=tuple)


def _num(value: float | int | None) -> float | None:
    """A JSON-safe number: ``None`` for NaN/inf (undefined), plain float otherwise."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ci(estimate: float | None, low: float | None = None, high: float | None = None) -> dict[str, float | None]:
    return {"estimate": _num(estimate), "ci_low": _num(low), "ci_high": _num(high)}


Items = dict[tuple[str, str], int]  # (case, level) -> category rank
Values = dict[tuple[str, str], float]  # (case, level) -> value


class _Ratings:
    """Ranks of every grade, indexed for the comparisons: (phase, condition, kind, rater) -> items."""

    def __init__(self, inputs: StudyInputs) -> None:
        self.conditions = {c.key: c for c in inputs.conditions}
        self.rank = {c.key: {code: i for i, code in enumerate(c.categories)} for c in inputs.conditions}
        self.grades: dict[tuple[str, str, str, str], Items] = defaultdict(dict)
        for g in inputs.grades:
            if g.condition not in self.rank:
                continue  # a question no longer in the protocol: not part of the analysis
            rank = self.rank[g.condition].get(g.value)
            if rank is None:
                raise ValueError(f"grade {g.value!r} of {g.condition} is not one of {', '.join(self.conditions[g.condition].categories)} (case {g.case}, reader {g.reader})")
            self.grades[(g.phase, g.condition, g.kind, g.reader)][(g.case, g.level)] = rank
        self.ai: dict[str, Items] = defaultdict(dict)
        for g in inputs.ai_grades:
            if g.condition in self.rank and g.value in self.rank[g.condition]:
                self.ai[g.condition][(g.case, g.level)] = self.rank[g.condition][g.value]
        self.reference: dict[str, Items] = defaultdict(dict)
        self.reference_source: dict[str, set[str]] = defaultdict(set)
        for r in inputs.reference:
            if r.condition in self.rank and r.value in self.rank[r.condition]:
                self.reference[r.condition][(r.case, r.level)] = self.rank[r.condition][r.value]
                self.reference_source[r.condition].add(r.source)
        self.readers = sorted({key[3] for key in self.grades})
        self.phases = [p for p in PHASES if any(key[0] == p for key in self.grades)]

    def live(self, phase: str, condition: str) -> dict[str, Items]:
        """Raters of one phase and condition: each reader's live read, then the AI where it grades."""
        raters = {r: items for r in self.readers if (items := self.grades.get((phase, condition, "live", r)))}
        if self.ai.get(condition):
            raters[AI_RATER] = self.ai[condition]
        return raters


def _select(items: Mapping[tuple[str, str], Any], level: str) -> Mapping[tuple[str, str], Any]:
    return items if level == ALL_LEVELS else {k: v for k, v in items.items() if k[1] == level}


class _Engine:
    def __init__(self, inputs: StudyInputs) -> None:
        self.inputs = inputs
        self.kappa_statistics: dict[tuple[int, str], Callable[..., Any]] = {}

    def _kappa_statistic(self, k: int, weights: str) -> Callable[..., Any]:
        key = (k, weights)
        if key not in self.kappa_statistics:
            self.kappa_statistics[key] = cohen_kappa_statistic(categories=list(range(k)), weights=weights)  # type: ignore[arg-type]
        return self.kappa_statistics[key]

    def bootstrap(self, statistic: Callable[..., Any], *data: Any, clusters: Sequence[str]) -> tuple[float | None, float | None]:
        """Percentile CI by patient-clustered bootstrap; none with fewer than 2 patients."""
        if len(set(clusters)) < 2:
            return None, None
        result = cluster_bootstrap_ci(
            statistic, *data, clusters=np.asarray(clusters), n_resamples=self.inputs.n_resamples, seed=self.inputs.seed,
            confidence=self.inputs.confidence, vectorized=True,
        )
        return _num(result.ci_low), _num(result.ci_high)

    def categorical(self, a: Mapping[tuple[str, str], int], b: Mapping[tuple[str, str], int], k: int, *, with_ci: bool) -> dict[str, Any] | None:
        """Agreement of two raters over the items both graded (ranks 0..k-1)."""
        common = sorted(a.keys() & b.keys())
        if not common:
            return None
        ra = np.fromiter((a[i] for i in common), dtype=np.int64, count=len(common))
        rb = np.fromiter((b[i] for i in common), dtype=np.int64, count=len(common))
        categories = list(range(k))
        clusters = [case for case, _ in common]
        kappas = {}
        confusion = None
        for weights in WEIGHTS:
            result = cohen_kappa_score(ra, rb, categories=categories, weights=weights)  # type: ignore[arg-type]
            confusion = result.confusion
            low = high = None
            if with_ci and not math.isnan(result.kappa):
                low, high = self.bootstrap(self._kappa_statistic(k, weights), ra, rb, clusters=clusters)
            kappas[weights] = _ci(result.kappa, low, high)
        assert confusion is not None
        return {
            "n": len(common),
            "n_cases": len(set(clusters)),
            "percent_agreement": _num(percent_agreement_score(ra, rb, categories=categories)),
            "kappa": kappas,
            "confusion": confusion.tolist(),
        }


def _pairwise(engine: _Engine, ratings: _Ratings, levels: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for phase in ratings.phases:
        for condition, spec in ratings.conditions.items():
            raters = ratings.live(phase, condition)
            for (name_a, items_a), (name_b, items_b) in itertools.combinations(raters.items(), 2):
                for level in (ALL_LEVELS, *levels):
                    result = engine.categorical(_select(items_a, level), _select(items_b, level), len(spec.categories), with_ci=level == ALL_LEVELS)
                    if result is not None:
                        rows.append({"phase": phase, "condition": condition, "level": level, "rater_a": name_a, "rater_b": name_b} | result)
    return rows


def _table(raters: Mapping[str, Mapping[tuple[str, str], int]], items: Sequence[tuple[str, str]]) -> list[list[int | None]]:
    return [[raters[r].get(item) for r in raters] for item in items]


def _multirater(ratings: _Ratings, pairwise: Sequence[dict[str, Any]], levels: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for phase in ratings.phases:
        for condition, spec in ratings.conditions.items():
            readers = {r: items for r, items in ratings.live(phase, condition).items() if r != AI_RATER}
            if len(readers) < 2:
                continue
            categories = list(range(len(spec.categories)))
            for level in (ALL_LEVELS, *levels):
                selected = {r: _select(items, level) for r, items in readers.items()}
                items = sorted(set().union(*(s.keys() for s in selected.values())))
                table = _table(selected, items)
                complete = [row for row in table if None not in row]
                row: dict[str, Any] = {"phase": phase, "condition": condition, "level": level, "n_raters": len(readers), "n_items": len(items), "n_complete_items": len(complete)}
                row["fleiss_kappa"] = _num(fleiss_kappa_score(complete, categories=categories).kappa) if len(complete) >= 2 else None
                pairable = [r for r in table if sum(v is not None for v in r) >= 2]
                row["krippendorff_alpha_ordinal"] = _num(krippendorff_alpha_score(pairable, level="ordinal", categories=categories).alpha) if pairable else None
                row["gwet_ac2_quadratic"] = _num(gwet_ac_score(pairable, categories=categories, weights="quadratic").coefficient) if pairable else None
                kappas = [
                    p["kappa"]["quadratic"]["estimate"]
                    for p in pairwise
                    if p["phase"] == phase and p["condition"] == condition and p["level"] == level and AI_RATER not in (p["rater_a"], p["rater_b"])
                ]
                defined = [k for k in kappas if k is not None]
                row["mean_pairwise_kappa_quadratic"] = _num(float(np.mean(defined))) if defined else None
                rows.append(row)
    return rows


def _vs_reference(engine: _Engine, ratings: _Ratings) -> list[dict[str, Any]]:
    rows = []
    for phase in ratings.phases:
        for condition, spec in ratings.conditions.items():
            reference = ratings.reference.get(condition)
            if not reference:
                continue
            for rater, items in ratings.live(phase, condition).items():
                result = engine.categorical(items, reference, len(spec.categories), with_ci=True)
                if result is None:
                    continue
                common = sorted(items.keys() & reference.keys())
                scores = classification_scores([reference[i] for i in common], [items[i] for i in common], categories=list(range(len(spec.categories))))
                rows.append(
                    {
                        "phase": phase,
                        "condition": condition,
                        "rater": rater,
                        "reference_sources": sorted(ratings.reference_source[condition]),
                        **result,
                        "accuracy": _num(scores.accuracy),
                        "macro_f1": _num(scores.macro_f1),
                        "per_class": [
                            {
                                "category": spec.categories[int(c.category)],  # type: ignore[call-overload]
                                "precision": _num(c.precision),
                                "recall": _num(c.recall),
                                "f1": _num(c.f1),
                                "reference_count": c.reference_count,
                                "rater_count": c.rater_count,
                            }
                            for c in scores.per_class
                        ],
                    }
                )
    return rows


def _intra_reader(engine: _Engine, ratings: _Ratings) -> list[dict[str, Any]]:
    rows = []
    for condition, spec in ratings.conditions.items():
        for reader in ratings.readers:
            live = ratings.grades.get(("unaided", condition, "live", reader))
            washout = ratings.grades.get(("unaided", condition, "washout", reader))
            if not live or not washout:
                continue
            result = engine.categorical(live, washout, len(spec.categories), with_ci=True)
            if result is not None:
                rows.append({"condition": condition, "reader": reader} | result)
    return rows


def _aided_vs_unaided(engine: _Engine, ratings: _Ratings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if "aided" not in ratings.phases:
        return rows
    for condition, spec in ratings.conditions.items():
        k = len(spec.categories)
        reference = ratings.reference.get(condition, {})
        for reader in ratings.readers:
            unaided = ratings.grades.get(("unaided", condition, "live", reader))
            aided = ratings.grades.get(("aided", condition, "live", reader))
            if not unaided or not aided:
                continue
            between = engine.categorical(unaided, aided, k, with_ci=True)
            if between is None:
                continue
            changed = sum(1 for item in unaided.keys() & aided.keys() if unaided[item] != aided[item])
            row: dict[str, Any] = {"condition": condition, "reader": reader, "n": between["n"], "changed": changed, "kappa_between_phases": between["kappa"]}
            for phase, items in (("unaided", unaided), ("aided", aided)):
                vs = engine.categorical(items, reference, k, with_ci=False) if reference else None
                row[f"{phase}_vs_reference"] = (
                    None if vs is None else {"n": vs["n"], "percent_agreement": vs["percent_agreement"], "kappa_quadratic": vs["kappa"]["quadratic"]["estimate"]}
                )
            rows.append(row)
    return rows


def _continuous_pair(a: Mapping[tuple[str, str], float], b: Mapping[tuple[str, str], float]) -> dict[str, Any] | None:
    common = sorted(a.keys() & b.keys())
    if not common:
        return None
    x = np.array([a[i] for i in common], dtype=np.float64)
    y = np.array([b[i] for i in common], dtype=np.float64)
    row: dict[str, Any] = {"n": len(common), "n_cases": len({c for c, _ in common}), "mean_a": _num(x.mean()), "mean_b": _num(y.mean())}
    row["mae"] = _num(mean_absolute_error(x, y).mean_absolute_error)
    row["icc_a1"] = None
    row["bland_altman"] = None
    row["ccc"] = None
    if len(common) >= 2:
        icc = icc_score(np.column_stack([x, y]), form="ICC(A,1)")
        row["icc_a1"] = _ci(icc.icc, icc.ci_low, icc.ci_high)
    if len(common) >= 3:
        ba = bland_altman(x, y)
        row["bland_altman"] = {
            "bias": _num(ba.bias),
            "bias_ci": [_num(ba.bias_ci_low), _num(ba.bias_ci_high)],
            "sd_of_differences": _num(ba.sd_of_differences),
            "loa_lower": _num(ba.loa_lower),
            "loa_upper": _num(ba.loa_upper),
            "loa_lower_ci": [_num(ba.loa_lower_ci_low), _num(ba.loa_lower_ci_high)],
            "loa_upper_ci": [_num(ba.loa_upper_ci_low), _num(ba.loa_upper_ci_high)],
            "proportional_bias_slope": _num(ba.proportional_bias_slope),
            "proportional_bias_p_value": _num(ba.proportional_bias_p_value),
        }
    if len(common) >= 4:  # Lin's CCC and its interval need 4 pairs
        ccc = concordance_correlation_score(x, y)
        row["ccc"] = _ci(ccc.ccc, ccc.ci_low, ccc.ci_high)
    return row


def _values_index(inputs: StudyInputs) -> tuple[dict[tuple[str, str, str, str], Values], list[str]]:
    """(phase, quantity, kind, rater) -> values; the AI's values are copied into every phase present."""
    index: dict[tuple[str, str, str, str], Values] = defaultdict(dict)
    ai: dict[str, Values] = defaultdict(dict)
    for v in inputs.values:
        if not math.isfinite(v.value):
            raise ValueError(f"{v.quantity} of case {v.case} ({v.reader}) is not a finite number: {v.value!r}")
        if v.reader == AI_RATER:
            ai[v.quantity][(v.case, v.level)] = v.value
        else:
            index[(v.phase, v.quantity, v.kind, v.reader)][(v.case, v.level)] = v.value
    phases = [p for p in PHASES if any(key[0] == p for key in index)]
    for quantity, values in ai.items():
        for phase in phases:
            index[(phase, quantity, "live", AI_RATER)] = values
    return index, phases


def _continuous(engine: _Engine, inputs: StudyInputs) -> list[dict[str, Any]]:
    index, phases = _values_index(inputs)
    rows: list[dict[str, Any]] = []
    quantities = sorted({key[1] for key in index})
    for phase in phases:
        for quantity in quantities:
            raters = {key[3]: v for key, v in sorted(index.items()) if key[0] == phase and key[1] == quantity and key[2] == "live"}
            readers = sorted(r for r in raters if r != AI_RATER)
            if not readers:
                continue
            ordered = readers + ([AI_RATER] if AI_RATER in raters else [])
            for name_a, name_b in itertools.combinations(ordered, 2):
                result = _continuous_pair(raters[name_a], raters[name_b])
                if result is not None:
                    rows.append({"phase": phase, "quantity": quantity, "unit": _unit(quantity), "rater_a": name_a, "rater_b": name_b} | result)
            if len(readers) >= 2:
                common = sorted(set.intersection(*(set(raters[r]) for r in readers)))
                summary: dict[str, Any] = {"phase": phase, "quantity": quantity, "unit": _unit(quantity), "rater_a": "all readers", "rater_b": "", "n": len(common), "n_raters": len(readers)}
                summary["icc_a1"] = None
                if len(common) >= 2:
                    table = np.array([[raters[r][i] for r in readers] for i in common], dtype=np.float64)
                    icc = icc_score(table, form="ICC(A,1)")
                    low, high = engine.bootstrap(icc_statistic(form="ICC(A,1)"), table, clusters=[c for c, _ in common])
                    summary["icc_a1"] = _ci(icc.icc, icc.ci_low, icc.ci_high) | {"bootstrap_ci_low": low, "bootstrap_ci_high": high}
                rows.append(summary)
    for quantity in quantities:
        for reader in sorted({key[3] for key in index if key[2] == "washout" and key[1] == quantity}):
            live = index.get(("unaided", quantity, "live", reader))
            washout = index.get(("unaided", quantity, "washout", reader))
            if live and washout and (result := _continuous_pair(live, washout)) is not None:
                rows.append({"phase": "intra_reader", "quantity": quantity, "unit": _unit(quantity), "rater_a": reader, "rater_b": f"{reader} (washout)"} | result)
    return rows


def _unit(quantity: str) -> str:
    for suffix in ("mm2", "mm3", "mm"):
        if quantity.endswith("_" + suffix):
            return suffix
    return ""


def _masks(engine: _Engine, inputs: StudyInputs) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[MaskComparison]] = defaultdict(list)
    for m in inputs.masks:
        groups[(m.phase, m.reader, m.structure)].append(m)
    rows = []
    for (phase, reader, structure), items in sorted(groups.items()):
        dice = np.array([m.dice for m in items], dtype=np.float64)
        hd95 = np.array([m.hd95_mm for m in items], dtype=np.float64)
        defined = dice[~np.isnan(dice)]
        low, high = engine.bootstrap(mean_statistic(), dice, clusters=[m.case for m in items]) if defined.size else (None, None)
        finite_hd = hd95[np.isfinite(hd95)]
        rows.append(
            {
                "phase": phase,
                "reader": reader,
                "structure": structure,
                "n": len(items),
                "dice": _ci(float(defined.mean()) if defined.size else None, low, high),
                "min_dice": _num(float(defined.min())) if defined.size else None,
                "median_hd95_mm": _num(float(np.median(finite_hd))) if finite_hd.size else None,
                "n_hd95_undefined": int(hd95.size - finite_hd.size),
            }
        )
    return rows


def _per_case(ratings: _Ratings) -> list[dict[str, Any]]:
    rows = []
    for phase in ratings.phases:
        by_case: dict[str, dict[tuple[str, str], list[int]]] = defaultdict(lambda: defaultdict(list))
        readers_by_case: dict[str, set[str]] = defaultdict(set)
        for (p, condition, kind, reader), items in ratings.grades.items():
            if p != phase or kind != "live":
                continue
            for (case, level), rank in items.items():
                by_case[case][(level, condition)].append(rank)
                readers_by_case[case].add(reader)
        for case in sorted(by_case):
            multi = [v for v in by_case[case].values() if len(v) >= 2]
            agreed = sum(1 for v in multi if max(v) == min(v))
            rows.append(
                {
                    "phase": phase,
                    "case": case,
                    "n_readers": len(readers_by_case[case]),
                    "n_items": len(multi),
                    "all_agree_share": _num(agreed / len(multi)) if multi else None,
                    "max_spread": max((max(v) - min(v) for v in multi), default=None),
                }
            )
    return rows


def report_compute(inputs: StudyInputs) -> dict[str, Any]:
    """Every statistic of the study, as a JSON-ready dict (see the module docstring for the sections).

    Deterministic: the same inputs (seed included) give the same dict, so a data freeze can recompute
    and check it.

    Raises:
        ValueError: a grade outside its condition's category list, or a non-finite measurement.
    """
    ratings = _Ratings(inputs)
    engine = _Engine(inputs)
    pairwise = _pairwise(engine, ratings, inputs.levels)
    cases = sorted({g.case for g in inputs.grades} | {v.case for v in inputs.values if v.reader != AI_RATER})
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "meta": {
            "n_cases": len(cases),
            "readers": ratings.readers,
            "phases": ratings.phases,
            "levels": list(inputs.levels),
            "conditions": [{"key": c.key, "label": c.label, "categories": list(c.categories)} for c in inputs.conditions],
            "model_version": inputs.model_version,
            "ai_graded_conditions": sorted(c for c, items in ratings.ai.items() if items),
            "reference_sources": {c: sorted(s) for c, s in sorted(ratings.reference_source.items())},
            "n_resamples": inputs.n_resamples,
            "seed": inputs.seed,
            "confidence": inputs.confidence,
            "bootstrap": "percentile, patient-clustered (clusters = cases)",
            "notes": list(inputs.notes),
        },
        "pairwise": pairwise,
        "multirater": _multirater(ratings, pairwise, inputs.levels),
        "vs_reference": _vs_reference(engine, ratings),
        "intra_reader": _intra_reader(engine, ratings),
        "aided_vs_unaided": _aided_vs_unaided(engine, ratings),
        "continuous": _continuous(engine, inputs),
        "masks": _masks(engine, inputs),
        "per_case": _per_case(ratings),
    }

