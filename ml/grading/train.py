"""Train the central canal stenosis grader on phantom patches (`python -m ml train-grader`), with
the nerve root sedimentation sign as its second task.

Data: phantom patients whose per-level DSCA is drawn so that the four grades are equally
likely (uniform DSCA within each grade's range: severe 25-50, moderate 50-75, mild 75-100,
normal 100-180 mm²; canal size from the DSCA as in ml.phantom.spec), with a random axial pixel
size (0.6-1.0 mm) and slice thickness (3-4 mm). Only the axial slice on each disc mid-plane
is rendered: that is where the truth grade (from the analytic DSCA) holds. The sedimentation sign
is drawn per level independently of the grade (present or absent, equally likely), so the head
learns it from the roots' position in the sac and not from the sac's size. Patches are centred
on the true canal with random jitter (±3 mm), rotation (±10°), left-right mirror and intensity
scale/gamma; at inference they are centred on the segmenter's canal.

Model: an smp encoder with a classification head (ml.models.registry.build_classifier) whose
outputs are the 4 grade logits then the 2 sign logits (ml.grading.inference: tasks); the loss is
the sum of each task's cross-entropy; AdamW with warm-up and cosine decay (ml.training.train.learning_rate); seeded.
Held-out patients (other seeds) are scored per task: accuracy, linear weighted kappa, confusion.
Augmentation never mirrors front to back: that would move dorsal roots ventrally.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from ml.checkpoint import write_checkpoint
from ml.evaluation.agreement import linear_weighted_kappa_score
from ml.grading.inference import GRADER_FORMAT, STENOSIS_TASK
from ml.grading.patches import (
    DSCA_CUTOFFS_MM2,
    GRADE_NAMES,
    PatchSpec,
    canal_centre,
    extract_patches,
    grade_from_dsca,
)
from ml.labels import LEVELS
from ml.models.registry import build_classifier, channels_last
from ml.phantom import AXIAL, PhantomSpec, phantom_spec_random, render_phantom
from ml.training.train import learning_rate, training_progress

GRADE_DSCA_RANGES_MM2 = ((100.0, 180.0), (75.0, 100.0), (50.0, 75.0), (25.0, 50.0))
"""DSCA drawn uniformly in these ranges for grades 0..3 (training and held-out data)."""
SIGN_TASK = "sedimentation_sign"
SIGN_NAMES = ("absent", "present")
GRADER_SEED_BASE = 5_000_000
HELDOUT_GRADER_SEED_BASE = 6_000_000


def grading_spec(seed: int) -> tuple[PhantomSpec, dict[str, int]]:
    """A phantom patient with a uniformly random grade per level and, independently, a sedimentation
    sign present or absent with equal chance (spec.sedimentation_sign_by_level); (spec, grade by level)."""
    sign_rng = np.random.default_rng([0x5161, seed])
    signs = {level: bool(sign_rng.random() < 0.5) for level in LEVELS}
    rng = np.random.default_rng([0x6EAD, seed])
    base = phantom_spec_random(seed)
    dsca, ap, width, grades = {}, {}, {}, {}
    for level in LEVELS:
        grade = int(rng.integers(0, 4))
        lo, hi = GRADE_DSCA_RANGES_MM2[grade]
        value = round(float(rng.uniform(lo, hi)), 2)
        value = min(max(value, lo), math.nextafter(hi, lo) if grade else hi)
        grades[level] = grade_from_dsca(value)
        ratio, aspect = rng.uniform(0.55, 0.75), rng.uniform(1.3, 1.7)
        ap_mm = max(2.0 * math.sqrt(value / ratio / (math.pi * aspect)), 5.5)  # spec: AP >= 5
        # spec limits: AP >= 5 and width >= 8 mm (a severe level's narrow canal is widened, never the sac shrunk)
        dsca[level], ap[level], width[level] = value, round(ap_mm, 2), round(max(ap_mm * aspect, 8.0), 2)
    spec = dataclasses.replace(
        base, sedimentation_sign_by_level=signs, dsca_mm2_by_level=dsca, canal_ap_mm_by_level=ap, canal_width_mm_by_level=width,
        axial_pixel_mm=round(float(rng.uniform(0.6, 1.0)), 4),
        axial_thickness_mm=round(float(rng.uniform(3.0, 4.0)), 2),
        axial_slices_per_level=1, sagittal_matrix=32, sagittal_slices=1,
    )
    return spec, grades


@dataclass(frozen=True)
class LevelSample:
    image: NDArray[np.float32]
    """The axial mid-plane slice (rows, cols), raw signal."""
    labels: NDArray[np.uint8]
    pixel_spacing_mm: tuple[float, float]
    grade: int
    level: str
    seed: int
    sign: int = 0
    """The sedimentation sign: 0 absent, 1 present."""


def grading_samples(seed: int) -> list[LevelSample]:
    """The 5 disc-level samples of one grading phantom."""
    spec, grades = grading_spec(seed)
    series = render_phantom(spec).series[AXIAL]
    return [
        LevelSample(
            image=series.image[k].astype(np.float32), labels=series.labels[k],
            pixel_spacing_mm=series.geometry.pixel_spacing_mm,
            grade=grades[level], level=level, seed=seed, sign=int(spec.sedimentation_sign_by_level[level]),
        )
        for k, level in enumerate(series.slice_levels)
        if level is not None
    ]


@dataclass(frozen=True)
class GraderConfig:
    seed: int = 0
    cases: int = 120
    iterations: int = 600
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    encoder: str = "tu-mobilenetv3_small_100"
    patch_size: int = 96
    patch_spacing_mm: float = 0.5
    heldout_cases: int = 20
    time_budget_s: float | None = None
    threads: int = 2
    name: str = "phantom-stenosis-grader"
    device: str = "auto"

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 1000 or not 1 <= self.cases <= 1000 or not 0 <= self.heldout_cases <= 1000:
            raise ValueError("seed must be in [0, 1000), cases in [1, 1000], heldout_cases in [0, 1000]")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be >= 1")
        if not self.name or "@" in self.name:
            raise ValueError("name must be non-empty without '@'")
        PatchSpec(self.patch_size, self.patch_spacing_mm)


def _stack(samples: list[LevelSample], spec: PatchSpec, rng: np.random.Generator | None) -> torch.Tensor:
    """Patches of samples of possibly different sizes (one extract call per sample)."""
    out = []
    for s in samples:
        centre = canal_centre(s.labels)
        if centre is None:
            raise ValueError(f"phantom {s.seed} {s.level}: no canal in the truth")
        jitter = angle = None
        if rng is not None:
            jitter = rng.uniform(-3.0, 3.0, (1, 2))
            angle = np.deg2rad(rng.uniform(-10.0, 10.0, 1))
        out.append(extract_patches(s.image[None], s.pixel_spacing_mm, [centre], spec,
                                   jitter_mm=jitter, angle_rad=angle))
    return torch.cat(out)


def score_grades(true: list[int], predicted: list[int], names: tuple[str, ...] = GRADE_NAMES) -> dict[str, Any]:
    k = len(names)
    confusion = np.zeros((k, k), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        confusion[t, p] += 1
    return {
        "n": len(true),
        "accuracy": float(np.trace(confusion) / max(1, len(true))),
        "within_one_grade": float(np.mean(np.abs(np.subtract(true, predicted)) <= 1)) if true else None,
        "linear_weighted_kappa": linear_weighted_kappa_score(true, predicted, k) if true else None,
        "confusion_true_by_predicted": confusion.tolist(),
        "grades": list(names),
    }


def train_grader(
    cfg: GraderConfig, out_dir: str | os.PathLike[str], *, overwrite: bool = False, log: Any = print
) -> dict[str, Any]:
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else (
        "cpu" if cfg.device == "auto" else cfg.device)
    rng = np.random.default_rng([cfg.seed, 0x6AD])
    spec = PatchSpec(cfg.patch_size, cfg.patch_spacing_mm)
    seeds = [GRADER_SEED_BASE + 1000 * cfg.seed + i for i in range(cfg.cases)]
    samples = [s for seed in seeds for s in grading_samples(seed)]
    t_data = time.perf_counter() - t0
    log(f"data: {cfg.cases} cases, {len(samples)} levels in {t_data:.1f} s")

    n_grades = len(GRADE_NAMES)
    model = channels_last(build_classifier(encoder=cfg.encoder, classes=n_grades + len(SIGN_NAMES)), device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    model.train()
    t_train = time.perf_counter()
    it, running, stopped_by = 0, 0.0, "iterations"
    while True:
        progress, stopped_by = training_progress(it, cfg.iterations, t_train, cfg.time_budget_s)
        if progress >= 1.0:
            break
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(cfg.lr, progress)
        idx = rng.integers(0, len(samples), cfg.batch_size)
        batch = [samples[i] for i in idx]
        x = _stack(batch, spec, rng)
        flip = torch.from_numpy(rng.random(len(batch)) < 0.5)
        x[flip] = x[flip].flip(-1)
        scale = torch.from_numpy(np.exp(rng.uniform(-0.15, 0.15, len(batch)))).float()
        gamma = torch.from_numpy(np.exp(rng.uniform(-0.25, 0.25, len(batch)))).float()
        x = x.clamp_min(0) ** gamma[:, None, None, None] * scale[:, None, None, None]
        y = torch.tensor([s.grade for s in batch], device=device)
        sign = torch.tensor([s.sign for s in batch], device=device)
        x = x.to(device, memory_format=torch.channels_last)
        with torch.autocast("cuda", enabled=use_amp):
            logits = model(x).float()
        loss = F.cross_entropy(logits[:, :n_grades], y) + F.cross_entropy(logits[:, n_grades:], sign)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        running = 0.9 * running + 0.1 * float(loss.detach()) if it else float(loss.detach())
        it += 1
        if it % 50 == 0:
            log(f"iter {it}/{cfg.iterations} loss {running:.4f} ({time.perf_counter() - t_train:.0f} s)")
    train_seconds = time.perf_counter() - t_train
    model.eval()

    heldout = [HELDOUT_GRADER_SEED_BASE + 1000 * cfg.seed + i for i in range(cfg.heldout_cases)]
    metrics: dict[str, Any] = {}
    if heldout:
        test = [s for seed in heldout for s in grading_samples(seed)]
        with torch.inference_mode():
            logits = model(_stack(test, spec, None).to(device, memory_format=torch.channels_last))
        predicted = logits[:, :n_grades].argmax(1).cpu().tolist()
        metrics["heldout"] = {"seeds": heldout, "centre": "true canal",
                              **score_grades([s.grade for s in test], predicted)}
        signs = logits[:, n_grades:].argmax(1).cpu().tolist()
        metrics["heldout_tasks"] = {SIGN_TASK: {"seeds": heldout, "centre": "true canal",
                                                **score_grades([s.sign for s in test], signs, SIGN_NAMES)}}
    config = {
        "format": GRADER_FORMAT,
        "name": cfg.name,
        "task": "central canal stenosis grade and nerve root sedimentation sign per disc level",
        "architecture": "smp encoder + ClassificationHead (ml.models.registry.build_classifier); "
                        "outputs: the tasks' logits end to end",
        "encoder": cfg.encoder,
        "in_channels": 1,
        "classes": n_grades + len(SIGN_NAMES),
        "grades": list(GRADE_NAMES),
        "tasks": [{"key": STENOSIS_TASK, "classes": list(GRADE_NAMES)},
                  {"key": SIGN_TASK, "classes": list(SIGN_NAMES),
                   "definition": "nerve root sedimentation sign (Barz et al. 2010): present = roots "
                                 "float in the sac instead of lying dorsally"}],
        "dsca_cutoffs_mm2": list(DSCA_CUTOFFS_MM2),
        "patch": spec.to_dict(),
        "input": "axial slice nearest the disc mid-plane, patch centred on the canal "
                 "(spinal canal + dural sac labels); see ml.grading.patches",
        "seed": cfg.seed,
        "training": {
            **dataclasses.asdict(cfg),
            "data": "ml.grading.train.grading_spec(seed): phantom, uniform grade per level",
            "case_seeds": [seeds[0], seeds[-1]],
            "levels": len(samples),
            "grade_counts": np.bincount([s.grade for s in samples], minlength=4).tolist(),
            "sign_counts": np.bincount([s.sign for s in samples], minlength=2).tolist(),
            "torch": torch.__version__,
        },
    }
    metrics.update({
        "data_seconds": round(t_data, 1), "training_seconds": round(train_seconds, 1),
        "iterations": it, "stopped_by": stopped_by, "final_loss": round(running, 4),
        "device": device, "threads": cfg.threads,
        "total_seconds": round(time.perf_counter() - t0, 1),
    })
    version = write_checkpoint(model, config, metrics, out, overwrite=overwrite)
    metrics["model_version"] = version
    return metrics
