"""Slice preprocessing shared by training and inference (one definition, so they match).

A 2-D slice (rows = y, columns = x, spacing in mm) is

1. normalised: divided by its own 99.5th intensity percentile (MR intensities have no unit);
2. resampled to a square `target_spacing_mm` grid (bilinear, antialiased when shrinking), so
   the network always sees anatomy at one scale whatever the scanner's pixel size;
3. zero-padded at the bottom/right to a multiple of `pad_multiple` (the encoder's stride).

Predictions go back the same way: crop the padding, resize the logits bilinearly to the
original rows x columns, argmax. The output grid is exactly the input grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

NORMALISATION = "divide each slice by its 99.5th percentile"


@dataclass(frozen=True)
class Preprocessing:
    target_spacing_mm: float = 1.25
    pad_multiple: int = 32
    percentile: float = 99.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"normalisation": NORMALISATION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        try:
            p = cls(
                target_spacing_mm=float(data["target_spacing_mm"]),
                pad_multiple=int(data["pad_multiple"]),
                percentile=float(data["percentile"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"preprocessing config is incomplete or invalid: {exc!r}") from exc
        if not (p.target_spacing_mm > 0 and p.pad_multiple >= 1 and 50 <= p.percentile <= 100):
            raise ValueError(f"preprocessing config out of range: {p}")
        return p

    def resampled_shape(self, shape: tuple[int, int], spacing_yx: tuple[float, float]) -> tuple[int, int]:
        return (
            max(1, round(shape[0] * spacing_yx[0] / self.target_spacing_mm)),
            max(1, round(shape[1] * spacing_yx[1] / self.target_spacing_mm)),
        )


def row_quantile(flat: torch.Tensor, q: float) -> torch.Tensor:
    """torch.quantile(flat, q, dim=1) (linear interpolation), reading only the largest values of each row
    when q is high: a partial sort instead of a full one, 20x faster per slice at q = 0.995 (inference
    spent as long on it as on a fifth of the model's forward pass)."""
    n = flat.shape[1]
    position = q * (n - 1)
    below_index = math.floor(position)
    k = n - below_index  # the k largest values hold the order statistics below_index and below_index + 1
    if k > max(2, n // 8):
        return torch.quantile(flat, q, dim=1)
    top = torch.topk(flat, k, dim=1, largest=True, sorted=True).values  # descending: top[:, k - 1] is the below_index-th
    below = top[:, k - 1]
    above = top[:, k - 2] if k >= 2 else below
    return torch.lerp(below, above, position - below_index)


def normalise(slices: torch.Tensor, percentile: float = 99.5) -> torch.Tensor:
    """(N, H, W) -> float32 (N, H, W), each slice divided by its own percentile."""
    x = slices.to(torch.float32)
    flat = x.reshape(x.shape[0], -1)
    scale = row_quantile(flat, percentile / 100.0) if flat.shape[1] > 1 else flat[:, 0]
    scale = torch.where(scale > 0, scale, flat.abs().amax(dim=1)).clamp_min(1e-6)
    return (x / scale[:, None, None]).clamp(0.0, 4.0)


def resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, *size), bilinear, pixel-centre aligned (align_corners=False)."""
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad (N, C, H, W) at the bottom and right to multiples of `multiple`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph))


def prepare_slices(
    slices: torch.Tensor, spacing_yx: tuple[float, float], prep: Preprocessing
) -> torch.Tensor:
    """(N, H, W) raw slices -> (N, 1, h, w) normalised and resampled (not padded)."""
    x = normalise(slices, prep.percentile)[:, None]
    return resample(x, prep.resampled_shape((x.shape[-2], x.shape[-1]), spacing_yx))
