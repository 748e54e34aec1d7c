"""Agreement statistics between readers (and between readers and AI): pure numpy/scipy.

Kappa for categorical grades on a protocol's fixed category list, percent agreement, and
overlap (Dice, IoU) for segmentations. No framework imports: see STYLE.md.
"""

from spinereview.agreement.kappa import (
    KappaResult,
    KappaWeights,
    cohen_kappa_score,
    confusion_matrix,
    disagreement_weights,
    percent_agreement_score,
)
from spinereview.agreement.overlap import (
    OverlapResult,
    dice_per_label,
    dice_score,
    iou_score,
    mask_overlap,
)

__all__ = [
    "KappaResult",
    "KappaWeights",
    "OverlapResult",
    "cohen_kappa_score",
    "confusion_matrix",
    "dice_per_label",
    "dice_score",
    "disagreement_weights",
    "iou_score",
    "mask_overlap",
    "percent_agreement_score",
]
