"""Score a segmenter on labelled volumes (real data): per structure, only where annotated.

For every structure, the cases that annotate it (VolumeCase.labelled) are scored: TP/FP/FN
are pooled over those cases' voxels for Dice, IoU, precision, recall and F1 (ml.evaluation.
overlap); HD95 (mm, 3-D with the case's spacing) is computed per case and averaged. A case
that does not annotate a structure says nothing about it, so it is left out of that
structure's scores (a disc-only case cannot show a false-positive vertebra). mIoU is the mean
IoU over the scored structures.

Annotators label a range of levels (spine-real VB3: L1-L5 only, although T12 and S1 are in
the image), so a predicted T12 counts as a false positive there. The `in_extent` scores
therefore also restrict both masks to the rows (z, y: the slice rows, superior-inferior on
sagittal slices) between the first and last row the case annotates for that structure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.datasets.volumes import VolumeCase
from ml.evaluation.overlap import (
    OverlapCounts,
    hd95_error,
    mean_iou_score,
    overlap_counts,
    overlap_scores,
)
from ml.inference.api import Segmenter


def evaluate_on_volumes(segmenter: Segmenter, cases: Sequence[VolumeCase]) -> dict[str, Any]:
    if not cases:
        raise ValueError("need at least one case to evaluate")
    start = time.perf_counter()
    label_map = segmenter.label_map
    counts: dict[int, OverlapCounts] = {}
    counts_extent: dict[int, OverlapCounts] = {}
    hd95: dict[int, list[float]] = {}
    per_case: dict[str, dict[str, dict[str, float | None]]] = {}
    for case in cases:
        result = segmenter.segment(case.image, case.spacing_mm)
        per_case[case.case_id] = {}
        for label in sorted(case.labelled):
            if label not in label_map:
                continue
            p, t = result.labels == label, case.labels == label
            c = overlap_counts(p, t)
            counts[label] = counts.get(label, OverlapCounts(0, 0, 0)) + c
            rows = np.flatnonzero(t.any(axis=(0, 2)))
            if len(rows):
                band = slice(int(rows[0]), int(rows[-1]) + 1)
                ce = overlap_counts(p[:, band], t[:, band])
            else:
                ce = c
            counts_extent[label] = counts_extent.get(label, OverlapCounts(0, 0, 0)) + ce
            hd = hd95_error(p, t, case.spacing_mm)
            if hd is not None:
                hd95.setdefault(label, []).append(hd)
            per_case[case.case_id][label_map[label]] = {
                "dice": overlap_scores(c).dice_score, "hd95_mm": hd,
            }
    by_structure: dict[str, dict[str, Any]] = {}
    for label in sorted(counts):
        s = overlap_scores(counts[label])
        se = overlap_scores(counts_extent[label])
        by_structure[label_map[label]] = {
            "dice_in_extent": se.dice_score,
            "precision_in_extent": se.precision_score,
            "dice": s.dice_score,
            "iou": s.iou_score,
            "precision": s.precision_score,
            "recall": s.recall_score,
            "f1": s.f1_score,
            "hd95_mm": float(np.mean(hd95[label])) if label in hd95 else None,
            "cases": sum(1 for c in cases if label in c.labelled),
            "true_voxels": s.true_voxels,
            "predicted_voxels": s.predicted_voxels,
        }
    return {
        "cases": [c.case_id for c in cases],
        "patients": sorted({c.patient_id for c in cases}),
        "model_version": segmenter.model_version,
        "dice": {k: v["dice"] for k, v in by_structure.items()},
        "iou": {k: v["iou"] for k, v in by_structure.items()},
        "miou": mean_iou_score([v["iou"] for v in by_structure.values()]),
        "by_structure": by_structure,
        "by_case": per_case,
        "seconds": round(time.perf_counter() - start, 2),
    }


def format_volume_table(report: dict[str, Any]) -> str:
    def f(v: float | None, w: int, d: int = 4) -> str:
        return f"{'n/a':>{w}}" if v is None else f"{v:>{w}.{d}f}"

    lines = [
        f"model {report['model_version']}  cases {len(report['cases'])}: {', '.join(report['cases'])}",
        f"{'structure':<22}{'dice':>8}{'iou':>8}{'prec':>8}{'recall':>8}{'hd95 mm':>9}{'cases':>7}"
        f"{'dice in extent':>16}",
    ]
    for name, s in report["by_structure"].items():
        lines.append(
            f"{name:<22}{f(s['dice'], 8)}{f(s['iou'], 8)}{f(s['precision'], 8)}"
            f"{f(s['recall'], 8)}{f(s['hd95_mm'], 9, 2)}{s['cases']:>7}{f(s['dice_in_extent'], 16)}"
        )
    lines.append(f"mIoU {f(report['miou'], 0)}")
    return "\n".join(lines)
