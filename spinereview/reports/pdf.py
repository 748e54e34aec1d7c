"""The statistics report as a PDF (matplotlib, Agg backend): a summary page with the tables, then the
level x condition heatmap, forest plots of kappa with CIs, confusion matrices against the reference and
Bland-Altman plots. Framework-free: takes the report dict and the raw continuous values.

The PDF carries no creation date, so the same report and values give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from spinereview.reports.analysis import AI_RATER, ALL_LEVELS

MAX_BLAND_ALTMAN_PAGES = 12


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ci(value: Mapping[str, Any] | None) -> str:
    if not value or value.get("estimate") is None:
        return "—"
    if value.get("ci_low") is None:
        return _fmt(value["estimate"])
    return f"{_fmt(value['estimate'])} [{_fmt(value['ci_low'], 2)}, {_fmt(value['ci_high'], 2)}]"


def _table_page(pdf: Any, plt: Any, title: str, header: Sequence[str], rows: Sequence[Sequence[str]], *, subtitle: str = "") -> None:
    """One or more A4 landscape pages holding a table (40 rows a page)."""
    for start in range(0, max(len(rows), 1), 40):
        figure = plt.figure(figsize=(11.69, 8.27))
        figure.text(0.04, 0.95, title, fontsize=14, weight="bold")
        if subtitle:
            figure.text(0.04, 0.92, subtitle, fontsize=8, color="#444444")
        ax = figure.add_axes((0.04, 0.04, 0.92, 0.85))
        ax.axis("off")
        chunk = [list(r) for r in rows[start : start + 40]] or [["(none)"] + [""] * (len(header) - 1)]
        table = ax.table(cellText=chunk, colLabels=list(header), loc="upper left", cellLoc="left", colLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        table.scale(1, 1.15)
        pdf.savefig(figure)
        plt.close(figure)


def report_pdf(report: Mapping[str, Any], values: Mapping[tuple[str, str, str], Mapping[tuple[str, str], float]], *, title: str, software_version: str, fingerprint: str) -> bytes:
    """The PDF of a report. ``values[(phase, quantity, rater)]`` are the raw values for Bland-Altman plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    meta = report["meta"]
    conditions = {c["key"]: c for c in meta["conditions"]}
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": f"Agreement report: {title}", "Creator": software_version, "CreationDate": None}) as pdf:
        subtitle = (
            f"{meta['n_cases']} cases (calibration excluded) · readers {', '.join(meta['readers']) or 'none'} · AI {meta['model_version'] or 'none'} · "
            f"CIs: {meta['bootstrap']}, {meta['n_resamples']} resamples, seed {meta['seed']} · {software_version} · inputs {fingerprint[:12]}"
        )
        pooled = [p for p in report["pairwise"] if p["level"] == ALL_LEVELS]
        _table_page(
            pdf, plt, f"Agreement report — {title}",
            ["phase", "condition", "rater A", "rater B", "n", "agreement %", "kappa unweighted", "kappa linear", "kappa quadratic"],
            [[p["phase"], p["condition"], p["rater_a"], p["rater_b"], str(p["n"]), _fmt(p["percent_agreement"], 1), _ci(p["kappa"]["none"]), _ci(p["kappa"]["linear"]), _ci(p["kappa"]["quadratic"])] for p in pooled],
            subtitle=subtitle,
        )  # fmt: skip
        _table_page(
            pdf, plt, "All readers: Fleiss, Krippendorff, Gwet",
            ["phase", "condition", "level", "readers", "items", "Fleiss kappa", "Krippendorff alpha (ordinal)", "Gwet AC2 (quadratic)", "mean pairwise kappa (quadratic)"],
            [[m["phase"], m["condition"], m["level"], str(m["n_raters"]), str(m["n_items"]), _fmt(m["fleiss_kappa"]), _fmt(m["krippendorff_alpha_ordinal"]), _fmt(m["gwet_ac2_quadratic"]), _fmt(m["mean_pairwise_kappa_quadratic"])] for m in report["multirater"]],
        )  # fmt: skip
        if report["vs_reference"]:
            _table_page(
                pdf, plt, "Against the reference (adjudicated, else majority)",
                ["phase", "condition", "rater", "n", "accuracy", "macro-F1", "kappa quadratic", "F1 per class"],
                [[r["phase"], r["condition"], r["rater"], str(r["n"]), _fmt(r["accuracy"]), _fmt(r["macro_f1"]), _ci(r["kappa"]["quadratic"]), " ".join(f"{c['category']}:{_fmt(c['f1'], 2)}" for c in r["per_class"])] for r in report["vs_reference"]],
            )  # fmt: skip
        if report["continuous"]:
            _table_page(
                pdf, plt, "Measurements: ICC(A,1), Bland-Altman, MAE, Lin's CCC",
                ["phase", "quantity", "rater A", "rater B", "n", "ICC(A,1) [F CI]", "bias", "limits of agreement", "MAE", "CCC"],
                [[c["phase"], c["quantity"], c["rater_a"], c["rater_b"], str(c["n"]), _ci(c.get("icc_a1")),
                  _fmt((c.get("bland_altman") or {}).get("bias"), 2),
                  f"{_fmt(c['bland_altman']['loa_lower'], 2)} to {_fmt(c['bland_altman']['loa_upper'], 2)}" if c.get("bland_altman") else "—",
                  _fmt(c.get("mae"), 2), _ci(c.get("ccc"))] for c in report["continuous"]],
            )  # fmt: skip
        for phase in meta["phases"]:
            levels = [ALL_LEVELS, *meta["levels"]]
            keys = list(conditions)
            grid = [[math.nan] * len(keys) for _ in levels]
            for i, level in enumerate(levels):
                for j, key in enumerate(keys):
                    ks = [
                        p["kappa"]["quadratic"]["estimate"]
                        for p in report["pairwise"]
                        if p["phase"] == phase and p["level"] == level and p["condition"] == key and AI_RATER not in (p["rater_a"], p["rater_b"]) and p["kappa"]["quadratic"]["estimate"] is not None
                    ]
                    grid[i][j] = sum(ks) / len(ks) if ks else math.nan
            figure, ax = plt.subplots(figsize=(11.69, 8.27))
            image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="Blues", aspect="auto")
            ax.set_xticks(range(len(keys)), [conditions[k]["label"] for k in keys], rotation=20, ha="right", fontsize=8)
            ax.set_yticks(range(len(levels)), levels)
            for i in range(len(levels)):
                for j in range(len(keys)):
                    ax.text(j, i, _fmt(grid[i][j], 2), ha="center", va="center", fontsize=9, color="black" if not grid[i][j] > 0.6 else "white")
            figure.colorbar(image, ax=ax, label="mean pairwise kappa (quadratic)")
            ax.set_title(f"Mean pairwise quadratic kappa by level and condition ({phase})")
            figure.tight_layout()
            pdf.savefig(figure)
            plt.close(figure)
            for key, condition in conditions.items():
                rows = [(f"{p['rater_a']} – {p['rater_b']}", p["kappa"]["quadratic"]) for p in report["pairwise"] if p["phase"] == phase and p["condition"] == key and p["level"] == ALL_LEVELS]
                rows += [(f"{r['rater']} – reference", r["kappa"]["quadratic"]) for r in report["vs_reference"] if r["phase"] == phase and r["condition"] == key]
                if not rows:
                    continue
                figure, ax = plt.subplots(figsize=(11.69, max(3.0, 0.35 * len(rows) + 1.5)))
                for y, (_label, k) in enumerate(reversed(rows)):
                    if k["estimate"] is None:
                        continue
                    if k["ci_low"] is not None:
                        ax.plot([k["ci_low"], k["ci_high"]], [y, y], color="#1f77b4", lw=2)
                    ax.plot([k["estimate"]], [y], "s", color="black")
                ax.set_yticks(range(len(rows)), [label for label, _ in reversed(rows)], fontsize=8)
                ax.axvline(0.0, color="grey", ls="--", lw=0.8)
                ax.set_xlim(min(-0.2, *[k["ci_low"] for _, k in rows if k["ci_low"] is not None]), 1.0)
                ax.set_xlabel("quadratic kappa with 95% patient-clustered bootstrap CI")
                ax.set_title(f"{condition['label']}, all levels ({phase})")
                figure.tight_layout()
                pdf.savefig(figure)
                plt.close(figure)
        pages = 0
        for c in report["continuous"]:
            if pages >= MAX_BLAND_ALTMAN_PAGES or c["rater_b"] in ("",) or not c.get("bland_altman") or c["phase"] not in meta["phases"]:
                continue
            a, b = values.get((c["phase"], c["quantity"], c["rater_a"]), {}), values.get((c["phase"], c["quantity"], c["rater_b"]), {})
            common = sorted(a.keys() & b.keys())
            if not common:
                continue
            means = [(a[i] + b[i]) / 2 for i in common]
            diffs = [a[i] - b[i] for i in common]
            ba = c["bland_altman"]
            figure, ax = plt.subplots(figsize=(8.27, 5.8))
            ax.scatter(means, diffs, s=12, color="black", alpha=0.7)
            for value, style, name in ((ba["bias"], "-", "bias"), (ba["loa_lower"], "--", "−LoA"), (ba["loa_upper"], "--", "+LoA")):
                ax.axhline(value, ls=style, color="#1f77b4" if name == "bias" else "#d62728", lw=1)
                ax.annotate(f"{name} {value:.2f}", xy=(1.0, value), xycoords=("axes fraction", "data"), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
            ax.set_xlabel(f"mean of the two ({c['unit']})")
            ax.set_ylabel(f"{c['rater_a']} − {c['rater_b']} ({c['unit']})")
            ax.set_title(f"Bland-Altman: {c['quantity']} ({c['phase']}, n={c['n']})")
            figure.tight_layout()
            pdf.savefig(figure)
            plt.close(figure)
            pages += 1
    return buffer.getvalue()
