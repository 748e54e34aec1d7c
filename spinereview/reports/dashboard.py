"""What the dashboard shows for a set of filters: figures (inline SVG) and tables picked from a computed
report. Framework-free: the view passes the report dict and the raw continuous values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spinereview.reports.analysis import AI_RATER, ALL_LEVELS
from spinereview.reports.plots import bland_altman_svg, confusion_svg, forest_svg, heatmap_svg

MAX_CONFUSIONS = 12
MAX_BLAND_ALTMAN = 6


@dataclass(frozen=True)
class Filters:
    phase: str
    condition: str
    level: str
    reader: str
    weights: str
    quantity: str


def filters_parse(report: Mapping[str, Any], query: Mapping[str, str]) -> Filters:
    """The filters of a request, each falling back to its first valid value (unknown values are ignored,
    never an error: a stale bookmark still opens the page)."""
    meta = report["meta"]
    phases = meta["phases"] or ["unaided"]
    conditions = [c["key"] for c in meta["conditions"]]
    levels = [ALL_LEVELS, *meta["levels"]]
    readers = ["", *meta["readers"], AI_RATER]
    quantities = quantities_of(report)

    def pick(name: str, allowed: Sequence[str], default: str) -> str:
        value = query.get(name, default)
        return value if value in allowed else default

    return Filters(
        phase=pick("phase", phases, phases[0]),
        condition=pick("condition", conditions, conditions[0] if conditions else ""),
        level=pick("level", levels, ALL_LEVELS),
        reader=pick("reader", readers, ""),
        weights=pick("weights", ["none", "linear", "quadratic"], "quadratic"),
        quantity=pick("quantity", quantities, quantities[0] if quantities else ""),
    )


def quantities_of(report: Mapping[str, Any]) -> list[str]:
    return sorted({c["quantity"] for c in report["continuous"]})


def _involves(row: Mapping[str, Any], reader: str) -> bool:
    return not reader or reader in (row.get("rater_a"), row.get("rater_b"), row.get("rater"), row.get("reader"))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def dashboard_context(report: Mapping[str, Any], filters: Filters, values: Mapping[tuple[str, str, str], Mapping[tuple[str, str], float]]) -> dict[str, Any]:
    """Figures and tables for the filters. ``values[(phase, quantity, rater)]`` maps (case, level) to the
    value, for the Bland-Altman scatter (the report holds only the summary statistics)."""
    meta = report["meta"]
    conditions = {c["key"]: c for c in meta["conditions"]}
    f = filters
    pairwise = [p for p in report["pairwise"] if p["phase"] == f.phase and _involves(p, f.reader)]
    cells: dict[tuple[str, str], list[float]] = {}
    for p in pairwise:
        if AI_RATER in (p["rater_a"], p["rater_b"]) and f.reader != AI_RATER:
            continue  # the heatmap is reader agreement unless the AI is the reader chosen
        estimate = p["kappa"][f.weights]["estimate"]
        if estimate is not None:
            cells.setdefault((p["level"], p["condition"]), []).append(estimate)
    heatmap = heatmap_svg(
        [ALL_LEVELS, *meta["levels"]],
        list(conditions),
        {key: _mean(v) for key, v in cells.items()},
        title=f"Mean pairwise kappa ({f.weights}), {f.phase}" + (f", pairs with {f.reader}" if f.reader else ""),
        column_labels={k: c["label"] for k, c in conditions.items()},
    )
    selected = [p for p in pairwise if p["condition"] == f.condition and p["level"] == f.level]
    categories = conditions[f.condition]["categories"] if f.condition in conditions else []
    confusions = [
        confusion_svg(p["confusion"], categories, rows_label=p["rater_a"], columns_label=p["rater_b"], title=f"{p['rater_a']} vs {p['rater_b']} (n={p['n']})")
        for p in selected[:MAX_CONFUSIONS]
    ]
    vs_reference = [r for r in report["vs_reference"] if r["phase"] == f.phase and r["condition"] == f.condition and _involves(r, f.reader)]
    confusions += [
        confusion_svg(r["confusion"], categories, rows_label=r["rater"], columns_label="reference", title=f"{r['rater']} vs reference (n={r['n']})")
        for r in vs_reference[: max(0, MAX_CONFUSIONS - len(confusions))]
    ]
    pooled = [p for p in pairwise if p["condition"] == f.condition and p["level"] == ALL_LEVELS]
    forest_rows = [(f"{p['rater_a']} – {p['rater_b']}", p["kappa"][f.weights]["estimate"], p["kappa"][f.weights]["ci_low"], p["kappa"][f.weights]["ci_high"]) for p in pooled]
    forest_rows += [(f"{r['rater']} – reference", r["kappa"][f.weights]["estimate"], r["kappa"][f.weights]["ci_low"], r["kappa"][f.weights]["ci_high"]) for r in vs_reference]
    intra = [r for r in report["intra_reader"] if r["condition"] == f.condition and _involves(r, f.reader)]
    forest_rows += [(f"{r['reader']} – washout", r["kappa"][f.weights]["estimate"], r["kappa"][f.weights]["ci_low"], r["kappa"][f.weights]["ci_high"]) for r in intra]
    forest = forest_svg(forest_rows, title=f"Kappa ({f.weights}) with 95% patient-clustered bootstrap CIs, {conditions.get(f.condition, {}).get('label', f.condition)}, all levels, {f.phase}")
    continuous = [c for c in report["continuous"] if c["quantity"] == f.quantity and c["phase"] in (f.phase, "intra_reader") and _involves(c, f.reader)]
    bland_altman: list[str] = []
    for c in continuous:
        if c["rater_b"] == "" or c.get("bland_altman") is None or c["phase"] != f.phase or len(bland_altman) >= MAX_BLAND_ALTMAN:
            continue
        a_values, b_values = values.get((f.phase, f.quantity, c["rater_a"]), {}), values.get((f.phase, f.quantity, c["rater_b"]), {})
        common = sorted(a_values.keys() & b_values.keys())
        ba = c["bland_altman"]
        bland_altman.append(
            bland_altman_svg(
                [a_values[i] for i in common], [b_values[i] for i in common], bias=ba["bias"], loa_lower=ba["loa_lower"], loa_upper=ba["loa_upper"],
                unit=c["unit"], title=f"{f.quantity}: {c['rater_a']} − {c['rater_b']} (n={c['n']})",
            )
        )  # fmt: skip
    per_case = sorted((r for r in report["per_case"] if r["phase"] == f.phase and r["all_agree_share"] is not None), key=lambda r: (r["all_agree_share"], r["case"]))
    return {
        "filters": f,
        "heatmap": heatmap,
        "forest": forest,
        "confusions": confusions,
        "bland_altman": bland_altman,
        "pairwise": [p for p in pairwise if p["condition"] == f.condition and p["level"] == f.level],
        "multirater": [m for m in report["multirater"] if m["phase"] == f.phase and m["condition"] == f.condition],
        "vs_reference": vs_reference,
        "intra_reader": intra,
        "aided_vs_unaided": [r for r in report["aided_vs_unaided"] if r["condition"] == f.condition and _involves(r, f.reader)],
        "continuous": continuous,
        "masks": [m for m in report["masks"] if m["phase"] == f.phase and _involves(m, f.reader)],
        "per_case": per_case[:20],
        "categories": categories,
    }
