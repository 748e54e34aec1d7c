"""2-D slice training on labelled volumes (real data, NIfTI/MHA, DICOM SEG): `python -m ml
train --dataset spine-real|volumes|dicom-seg`.

Same slice pipeline as the phantom training (ml.preprocessing, random crops on a square
canvas, rotation/zoom + intensity scale/shift/gamma augmentation, AdamW with warm-up and
cosine decay, mixed precision on CUDA, seeded), with two differences:

- Output classes are the structures the data annotates, keeping our label values
  (spine-real: 1 vertebral body, 2 disc -> 3 output channels; SPIDER: 1, 2, 3).
- Balanced sampling: slices are drawn uniformly over the groups of cases that annotate the
  same structures (spine-real: disc-only and body-only cases), then uniformly within a group,
  so that a structure annotated in few cases still shapes every batch; in particular, the
  disc-only cases are the only ones that teach where discs are *not*.
- Partial labels, marginal loss (Shi et al., "Marginal loss and exclusion loss for partially
  supervised multi-organ segmentation", Med Image Anal 70:101979, 2021): in a case that does
  not annotate structure k, "0" means "background or k". So the probabilities of background
  and of every unannotated class are summed before the cross-entropy, and the Dice term
  covers, per class, only the samples whose case annotates it. A disc-only case therefore
  never teaches "vertebra = background". A class no case annotates is trained as absent.

Whole patients are held out (the split is written into the model card) and scored with
ml.evaluation.volumes after training.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ml.checkpoint import FORMAT, write_checkpoint
from ml.datasets.volumes import VolumeCase
from ml.evaluation.volumes import evaluate_on_volumes
from ml.inference.api import Segmenter
from ml.labels import LABEL_MAP
from ml.models.registry import build_model, channels_last
from ml.preprocessing import Preprocessing, prepare_slices, resample
from ml.training.data import FOCUS_POINTS, Augmentation, SlicePool, make_batch
from ml.training.train import learning_rate, training_progress


@dataclass(frozen=True)
class VolumeTrainConfig:
    dataset: str
    seed: int = 0
    iterations: int = 2000
    batch_size: int = 8
    canvas: int = 128
    focus_probability: float = 0.7
    time_budget_s: float | None = None
    lr: float = 3e-3
    weight_decay: float = 1e-4
    architecture: str = "unet"
    encoder: str = "tu-mobilenetv3_small_100"
    encoder_depth: int | None = 5
    decoder_channels: tuple[int, ...] | None = (64, 48, 32, 24, 16)
    target_spacing_mm: float = 1.25
    empty_slice_margin: int = 3
    """Slices kept beyond the first/last slice with an annotation (negatives), per side."""
    threads: int = 2
    name: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1 or self.empty_slice_margin < 0:
            raise ValueError("iterations and batch_size must be >= 1, empty_slice_margin >= 0")
        if self.canvas % 32 or self.canvas < 32:
            raise ValueError("canvas must be a positive multiple of 32")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")

    @property
    def model_name(self) -> str:
        return self.name or f"{self.dataset}-{self.architecture}"


def partial_dice_ce_loss(
    logits: torch.Tensor, targets: torch.Tensor, labelled: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """Marginal cross-entropy + (1 - mean soft Dice over annotated foreground classes).

    logits, targets (B, K, H, W); labelled (B, K) bool, column 0 (background) ignored."""
    lp = F.log_softmax(logits.float(), dim=1)
    fg = labelled.clone()
    fg[:, 0] = False
    merged = ~fg  # background and every class this sample does not annotate
    lp_bg = torch.logsumexp(lp.masked_fill(~merged[:, :, None, None], float("-inf")), dim=1)
    fg_maps = fg[:, 1:, None, None].to(lp.dtype)
    ce = -(targets[:, 0] * lp_bg + (targets[:, 1:] * lp[:, 1:] * fg_maps).sum(dim=1)).mean()
    p = lp.exp()[:, 1:] * fg_maps
    t = targets[:, 1:] * fg_maps
    dims = (0, 2, 3)
    dice = (2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    present = fg[:, 1:].any(dim=0)
    if not present.any():
        return ce
    return ce + (1.0 - dice[present].mean())


def output_labels(cases: Sequence[VolumeCase]) -> list[int]:
    """Our label values the model will output: every value some case annotates."""
    labels = sorted(set().union(*(c.labelled for c in cases)))
    if not labels:
        raise ValueError("no case annotates any structure")
    return labels


def add_volume_case(
    pool: SlicePool, case: VolumeCase, prep: Preprocessing, classes: int,
    known_absent: frozenset[int], *, margin: int,
) -> int:
    """Add the slices of `case` that hold annotations (plus `margin` empty ones per side);
    returns how many. Targets are soft (see ml.training.data)."""
    labels = torch.from_numpy(case.labels)
    annotated = torch.nonzero(labels.reshape(labels.shape[0], -1).any(dim=1)).flatten()
    if len(annotated):
        lo = max(0, int(annotated[0]) - margin)
        hi = min(labels.shape[0], int(annotated[-1]) + margin + 1)
    else:
        lo, hi = 0, labels.shape[0]
    mask = torch.zeros(classes, dtype=torch.bool)
    for k in set(case.labelled) | set(known_absent):
        mask[k] = True
    mask[0] = True
    spacing = (case.spacing_mm[1], case.spacing_mm[2])
    for start in range(lo, hi, 16):
        stop = min(hi, start + 16)
        x = prepare_slices(torch.from_numpy(case.image[start:stop]), spacing, prep)
        onehot = F.one_hot(labels[start:stop].long(), classes).permute(0, 3, 1, 2).float()
        soft = resample(onehot, (x.shape[-2], x.shape[-1]))
        soft_u8 = (soft.clamp(0, 1) * 255).round().to(torch.uint8)
        fg = soft[:, 1:].sum(dim=1) > 0.5
        for k in range(x.shape[0]):
            pool.images.append(x[k].to(torch.float16))
            pool.targets.append(soft_u8[k])
            pool.sagittal.append(case.plane == "sagittal")
            points = torch.nonzero(fg[k]).to(torch.int16)
            if len(points) > FOCUS_POINTS:
                points = points[:: len(points) // FOCUS_POINTS + 1]
            pool.focus.append(points)
            pool.labelled.append(mask)
    return hi - lo


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def train_on_volumes(
    cfg: VolumeTrainConfig,
    train_cases: Sequence[VolumeCase],
    heldout_cases: Sequence[VolumeCase],
    out_dir: str | os.PathLike[str],
    *,
    data_summary: dict[str, Any] | None = None,
    overwrite: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Train on `train_cases`, score `heldout_cases`, write the checkpoint folder (model card)."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    if not train_cases:
        raise ValueError("no training cases")
    train_patients = {c.patient_id for c in train_cases}
    leaked = sorted(train_patients & {c.patient_id for c in heldout_cases})
    if leaked:
        raise ValueError(f"patients {leaked} are both in training and held out")
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    rng = np.random.default_rng([cfg.seed, 0x7A2])
    prep = Preprocessing(target_spacing_mm=cfg.target_spacing_mm)
    labels_out = output_labels(train_cases)
    classes = max(labels_out) + 1
    # channels below the largest label that no case annotates are trained as absent
    known_absent = frozenset(k for k in range(1, classes) if k not in labels_out)

    pool = SlicePool()
    slices_by_case: dict[str, int] = {}
    for case in train_cases:
        slices_by_case[case.case_id] = add_volume_case(
            pool, case, prep, classes, known_absent, margin=cfg.empty_slice_margin
        )
    t_data = time.perf_counter() - t0
    log(f"data: {len(train_cases)} cases, {len(pool)} slices in {t_data:.1f} s")
    groups: dict[tuple[bool, ...], list[int]] = {}
    for i, mask in enumerate(pool.labelled):
        groups.setdefault(tuple(mask.tolist()), []).append(i)
    group_list = [groups[k] for k in sorted(groups)]

    model = build_model(
        cfg.architecture, in_channels=1, classes=classes, encoder=cfg.encoder,
        encoder_depth=cfg.encoder_depth, decoder_channels=cfg.decoder_channels,
    )
    model = channels_last(model, device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    aug = Augmentation()
    model.train()
    t_train = time.perf_counter()
    running, it, stopped_by = 0.0, 0, "iterations"
    while True:
        progress, stopped_by = training_progress(it, cfg.iterations, t_train, cfg.time_budget_s)
        if progress >= 1.0:
            break
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(cfg.lr, progress)
        chosen = rng.integers(0, len(group_list), cfg.batch_size)
        idx = [group_list[g][int(rng.integers(len(group_list[g])))] for g in chosen]
        images, targets, _ = make_batch(
            pool, idx, cfg.canvas, rng, aug, focus_probability=cfg.focus_probability
        )
        labelled = torch.stack([pool.labelled[i] for i in idx])
        images = images.to(device, memory_format=torch.channels_last)
        targets, labelled = targets.to(device), labelled.to(device)
        with torch.autocast("cuda", enabled=use_amp):
            logits = model(images)
        loss = partial_dice_ce_loss(logits, targets, labelled)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        value = float(loss.detach())
        running = 0.9 * running + 0.1 * value if it else value
        it += 1
        if it % 50 == 0:
            log(f"iter {it}/{cfg.iterations} loss {running:.4f} ({time.perf_counter() - t_train:.0f} s)")
    train_seconds = time.perf_counter() - t_train
    model.eval()

    def case_entry(c: VolumeCase) -> dict[str, Any]:
        return {
            "case_id": c.case_id, "patient_id": c.patient_id, "shape_zyx": list(c.image.shape),
            "spacing_mm": list(c.spacing_mm), "plane": c.plane,
            "labelled": [LABEL_MAP[k] for k in sorted(c.labelled)],
            "slices_used": slices_by_case.get(c.case_id), "source": c.source,
        }

    config: dict[str, Any] = {
        "format": FORMAT,
        "name": cfg.model_name,
        "architecture": cfg.architecture,
        "encoder": cfg.encoder,
        "encoder_depth": cfg.encoder_depth,
        "decoder_channels": list(cfg.decoder_channels) if cfg.decoder_channels else None,
        "in_channels": 1,
        "classes": classes,
        "label_map": {str(k): LABEL_MAP[k] for k in labels_out},
        "preprocessing": prep.to_dict(),
        "input": f"one 2-D {'/'.join(sorted({c.plane for c in train_cases}))} slice, any pixel size; "
                 "see ml.preprocessing",
        "preset": None,
        "seed": cfg.seed,
        "training": {
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()},
            "data": data_summary or {},
            "split": {
                "rule": "patient-level: whole patients are held out",
                "train_patients": sorted(train_patients),
                "heldout_patients": sorted({c.patient_id for c in heldout_cases}),
            },
            "train_cases": [case_entry(c) for c in train_cases],
            "heldout_cases": [case_entry(c) for c in heldout_cases],
            "slices": len(pool),
            "sampling": f"uniform over {len(group_list)} groups of cases with the same annotated "
                        "structures, then uniform within the group",
            "loss": "marginal soft cross-entropy + soft Dice over annotated classes "
                    "(partial labels; ml.training.volumes)",
            "optimiser": f"AdamW, peak lr {cfg.lr}, warm-up then cosine (ml.training.train)",
            "torch": torch.__version__,
        },
    }
    metrics: dict[str, Any] = {}
    if heldout_cases:
        segmenter = Segmenter(model, config, f"{cfg.model_name}@unsaved", device)
        report = evaluate_on_volumes(segmenter, heldout_cases)
        metrics["heldout"] = {k: v for k, v in report.items() if k != "model_version"}
        metrics["dice"] = report["dice"]
        metrics["iou"] = report["iou"]
    metrics.update({
        "data_seconds": round(t_data, 1),
        "training_seconds": round(train_seconds, 1),
        "iterations": it,
        "iterations_planned": cfg.iterations,
        "stopped_by": stopped_by,
        "final_loss": round(running, 4) if math.isfinite(running) else None,
        "samples_seen": it * cfg.batch_size,
        "device": device,
        "threads": cfg.threads,
        "total_seconds": round(time.perf_counter() - t0, 1),
    })
    version = write_checkpoint(model, config, metrics, out, overwrite=overwrite)
    metrics["model_version"] = version
    return metrics
