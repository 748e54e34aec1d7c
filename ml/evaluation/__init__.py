"""Evaluation: overlap/boundary scores, clinical measurement agreement, phantom and volume runs.

`ml.evaluation.phantom` scores a segmenter on fresh phantom cases (the `evaluate` command);
`ml.evaluation.volumes` on labelled volumes (real data); `overlap`, `agreement` and
`measurements` hold the small metric functions both use.
"""

from ml.evaluation.phantom import (
    EVALUATE_DEFAULT_SEED,
    HELDOUT_SEED_BASE,
    evaluate_segmenter,
    format_table,
)

__all__ = ["EVALUATE_DEFAULT_SEED", "HELDOUT_SEED_BASE", "evaluate_segmenter", "format_table"]
