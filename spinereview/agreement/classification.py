"""Per-class precision, recall and F1 of a reader (or the AI) against a reference grading."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from spinereview.agreement.kappa import _paired_indices

__all__ = ["ClassScores", "ClassificationResult", "classification_scores"]


@dataclass(frozen=True)
class ClassScores:
    """One category's one-vs-rest scores.

    Attributes:
        category: the category.
        precision: ``TP / (TP + FP)``; ``nan`` when the rater never used the category.
        recall: ``TP / (TP + FN)`` (sensitivity); ``nan`` when the reference never used it.
        f1: ``2 TP / (2 TP + FP + FN)``; ``nan`` when neither used it.
        reference_count: items the reference put in the category (support).
        rater_count: items the rater put in the category.
        true_positives, false_positives, false_negatives: the counts the scores are made of.
    """

    category: Hashable
    precision: float
    recall: float
    f1: float
    reference_count: int
    rater_count: int
    true_positives: int
    false_positives: int
    false_negatives: int


@dataclass(frozen=True)
class ClassificationResult:
    """Per-class scores in category-list order and their macro averages.

    Attributes:
        per_class: one :class:`ClassScores` per category, in the order of ``categories``.
        macro_precision, macro_recall, macro_f1: unweighted means over the classes where the score
            is defined (``nan`` entries skipped); ``nan`` if none is.
        accuracy: proportion of items where rater and reference agree.
        n: number of items.
        macro_classes: the categories that entered ``macro_f1`` (those used by the reference or
            the rater), so a report can say what was averaged.
    """

    per_class: tuple[ClassScores, ...]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    accuracy: float
    n: int
    macro_classes: tuple[Hashable, ...]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def _nan_mean(values: list[float]) -> float:
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def classification_scores(
    reference: Iterable[Hashable],
    rater: Iterable[Hashable],
    *,
    categories: Sequence[Hashable],
) -> ClassificationResult:
    """Precision, recall and F1 per category, and macro-F1, of ``rater`` against ``reference``.

    For category ``c`` (one-vs-rest): ``TP`` items both put in ``c``, ``FP`` items only the rater
    put in ``c``, ``FN`` items only the reference put in ``c``::

        precision = TP / (TP + FP),   recall = TP / (TP + FN),   F1 = 2 TP / (2 TP + FP + FN)
        macro-F1  = mean of F1 over categories used by the reference or the rater

    Variant: a score whose denominator is 0 is undefined (``nan``), not 0 as scikit-learn's
    ``zero_division`` default makes it; a category that neither used has F1 ``nan`` and is left
    out of the macro averages (it carries no information), so the average is over
    ``macro_classes``. A category used by only one side has F1 = 0 and counts.

    The reference may be an adjudicated read, a majority vote, or the AI. Categories are the
    protocol's fixed list; a rating outside it is an error.

    Reference: van Rijsbergen CJ (1979) Information Retrieval, 2nd ed., ch. 7 (F-measure);
    Sokolova M, Lapalme G (2009) Inf Process Manag 45:427-437 (macro averaging). Worked example
    from scikit-learn's ``f1_score`` docstring: reference [0, 1, 2, 0, 1, 2], rater
    [0, 2, 1, 0, 0, 1] gives per-class F1 [0.8, 0, 0] and macro-F1 0.2667.

    Raises:
        ValueError: different lengths, no ratings, or a rating not in ``categories``.
    """
    ref, test, index = _paired_indices(reference, rater, categories)
    k = len(index)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (ref, test), 1)  # rows: reference, columns: rater
    per_class: list[ClassScores] = []
    for i, category in enumerate(index):
        tp = int(confusion[i, i])
        reference_count = int(confusion[i].sum())
        rater_count = int(confusion[:, i].sum())
        fp = rater_count - tp
        fn = reference_count - tp
        per_class.append(
            ClassScores(
                category=category,
                precision=_ratio(tp, rater_count),
                recall=_ratio(tp, reference_count),
                f1=_ratio(2 * tp, 2 * tp + fp + fn),
                reference_count=reference_count,
                rater_count=rater_count,
                true_positives=tp,
                false_positives=fp,
                false_negatives=fn,
            )
        )
    used = [c for c in per_class if c.reference_count or c.rater_count]
    n = int(ref.size)
    return ClassificationResult(
        per_class=tuple(per_class),
        macro_precision=_nan_mean([c.precision for c in used]),
        macro_recall=_nan_mean([c.recall for c in used]),
        macro_f1=_nan_mean([c.f1 for c in used]),
        accuracy=float(np.trace(confusion)) / n,
        n=n,
        macro_classes=tuple(c.category for c in used),
    )
