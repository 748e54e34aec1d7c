"""ICC: spinereview.agreement against pingouin's intraclass_corr on the same data.

Usage: .venv/bin/python bench/icc_vs_pingouin.py [--subjects 5000] [--raters 8] [--repeats 5]

Prints the six forms from both (they must agree to 1e-9) and the median time of each over
`--repeats` runs; pingouin takes a long-format DataFrame, as its users give it. pingouin is a dev
dependency (installed by ./run test's environment) used only here.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import pingouin as pg

from spinereview.agreement import icc_all_forms

PINGOUIN_ORDER = ["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"]  # pingouin 0.7 row names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=5000)
    parser.add_argument("--raters", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    truth = rng.normal(100.0, 25.0, size=(args.subjects, 1))
    ratings = truth + rng.normal(0.0, 8.0, size=(args.subjects, args.raters)) + rng.normal(0.0, 3.0, size=(1, args.raters))
    frame = pd.DataFrame(
        {
            "subject": np.repeat(np.arange(args.subjects), args.raters),
            "rater": np.tile(np.arange(args.raters), args.subjects),
            "value": ratings.ravel(),
        }
    )

    ours_s, theirs_s = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = icc_all_forms(ratings)
        ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = pg.intraclass_corr(data=frame, targets="subject", raters="rater", ratings="value")
        theirs_s.append(time.perf_counter() - start)
    table = theirs.set_index("Type")
    print(f"data: {args.subjects} subjects x {args.raters} raters; median of {args.repeats} runs")
    print(f"{'form':10} {'spinereview':>14} {'pingouin':>14} {'|diff|':>9}")
    worst = 0.0
    for result, name in zip(ours, PINGOUIN_ORDER, strict=True):
        value = float(table.loc[name, "ICC"])
        worst = max(worst, abs(result.icc - value))
        print(f"{name:10} {result.icc:14.10f} {value:14.10f} {abs(result.icc - value):9.1e}")
    ours_median, theirs_median = statistics.median(ours_s), statistics.median(theirs_s)
    print(f"time, all six forms with F tests and CIs: spinereview {ours_median * 1000:.2f} ms, pingouin {theirs_median * 1000:.2f} ms")
    print(f"speed-up: {theirs_median / ours_median:.1f}x   largest |ICC difference|: {worst:.1e}")
    if worst > 1e-9:
        raise SystemExit("the two disagree beyond 1e-9")


if __name__ == "__main__":
    main()
