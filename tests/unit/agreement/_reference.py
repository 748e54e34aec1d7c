"""Loading the published reference tables in ../shared/data/reference-stats/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# <clone>/tests/unit/agreement/this_file -> parents[3] is the clone; shared/ lies beside it.
REFERENCE_STATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "reference-stats"

# Gwet KL (2014) Handbook of Inter-Rater Reliability, 4th ed., p. 120: 12 subjects x 4 raters,
# categories 1..5, None = missing. The same table is Krippendorff's (2011) "Computing
# Krippendorff's alpha-reliability" example (4 observers x 12 units). Published as irrCAC's
# raw_4raters data set (afergadis/irrCAC irrCAC/datasets.py) and in fast-krippendorff's tests.
GWET_4_RATERS: list[list[int | None]] = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, 3, None, None],
]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE_STATS / name).read_text(encoding="utf-8"))
    return data
