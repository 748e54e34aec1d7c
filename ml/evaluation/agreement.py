"""Agreement of measurements and grades with the ground truth (small, numpy only).

ml may not import spinereview.agreement, so the few statistics the evaluation needs live here.

- MAE = mean |m_i - t_i|.
- Pearson r = cov(m, t) / (sd(m) sd(t)); None with fewer than 2 pairs or a constant series.
- Bland-Altman (Bland & Altman, Lancet 1986;327:307-310): differences d_i = m_i - t_i;
  bias = mean(d); sd = sample SD of d (n - 1); 95 % limits of agreement = bias ± 1.96 sd.
- Cohen's weighted kappa, linear weights w_ij = 1 - |i - j| / (K - 1) (Cohen 1968, Psychol
  Bull 70:213-220): kappa_w = (p_o - p_e) / (1 - p_e) with p_o = Σ w_ij O_ij / n and
  p_e = Σ w_ij r_i c_j / n²; 1.0 when both raters use one and the same category only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LOA_Z = 1.96


@dataclass(frozen=True)
class MeasurementAgreement:
    n: int
    mae_error: float
    pearson_r_score: float | None
    bias: float
    sd_of_differences: float | None
    loa_lower: float | None
    loa_upper: float | None


def _pairs(
    measured: Sequence[float] | NDArray[np.float64], truth: Sequence[float] | NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    m = np.asarray(measured, dtype=float)
    t = np.asarray(truth, dtype=float)
    if m.ndim != 1 or m.shape != t.shape:
        raise ValueError(f"need two 1-D sequences of one length, got {m.shape} and {t.shape}")
    if len(m) == 0:
        raise ValueError("need at least one pair")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(t))):
        raise ValueError("values must be finite")
    return m, t


def pearson_r_score(
    measured: Sequence[float] | NDArray[np.float64], truth: Sequence[float] | NDArray[np.float64]
) -> float | None:
    m, t = _pairs(measured, truth)
    if len(m) < 2 or np.ptp(m) == 0 or np.ptp(t) == 0:
        return None
    dm, dt = m - m.mean(), t - t.mean()
    return float((dm * dt).sum() / np.sqrt((dm * dm).sum() * (dt * dt).sum()))


def measurement_agreement(measured: Sequence[float], truth: Sequence[float]) -> MeasurementAgreement:
    """MAE, Pearson r and Bland-Altman bias / limits of agreement of measured vs true values."""
    m, t = _pairs(measured, truth)
    d = m - t
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if len(d) >= 2 else None
    return MeasurementAgreement(
        n=len(d),
        mae_error=float(np.abs(d).mean()),
        pearson_r_score=pearson_r_score(m, t),
        bias=bias,
        sd_of_differences=sd,
        loa_lower=None if sd is None else bias - LOA_Z * sd,
        loa_upper=None if sd is None else bias + LOA_Z * sd,
    )


def linear_weighted_kappa_score(rater_a: Sequence[int], rater_b: Sequence[int], categories: int) -> float:
    """Cohen's kappa with linear weights over categories 0..categories-1 (module doc)."""
    a = np.asarray(rater_a)
    b = np.asarray(rater_b)
    if a.ndim != 1 or a.shape != b.shape or len(a) == 0:
        raise ValueError("need two non-empty 1-D sequences of one length")
    if categories < 2:
        raise ValueError("need at least 2 categories")
    if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
        raise ValueError("grades must be integers")
    if a.min() < 0 or b.min() < 0 or a.max() >= categories or b.max() >= categories:
        raise ValueError(f"grades must lie in 0..{categories - 1}")
    n = len(a)
    observed = np.zeros((categories, categories))
    np.add.at(observed, (a, b), 1.0)
    i, j = np.indices((categories, categories))
    w = 1.0 - np.abs(i - j) / (categories - 1)
    p_o = float((w * observed).sum() / n)
    expected = np.outer(observed.sum(1), observed.sum(0)) / n
    p_e = float((w * expected).sum() / n)
    if p_e == 1.0:
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)
