"""Agreement statistics between readers (and between readers and AI): pure numpy/scipy.

* categorical grades on a protocol's fixed category list: percent agreement, Cohen's kappa
  (unweighted, linear, quadratic, custom), Fleiss' kappa, Krippendorff's alpha, Gwet's AC1/AC2,
  confusion matrices, per-class precision/recall/F1 against a reference;
* continuous measurements: ICC (six forms), Bland-Altman, Pearson, Spearman, Lin's CCC, MAE, TOST;
* masks: Dice, IoU, HD95, ASSD, volume difference (mm, spacing (z, y, x));
* confidence intervals for any of them by patient-clustered bootstrap.

Every function validates its input (a clear ValueError) and returns a frozen dataclass or a float.
No framework imports: see STYLE.md.
"""

from spinereview.agreement.bootstrap import (
    BootstrapMethod,
    BootstrapResult,
    VectorizedStatistic,
    cluster_bootstrap_ci,
    cohen_kappa_statistic,
    icc_statistic,
    mean_statistic,
)
from spinereview.agreement.classification import ClassificationResult, ClassScores, classification_scores
from spinereview.agreement.continuous import (
    AbsoluteErrorResult,
    BlandAltmanResult,
    ConcordanceResult,
    CorrelationResult,
    LoaCiMethod,
    TostResult,
    bland_altman,
    concordance_correlation_score,
    mean_absolute_error,
    pearson_correlation_score,
    spearman_correlation_score,
    tost_paired_equivalence,
)
from spinereview.agreement.icc import ICC_FORMS, IccAnova, ICCResult, icc_all_forms, icc_anova, icc_score
from spinereview.agreement.kappa import (
    KappaResult,
    KappaWeights,
    cohen_kappa_score,
    confusion_matrix,
    disagreement_weights,
    percent_agreement_score,
)
from spinereview.agreement.krippendorff import KrippendorffAlphaResult, KrippendorffLevel, krippendorff_alpha_score
from spinereview.agreement.multirater import (
    FleissKappaResult,
    GwetACResult,
    category_counts,
    fleiss_kappa_counts_score,
    fleiss_kappa_score,
    gwet_ac_score,
)
from spinereview.agreement.overlap import (
    OverlapResult,
    dice_per_label,
    dice_score,
    iou_score,
    mask_overlap,
)
from spinereview.agreement.surface import (
    SurfaceDistanceResult,
    VolumeDifferenceResult,
    assd_error,
    hd95_error,
    surface_distances,
    volume_difference,
)

__all__ = [
    "ICC_FORMS",
    "AbsoluteErrorResult",
    "BlandAltmanResult",
    "BootstrapMethod",
    "BootstrapResult",
    "ClassScores",
    "ClassificationResult",
    "ConcordanceResult",
    "CorrelationResult",
    "FleissKappaResult",
    "GwetACResult",
    "ICCResult",
    "IccAnova",
    "KappaResult",
    "KappaWeights",
    "KrippendorffAlphaResult",
    "KrippendorffLevel",
    "LoaCiMethod",
    "OverlapResult",
    "SurfaceDistanceResult",
    "TostResult",
    "VectorizedStatistic",
    "VolumeDifferenceResult",
    "assd_error",
    "bland_altman",
    "category_counts",
    "classification_scores",
    "cluster_bootstrap_ci",
    "cohen_kappa_score",
    "cohen_kappa_statistic",
    "concordance_correlation_score",
    "confusion_matrix",
    "dice_per_label",
    "dice_score",
    "disagreement_weights",
    "fleiss_kappa_counts_score",
    "fleiss_kappa_score",
    "gwet_ac_score",
    "hd95_error",
    "icc_all_forms",
    "icc_anova",
    "icc_score",
    "icc_statistic",
    "iou_score",
    "krippendorff_alpha_score",
    "mask_overlap",
    "mean_absolute_error",
    "mean_statistic",
    "pearson_correlation_score",
    "percent_agreement_score",
    "spearman_correlation_score",
    "surface_distances",
    "tost_paired_equivalence",
    "volume_difference",
]
