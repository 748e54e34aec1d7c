"""End-to-end grading on fresh phantom patients (`python -m ml evaluate-grader`).

Per patient (ml.grading.train.grading_spec: uniform grade per level), the axial mid-plane
slices are segmented, the grader grades each level on a patch centred on the *segmented*
canal, and the grades are compared with the truth (the grade of the analytic DSCA). Beside
it, the grade that follows from the segmented DSCA (dural-sac area x pixel area, same
cut-offs) is scored too: the measurement route the web side takes. A grader with the
sedimentation-sign task is scored on the sign as well (truth: the spec's sign of the level).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ml.evaluation.measurements import area_mm2
from ml.grading.patches import grade_from_dsca
from ml.grading.train import SIGN_NAMES, SIGN_TASK, grading_spec, score_grades
from ml.inference.api import Segmenter
from ml.labels import DURAL_SAC
from ml.phantom import AXIAL, render_phantom


def evaluate_grader(segmenter: Segmenter, seeds: Iterable[int]) -> dict[str, Any]:
    if segmenter.grader is None:
        raise ValueError("the segmenter has no grader attached")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one phantom seed")
    start = time.perf_counter()
    true, by_grader, by_dsca = [], [], []
    true_sign, by_sign = [], []
    ungraded = 0
    for seed in seeds:
        spec, grades = grading_spec(seed)
        series = render_phantom(spec).series[AXIAL]
        levels = {lv: k for k, lv in enumerate(series.slice_levels) if lv is not None}
        result = segmenter.segment(series.image, series.geometry.spacing_mm, level_slices=levels)
        for level, k in levels.items():
            if level not in result.grades:
                ungraded += 1
                continue
            true.append(grades[level])
            by_grader.append(result.grades[level].grade)
            if SIGN_TASK in result.grades[level].tasks:
                true_sign.append(int(spec.sedimentation_sign_by_level[level]))
                by_sign.append(result.grades[level].tasks[SIGN_TASK].index)
            by_dsca.append(grade_from_dsca(
                area_mm2(result.labels[k], DURAL_SAC, series.geometry.pixel_spacing_mm)))
    return {
        "seeds": [seeds[0], seeds[-1]],
        "cases": len(seeds),
        "model_version": segmenter.model_version,
        "grader_version": segmenter.grader.version,
        "levels_ungraded": ungraded,
        "grader": score_grades(true, by_grader),
        "segmented_dsca": score_grades(true, by_dsca),
        **({SIGN_TASK: score_grades(true_sign, by_sign, SIGN_NAMES)} if by_sign else {}),
        "seconds": round(time.perf_counter() - start, 2),
    }


def format_grader_table(report: dict[str, Any]) -> str:
    lines = [
        f"segmenter {report['model_version']}  grader {report['grader_version']}  "
        f"{report['cases']} patients, {report['grader']['n']} levels graded, "
        f"{report['levels_ungraded']} without a segmented canal",
        f"{'route':<16}{'accuracy':>10}{'within 1':>10}{'kappa_w':>9}",
    ]
    for route in ("grader", "segmented_dsca"):
        r = report[route]
        kappa = r["linear_weighted_kappa"]
        lines.append(f"{route:<16}{r['accuracy']:>10.3f}{r['within_one_grade'] or 0:>10.3f}"
                     f"{'n/a' if kappa is None else f'{kappa:.3f}':>9}")
    lines.append("confusion (rows true, columns predicted; normal, mild, moderate, severe):")
    lines += ["  " + " ".join(f"{v:>4}" for v in row)
              for row in report["grader"]["confusion_true_by_predicted"]]
    if SIGN_TASK in report:
        sign = report[SIGN_TASK]
        lines.append(f"sedimentation sign: accuracy {sign['accuracy']:.3f}, kappa "
                     f"{'n/a' if sign['linear_weighted_kappa'] is None else format(sign['linear_weighted_kappa'], '.3f')}"
                     f" on {sign['n']} levels; confusion (rows true absent, present):")
        lines += ["  " + " ".join(f"{v:>4}" for v in row) for row in sign["confusion_true_by_predicted"]]
    return "\n".join(lines)



