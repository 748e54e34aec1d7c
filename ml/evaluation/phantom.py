"""Score a segmenter on fresh phantom cases: Dice and IoU per structure.

Scores pool the voxels of every case and both series (sagittal and axial) at the series' own
resolution: Dice = 2|P∩T| / (|P| + |T|), IoU = |P∩T| / |P∪T| per label. The paraspinal muscle
sides are scored after geometric side assignment (axis directions from the DICOM geometry),
as the web side is expected to call the segmenter.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from ml.inference.api import Segmenter, axis_directions_from_dicom
from ml.labels import LABEL_MAP
from ml.phantom import render_phantom
from ml.phantom.render import SERIES_KEYS
from ml.training.data import case_spec

HELDOUT_SEED_BASE = 1_000_000
"""Training cases use seeds below this; held-out and evaluation cases at or above it."""
EVALUATE_DEFAULT_SEED = 2_000_000


def _scores(counts: dict[int, np.ndarray]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
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


def evaluate_segmenter(
    segmenter: Segmenter, seeds: Iterable[int], *, randomise_acquisition: bool = False
) -> dict[str, Any]:
    """Render each seed's phantom, segment both series, and score against the truth."""
    start = time.perf_counter()
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one case seed to evaluate")
    zero = {label: np.zeros(3, dtype=np.int64) for label in LABEL_MAP}
    counts = {key: {k: v.copy() for k, v in zero.items()} for key in SERIES_KEYS}
    for seed in seeds:
        rendering = render_phantom(case_spec(seed, randomise_acquisition=randomise_acquisition))
        for key in SERIES_KEYS:
            series = rendering.series[key]
            geom = series.geometry
            axes = axis_directions_from_dicom(
                geom.orientation, geom.positions_mm[0], geom.positions_mm[-1]
            )
            result = segmenter.segment(series.image, geom.spacing_mm, axis_directions=axes)
            for label in LABEL_MAP:
                p = result.labels == label
                t = series.labels == label
                counts[key][label] += (int(np.count_nonzero(p & t)), int(p.sum()), int(t.sum()))
    total = {label: np.sum([counts[key][label] for key in SERIES_KEYS], axis=0) for label in LABEL_MAP}
    scores = _scores(total)
    return {
        "cases": len(seeds),
        "seeds": seeds,
        "model_version": segmenter.model_version,
        "dice": {name: s["dice"] for name, s in scores.items()},
        "iou": {name: s["iou"] for name, s in scores.items()},
        "by_structure": scores,
        "by_series": {key: _scores(counts[key]) for key in SERIES_KEYS},
        "seconds": round(time.perf_counter() - start, 2),
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"model {report['model_version']}  cases {report['cases']}  "
        f"seeds {report['seeds'][0]}..{report['seeds'][-1]}",
        f"{'structure':<26}{'dice':>8}{'iou':>8}{'dice sag':>10}{'dice ax':>9}",
    ]
    for name in LABEL_MAP.values():
        sag = report["by_series"]["sagittal_t2"][name]["dice"]
        ax = report["by_series"]["axial_t2"][name]["dice"]
        lines.append(
            f"{name:<26}{report['dice'][name]:>8.4f}{report['iou'][name]:>8.4f}"
            f"{sag:>10.4f}{ax:>9.4f}"
        )
    return "\n".join(lines)
