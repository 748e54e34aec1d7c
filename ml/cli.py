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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.datasets.volumes import VolumeCase

SLICES_PER_CASE = 40
"""A default phantom case has 15 sagittal and 25 axial slices."""


def _load_volume_dataset(
    args: argparse.Namespace,
) -> tuple[list[VolumeCase], list[VolumeCase], dict[str, object]]:
    """(training cases, held-out cases, data summary) for a non-phantom --dataset."""
    from ml.datasets.volumes import patient_split

    seed = args.seed or 0
    if args.dataset == "spine-real":
        from ml.datasets.spine_real import (
            load_spine_real_case,
            manifest_summary,
            spine_real_case_ids,
            spine_real_root,
            spine_real_split,
        )

        ids = spine_real_case_ids(args.data)
        if args.heldout_patients:
            held = sorted(args.heldout_patients.split(","))
            train_ids, test_ids = patient_split(ids, held, seed)
        else:
            train_ids, test_ids = spine_real_split(ids, seed)
        if args.cases is not None:
            train_ids = train_ids[: args.cases]
        summary: dict[str, object] = {
            "dataset": "spine-real", "root": str(spine_real_root(args.data)),
            **manifest_summary(args.data),
            "split_rule": "patient-level, stratified by source study (IVD, VB2, VB3)"
            if not args.heldout_patients else "patient-level, held-out patients given",
        }
        return ([load_spine_real_case(c, args.data) for c in train_ids],
                [load_spine_real_case(c, args.data) for c in test_ids], summary)
    if args.data is None:
        raise ValueError(f"--dataset {args.dataset} needs --data DIR")
    if args.dataset == "volumes":
        from ml.datasets.folders import load_volume_folder

        cases = load_volume_folder(args.data, convention=args.label_convention)
    else:
        from ml.datasets.dicom_seg import load_dicom_seg_folder

        cases = load_dicom_seg_folder(args.data)
    held_arg: int | list[str] = (
        sorted(args.heldout_patients.split(",")) if args.heldout_patients
        and not args.heldout_patients.isdigit() else int(args.heldout_patients or 1)
    )
    train_p, test_p = patient_split([c.patient_id for c in cases], held_arg, seed)
    summary = {"dataset": args.dataset, "root": str(Path(args.data).resolve()),
               "label_convention": args.label_convention, "split_rule": "patient-level"}
    return ([c for c in cases if c.patient_id in train_p],
            [c for c in cases if c.patient_id in test_p], summary)


def _train_volumes(args: argparse.Namespace) -> int:
    from ml.training.volumes import VolumeTrainConfig, train_on_volumes

    if args.calibration_cases is not None:
        raise SystemExit("--calibration-cases applies to the phantom (volume datasets have no spare cases)")

    train_cases, heldout_cases, summary = _load_volume_dataset(args)
    changes: dict[str, object] = {}
    for flag, field in (
        ("seed", "seed"), ("iterations", "iterations"), ("batch_size", "batch_size"),
        ("lr", "lr"), ("arch", "architecture"), ("encoder", "encoder"), ("name", "name"),
        ("threads", "threads"), ("device", "device"), ("target_spacing", "target_spacing_mm"),
        ("time_budget", "time_budget_s"), ("canvas", "canvas"),
    ):
        value = getattr(args, flag)
        if value is not None:
            changes[field] = value
    if args.arch is not None and args.arch != "unet":
        changes.setdefault("decoder_channels", None)
        changes.setdefault("encoder_depth", None)
    cfg = VolumeTrainConfig(dataset=args.dataset, **changes)  # type: ignore[arg-type]
    if args.epochs is not None:
        raise SystemExit("--epochs applies to the phantom; give --iterations")
    metrics = train_on_volumes(cfg, train_cases, heldout_cases, args.out, data_summary=summary,
                               overwrite=args.overwrite)
    print(json.dumps({k: metrics[k] for k in ("model_version", "dice", "total_seconds")
                      if k in metrics}, indent=2))
    if "heldout" in metrics:
        from ml.evaluation.volumes import format_volume_table

        print(format_volume_table({**metrics["heldout"], "model_version": metrics["model_version"]}))
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.dataset != "phantom":
        return _train_volumes(args)
    from ml.training.train import PRESETS, train

    cfg = PRESETS[args.preset]
    changes: dict[str, object] = {}
    for flag, field in (
        ("seed", "seed"), ("cases", "cases"), ("iterations", "iterations"),
        ("batch_size", "batch_size"), ("lr", "lr"), ("arch", "architecture"),
        ("encoder", "encoder"), ("name", "name"), ("heldout_cases", "heldout_cases"),
        ("threads", "threads"), ("device", "device"), ("target_spacing", "target_spacing_mm"),
        ("time_budget", "time_budget_s"), ("calibration_cases", "calibration_cases"),
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
    if args.uncalibrated:
        segmenter = segmenter.without_calibration()
    if args.dataset == "spine-real":
        from ml.checkpoint import read_config
        from ml.datasets.spine_real import load_spine_real_case, spine_real_case_ids
        from ml.evaluation.volumes import evaluate_on_volumes, format_volume_table

        if args.case_ids:
            ids = args.case_ids.split(",")
        else:  # the model card's held-out patients
            held = read_config(Path(args.model)).get("training", {}).get("heldout_cases", [])
            ids = [c["case_id"] for c in held] or spine_real_case_ids(args.data)
        report = evaluate_on_volumes(segmenter, [load_spine_real_case(c, args.data) for c in ids])
        print(format_volume_table(report))
    else:
        seed = EVALUATE_DEFAULT_SEED if args.seed is None else args.seed
        report = evaluate_segmenter(segmenter, range(seed, seed + args.cases), detailed=True)
        print(format_table(report))
    print(f"({report['seconds']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ml.training.train import calibrate_checkpoint

    try:
        metrics = calibrate_checkpoint(args.model, args.out, cases=args.cases, overwrite=args.overwrite, device=args.device)
    except ValueError as exc:
        raise SystemExit(f"calibrate: {exc}") from None
    print(json.dumps({k: metrics[k] for k in ("model_version", "dice", "calibration_seconds") if k in metrics}, indent=2))
    return 0


def _train_grader(args: argparse.Namespace) -> int:
    import shutil

    from ml.checkpoint import read_config
    from ml.grading.train import GraderConfig, train_grader

    if args.into is not None:
        read_config(Path(args.into))  # the segmenter must exist before hours of training
    changes: dict[str, object] = {}
    for flag in ("seed", "cases", "iterations", "batch_size", "lr", "encoder", "name",
                 "heldout_cases", "threads", "device"):
        value = getattr(args, flag)
        if value is not None:
            changes[flag] = value
    if args.time_budget is not None:
        changes["time_budget_s"] = args.time_budget
    cfg = GraderConfig(**changes)  # type: ignore[arg-type]
    metrics = train_grader(cfg, args.out, overwrite=args.overwrite)
    print(json.dumps({k: metrics[k] for k in ("model_version", "heldout", "heldout_tasks", "total_seconds")
                      if k in metrics}, indent=2))
    if args.into is not None:
        from ml.inference.api import GRADER_SUBFOLDER

        target = Path(args.into) / GRADER_SUBFOLDER
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(args.out, target)
        print(f"copied into {target}")
    return 0


def _evaluate_grader(args: argparse.Namespace) -> int:
    from ml.grading.evaluate import evaluate_grader, format_grader_table
    from ml.inference.api import load_segmenter

    segmenter = load_segmenter(args.model, device=args.device, grader_dir=args.grader)
    report = evaluate_grader(segmenter, range(args.seed, args.seed + args.cases))
    print(format_grader_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from ml.inference.api import load_segmenter
    from ml.inference.predict import read_dicom_series

    segmenter = load_segmenter(args.model, device=args.device, grader_dir=args.grader)
    if segmenter.grader is None:
        raise ValueError(f"{args.model} has no grader/ folder; pass --grader DIR")
    levels: dict[str, int] = {}
    for item in args.level_slices.split(","):
        level, _, index = item.partition("=")
        if not index.strip().isdigit():
            raise ValueError(f"--level-slices item {item!r} is not LEVEL=INDEX")
        levels[level.strip()] = int(index)
    series = read_dicom_series(args.dicom)
    result = segmenter.segment(series.volume, series.spacing_mm,
                               axis_directions=series.axis_directions, level_slices=levels)
    out = {
        "model_version": result.model_version, "grader_version": result.grader_version,
        "grades": {lv: {"grade": g.name, "index": g.grade, "slice_index": g.slice_index,
                        "probabilities": dict(zip(g.grades, g.probabilities, strict=True)),
                        **{task: {"value": t.name, "index": t.index,
                                  "probabilities": dict(zip(t.classes, t.probabilities, strict=True))}
                           for task, t in g.tasks.items()}}
                   for lv, g in result.grades.items()},
        "ungraded": sorted(set(levels) - set(result.grades)),
    }
    print(json.dumps(out, indent=2))
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

    t = sub.add_parser("train", help="train a segmentation model")
    t.add_argument("--out", required=True, help="checkpoint folder to create")
    t.add_argument("--dataset", choices=("phantom", "spine-real", "volumes", "dicom-seg"),
                   default="phantom",
                   help="phantom (generated); spine-real (../shared/data/spine-real); volumes "
                        "(--data DIR with images/ and masks/ NIfTI or MHA); dicom-seg (--data "
                        "DIR of DICOM series with DICOM SEG)")
    t.add_argument("--data", help="data folder for spine-real, volumes, dicom-seg")
    t.add_argument("--label-convention", default="spider", choices=("spider", "spinereview"),
                   help="label values of --dataset volumes")
    t.add_argument("--heldout-patients",
                   help="volume datasets: a count, or comma-separated patient ids to hold out")
    t.add_argument("--canvas", type=int, help="volume datasets: training crop, pixels")
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
    t.add_argument("--calibration-cases", type=int,
                   help="phantom cases for the size calibration after training (ml.calibration; "
                        "0: none; default 3, the test preset 1)")
    t.add_argument("--threads", type=int)
    t.add_argument("--device")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    t.set_defaults(func=_train)

    c = sub.add_parser(
        "calibrate",
        help="copy a phantom-trained checkpoint with its size calibration (per-class logit offsets) "
             "refitted on phantom cases it was neither trained nor scored on")
    c.add_argument("--model", required=True, help="checkpoint folder")
    c.add_argument("--out", required=True, help="calibrated checkpoint folder to create")
    c.add_argument("--cases", type=int, default=3, help="calibration cases (default 3)")
    c.add_argument("--device", default="auto")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=_calibrate)

    e = sub.add_parser(
        "evaluate",
        help="Dice, IoU, precision, recall, F1, mIoU, HD95 per structure and DSCA / AP / disc "
             "height errors on fresh phantom cases, or scores on spine-real held-out patients")
    e.add_argument("--model", required=True, help="checkpoint folder")
    e.add_argument("--dataset", choices=("phantom", "spine-real"), default="phantom")
    e.add_argument("--data", help="spine-real folder (default ../shared/data/spine-real)")
    e.add_argument("--case-ids", help="spine-real: comma-separated cases (default: the model "
                                      "card's held-out patients)")
    e.add_argument("--cases", type=int, default=3)
    e.add_argument("--seed", type=int, help="first case seed (default 2000000)")
    e.add_argument("--device", default="auto")
    e.add_argument("--uncalibrated", action="store_true",
                   help="without the checkpoint's size calibration (to see what it changes)")
    e.add_argument("--json", help="also write the full report here")
    e.set_defaults(func=_evaluate)

    gt = sub.add_parser("train-grader", help="train the central canal stenosis grader (phantom)")
    gt.add_argument("--out", required=True, help="grader checkpoint folder to create")
    gt.add_argument("--into", help="also copy it into this segmentation checkpoint as grader/")
    gt.add_argument("--seed", type=int)
    gt.add_argument("--cases", type=int, help="training phantom patients (5 levels each)")
    gt.add_argument("--iterations", type=int)
    gt.add_argument("--batch-size", type=int)
    gt.add_argument("--lr", type=float)
    gt.add_argument("--encoder")
    gt.add_argument("--name")
    gt.add_argument("--heldout-cases", type=int)
    gt.add_argument("--time-budget", type=float, help="seconds; compresses the schedule")
    gt.add_argument("--threads", type=int)
    gt.add_argument("--device")
    gt.add_argument("--overwrite", action="store_true")
    gt.set_defaults(func=_train_grader)

    ge = sub.add_parser("evaluate-grader",
                        help="grade fresh phantom patients end to end (segmenter finds the canal)")
    ge.add_argument("--model", required=True, help="segmentation checkpoint folder")
    ge.add_argument("--grader", help="grader folder (default MODEL/grader)")
    ge.add_argument("--cases", type=int, default=20)
    ge.add_argument("--seed", type=int, default=7_000_000, help="first phantom seed")
    ge.add_argument("--device", default="auto")
    ge.add_argument("--json")
    ge.set_defaults(func=_evaluate_grader)

    gg = sub.add_parser("grade", help="grade the levels of one axial DICOM series")
    gg.add_argument("--model", required=True, help="segmentation checkpoint folder")
    gg.add_argument("--grader", help="grader folder (default MODEL/grader)")
    gg.add_argument("--dicom", required=True, help="folder holding one axial series")
    gg.add_argument("--level-slices", required=True,
                    help="LEVEL=INDEX,... the mid-plane slice (0-based, along the normal) per level")
    gg.add_argument("--device", default="auto")
    gg.set_defaults(func=_grade)

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
