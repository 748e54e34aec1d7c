"""Command line: train, evaluate, predict, phantom. Heavy imports happen per subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SLICES_PER_CASE = 40
"""A default phantom case has 15 sagittal and 25 axial slices."""


def _train(args: argparse.Namespace) -> int:
    from ml.training.train import PRESETS, train

    cfg = PRESETS[args.preset]
    changes: dict[str, object] = {}
    for flag, field in (
        ("seed", "seed"), ("cases", "cases"), ("iterations", "iterations"),
        ("batch_size", "batch_size"), ("lr", "lr"), ("arch", "architecture"),
        ("encoder", "encoder"), ("name", "name"), ("heldout_cases", "heldout_cases"),
        ("threads", "threads"), ("device", "device"), ("target_spacing", "target_spacing_mm"),
        ("time_budget", "time_budget_s"),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[field] = value
    if args.arch is not None and args.arch != cfg.architecture:
        changes.setdefault("decoder_channels", None)  # library defaults for another family
        changes.setdefault("encoder_depth", None)
    cfg = dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]
    if args.epochs is not None:
        if args.iterations is not None:
            raise SystemExit("give --epochs or --iterations, not both")
        per_epoch = math.ceil(cfg.cases * SLICES_PER_CASE / cfg.batch_size)
        cfg = dataclasses.replace(cfg, iterations=args.epochs * per_epoch)
    metrics = train(cfg, args.out, overwrite=args.overwrite)
    print(json.dumps({k: metrics[k] for k in ("model_version", "dice", "total_seconds")
                      if k in metrics}, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.evaluation import EVALUATE_DEFAULT_SEED, evaluate_segmenter, format_table
    from ml.inference.api import load_segmenter

    segmenter = load_segmenter(args.model, device=args.device)
    seed = EVALUATE_DEFAULT_SEED if args.seed is None else args.seed
    report = evaluate_segmenter(segmenter, range(seed, seed + args.cases))
    print(format_table(report))
    print(f"({report['seconds']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ml.inference.predict import predict_folder

    version = predict_folder(args.model, args.dicom, args.out, device=args.device)
    print(f"wrote {args.out} ({version})")
    return 0


def _phantom(args: argparse.Namespace) -> int:
    from ml.phantom import phantom_spec_random, write_phantom_case

    out = Path(args.out)
    for i in range(args.cases):
        seed = args.seed + i
        t = time.perf_counter()
        case = write_phantom_case(
            phantom_spec_random(seed), out / f"phantom-{seed:06d}",
            patient_id=f"PHANTOM-{seed:06d}", patient_name=f"Phantom^{seed:06d}",
        )
        print(f"{case.out_dir}  sagittal {case.series_uids['sagittal_t2']}  "
              f"axial {case.series_uids['axial_t2']}  ({time.perf_counter() - t:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a segmentation model on phantom cases")
    t.add_argument("--out", required=True, help="checkpoint folder to create")
    t.add_argument("--preset", choices=("demo", "test"), default="demo")
    t.add_argument("--seed", type=int)
    t.add_argument("--cases", type=int, help="number of training phantom cases")
    t.add_argument("--epochs", type=int, help="passes over the training slices")
    t.add_argument("--iterations", type=int, help="optimiser steps (instead of --epochs)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--arch", help="architecture name (ml.models.registry)")
    t.add_argument("--encoder")
    t.add_argument("--name", help="model name (the part of the version before '@')")
    t.add_argument("--heldout-cases", type=int)
    t.add_argument("--target-spacing", type=float, help="training pixel size, mm")
    t.add_argument("--time-budget", type=float,
                   help="stop training after this many seconds, compressing the learning-rate "
                        "schedule (off by default: a run is then no longer reproducible)")
    t.add_argument("--threads", type=int)
    t.add_argument("--device")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="Dice/IoU per structure on fresh phantom cases")
    e.add_argument("--model", required=True, help="checkpoint folder")
    e.add_argument("--cases", type=int, default=3)
    e.add_argument("--seed", type=int, help="first case seed (default 2000000)")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", help="also write the full report here")
    e.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="segment one DICOM series folder")
    p.add_argument("--model", required=True)
    p.add_argument("--dicom", required=True, help="folder holding one series")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_predict)

    g = sub.add_parser("phantom", help="write phantom cases (DICOM + truth)")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--cases", type=int, default=1)
    g.set_defaults(func=_phantom)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return result
