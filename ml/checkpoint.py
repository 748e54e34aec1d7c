"""Checkpoint folders: everything needed to rebuild a trained model, and nothing else.

    DIR/weights.pt     state_dict (torch.save)
    DIR/config.json    architecture, encoder, channels, label map, preprocessing, provenance
    DIR/metrics.json   held-out scores and timings (informative; not needed to load)
    DIR/model_card.md  the same, for people: model, labels, training data and split, scores

The model version is f"{config['name']}@{sha256(weights.pt)[:12]}": two folders with the same
weights bytes are the same model. A calibrated model (config "calibration": logit offsets, see
ml.calibration) segments differently with the same weights, so its offsets are hashed in too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

FORMAT = "spinereview-segmentation-checkpoint/1"
WEIGHTS = "weights.pt"
CONFIG = "config.json"
METRICS = "metrics.json"
MODEL_CARD = "model_card.md"
REQUIRED_KEYS = ("format", "name", "architecture", "encoder", "in_channels", "classes",
                 "label_map", "preprocessing")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_version(name: str, weights_path: Path, config: dict[str, Any] | None = None) -> str:
    """name@hash of the weights, and of the calibration offsets in `config` when it has any."""
    digest = file_sha256(weights_path)
    calibration = (config or {}).get("calibration")
    offsets = calibration.get("logit_offsets") if isinstance(calibration, dict) else None
    if offsets and any(v != 0 for v in offsets):
        digest = hashlib.sha256(f"{digest}|logit_offsets:{json.dumps(offsets)}".encode()).hexdigest()
    return f"{name}@{digest[:12]}"


def read_config(model_dir: Path) -> dict[str, Any]:
    """Read and validate DIR/config.json; ValueError says what is wrong."""
    if not model_dir.is_dir():
        raise ValueError(f"model folder {model_dir} does not exist or is not a folder")
    for required in (CONFIG, WEIGHTS):
        if not (model_dir / required).is_file():
            raise ValueError(f"model folder {model_dir} has no {required}")
    try:
        config = json.loads((model_dir / CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{model_dir / CONFIG} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{model_dir / CONFIG} must hold a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ValueError(f"{model_dir / CONFIG} lacks {', '.join(missing)}")
    if config["format"] != FORMAT:
        raise ValueError(f"{model_dir / CONFIG}: unsupported format {config['format']!r}")
    label_map = config["label_map"]
    if (
        not isinstance(label_map, dict)
        or not all(str(k).isdigit() and isinstance(v, str) for k, v in label_map.items())
        or not all(0 < int(k) < int(config["classes"]) for k in label_map)
    ):
        raise ValueError(f"{model_dir / CONFIG}: label_map must map 1..classes-1 to names")
    if not isinstance(config["name"], str) or not config["name"] or "@" in config["name"]:
        raise ValueError(f"{model_dir / CONFIG}: name must be a non-empty string without '@'")
    from ml.calibration import offsets_from_config

    try:
        offsets_from_config(config, int(config["classes"]))
    except ValueError as exc:
        raise ValueError(f"{model_dir / CONFIG}: {exc}") from exc
    return config


def build_from_config(config: dict[str, Any]) -> nn.Module:
    from ml.models.registry import build_model

    return build_model(
        config["architecture"],
        in_channels=int(config["in_channels"]),
        classes=int(config["classes"]),
        encoder=config["encoder"],
        encoder_depth=config.get("encoder_depth"),
        decoder_channels=config.get("decoder_channels"),
    )


def load_model(model_dir: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any], str]:
    """(model in eval mode on `device`, config, model version) from a checkpoint folder."""
    import pickle
    import zipfile

    import torch

    config = read_config(model_dir)
    model = build_from_config(config)
    weights = model_dir / WEIGHTS
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, IndexError) as exc:
        raise ValueError(f"{weights} is not a readable torch checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{weights} does not hold a state_dict")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise ValueError(
            f"{weights} does not match the architecture in {CONFIG}: {first_line}"
        ) from exc
    from ml.models.registry import channels_last

    model = channels_last(model, device).eval()
    return model, config, model_version(config["name"], weights, config)


def write_checkpoint(
    model: nn.Module,
    config: dict[str, Any],
    metrics: dict[str, Any],
    out_dir: Path,
    *,
    overwrite: bool = False,
) -> str:
    """Write the folder atomically: build it beside `out_dir`, then rename it into place, so
    an interrupted run never leaves a half checkpoint. Returns the model version."""
    import torch

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ValueError(f"{out_dir} exists; pass overwrite=True (--overwrite) to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS)
        version = model_version(config["name"], tmp / WEIGHTS, config)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        metrics = {**metrics, "model_version": version}
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        (tmp / MODEL_CARD).write_text(model_card(config, metrics))
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            old.rmdir()
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return version


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """A Markdown summary of config.json and metrics.json (they stay the source of truth)."""
    training = config.get("training", {}) if isinstance(config.get("training"), dict) else {}
    lines = [
        f"# Model card: {config.get('name', '?')}",
        "",
        f"- Version: `{metrics.get('model_version', '?')}`",
        f"- Format: {config.get('format', '?')}",
        f"- Architecture: {config.get('architecture', '?')}, encoder {config.get('encoder', '?')} "
        "(random initialisation, no pretrained weights)",
        f"- Input: {config.get('input', '?')}",
    ]
    if "label_map" in config:
        labels = ", ".join(f"{k} = {v}" for k, v in config["label_map"].items())
        lines.append(f"- Labels: 0 = background, {labels}")
    if "grades" in config:
        lines.append(f"- Grades: {', '.join(map(str, config['grades']))}")
    lines += ["", "## Training data", ""]
    data = training.get("data")
    if isinstance(data, dict):
        lines += [f"- {k}: {v}" for k, v in data.items()]
    elif data:
        lines.append(f"- {data}")
    split = training.get("split")
    if isinstance(split, dict):
        lines.append(f"- Split: {split.get('rule', '')}")
        lines.append(f"- Training patients: {', '.join(split.get('train_patients', []))}")
        lines.append(f"- Held-out patients: {', '.join(split.get('heldout_patients', [])) or 'none'}")
    for key in ("cases", "case_seeds", "slices", "levels", "grade_counts", "sampling", "loss",
                "optimiser"):
        if key in training and not isinstance(training[key], dict):
            value = training[key]
            if isinstance(value, list) and len(value) > 12:
                value = f"{value[:3]} ... {value[-1]} ({len(value)})"
            lines.append(f"- {key}: {value}")
    calibration = config.get("calibration")
    if isinstance(calibration, dict):
        offsets = calibration.get("logit_offsets", [])
        names = config.get("label_map", {})
        lines += ["", "## Calibration", "", f"- {calibration.get('method', '')}"]
        if calibration.get("case_seeds"):
            lines.append(f"- Calibration cases: {calibration['case_seeds']}")
        before, after = calibration.get("voxel_ratio_before", {}), calibration.get("voxel_ratio_after", {})
        lines += ["", "| label | structure | logit offset |", "|---|---|---|"]
        lines += [f"| {k} | {name} | {_fmt(offsets[int(k)] if int(k) < len(offsets) else None)} |" for k, name in names.items()]
        lines += ["", "| structure | voxels / true, before | after |", "|---|---|---|"]
        lines += [f"| {name} | {_fmt(before.get(name))} | {_fmt(after.get(name))} |" for name in before]
    lines += ["", "## Held-out scores", ""]
    held = metrics.get("heldout")
    if isinstance(held, dict) and isinstance(held.get("by_structure"), dict):
        lines.append("| structure | Dice | IoU |")
        lines.append("|---|---|---|")
        for name, s in held["by_structure"].items():
            lines.append(f"| {name} | {_fmt(s.get('dice'))} | {_fmt(s.get('iou'))} |")
    elif isinstance(held, dict):
        lines += [f"- {k}: {_fmt(v)}" for k, v in held.items() if not isinstance(v, (list, dict))]
    else:
        lines.append("none")
    lines += ["", "## Run", ""]
    lines += [f"- {k}: {_fmt(metrics[k])}" for k in ("iterations", "stopped_by", "training_seconds",
                                                    "device", "threads") if k in metrics]
    return "\n".join(lines) + "\n"
