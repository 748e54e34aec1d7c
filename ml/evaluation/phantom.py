"""Score a segmenter on fresh phantom cases: overlap per structure and clinical measurements.

Overlap scores pool the voxels of every case and both series (sagittal and axial) at the
series' own resolution: Dice = 2|P∩T| / (|P| + |T|), IoU = |P∩T| / |P∪T| per label (and, in
the detailed report, precision, recall, F1, mIoU and HD95; ml.evaluation.overlap). The
paraspinal muscle sides are scored after geometric side assignment (axis directions from the
DICOM geometry), as the web side is expected to call the segmenter.

The detailed report (`python -m ml evaluate`) adds HD95 (mm; 3-D over the sagittal stack and
over each axial level block, whose slices are contiguous, averaged) and the clinical
measurements per level (ml.evaluation.measurements) against the phantom's analytic truth:
DSCA, canal AP diameter and anterior/middle/posterior disc heights, each with MAE, Pearson r
and Bland-Altman bias/limits (ml.evaluation.agreement). The same measurements taken on the
ground-truth *masks* are reported beside them: the floor that pixel discretisation sets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.evaluation.agreement import measurement_agreement
from ml.evaluation.measurements import area_mm2, column_length_mm, run_length_mm
from ml.evaluation.overlap import OverlapCounts, hd95_error, mean_iou_score, overlap_scores
from ml.inference.api import Segmenter, axis_directions_from_dicom
from ml.labels import (
    DURAL_SAC,
    INTERVERTEBRAL_DISC,
    LABEL_MAP,
    LEVELS,
    SPINAL_CANAL,
)
from ml.phantom import render_phantom
from ml.phantom.render import AXIAL, SAGITTAL, SERIES_KEYS, RenderedSeries
from ml.training.data import case_spec

HELDOUT_SEED_BASE = 1_000_000
"""Training cases use seeds below this; held-out and evaluation cases at or above it."""
EVALUATE_DEFAULT_SEED = 2_000_000
MEASUREMENTS = ("dsca_mm2", "canal_ap_mm", "disc_height_anterior_mm", "disc_height_middle_mm",
                "disc_height_posterior_mm")


def _scores(counts: dict[int, np.ndarray]) -> dict[str, dict[str, float | int | None]]:
    out: dict[str, dict[str, float | int | None]] = {}
    for label, name in LABEL_MAP.items():
        inter, pred, true = (int(v) for v in counts[label])
        union = pred + true - inter
        out[name] = {
            "dice": 2 * inter / (pred + true) if pred + true else 1.0,
            "iou": inter / union if union else 1.0,
            "true_voxels": true,
            "predicted_voxels": pred,
        }
    return out


def level_measurements(
    labels: dict[str, NDArray[np.uint8]], series: dict[str, RenderedSeries], truth: dict[str, Any]
) -> dict[str, dict[str, float | None]]:
    """Per level, the MEASUREMENTS read off the label volumes of both series (module doc)."""
    out: dict[str, dict[str, float | None]] = {}
    ax, sag = series[AXIAL], series[SAGITTAL]
    ax_geom, sag_geom = ax.geometry, sag.geometry
    axis_x, axis_y = float(truth["spine_axis_x_mm"]), float(truth["spine_axis_y_mm"])
    # mid-sagittal slice: patient x nearest the spine axis
    k_sag = int(np.argmin(np.abs(sag_geom.positions_mm[:, 0] - axis_x)))
    for level in LEVELS:
        t = truth["levels"][level]
        z_mid = float(t["disc_midplane_z_mm"])
        candidates = [k for k, lv in enumerate(ax.slice_levels) if lv == level]
        k_ax = min(candidates, key=lambda k: abs(float(ax_geom.positions_mm[k][2]) - z_mid))
        ps = ax_geom.pixel_spacing_mm
        column = int(round((axis_x - ax_geom.positions_mm[k_ax][0]) / ps[1]))
        values: dict[str, float | None] = {
            "dsca_mm2": area_mm2(labels[AXIAL][k_ax], DURAL_SAC, ps),
            "canal_ap_mm": column_length_mm(labels[AXIAL][k_ax], column, (SPINAL_CANAL, DURAL_SAC), ps[0]),
        }
        sps = sag_geom.pixel_spacing_mm
        ipp = sag_geom.positions_mm[k_sag]
        row = int(round((ipp[2] - z_mid) / sps[0]))  # rows run along -z
        for part in ("anterior", "middle", "posterior"):
            y = float(t[f"disc_height_{part}_y_mm"]) if f"disc_height_{part}_y_mm" in t else axis_y
            col = int(round((y - ipp[1]) / sps[1]))  # columns run along +y
            values[f"disc_height_{part}_mm"] = run_length_mm(
                labels[SAGITTAL][k_sag], col, row, INTERVERTEBRAL_DISC, sps[0]
            )
        out[level] = values
    return out


def _agreement(pairs: list[tuple[float | None, float]]) -> dict[str, Any]:
    measured = [(m, t) for m, t in pairs if m is not None]
    result: dict[str, Any] = {"n": len(pairs), "missing": len(pairs) - len(measured)}
    if measured:
        a = measurement_agreement([m for m, _ in measured], [t for _, t in measured])
        result.update({
            "mae": a.mae_error, "pearson_r": a.pearson_r_score, "bias": a.bias,
            "loa_lower": a.loa_lower, "loa_upper": a.loa_upper,
        })
    return result


def _hd95_groups(series: RenderedSeries) -> list[tuple[list[int], tuple[float, float, float]]]:
    """Contiguous slice groups: the whole sagittal stack, each axial level block."""
    spacing = series.geometry.spacing_mm
    if series.key == SAGITTAL:
        return [(list(range(len(series.slice_levels))), spacing)]
    groups: dict[str | None, list[int]] = {}
    for k, lv in enumerate(series.slice_levels):
        groups.setdefault(lv, []).append(k)
    return [(ks, spacing) for ks in groups.values()]


def evaluate_segmenter(
    segmenter: Segmenter, seeds: Iterable[int], *, randomise_acquisition: bool = False,
    detailed: bool = False,
) -> dict[str, Any]:
    """Render each seed's phantom, segment both series, and score against the truth.

    `detailed` adds precision/recall/F1/mIoU/HD95 and the clinical measurements (module doc)."""
    start = time.perf_counter()
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one case seed to evaluate")
    zero = {label: np.zeros(3, dtype=np.int64) for label in LABEL_MAP}
    counts = {key: {k: v.copy() for k, v in zero.items()} for key in SERIES_KEYS}
    hd95: dict[int, list[float]] = {label: [] for label in LABEL_MAP}
    pairs: dict[str, list[tuple[float | None, float]]] = {m: [] for m in MEASUREMENTS}
    floor: dict[str, list[tuple[float | None, float]]] = {m: [] for m in MEASUREMENTS}
    per_case: list[dict[str, Any]] = []
    for seed in seeds:
        rendering = render_phantom(case_spec(seed, randomise_acquisition=randomise_acquisition))
        predicted: dict[str, NDArray[np.uint8]] = {}
        for key in SERIES_KEYS:
            series = rendering.series[key]
            geom = series.geometry
            axes = axis_directions_from_dicom(
                geom.orientation, geom.positions_mm[0], geom.positions_mm[-1]
            )
            result = segmenter.segment(series.image, geom.spacing_mm, axis_directions=axes)
            predicted[key] = result.labels
            for label in LABEL_MAP:
                p = result.labels == label
                t = series.labels == label
                counts[key][label] += (int(np.count_nonzero(p & t)), int(p.sum()), int(t.sum()))
                if detailed:
                    for ks, spacing in _hd95_groups(series):
                        hd = hd95_error(p[ks], t[ks], spacing)
                        if hd is not None:
                            hd95[label].append(hd)
        if detailed:
            truth = rendering.measurements
            measured = level_measurements(predicted, rendering.series, truth)
            on_truth = level_measurements(
                {k: s.labels for k, s in rendering.series.items()}, rendering.series, truth
            )
            for level in LEVELS:
                for m in MEASUREMENTS:
                    true_value = float(truth["levels"][level][m])
                    pairs[m].append((measured[level][m], true_value))
                    floor[m].append((on_truth[level][m], true_value))
            per_case.append({"seed": seed, "measured": measured,
                             "truth": {lv: {m: truth["levels"][lv][m] for m in MEASUREMENTS}
                                       for lv in LEVELS}})
    total = {label: np.sum([counts[key][label] for key in SERIES_KEYS], axis=0) for label in LABEL_MAP}
    scores = _scores(total)
    report: dict[str, Any] = {
        "cases": len(seeds),
        "seeds": seeds,
        "model_version": segmenter.model_version,
        "dice": {name: s["dice"] for name, s in scores.items()},
        "iou": {name: s["iou"] for name, s in scores.items()},
        "by_structure": scores,
        "by_series": {key: _scores(counts[key]) for key in SERIES_KEYS},
    }
    if detailed:
        for label, name in LABEL_MAP.items():
            inter, pred, true = (int(v) for v in total[label])
            s = overlap_scores(OverlapCounts(tp=inter, fp=pred - inter, fn=true - inter))
            scores[name].update({
                "precision": s.precision_score, "recall": s.recall_score, "f1": s.f1_score,
                "hd95_mm": float(np.mean(hd95[label])) if hd95[label] else None,
            })
        report["miou"] = mean_iou_score([s["iou"] for s in scores.values()])
        report["measurements"] = {m: _agreement(pairs[m]) for m in MEASUREMENTS}
        report["measurements_of_true_masks"] = {m: _agreement(floor[m]) for m in MEASUREMENTS}
        report["by_case"] = per_case
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report


def format_table(report: dict[str, Any]) -> str:
    def f(v: float | None, w: int, d: int = 4) -> str:
        return f"{'n/a':>{w}}" if v is None else f"{v:>{w}.{d}f}"

    detailed = "miou" in report
    lines = [
        f"model {report['model_version']}  cases {report['cases']}  "
        f"seeds {report['seeds'][0]}..{report['seeds'][-1]}",
        f"{'structure':<26}{'dice':>8}{'iou':>8}{'dice sag':>10}{'dice ax':>9}"
        + (f"{'prec':>8}{'recall':>8}{'hd95 mm':>9}" if detailed else ""),
    ]
    for name in LABEL_MAP.values():
        sag = report["by_series"]["sagittal_t2"][name]["dice"]
        ax = report["by_series"]["axial_t2"][name]["dice"]
        s = report["by_structure"][name]
        lines.append(
            f"{name:<26}{report['dice'][name]:>8.4f}{report['iou'][name]:>8.4f}"
            f"{sag:>10.4f}{ax:>9.4f}"
            + (f"{f(s['precision'], 8)}{f(s['recall'], 8)}{f(s['hd95_mm'], 9, 2)}" if detailed else "")
        )
    if detailed:
        lines.append(f"mIoU {report['miou']:.4f}")
        lines.append(f"{'measurement':<26}{'n':>4}{'miss':>5}{'MAE':>8}{'r':>8}{'bias':>8}"
                     f"{'LoA low':>9}{'LoA up':>9}{'MAE true mask':>15}")
        for m, a in report["measurements"].items():
            fl = report["measurements_of_true_masks"][m]
            lines.append(
                f"{m:<26}{a['n']:>4}{a['missing']:>5}{f(a.get('mae'), 8, 2)}"
                f"{f(a.get('pearson_r'), 8, 3)}{f(a.get('bias'), 8, 2)}"
                f"{f(a.get('loa_lower'), 9, 2)}{f(a.get('loa_upper'), 9, 2)}"
                f"{f(fl.get('mae'), 15, 2)}"
            )
    return "\n".join(lines)
