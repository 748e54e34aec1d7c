"""2-D slice training on phantom cases generated in memory (`python -m ml train`).

One model for sagittal and axial slices. Loss = soft cross-entropy + soft Dice (foreground
classes, pooled over the batch). On sagittal slices the left and right paraspinal muscles look
alike (the slice does not show which side it is on), so there the two muscle classes are
merged (their probabilities summed) in both loss terms; the sides are learnt from axial slices,
and at inference assigned from the geometry when the caller passes it.

Reproducible: a seed fixes the case seeds, the batch order, the augmentation and the weights'
initialisation (on CPU, with the same thread count). Mixed precision only on CUDA.
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

from ml.calibration import phantom_calibration
from ml.checkpoint import FORMAT, write_checkpoint
from ml.evaluation import HELDOUT_SEED_BASE, evaluate_segmenter
from ml.inference.api import Segmenter
from ml.labels import LABEL_MAP, NUM_CLASSES, PARASPINAL_MUSCLE_LEFT, PARASPINAL_MUSCLE_RIGHT
from ml.models.registry import build_model, channels_last
from ml.preprocessing import Preprocessing
from ml.training.data import Augmentation, SlicePool, add_case, make_batch

MAX_CASES = 1000
"""Training case seeds are 1000 * seed + i (i < cases), all below HELDOUT_SEED_BASE."""
PHANTOM_DATA = "ml.phantom, phantom_spec_random(seed), rendered in memory"


@dataclass(frozen=True)
class TrainConfig:
    preset: str
    seed: int = 0
    cases: int = 40
    iterations: int = 600
    batch_size: int = 12
    canvas: int = 96
    focus_probability: float = 0.6
    time_budget_s: float | None = None
    lr: float = 3e-3
    weight_decay: float = 1e-4
    architecture: str = "unet"
    encoder: str = "resnet18"
    encoder_depth: int | None = 5
    decoder_channels: tuple[int, ...] | None = (64, 32, 16, 16, 8)
    target_spacing_mm: float = 1.25
    heldout_cases: int = 3
    calibration_cases: int = 3
    """Phantom cases (not trained on, not the held-out ones) for the size calibration (ml.calibration); 0: none."""
    randomise_acquisition: bool = True
    threads: int = 2
    name: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if not 0 <= self.seed < HELDOUT_SEED_BASE // MAX_CASES:
            raise ValueError(f"seed must be in [0, {HELDOUT_SEED_BASE // MAX_CASES})")
        if not 1 <= self.cases <= MAX_CASES:
            raise ValueError(f"cases must be in [1, {MAX_CASES}]")
        if self.iterations < 1 or self.batch_size < 1 or self.heldout_cases < 0:
            raise ValueError("iterations and batch_size must be >= 1, heldout_cases >= 0")
        if not 0 <= self.calibration_cases <= MAX_CASES - self.heldout_cases:
            raise ValueError(f"calibration_cases must be in [0, {MAX_CASES} - heldout_cases]")
        if self.canvas % 32:
            raise ValueError("canvas must be a multiple of 32")

    @property
    def model_name(self) -> str:
        return self.name or f"phantom-{self.preset}-{self.architecture}"


PRESETS: dict[str, TrainConfig] = {
    # Presets stop after a fixed number of iterations, never on a clock: the same seed gives the
    # same model on a busy machine too (it only takes longer). Times below are on 2 idle cores.
    # <= 60 s on 2 CPU cores: a small but clearly working model, for tests and CI
    "test": TrainConfig(
        preset="test", cases=4, iterations=300, batch_size=16, heldout_cases=1, calibration_cases=1,
        encoder="tu-mobilenetv3_small_100", lr=5e-3,
    ),
    # <= 4 min on 2 CPU cores: the demo model (Dice >= 0.9 on the main structures). The wider
    # decoder costs 1.4x per step but scored better than 1500 steps of the narrow one at equal
    # time (canal 0.87 vs 0.82, dural sac 0.96 vs 0.93-0.95 on the held-out seeds)
    "demo": TrainConfig(
        preset="demo", cases=20, iterations=1300, batch_size=16, heldout_cases=3,
        encoder="tu-mobilenetv3_small_100", decoder_channels=(64, 48, 32, 24, 16), lr=5e-3,
    ),
}


def calibration_seeds(training_seed: int, cases: int) -> list[int]:
    """Phantom seeds for calibrating a model trained with `training_seed`: from the top of that
    seed's block above HELDOUT_SEED_BASE, whose bottom holds the held-out scoring cases, so the two
    never overlap (TrainConfig keeps heldout_cases + calibration_cases <= MAX_CASES)."""
    return [HELDOUT_SEED_BASE + MAX_CASES * training_seed + MAX_CASES - 1 - i for i in range(cases)]


def dice_ce_loss(
    logits: torch.Tensor, targets: torch.Tensor, sagittal: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """Soft cross-entropy + (1 - mean soft Dice over foreground classes); muscle sides merged
    on sagittal samples (see module doc)."""
    lm, rm = PARASPINAL_MUSCLE_LEFT, PARASPINAL_MUSCLE_RIGHT
    assert (lm, rm) == (NUM_CLASSES - 2, NUM_CLASSES - 1)
    lp = F.log_softmax(logits.float(), dim=1)
    ce_full = -(targets * lp).sum(dim=1)
    lp_merged = torch.cat([lp[:, :lm], torch.logsumexp(lp[:, lm:], dim=1, keepdim=True)], 1)
    t_merged = torch.cat([targets[:, :lm], targets[:, lm:].sum(dim=1, keepdim=True)], 1)
    ce_merged = -(t_merged * lp_merged).sum(dim=1)
    ce = torch.where(sagittal[:, None, None], ce_merged, ce_full).mean()

    p = lp.exp()
    dims = (0, 2, 3)
    p_m, t_m = p[:, lm:].sum(1, keepdim=True), targets[:, lm:].sum(1, keepdim=True)
    probs = torch.cat([p[:, 1:lm], p_m], 1)
    truth = torch.cat([targets[:, 1:lm], t_m], 1)
    inter = (probs * truth).sum(dims)
    dice = (2 * inter + smooth) / (probs.sum(dims) + truth.sum(dims) + smooth)
    axial = ~sagittal
    if axial.any():
        pa, ta = p[axial][:, lm:], targets[axial][:, lm:]
        inter_s = (pa * ta).sum(dims)
        dice_s = (2 * inter_s + smooth) / (pa.sum(dims) + ta.sum(dims) + smooth)
        dice = torch.cat([dice, dice_s])
    return ce + (1.0 - dice.mean())


def learning_rate(peak: float, progress: float, warmup: float = 0.1) -> float:
    """Linear warm-up to `peak` over the first 10 % of training, then cosine decay to 1 %."""
    if progress < warmup:
        return peak * (0.05 + 0.95 * progress / warmup)
    t = (progress - warmup) / (1.0 - warmup)
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0))))


def training_progress(it: int, iterations: int, started_s: float, time_budget_s: float | None) -> tuple[float, str]:
    """Fraction of training done, and what ends it. Progress drives the learning rate; it is
    it/iterations unless the time budget runs out first (a busy machine), in which case the schedule
    is compressed to fit. Training stops when progress reaches 1."""
    progress = it / iterations
    if time_budget_s is not None:
        elapsed = (time.perf_counter() - started_s) / time_budget_s
        if elapsed > progress:
            return elapsed, "time budget"
    return progress, "iterations"


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def train(
    cfg: TrainConfig, out_dir: str | os.PathLike[str], *, overwrite: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Train, score on held-out phantom seeds, write the checkpoint folder; returns metrics."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    rng = np.random.default_rng([cfg.seed, 0x7A1])
    prep = Preprocessing(target_spacing_mm=cfg.target_spacing_mm)

    case_seeds = [MAX_CASES * cfg.seed + i for i in range(cfg.cases)]
    pool = SlicePool()
    for s in case_seeds:
        add_case(pool, s, prep, randomise_acquisition=cfg.randomise_acquisition)
    t_data = time.perf_counter() - t0
    log(f"data: {cfg.cases} cases, {len(pool)} slices in {t_data:.1f} s")

    model = build_model(
        cfg.architecture, in_channels=1, classes=NUM_CLASSES, encoder=cfg.encoder,
        encoder_depth=cfg.encoder_depth, decoder_channels=cfg.decoder_channels,
    )
    model = channels_last(model, device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    aug = Augmentation()
    model.train()
    t_train = time.perf_counter()
    running = 0.0
    it = 0
    stopped_by = "iterations"
    while True:
        progress, stopped_by = training_progress(it, cfg.iterations, t_train, cfg.time_budget_s)
        if progress >= 1.0:
            break
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(cfg.lr, progress)
        idx = rng.integers(0, len(pool), cfg.batch_size).tolist()
        images, targets, sagittal = make_batch(
            pool, idx, cfg.canvas, rng, aug, focus_probability=cfg.focus_probability
        )
        images = images.to(device, memory_format=torch.channels_last)
        targets, sagittal = targets.to(device), sagittal.to(device)
        with torch.autocast("cuda", enabled=use_amp):
            logits = model(images)
        loss = dice_ce_loss(logits, targets, sagittal)
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        value = float(loss.detach())
        running = 0.9 * running + 0.1 * value if it else value
        it += 1
        if it % 50 == 0:
            log(f"iter {it}/{cfg.iterations} loss {running:.4f} "
                f"({time.perf_counter() - t_train:.0f} s)")
    train_seconds = time.perf_counter() - t_train
    model.eval()

    config: dict[str, Any] = {
        "format": FORMAT,
        "name": cfg.model_name,
        "architecture": cfg.architecture,
        "encoder": cfg.encoder,
        "encoder_depth": cfg.encoder_depth,
        "decoder_channels": list(cfg.decoder_channels) if cfg.decoder_channels else None,
        "in_channels": 1,
        "classes": NUM_CLASSES,
        "label_map": {str(k): v for k, v in LABEL_MAP.items()},
        "preprocessing": prep.to_dict(),
        "input": "one 2-D slice (sagittal or axial), any pixel size; see ml.preprocessing",
        "muscle_sides": (
            "learnt on axial slices (image right = patient left); on sagittal slices "
            "assigned from geometry when axis_directions is given to segment()"
        ),
        "preset": cfg.preset,
        "seed": cfg.seed,
        "training": {
            **{k: (list(v) if isinstance(v, tuple) else v)
               for k, v in dataclasses.asdict(cfg).items()},
            "data": PHANTOM_DATA,
            "case_seeds": case_seeds,
            "cases": len(case_seeds),
            "slices": len(pool),
            **pool.counts,
            "loss": "soft cross-entropy + soft Dice; muscle sides merged on sagittal slices",
            "optimiser": f"AdamW, peak lr {cfg.lr}, warm-up then cosine (ml.training.train)",
            "torch": torch.__version__,
        },
    }
    metrics = _calibrate_and_score(
        model, config, device, seed=cfg.seed, calibration_cases=cfg.calibration_cases,
        heldout_cases=cfg.heldout_cases, randomise_acquisition=cfg.randomise_acquisition, log=log,
    )
    metrics.update(
        {
            "preset": cfg.preset,
            "data_seconds": round(t_data, 1),
            "training_seconds": round(train_seconds, 1),
            "total_seconds": round(time.perf_counter() - t0, 1),
            "iterations": it,
            "iterations_planned": cfg.iterations,
            "stopped_by": stopped_by,
            "final_loss": round(running, 4),
            "samples_seen": it * cfg.batch_size,
            "device": device,
            "threads": cfg.threads,
        }
    )
    version = write_checkpoint(model, config, metrics, out, overwrite=overwrite)
    metrics["model_version"] = version
    metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    return metrics


def _calibrate_and_score(
    model: torch.nn.Module, config: dict[str, Any], device: str, *, seed: int, calibration_cases: int,
    heldout_cases: int, randomise_acquisition: bool, log: Any,
) -> dict[str, Any]:
    """Fit the size calibration into `config` (when calibration_cases > 0), then score the model
    on the held-out seeds; returns the metrics (held-out report, Dice, IoU)."""
    name = f"{config['name']}@unsaved"
    if calibration_cases:
        seeds = calibration_seeds(seed, calibration_cases)
        fit = phantom_calibration(
            Segmenter(model, {k: v for k, v in config.items() if k != "calibration"}, name, device),
            seeds, randomise_acquisition=randomise_acquisition,
        )
        config["calibration"] = fit.to_config(cases=seeds, label_map=LABEL_MAP)
        log(f"calibration on {len(seeds)} cases: logit offsets {config['calibration']['logit_offsets']}")
    metrics: dict[str, Any] = {}
    heldout = [HELDOUT_SEED_BASE + MAX_CASES * seed + i for i in range(heldout_cases)]
    if heldout:
        report = evaluate_segmenter(Segmenter(model, config, name, device), heldout)
        metrics["heldout"] = {k: v for k, v in report.items() if k != "model_version"}
        metrics["dice"] = report["dice"]
        metrics["iou"] = report["iou"]
    return metrics


def calibrate_checkpoint(
    model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, cases: int = 3,
    overwrite: bool = False, device: str = "auto", log: Any = print,
) -> dict[str, Any]:
    """Copy a phantom-trained checkpoint to `out_dir` with a (new) size calibration fitted on
    `cases` phantom cases of its own calibration seeds, its held-out scores redone with it; the
    copy is a new model version. Returns its metrics. ValueError for a folder that is not a
    phantom-trained checkpoint or for an existing `out_dir` without `overwrite`."""
    import json

    from ml.checkpoint import METRICS, load_model

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it")
    if not 1 <= cases <= MAX_CASES:
        raise ValueError(f"cases must be in [1, {MAX_CASES}]")
    resolved = _device(device)
    model, config, _ = load_model(Path(model_dir), resolved)
    training = config.get("training")
    if not isinstance(training, dict) or training.get("data") != PHANTOM_DATA or not isinstance(config.get("seed"), int):
        raise ValueError(f"{model_dir} was not trained on the phantom: only phantom models are calibrated here")
    heldout_cases = int(training.get("heldout_cases", 0))
    if cases > MAX_CASES - heldout_cases:
        raise ValueError(f"at most {MAX_CASES - heldout_cases} calibration cases beside {heldout_cases} held-out ones")
    config = {k: v for k, v in config.items() if k != "calibration"}
    try:
        old_metrics = json.loads((Path(model_dir) / METRICS).read_text())
    except (OSError, ValueError):
        old_metrics = {}
    started = time.perf_counter()
    metrics = {k: v for k, v in (old_metrics if isinstance(old_metrics, dict) else {}).items()
               if k not in ("heldout", "dice", "iou", "model_version")}
    metrics |= _calibrate_and_score(
        model, config, resolved, seed=int(config["seed"]), calibration_cases=cases, heldout_cases=heldout_cases,
        randomise_acquisition=bool(training.get("randomise_acquisition", True)), log=log,
    )
    metrics["calibration_seconds"] = round(time.perf_counter() - started, 1)
    version = write_checkpoint(model, config, metrics, out, overwrite=overwrite)
    metrics["model_version"] = version
    return metrics
