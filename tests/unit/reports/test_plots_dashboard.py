"""Dashboard figures and filters: exact SVG content, escaping, filter fallbacks."""

from __future__ import annotations

from spinereview.reports.analysis import ConditionSpec, GradeObservation, StudyInputs, ValueObservation, report_compute
from spinereview.reports.dashboard import dashboard_context, filters_parse
from spinereview.reports.plots import bland_altman_svg, confusion_svg, forest_svg, heatmap_svg, kappa_colour


def test_kappa_colours_span_undefined_negative_and_zero_to_one() -> None:
    assert (kappa_colour(None), kappa_colour(float("nan")), kappa_colour(-0.3)) == ("#333a44", "#333a44", "#8a2d2b")
    assert (kappa_colour(0.0), kappa_colour(1.0), kappa_colour(2.0)) == ("#18202c", "#348ceb", "#348ceb")


def test_heatmap_prints_every_value_and_escapes_labels() -> None:
    svg = heatmap_svg(["all", "L4-L5"], ["cc"], {("all", "cc"): 0.5, ("L4-L5", "cc"): None}, title="<b>kappa</b>", column_labels={"cc": "A & B"})
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and svg.endswith("</svg>")
    assert ">0.50</text>" in svg and ">–</text>" in svg and "L4-L5 · cc: undefined" in svg
    assert "&lt;b&gt;kappa&lt;/b&gt;" in svg and "A &amp; B" in svg and "<b>" not in svg


def test_confusion_forest_and_bland_altman_draw_their_data() -> None:
    confusion = confusion_svg([[3, 1], [0, 2]], ["A", "B"], rows_label="r1", columns_label="r2", title="r1 vs r2")
    assert [confusion.count(f">{n}</text>") for n in (3, 1, 0, 2)] == [1, 1, 1, 1]
    assert confusion.count('stroke="#4aa3ff"') == 2  # the diagonal
    forest = forest_svg([("r1 – r2", 0.6, 0.4, 0.8), ("r1 – AI", None, None, None)], title="forest")
    assert "0.60 [0.40, 0.80]" in forest and ">undefined</text>" in forest and forest.count("<rect") == 2  # frame + one square
    ba = bland_altman_svg([10.0, 12.0, 14.0], [9.0, 12.5, 13.0], bias=0.5, loa_lower=-1.0, loa_upper=2.0, unit="mm2", title="ba")
    assert ba.count("<circle") == 3 and "bias 0.50" in ba and "−LoA -1.00" in ba and "+LoA 2.00" in ba
    assert "no pairs" in bland_altman_svg([], [], bias=None, loa_lower=None, loa_upper=None, unit="mm", title="empty")


def _report() -> dict:  # type: ignore[type-arg]
    cc = ConditionSpec("cc", "Central canal", ("0", "1", "2"))
    grades = [GradeObservation(f"c{i}", r, "live", "unaided", "L4-L5", "cc", str((i + (r == "r2")) % 3)) for i in range(6) for r in ("r1", "r2")]
    values = [ValueObservation(f"c{i}", r, "live", "unaided", "L4-L5", "dsca.area_mm2", 100.0 + i * 10 + (r == "r2")) for i in range(6) for r in ("r1", "r2")]
    return report_compute(StudyInputs(levels=("L4-L5",), conditions=(cc,), grades=tuple(grades), values=tuple(values), n_resamples=100))


def test_filters_fall_back_to_valid_values() -> None:
    report = _report()
    f = filters_parse(report, {"phase": "aided", "condition": "nope", "level": "L4-L5", "reader": "mallory", "weights": "cubic", "quantity": "x"})
    assert (f.phase, f.condition, f.level, f.reader, f.weights, f.quantity) == ("unaided", "cc", "L4-L5", "", "quadratic", "dsca.area_mm2")


def test_dashboard_context_picks_the_filtered_rows() -> None:
    report = _report()
    values = {("unaided", "dsca.area_mm2", r): {(f"c{i}", "L4-L5"): 100.0 + i * 10 + (r == "r2") for i in range(6)} for r in ("r1", "r2")}
    context = dashboard_context(report, filters_parse(report, {"weights": "none"}), values)
    assert [(p["rater_a"], p["rater_b"], p["level"]) for p in context["pairwise"]] == [("r1", "r2", "all")]
    assert len(context["confusions"]) == 1 and len(context["bland_altman"]) == 1
    assert context["bland_altman"][0].count("<circle") == 6 and "bias -1.00" in context["bland_altman"][0]
    kappa = context["pairwise"][0]["kappa"]["none"]["estimate"]
    assert f">{kappa:.2f}</text>" in context["heatmap"]
    only_r3 = dashboard_context(report, filters_parse(report, {"reader": "AI"}), values)
    assert only_r3["pairwise"] == [] and only_r3["bland_altman"] == []
