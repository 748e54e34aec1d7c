"""Time the study-level agreement report on a synthetic reader study.

Presets:
  brief  500 patients x 5 levels x 6 conditions x 4 readers, 1 measurement, 2000 resamples
  issue  1000 patients x 5 levels x 5 conditions x 8 readers, 3 measurements, 1000 resamples
         (the issue's target: the full report in <= 5 s on 2 cores)

Per condition: Cohen's kappa (unweighted and quadratic) for every reader pair, Fleiss' kappa,
Krippendorff's alpha (ordinal), Gwet's AC2; per measurement: the six ICC forms and Bland-Altman
for every reader pair; then a patient-clustered bootstrap of quadratic kappa for every reader pair
and condition (levels pooled, patients as clusters) and of ICC(A,1) for every measurement.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/agreement_bench.py [--preset brief|issue]
(single-threaded BLAS: on a shared 2-core machine the bootstrap's small matrix products are ~3x
slower when BLAS threads compete with other processes; a worker runs one report per process.)
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from spinereview.agreement import (
    bland_altman,
    cluster_bootstrap_ci,
    cohen_kappa_score,
    cohen_kappa_statistic,
    fleiss_kappa_score,
    gwet_ac_score,
    icc_all_forms,
    icc_statistic,
    krippendorff_alpha_score,
)

GRADES = [0, 1, 2, 3]  # e.g. Lee grades of central canal stenosis


@dataclass(frozen=True)
class Preset:
    patients: int
    levels: int
    conditions: int
    readers: int
    measurements: int
    resamples: int


PRESETS = {
    "brief": Preset(patients=500, levels=5, conditions=6, readers=4, measurements=1, resamples=2000),
    "issue": Preset(patients=1000, levels=5, conditions=5, readers=8, measurements=3, resamples=1000),
}


def synthetic_study(p: Preset, seed: int = 0) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Grades (conditions, patient-levels, readers), measurements (measurements, patient-levels,
    readers) in mm2, and the patient id of each patient-level. Readers disagree by at most one
    grade around a latent truth that is correlated within a patient."""
    rng = np.random.default_rng(seed)
    rows = p.patients * p.levels
    patient_effect = np.repeat(rng.normal(0.0, 0.8, size=p.patients), p.levels)
    latent = patient_effect[None, :] + rng.normal(1.5, 0.8, size=(p.conditions, rows))
    noise = rng.normal(0.0, 0.5, size=(p.conditions, rows, p.readers))
    grades = np.clip(np.rint(latent[:, :, None] + noise), 0, 3).astype(np.int64)
    dsca = 120.0 + 25.0 * patient_effect[None, :, None] + rng.normal(0.0, 20.0, size=(p.measurements, rows, 1))
    measurements = dsca + rng.normal(0.0, 6.0, size=(p.measurements, rows, p.readers)) + rng.normal(0.0, 2.0, size=(1, 1, p.readers))
    return grades, measurements, np.repeat(np.arange(p.patients), p.levels)


def timed(label: str, work: Callable[[], Any], log: list[tuple[str, float]]) -> Any:
    start = time.perf_counter()
    out = work()
    log.append((label, time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="brief")
    args = parser.parse_args()
    p = PRESETS[args.preset]
    grades, measurements, patients = synthetic_study(p)
    pairs = list(itertools.combinations(range(p.readers), 2))
    log: list[tuple[str, float]] = []
    print(
        f"preset {args.preset}: {p.patients} patients x {p.levels} levels x {p.conditions} conditions x {p.readers} readers "
        f"({len(pairs)} pairs), {p.measurements} measurement(s), {p.resamples} resamples"
    )

    def kappas() -> list[float]:
        out = []
        for c, (i, j) in itertools.product(range(p.conditions), pairs):
            out.append(cohen_kappa_score(grades[c, :, i], grades[c, :, j], categories=GRADES).kappa)
            out.append(cohen_kappa_score(grades[c, :, i], grades[c, :, j], categories=GRADES, weights="quadratic").kappa)
        return out

    def per_level_kappas() -> int:
        count = 0
        for c, level, (i, j) in itertools.product(range(p.conditions), range(p.levels), pairs):
            rows = slice(level, None, p.levels)
            cohen_kappa_score(grades[c, rows, i], grades[c, rows, j], categories=GRADES, weights="quadratic")
            count += 1
        return count

    total_start = time.perf_counter()
    k = timed(f"Cohen kappa, unweighted + quadratic, {len(pairs)} pairs x {p.conditions} conditions", kappas, log)
    n_level = timed("Cohen kappa (quadratic) per level x pair x condition", per_level_kappas, log)
    timed(
        f"Fleiss kappa x {p.conditions} conditions",
        lambda: [fleiss_kappa_score(grades[c], categories=GRADES) for c in range(p.conditions)],
        log,
    )
    timed(
        f"Krippendorff alpha (ordinal) x {p.conditions} conditions",
        lambda: [krippendorff_alpha_score(grades[c], level="ordinal", categories=GRADES) for c in range(p.conditions)],
        log,
    )
    timed(
        f"Gwet AC2 (quadratic) x {p.conditions} conditions",
        lambda: [gwet_ac_score(grades[c], categories=GRADES, weights="quadratic") for c in range(p.conditions)],
        log,
    )
    icc = timed(f"ICC, all six forms x {p.measurements} measurement(s)", lambda: [icc_all_forms(m) for m in measurements], log)
    timed(
        f"Bland-Altman (exact CIs) x {len(pairs)} pairs x {p.measurements} measurement(s)",
        lambda: [bland_altman(m[:, i], m[:, j]) for m in measurements for i, j in pairs],
        log,
    )
    kappa_statistic = cohen_kappa_statistic(categories=GRADES, weights="quadratic")
    boot = timed(
        f"clustered bootstrap of quadratic kappa, {p.resamples} resamples x {len(pairs) * p.conditions} (pair, condition)",
        lambda: [
            cluster_bootstrap_ci(
                kappa_statistic, grades[c, :, i], grades[c, :, j], clusters=patients, n_resamples=p.resamples, vectorized=True
            )
            for c in range(p.conditions)
            for i, j in pairs
        ],
        log,
    )
    timed(
        f"clustered bootstrap of ICC(A,1), {p.resamples} resamples x {p.measurements} measurement(s)",
        lambda: [
            cluster_bootstrap_ci(icc_statistic(form="ICC(A,1)"), m, clusters=patients, n_resamples=p.resamples, vectorized=True)
            for m in measurements
        ],
        log,
    )
    one = timed(
        f"one BCa bootstrap of quadratic kappa ({p.resamples} resamples + {p.patients} jackknife)",
        lambda: cluster_bootstrap_ci(
            kappa_statistic,
            grades[0, :, 0],
            grades[0, :, 1],
            clusters=patients,
            n_resamples=p.resamples,
            seed=1,
            method="bca",
            vectorized=True,
        ),
        log,
    )
    total = time.perf_counter() - total_start

    width = max(len(label) for label, _ in log)
    for label, seconds in log:
        print(f"  {label:<{width}}  {seconds * 1000:9.1f} ms")
    print(f"  {'total (full report)':<{width}}  {total * 1000:9.1f} ms")
    print(
        f"sanity: {len(k)} pooled kappas, {n_level} per-level kappas; first quadratic kappa {k[1]:.3f} "
        f"[{boot[0].ci_low:.3f}, {boot[0].ci_high:.3f}] (percentile), BCa [{one.ci_low:.3f}, {one.ci_high:.3f}]; "
        f"ICC(A,1) of measurement 1 {icc[0][1].icc:.3f} [{icc[0][1].ci_low:.3f}, {icc[0][1].ci_high:.3f}]"
    )


if __name__ == "__main__":
    main()
