"""Time the full statistics report of a reader study (spinereview.reports.analysis.report_compute) on a
synthetic study, the way the cpu worker computes it after a read is submitted.

Preset "issue" is the issue's target: 1,000 cases x 8 readers x 5 levels x 5 conditions plus 3
measurements, 1,000 bootstrap resamples: the full report in <= 5 s on 2 cores. Besides the
inputs of agreement_bench.py it includes everything the report holds: per-level and pooled pairwise
kappas (three weightings, pooled ones with clustered bootstrap CIs) for 8 readers and the AI, Fleiss /
Krippendorff / Gwet per level, reader vs reference (kappas with CIs, per-class F1), intra-reader
(washout re-reads of 10% of the cases), pairwise ICC / Bland-Altman / MAE / CCC per measurement,
all-reader ICC with a bootstrap CI, and per-case agreement.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/reports_bench.py [--preset issue|small] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from spinereview.reports.analysis import (
    AI_RATER,
    ConditionSpec,
    GradeObservation,
    ReferenceGrade,
    StudyInputs,
    ValueObservation,
    report_compute,
)


@dataclass(frozen=True)
class Preset:
    cases: int
    readers: int
    levels: int
    conditions: int
    measurements: int
    resamples: int


PRESETS = {
    "issue": Preset(cases=1000, readers=8, levels=5, conditions=5, measurements=3, resamples=1000),
    "small": Preset(cases=100, readers=4, levels=5, conditions=2, measurements=1, resamples=1000),
}


def synthetic_inputs(p: Preset, seed: int = 0) -> StudyInputs:
    """Readers grade a latent truth correlated within a case with +-1 noise; measurements are a case
    effect plus reader bias and noise; the AI grades the first condition; 10% of cases are re-read."""
    rng = np.random.default_rng(seed)
    levels = tuple(f"L{i + 1}-L{i + 2}" for i in range(p.levels))
    categories = ("0", "1", "2", "3")
    conditions = tuple(ConditionSpec(f"c{k}", f"Condition {k}", categories) for k in range(p.conditions))
    readers = [f"reader{r + 1}" for r in range(p.readers)]
    case_effect = rng.normal(0.0, 0.8, size=p.cases)
    latent = case_effect[:, None, None] + rng.normal(1.5, 0.8, size=(p.cases, p.levels, p.conditions))
    truth = np.clip(np.rint(latent), 0, 3).astype(int)
    noisy = np.clip(np.rint(latent[:, :, :, None] + rng.normal(0.0, 0.5, size=(p.cases, p.levels, p.conditions, p.readers))), 0, 3).astype(int)
    grades = []
    for c in range(p.cases):
        case = f"case{c:05d}"
        for lv, level in enumerate(levels):
            for k, condition in enumerate(conditions):
                for r, reader in enumerate(readers):
                    grades.append(GradeObservation(case, reader, "live", "unaided", level, condition.key, categories[noisy[c, lv, k, r]]))
                if c % 10 == 0:
                    grades.append(GradeObservation(case, readers[0], "washout", "unaided", level, condition.key, categories[min(3, noisy[c, lv, k, 0] + (rng.random() < 0.2))]))
    ai = [GradeObservation(f"case{c:05d}", AI_RATER, "live", "", level, "c0", categories[truth[c, lv, 0]]) for c in range(p.cases) for lv, level in enumerate(levels)]
    reference = [ReferenceGrade(f"case{c:05d}", level, condition.key, categories[truth[c, lv, k]], "adjudicated") for c in range(p.cases) for lv, level in enumerate(levels) for k, condition in enumerate(conditions)]
    values = []
    for m in range(p.measurements):
        base = 120.0 + 25.0 * case_effect[:, None] + rng.normal(0.0, 20.0, size=(p.cases, p.levels))
        bias = rng.normal(0.0, 2.0, size=p.readers)
        for c in range(p.cases):
            for lv, level in enumerate(levels):
                for r, reader in enumerate(readers):
                    values.append(ValueObservation(f"case{c:05d}", reader, "live", "unaided", level, f"m{m}.area_mm2", float(base[c, lv] + bias[r] + rng.normal(0.0, 6.0))))
    return StudyInputs(
        levels=levels, conditions=conditions, grades=tuple(grades), values=tuple(values), reference=tuple(reference), ai_grades=tuple(ai),
        n_resamples=p.resamples, seed=1,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="issue")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    p = PRESETS[args.preset]
    start = time.perf_counter()
    inputs = synthetic_inputs(p)
    print(f"preset {args.preset}: {p}; {len(inputs.grades)} grades, {len(inputs.values)} values (built in {time.perf_counter() - start:.1f} s)")
    timings, cpu = [], []
    report: dict = {}  # type: ignore[type-arg]
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        report = report_compute(inputs)
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    size = len(json.dumps(report, allow_nan=False))
    # CPU time is printed beside wall time: on a shared machine the wall time includes waiting for a core.
    print(
        f"report_compute: wall best {min(timings):.2f} s, median {float(np.median(timings)):.2f} s; CPU best {min(cpu):.2f} s "
        f"over {args.repeat} runs (os.getloadavg() {os.getloadavg()[0]:.1f}); JSON {size / 1e6:.1f} MB"
    )
    print({section: len(rows) for section, rows in report.items() if isinstance(rows, list)})
    pooled = next(r for r in report["pairwise"] if r["level"] == "all")
    print(f"sanity: {pooled['rater_a']}-{pooled['rater_b']} quadratic kappa {pooled['kappa']['quadratic']}")


if __name__ == "__main__":
    main()
