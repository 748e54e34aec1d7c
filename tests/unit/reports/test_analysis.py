"""report_compute on small hand-made studies: exact values, every section, refused input."""

from __future__ import annotations

import json

import pytest

from spinereview.agreement import cohen_kappa_score
from spinereview.reports.analysis import (
    AI_RATER,
    ConditionSpec,
    GradeObservation,
    MaskComparison,
    ReferenceGrade,
    StudyInputs,
    ValueObservation,
    report_compute,
)

CC = ConditionSpec("cc", "Central canal", ("0", "1", "2", "3"))
LEVELS = ("L4-L5", "L5-S1")
CASES = ["c1", "c1", "c2", "c2", "c3", "c3"]
ITEM_LEVELS = list(LEVELS) * 3


def grades(reader: str, values: list[str], *, kind: str = "live", phase: str = "unaided") -> list[GradeObservation]:
    return [GradeObservation(c, reader, kind, phase, lv, "cc", v) for c, lv, v in zip(CASES, ITEM_LEVELS, values, strict=True)]


R1 = ["0", "1", "2", "3", "0", "1"]
R2 = ["0", "1", "3", "3", "1", "1"]


def study(**kwargs: object) -> StudyInputs:
    base: dict[str, object] = {"levels": LEVELS, "conditions": (CC,), "grades": tuple(grades("r1", R1) + grades("r2", R2)), "n_resamples": 200}
    return StudyInputs(**(base | kwargs))  # type: ignore[arg-type]


def test_pairwise_kappas_percent_agreement_and_confusion_are_exact() -> None:
    report = report_compute(study())
    pooled, l45, l5s1 = report["pairwise"]
    assert [p["level"] for p in report["pairwise"]] == ["all", "L4-L5", "L5-S1"]
    assert (pooled["n"], pooled["n_cases"]) == (6, 3)
    assert pooled["percent_agreement"] == pytest.approx(400 / 6)
    # quadratic kappa by hand: p_o (disagreement) = (1/9 + 1/9) / 6; marginals r1 (2,2,1,1)/6, r2 (1,3,0,2)/6
    assert pooled["kappa"]["quadratic"]["estimate"] == pytest.approx(0.8666666666666667, abs=1e-12)
    assert pooled["kappa"]["none"]["estimate"] == pytest.approx(7 / 13, abs=1e-12)
    assert pooled["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert l45["percent_agreement"] == pytest.approx(100 / 3) and l45["kappa"]["none"]["ci_low"] is None
    assert l5s1["kappa"]["quadratic"]["estimate"] == 1.0
    multi = report["multirater"][0]
    assert (multi["n_raters"], multi["n_complete_items"], multi["mean_pairwise_kappa_quadratic"]) == (2, 6, pooled["kappa"]["quadratic"]["estimate"])


def test_report_is_deterministic_and_json_ready() -> None:
    first, second = report_compute(study()), report_compute(study())
    assert json.dumps(first, sort_keys=True, allow_nan=False) == json.dumps(second, sort_keys=True, allow_nan=False)


def test_ai_reference_intra_reader_and_two_phases() -> None:
    aided_r1 = ["0", "1", "3", "3", "0", "1"]  # r1 moves one grade (L4-L5 of c2... item 3) towards r2
    washout_r1 = ["0", "1", "2", "3", "1", "1"]
    reference = [ReferenceGrade(c, lv, "cc", v, "adjudicated") for c, lv, v in zip(CASES, ITEM_LEVELS, R2, strict=True)]
    ai = [GradeObservation(c, AI_RATER, "live", "", lv, "cc", v) for c, lv, v in zip(CASES, ITEM_LEVELS, R1, strict=True)]
    inputs = study(
        grades=tuple(grades("r1", R1) + grades("r2", R2) + grades("r1", aided_r1, phase="aided") + grades("r2", R2, phase="aided") + grades("r1", washout_r1, kind="washout")),
        reference=tuple(reference),
        ai_grades=tuple(ai),
    )
    report = report_compute(inputs)
    assert report["meta"]["phases"] == ["unaided", "aided"] and report["meta"]["ai_graded_conditions"] == ["cc"]
    pairs = {(p["phase"], p["rater_a"], p["rater_b"]) for p in report["pairwise"] if p["level"] == "all"}
    assert pairs == {(ph, a, b) for ph in ("unaided", "aided") for a, b in (("r1", "r2"), ("r1", "AI"), ("r2", "AI"))}
    ai_r1 = next(p for p in report["pairwise"] if p["level"] == "all" and p["phase"] == "unaided" and p["rater_b"] == AI_RATER and p["rater_a"] == "r1")
    assert ai_r1["percent_agreement"] == 100.0
    vs = {(r["phase"], r["rater"]): r for r in report["vs_reference"]}
    assert vs[("unaided", "r2")]["accuracy"] == 1.0 and vs[("unaided", "r2")]["macro_f1"] == 1.0
    assert vs[("unaided", "r1")]["accuracy"] == pytest.approx(4 / 6)
    assert vs[("aided", "r1")]["accuracy"] == pytest.approx(5 / 6)
    per_class = {c["category"]: c for c in vs[("unaided", "r1")]["per_class"]}
    assert (per_class["2"]["reference_count"], per_class["2"]["rater_count"], per_class["2"]["recall"]) == (0, 1, None)
    (intra,) = report["intra_reader"]
    assert (intra["reader"], intra["n"], intra["percent_agreement"]) == ("r1", 6, pytest.approx(500 / 6))
    expected = cohen_kappa_score(R1, washout_r1, categories=list(CC.categories), weights="quadratic").kappa
    assert intra["kappa"]["quadratic"]["estimate"] == pytest.approx(expected, abs=1e-12)
    moved = {r["reader"]: r for r in report["aided_vs_unaided"]}
    assert (moved["r1"]["n"], moved["r1"]["changed"], moved["r2"]["changed"]) == (6, 1, 0)
    assert moved["r1"]["unaided_vs_reference"]["percent_agreement"] == pytest.approx(400 / 6)
    assert moved["r1"]["aided_vs_reference"]["percent_agreement"] == pytest.approx(500 / 6)


def test_continuous_pairs_all_readers_icc_and_ai() -> None:
    def values(reader: str, numbers: list[float], quantity: str = "dsca.area_mm2", phase: str = "unaided") -> list[ValueObservation]:
        return [ValueObservation(c, reader, "live", phase, lv, quantity, v) for c, lv, v in zip(CASES, ITEM_LEVELS, numbers, strict=True)]

    r1 = [100.0, 80.0, 120.0, 60.0, 90.0, 70.0]
    r2 = [v + 2.0 for v in r1]
    r3 = [v - 1.0 for v in r1]
    ai = [ValueObservation(c, AI_RATER, "live", "", lv, "dsca.area_mm2", v + 10.0) for c, lv, v in zip(CASES, ITEM_LEVELS, r1, strict=True)]
    report = report_compute(study(values=tuple(values("r1", r1) + values("r2", r2) + values("r3", r3) + ai)))
    rows = {(r["rater_a"], r["rater_b"]): r for r in report["continuous"]}
    assert set(rows) == {("r1", "r2"), ("r1", "r3"), ("r2", "r3"), ("r1", "AI"), ("r2", "AI"), ("r3", "AI"), ("all readers", "")}
    assert rows[("r1", "r2")]["bland_altman"]["bias"] == pytest.approx(-2.0)
    assert rows[("r1", "r2")]["bland_altman"]["sd_of_differences"] == pytest.approx(0.0, abs=1e-12)
    assert rows[("r1", "r2")]["mae"] == pytest.approx(2.0)
    assert rows[("r1", "AI")]["mae"] == pytest.approx(10.0) and rows[("r1", "AI")]["unit"] == "mm2"
    assert rows[("r1", "r2")]["ccc"]["estimate"] < 1.0  # a constant offset lowers the CCC, not Pearson's r
    everyone = rows[("all readers", "")]
    assert (everyone["n"], everyone["n_raters"]) == (6, 3)
    assert 0.99 < everyone["icc_a1"]["estimate"] < 1.0
    assert everyone["icc_a1"]["bootstrap_ci_low"] <= everyone["icc_a1"]["estimate"] <= everyone["icc_a1"]["bootstrap_ci_high"]


def test_masks_are_averaged_per_reader_and_structure() -> None:
    masks = (
        MaskComparison("c1", "r1", "unaided", "dural_sac", 0.8, 2.0),
        MaskComparison("c2", "r1", "unaided", "dural_sac", 0.9, 1.0),
        MaskComparison("c3", "r1", "unaided", "dural_sac", 0.7, float("inf")),
    )
    (row,) = report_compute(study(masks=masks))["masks"]
    assert row["dice"]["estimate"] == pytest.approx(0.8) and row["min_dice"] == pytest.approx(0.7)
    assert (row["median_hd95_mm"], row["n_hd95_undefined"], row["n"]) == (1.5, 1, 3)


def test_too_few_items_give_none_not_numbers() -> None:
    one_case = StudyInputs(levels=LEVELS, conditions=(CC,), grades=tuple(grades("r1", R1)[:1] + grades("r2", R2)[:1]), n_resamples=200)
    report = report_compute(one_case)
    pooled = report["pairwise"][0]
    assert pooled["n"] == 1 and pooled["kappa"]["quadratic"]["ci_low"] is None  # one patient: no bootstrap
    assert pooled["kappa"]["none"]["estimate"] is None  # both graded "0": kappa undefined
    assert report["multirater"][0]["fleiss_kappa"] is None


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (study(grades=(GradeObservation("c1", "r1", "live", "unaided", "L4-L5", "cc", "9"),)), "grade '9' of cc is not one of 0, 1, 2, 3"),
        (study(values=(ValueObservation("c1", "r1", "live", "unaided", "L4-L5", "dsca.area_mm2", float("nan")),)), "not a finite number"),
    ],
)
def test_bad_observations_are_refused_with_a_clear_error(inputs: StudyInputs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        report_compute(inputs)
