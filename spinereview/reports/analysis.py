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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from spinereview.agreement import (
    bland_altman,
    classification_scores,
    cluster_bootstrap_ci,
    cohen_kappa_statistic,
    concordance_correlation_score,
    confusion_matrix,
    fleiss_kappa_counts_score,
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


MISSING = -1


class _Grid:
    """Every (case, level) item of the study as one position of a dense array, so that a rater's grades
    are an int array (rank, ``MISSING`` where not graded) and a comparison is a vectorised mask."""

    def __init__(self, inputs: StudyInputs) -> None:
        extra_levels = sorted({g.level for g in (*inputs.grades, *inputs.ai_grades)} | {r.level for r in inputs.reference} | {v.level for v in inputs.values} - set(inputs.levels))
        self.levels = list(inputs.levels) + [lv for lv in extra_levels if lv not in inputs.levels]
        cases = {g.case for g in (*inputs.grades, *inputs.ai_grades)} | {r.case for r in inputs.reference} | {v.case for v in inputs.values}
        self.cases = sorted(cases)
        self.case_index = {c: i for i, c in enumerate(self.cases)}
        self.level_index = {lv: i for i, lv in enumerate(self.levels)}
        n_levels = len(self.levels)
        self.size = len(self.cases) * n_levels
        self.item_case = np.repeat(np.arange(len(self.cases)), n_levels)
        item_level = np.tile(np.arange(n_levels), len(self.cases))
        self.level_masks = {lv: item_level == i for lv, i in self.level_index.items()}

    def position(self, case: str, level: str) -> int:
        return self.case_index[case] * len(self.levels) + self.level_index[level]

    def select(self, level: str) -> npt.NDArray[np.bool_] | None:
        return None if level == ALL_LEVELS else self.level_masks[level]


Ranks = npt.NDArray[np.int64]  # one rank per grid position, MISSING where not graded


class _Ratings:
    """Ranks of every grade on the grid: (phase, condition, kind, rater) -> ranks."""

    def __init__(self, inputs: StudyInputs, grid: _Grid) -> None:
        self.grid = grid
        self.conditions = {c.key: c for c in inputs.conditions}
        self.rank = {c.key: {code: i for i, code in enumerate(c.categories)} for c in inputs.conditions}
        self.grades: dict[tuple[str, str, str, str], Ranks] = {}
        for g in inputs.grades:
            if g.condition not in self.rank:
                continue  # a question no longer in the protocol: not part of the analysis
            rank = self.rank[g.condition].get(g.value)
            if rank is None:
                raise ValueError(f"grade {g.value!r} of {g.condition} is not one of {', '.join(self.conditions[g.condition].categories)} (case {g.case}, reader {g.reader})")
            self._array(self.grades, (g.phase, g.condition, g.kind, g.reader))[grid.position(g.case, g.level)] = rank
        self.ai: dict[str, Ranks] = {}
        for g in inputs.ai_grades:
            if g.condition in self.rank and g.value in self.rank[g.condition]:
                self._array(self.ai, g.condition)[grid.position(g.case, g.level)] = self.rank[g.condition][g.value]
        self.reference: dict[str, Ranks] = {}
        self.reference_source: dict[str, set[str]] = defaultdict(set)
        for r in inputs.reference:
            if r.condition in self.rank and r.value in self.rank[r.condition]:
                self._array(self.reference, r.condition)[grid.position(r.case, r.level)] = self.rank[r.condition][r.value]
                self.reference_source[r.condition].add(r.source)
        self.readers = sorted({key[3] for key in self.grades})
        self.phases = [p for p in PHASES if any(key[0] == p for key in self.grades)]

    def _array(self, store: dict[Any, Ranks], key: Any) -> Ranks:
        if key not in store:
            store[key] = np.full(self.grid.size, MISSING, dtype=np.int64)
        return store[key]

    def live(self, phase: str, condition: str) -> dict[str, Ranks]:
        """Raters of one phase and condition: each reader's live read, then the AI where it grades."""
        raters = {r: ranks for r in self.readers if (ranks := self.grades.get((phase, condition, "live", r))) is not None}
        if condition in self.ai:
            raters[AI_RATER] = self.ai[condition]
        return raters


class _Engine:
    def __init__(self, inputs: StudyInputs, grid: _Grid) -> None:
        self.inputs = inputs
        self.grid = grid
        self.kappa_statistics: dict[tuple[int, str], Callable[..., Any]] = {}

    def _kappa_statistic(self, k: int, weights: str) -> Callable[..., Any]:
        key = (k, weights)
        if key not in self.kappa_statistics:
            self.kappa_statistics[key] = cohen_kappa_statistic(categories=list(range(k)), weights=weights)  # type: ignore[arg-type]
        return self.kappa_statistics[key]

    def bootstrap(self, statistic: Callable[..., Any], *data: Any, clusters: npt.NDArray[np.int64]) -> tuple[float | None, float | None]:
        """Percentile CI by patient-clustered bootstrap; none with fewer than 2 patients."""
        if np.unique(clusters).size < 2:
            return None, None
        result = cluster_bootstrap_ci(
            statistic, *data, clusters=clusters, n_resamples=self.inputs.n_resamples, seed=self.inputs.seed,
            confidence=self.inputs.confidence, vectorized=True,
        )  # fmt: skip
        return _num(result.ci_low), _num(result.ci_high)

    def categorical(self, a: Ranks, b: Ranks, k: int, *, with_ci: bool, where: npt.NDArray[np.bool_] | None = None) -> dict[str, Any] | None:
        """Agreement of two raters over the items both graded (ranks 0..k-1), optionally within ``where``.

        Kappa point estimates come from the package's vectorised kappa evaluated on the data as drawn
        (every patient weight 1), which equals :func:`cohen_kappa_score` without its null-hypothesis test.
        """
        both = (a != MISSING) & (b != MISSING)
        if where is not None:
            both &= where
        if not both.any():
            return None
        ra, rb = a[both], b[both]
        clusters = self.grid.item_case[both]
        codes, index = np.unique(clusters, return_inverse=True)
        ones = np.ones((1, codes.size))
        kappas = {}
        for weights in WEIGHTS:
            statistic = self._kappa_statistic(k, weights)
            estimate = float(statistic(ra, rb, cluster_weights=ones, cluster_index=index)[0])
            low = high = None
            if with_ci and not math.isnan(estimate):
                low, high = self.bootstrap(statistic, ra, rb, clusters=clusters)
            kappas[weights] = _ci(estimate, low, high)
        return {
            "n": int(ra.size),
            "n_cases": int(codes.size),
            "percent_agreement": _num(percent_agreement_score(ra, rb, categories=list(range(k)))),
            "kappa": kappas,
            "confusion": confusion_matrix(ra, rb, list(range(k))).tolist(),
        }


def _pairwise(engine: _Engine, ratings: _Ratings, levels: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for phase in ratings.phases:
        for condition, spec in ratings.conditions.items():
            raters = ratings.live(phase, condition)
            for (name_a, ranks_a), (name_b, ranks_b) in itertools.combinations(raters.items(), 2):
                for level in (ALL_LEVELS, *levels):
                    result = engine.categorical(ranks_a, ranks_b, len(spec.categories), with_ci=level == ALL_LEVELS, where=engine.grid.select(level))
                    if result is not None:
                        rows.append({"phase": phase, "condition": condition, "level": level, "rater_a": name_a, "rater_b": name_b} | result)
    return rows


def _multirater(ratings: _Ratings, pairwise: Sequence[dict[str, Any]], levels: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    mean_kappa: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for p in pairwise:
        if AI_RATER not in (p["rater_a"], p["rater_b"]) and p["kappa"]["quadratic"]["estimate"] is not None:
            mean_kappa[(p["phase"], p["condition"], p["level"])].append(p["kappa"]["quadratic"]["estimate"])
    for phase in ratings.phases:
        for condition, spec in ratings.conditions.items():
            readers = {r: ranks for r, ranks in ratings.live(phase, condition).items() if r != AI_RATER}
            if len(readers) < 2:
                continue
            k = len(spec.categories)
            categories = list(range(k))
            full = np.column_stack(list(readers.values()))  # items x readers, MISSING where not graded
            for level in (ALL_LEVELS, *levels):
                where = ratings.grid.select(level)
                table = full if where is None else full[where]
                graded = table != MISSING
                table = table[graded.any(axis=1)]
                per_item = (table != MISSING).sum(axis=1)
                complete = table[per_item == len(readers)]
                pairable = table[per_item >= 2]
                row: dict[str, Any] = {"phase": phase, "condition": condition, "level": level, "n_raters": len(readers), "n_items": int(table.shape[0]), "n_complete_items": int(complete.shape[0])}
                if complete.shape[0] >= 2:
                    counts = np.stack([np.bincount(item, minlength=k) for item in complete]) if complete.shape[0] < 64 else np.apply_along_axis(np.bincount, 1, complete, minlength=k)
                    row["fleiss_kappa"] = _num(fleiss_kappa_counts_score(counts, categories=categories).kappa)
                else:
                    row["fleiss_kappa"] = None
                as_ratings = np.where(pairable == MISSING, np.nan, pairable.astype(np.float64))
                row["krippendorff_alpha_ordinal"] = _num(krippendorff_alpha_score(as_ratings, level="ordinal", categories=categories).alpha) if pairable.size else None
                row["gwet_ac2_quadratic"] = _num(gwet_ac_score(as_ratings, categories=categories, weights="quadratic").coefficient) if pairable.size else None
                defined = mean_kappa.get((phase, condition, level), [])
                row["mean_pairwise_kappa_quadratic"] = _num(float(np.mean(defined))) if defined else None
                rows.append(row)
    return rows


def _vs_reference(engine: _Engine, ratings: _Ratings) -> list[dict[str, Any]]:
    rows = []
    for phase in ratings.phases:
        for condition, spec in ratings.conditions.items():
            reference = ratings.reference.get(condition)
            if reference is None:
                continue
            for rater, ranks in ratings.live(phase, condition).items():
                result = engine.categorical(ranks, reference, len(spec.categories), with_ci=True)
                if result is None:
                    continue
                both = (ranks != MISSING) & (reference != MISSING)
                scores = classification_scores(reference[both], ranks[both], categories=list(range(len(spec.categories))))
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
            if live is None or washout is None:
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
        reference = ratings.reference.get(condition)
        for reader in ratings.readers:
            unaided = ratings.grades.get(("unaided", condition, "live", reader))
            aided = ratings.grades.get(("aided", condition, "live", reader))
            if unaided is None or aided is None:
                continue
            between = engine.categorical(unaided, aided, k, with_ci=True)
            if between is None:
                continue
            both = (unaided != MISSING) & (aided != MISSING)
            changed = int(np.count_nonzero(unaided[both] != aided[both]))
            row: dict[str, Any] = {"condition": condition, "reader": reader, "n": between["n"], "changed": changed, "kappa_between_phases": between["kappa"]}
            for phase, ranks in (("unaided", unaided), ("aided", aided)):
                vs = engine.categorical(ranks, reference, k, with_ci=False) if reference is not None else None
                row[f"{phase}_vs_reference"] = (
                    None if vs is None else {"n": vs["n"], "percent_agreement": vs["percent_agreement"], "kappa_quadratic": vs["kappa"]["quadratic"]["estimate"]}
                )
            rows.append(row)
    return rows


FloatValues = npt.NDArray[np.float64]  # one value per grid position, NaN where not measured


def _continuous_pair(a: FloatValues, b: FloatValues, grid: _Grid) -> dict[str, Any] | None:
    both = ~np.isnan(a) & ~np.isnan(b)
    n = int(np.count_nonzero(both))
    if not n:
        return None
    x, y = a[both], b[both]
    row: dict[str, Any] = {"n": n, "n_cases": int(np.unique(grid.item_case[both]).size), "mean_a": _num(x.mean()), "mean_b": _num(y.mean())}
    row["mae"] = _num(mean_absolute_error(x, y).mean_absolute_error)
    row["icc_a1"] = None
    row["bland_altman"] = None
    row["ccc"] = None
    if n >= 2:
        icc = icc_score(np.column_stack([x, y]), form="ICC(A,1)")
        row["icc_a1"] = _ci(icc.icc, icc.ci_low, icc.ci_high)
    if n >= 3:
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
    if n >= 4:  # Lin's CCC and its interval need 4 pairs
        ccc = concordance_correlation_score(x, y)
        row["ccc"] = _ci(ccc.ccc, ccc.ci_low, ccc.ci_high)
    return row


def _values_index(inputs: StudyInputs, grid: _Grid) -> tuple[dict[tuple[str, str, str, str], FloatValues], list[str]]:
    """(phase, quantity, kind, rater) -> values on the grid; the AI's values are copied into every phase present."""
    index: dict[tuple[str, str, str, str], FloatValues] = {}
    ai: dict[str, FloatValues] = {}
    for v in inputs.values:
        if not math.isfinite(v.value):
            raise ValueError(f"{v.quantity} of case {v.case} ({v.reader}) is not a finite number: {v.value!r}")
        key = (v.phase, v.quantity, v.kind, v.reader)
        store, name = (ai, v.quantity) if v.reader == AI_RATER else (index, key)  # type: ignore[assignment]
        if name not in store:
            store[name] = np.full(grid.size, np.nan)  # type: ignore[index]
        store[name][grid.position(v.case, v.level)] = v.value  # type: ignore[index]
    phases = [p for p in PHASES if any(key[0] == p for key in index)]
    for quantity, values in ai.items():
        for phase in phases:
            index[(phase, quantity, "live", AI_RATER)] = values
    return index, phases


def _continuous(engine: _Engine, inputs: StudyInputs) -> list[dict[str, Any]]:
    grid = engine.grid
    index, phases = _values_index(inputs, grid)
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
                result = _continuous_pair(raters[name_a], raters[name_b], grid)
                if result is not None:
                    rows.append({"phase": phase, "quantity": quantity, "unit": quantity_unit(quantity), "rater_a": name_a, "rater_b": name_b} | result)
            if len(readers) >= 2:
                table = np.column_stack([raters[r] for r in readers])
                complete = ~np.isnan(table).any(axis=1)
                n = int(np.count_nonzero(complete))
                summary: dict[str, Any] = {"phase": phase, "quantity": quantity, "unit": quantity_unit(quantity), "rater_a": "all readers", "rater_b": "", "n": n, "n_raters": len(readers)}
                summary["icc_a1"] = None
                if n >= 2:
                    icc = icc_score(table[complete], form="ICC(A,1)")
                    low, high = engine.bootstrap(icc_statistic(form="ICC(A,1)"), table[complete], clusters=grid.item_case[complete])
                    summary["icc_a1"] = _ci(icc.icc, icc.ci_low, icc.ci_high) | {"bootstrap_ci_low": low, "bootstrap_ci_high": high}
                rows.append(summary)
    for quantity in quantities:
        for reader in sorted({key[3] for key in index if key[2] == "washout" and key[1] == quantity}):
            live = index.get(("unaided", quantity, "live", reader))
            washout = index.get(("unaided", quantity, "washout", reader))
            if live is not None and washout is not None and (result := _continuous_pair(live, washout, grid)) is not None:
                rows.append({"phase": "intra_reader", "quantity": quantity, "unit": quantity_unit(quantity), "rater_a": reader, "rater_b": f"{reader} (washout)"} | result)
    return rows


def quantity_unit(quantity: str) -> str:
    """The unit a quantity's name ends with (``dsca_mm2`` → ``mm2``, ``..._percent`` → ``%``), else ""."""
    for suffix, unit in (("_mm2", "mm2"), ("_mm3", "mm3"), ("_mm", "mm"), ("_percent", "%")):
        if quantity.endswith(suffix):
            return unit
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
        clusters = np.array([engine.grid.case_index[m.case] if m.case in engine.grid.case_index else -1 - i for i, m in enumerate(items)], dtype=np.int64)
        low, high = engine.bootstrap(mean_statistic(), dice, clusters=clusters) if defined.size else (None, None)
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
    grid = ratings.grid
    n_levels = len(grid.levels)
    for phase in ratings.phases:
        live = [(key, ranks) for key, ranks in ratings.grades.items() if key[0] == phase and key[2] == "live"]
        if not live:
            continue
        readers = sorted({key[3] for key, _ in live})
        # cases x (levels * conditions) x readers
        cube = np.full((len(grid.cases), n_levels * len(ratings.conditions), len(readers)), MISSING, dtype=np.int64)
        conditions = list(ratings.conditions)
        for (_, condition, _, reader), ranks in live:
            c = conditions.index(condition)
            cube[:, c * n_levels : (c + 1) * n_levels, readers.index(reader)] = ranks.reshape(len(grid.cases), n_levels)
        graded = cube != MISSING
        counts = graded.sum(axis=2)
        high = np.where(graded, cube, -1).max(axis=2)
        low = np.where(graded, cube, 1 << 30).min(axis=2)
        multi = counts >= 2
        for i, case in enumerate(grid.cases):
            if not graded[i].any():
                continue
            n_items = int(multi[i].sum())
            spread = (high[i] - low[i])[multi[i]]
            rows.append(
                {
                    "phase": phase,
                    "case": case,
                    "n_readers": int(graded[i].any(axis=0).sum()),
                    "n_items": n_items,
                    "all_agree_share": _num(float((spread == 0).sum()) / n_items) if n_items else None,
                    "max_spread": int(spread.max()) if n_items else None,
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
    grid = _Grid(inputs)
    ratings = _Ratings(inputs, grid)
    engine = _Engine(inputs, grid)
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
            "ai_graded_conditions": sorted(c for c, ranks in ratings.ai.items() if (ranks != MISSING).any()),
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

