"""Training slices from phantom cases rendered on the fly (no files).

Each case gives its sagittal and axial slices, preprocessed exactly as at inference
(ml.preprocessing) and paired with *soft* targets: the one-hot labels resampled with the same
bilinear filter as the image, so a target pixel holds the fraction of each structure inside it
and the network learns sub-pixel boundaries. Targets are kept as uint8 (fraction x 255).

Batches place slices on a fixed square canvas (random position: translation), then apply a
random small rotation and zoom (image and targets through the same grid: label-safe), an
intensity scale/shift/gamma, and for axial slices a left-right mirror that also swaps the
left/right muscle labels (after mirroring, image right is still the patient's left). Sagittal
slices are never mirrored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ml.labels import (
    DURAL_SAC,
    INTERVERTEBRAL_DISC,
    NUM_CLASSES,
    PARASPINAL_MUSCLE_LEFT,
    PARASPINAL_MUSCLE_RIGHT,
    SPINAL_CANAL,
    VERTEBRAL_BODY,
)
from ml.phantom import AXIAL, SAGITTAL, PhantomSpec, phantom_spec_random, render_phantom
from ml.preprocessing import Preprocessing, prepare_slices, resample

SPINE_LABELS = [VERTEBRAL_BODY, INTERVERTEBRAL_DISC, SPINAL_CANAL, DURAL_SAC]
FOCUS_POINTS = 256


@dataclass
class SlicePool:
    images: list[torch.Tensor] = field(default_factory=list)
    """Each (1, h, w) float16, normalised and resampled."""
    targets: list[torch.Tensor] = field(default_factory=list)
    """Each (NUM_CLASSES, h, w) uint8: structure fraction x 255."""
    sagittal: list[bool] = field(default_factory=list)
    """Sagittal slices cannot tell the left from the right muscle: trained side-agnostic."""
    focus: list[torch.Tensor] = field(default_factory=list)
    """Each (n, 2) int16 (row, column): pixels of the spine (labels 1-4) to centre crops on."""
    case_seeds: list[int] = field(default_factory=list)
    labelled: list[torch.Tensor] = field(default_factory=list)
    """Volume datasets only: each (K,) bool, the classes annotated in the slice's case
    (background always); empty for the phantom, where everything is annotated."""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def counts(self) -> dict[str, int]:
        n_sag = sum(self.sagittal)
        return {"sagittal_slices": n_sag, "axial_slices": len(self) - n_sag}


def case_spec(seed: int, *, randomise_acquisition: bool) -> PhantomSpec:
    """The random phantom for `seed`, optionally with a random pixel size and thickness."""
    spec = phantom_spec_random(seed)
    if not randomise_acquisition:
        return spec
    rng = np.random.default_rng([0xACC, seed])
    return dataclasses.replace(
        spec,
        sagittal_pixel_mm=round(float(rng.uniform(0.7, 1.2)), 4),
        axial_pixel_mm=round(float(rng.uniform(0.6, 1.0)), 4),
        sagittal_thickness_mm=round(float(rng.uniform(3.0, 4.0)), 2),
        axial_thickness_mm=round(float(rng.uniform(3.0, 4.0)), 2),
    )


def add_case(pool: SlicePool, seed: int, prep: Preprocessing, *, randomise_acquisition: bool) -> None:
    rendering = render_phantom(case_spec(seed, randomise_acquisition=randomise_acquisition))
    for key in (SAGITTAL, AXIAL):
        series = rendering.series[key]
        spacing = series.geometry.pixel_spacing_mm
        x = prepare_slices(torch.from_numpy(series.image.astype(np.float32)), spacing, prep)
        onehot = F.one_hot(torch.from_numpy(series.labels).long(), NUM_CLASSES)
        soft = resample(onehot.permute(0, 3, 1, 2).float(), (x.shape[-2], x.shape[-1]))
        soft_u8 = (soft.clamp(0, 1) * 255).round().to(torch.uint8)
        spine = soft[:, SPINE_LABELS].sum(dim=1) > 0.5
        for k in range(x.shape[0]):
            pool.images.append(x[k].to(torch.float16))
            pool.targets.append(soft_u8[k])
            pool.sagittal.append(key == SAGITTAL)
            points = torch.nonzero(spine[k]).to(torch.int16)
            if len(points) > FOCUS_POINTS:
                step = len(points) // FOCUS_POINTS + 1
                points = points[::step]
            pool.focus.append(points)
    pool.case_seeds.append(seed)


@dataclass(frozen=True)
class Augmentation:
    rotation_deg: float = 6.0
    zoom: float = 0.1
    intensity_scale: float = 0.15
    intensity_shift: float = 0.05
    gamma: float = 0.25
    mirror_axial: bool = True


def make_batch(
    pool: SlicePool,
    indices: list[int],
    canvas: int,
    rng: np.random.Generator,
    aug: Augmentation | None,
    *,
    focus_probability: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images (B, 1, C, C) float32, soft targets (B, K, C, C) float32, sagittal (B,) bool).

    Each slice is cut to a C x C window (zero/background outside the slice) centred, with
    probability `focus_probability`, near a random spine pixel, otherwise anywhere.
    """
    b = len(indices)
    classes = int(pool.targets[indices[0]].shape[0]) if indices else NUM_CLASSES
    images = torch.zeros((b, 1, canvas, canvas))
    targets = torch.zeros((b, classes, canvas, canvas))
    targets[:, 0] = 1.0
    for n, i in enumerate(indices):
        img = pool.images[i]
        tgt = pool.targets[i]
        h, w = img.shape[-2:]
        focus = pool.focus[i] if pool.focus else torch.zeros((0, 2))
        if len(focus) and rng.random() < focus_probability:
            cy, cx = (int(v) for v in focus[int(rng.integers(len(focus)))])
            cy += int(rng.integers(-canvas // 4, canvas // 4 + 1))
            cx += int(rng.integers(-canvas // 4, canvas // 4 + 1))
        else:
            # the window inside the slice, or the slice inside the window
            lo_y, hi_y = sorted((canvas // 2, h - canvas // 2))
            lo_x, hi_x = sorted((canvas // 2, w - canvas // 2))
            cy = int(rng.integers(lo_y, hi_y + 1))
            cx = int(rng.integers(lo_x, hi_x + 1))
        y0, x0 = cy - canvas // 2, cx - canvas // 2  # window origin in slice pixels
        sy, sx = max(0, y0), max(0, x0)
        ey, ex = min(h, y0 + canvas), min(w, x0 + canvas)
        if ey <= sy or ex <= sx:
            continue
        images[n, :, sy - y0 : ey - y0, sx - x0 : ex - x0] = img[:, sy:ey, sx:ex].float()
        targets[n, :, sy - y0 : ey - y0, sx - x0 : ex - x0] = tgt[:, sy:ey, sx:ex].float() / 255.0
    sagittal = torch.tensor([pool.sagittal[i] for i in indices])
    if aug is None:
        return images, targets, sagittal

    if aug.mirror_axial:
        flip = torch.from_numpy(rng.random(b) < 0.5) & ~sagittal
        if flip.any():
            images[flip] = images[flip].flip(-1)
            t = targets[flip].flip(-1)
            swapped = t.clone()
            if classes > PARASPINAL_MUSCLE_RIGHT:
                swapped[:, PARASPINAL_MUSCLE_LEFT] = t[:, PARASPINAL_MUSCLE_RIGHT]
                swapped[:, PARASPINAL_MUSCLE_RIGHT] = t[:, PARASPINAL_MUSCLE_LEFT]
            targets[flip] = swapped

    angle = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg, b))
    scale = np.exp(rng.uniform(-aug.zoom, aug.zoom, b))
    theta = np.zeros((b, 2, 3))
    theta[:, 0, 0] = np.cos(angle) * scale
    theta[:, 0, 1] = -np.sin(angle) * scale
    theta[:, 1, 0] = np.sin(angle) * scale
    theta[:, 1, 1] = np.cos(angle) * scale
    grid = F.affine_grid(
        torch.from_numpy(theta).float(), [b, 1, canvas, canvas], align_corners=False
    )
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    targets = F.grid_sample(targets, grid, mode="bilinear", align_corners=False)
    # outside the source canvas is background
    targets[:, 0] += (1.0 - targets.sum(dim=1)).clamp_min(0.0)

    s = torch.from_numpy(np.exp(rng.uniform(-aug.intensity_scale, aug.intensity_scale, b))).float()
    g = torch.from_numpy(np.exp(rng.uniform(-aug.gamma, aug.gamma, b))).float()
    o = torch.from_numpy(rng.uniform(-aug.intensity_shift, aug.intensity_shift, b)).float()
    images = images.clamp_min(0.0) ** g[:, None, None, None] * s[:, None, None, None]
    images = images + o[:, None, None, None]
    return images, targets, sagittal
