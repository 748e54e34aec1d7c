"""Training writes a complete, reloadable, reproducible checkpoint folder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml import checkpoint
from ml.evaluation import HELDOUT_SEED_BASE, evaluate_segmenter
from ml.inference.api import load_segmenter
from ml.labels import LABEL_MAP, NUM_CLASSES
from ml.training.data import Augmentation, SlicePool, make_batch
from ml.training.train import TrainConfig, dice_ce_loss, learning_rate

TrainTiny = Callable[..., dict[str, Any]]


def test_checkpoint_folder_is_complete(tiny_model: tuple[Path, dict[str, Any]]) -> None:
    folder, metrics = tiny_model
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "metrics.json", "model_card.md", "weights.pt"]
    card = (folder / "model_card.md").read_text()
    assert card.startswith("# Model card: tiny\n")
    assert f"- Version: `{metrics['model_version']}`" in card
    assert "| vertebral_body |" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "spinereview-segmentation-checkpoint/1"
    assert config["name"] == "tiny"
    assert config["architecture"] == "unet"
    assert config["encoder"] == "tu-mobilenetv3_small_100"
    assert (config["in_channels"], config["classes"]) == (1, NUM_CLASSES)
    assert config["label_map"] == {str(k): v for k, v in LABEL_MAP.items()}
    assert config["preprocessing"]["target_spacing_mm"] == 1.25
    assert config["preset"] == "unit-test" and config["seed"] == 0
    assert config["training"]["case_seeds"] == [0]
    assert config["training"]["slices"] == 40
    assert config["training"]["sagittal_slices"] == 15
    sha = hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest()
    offsets = json.dumps(config["calibration"]["logit_offsets"])  # calibrated: the offsets are hashed in
    assert metrics["model_version"] == f"tiny@{hashlib.sha256(f'{sha}|logit_offsets:{offsets}'.encode()).hexdigest()[:12]}"
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["model_version"] == metrics["model_version"]
    assert set(saved["dice"]) == set(LABEL_MAP.values())
    assert saved["heldout"]["seeds"] == [HELDOUT_SEED_BASE]
    assert saved["iterations"] == 3 and saved["stopped_by"] == "iterations"
    assert saved["training_seconds"] > 0
    # nothing left beside it
    assert [p.name for p in folder.parent.iterdir()] == ["tiny"]


def test_reloaded_model_scores_exactly_as_in_training(
    tiny_model: tuple[Path, dict[str, Any]],
) -> None:
    folder, metrics = tiny_model
    segmenter = load_segmenter(folder, device="cpu")
    assert segmenter.model_version == metrics["model_version"]
    report = evaluate_segmenter(segmenter, metrics["heldout"]["seeds"])
    assert report["by_structure"] == metrics["heldout"]["by_structure"]


def test_same_seed_same_weights_and_existing_folder_refused(
    tiny_model: tuple[Path, dict[str, Any]], tmp_path: Path, train_tiny: TrainTiny
) -> None:
    folder, metrics = tiny_model
    again = train_tiny(tmp_path / "again", heldout_cases=0)
    assert again["model_version"] == metrics["model_version"]
    before = (tmp_path / "again" / "weights.pt").read_bytes()
    with pytest.raises(ValueError, match="exists"):
        train_tiny(tmp_path / "again")
    assert (tmp_path / "again" / "weights.pt").read_bytes() == before


def test_other_seed_other_weights(
    tiny_model: tuple[Path, dict[str, Any]], tmp_path: Path, train_tiny: TrainTiny
) -> None:
    other = train_tiny(tmp_path / "other", seed=1, heldout_cases=0)
    assert other["model_version"] != tiny_model[1]["model_version"]


def test_interrupted_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_save(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.write_checkpoint(
            torch.nn.Linear(2, 2), {"name": "x"}, {}, tmp_path / "model"
        )
    assert list(tmp_path.iterdir()) == []


def test_learning_rate_schedule() -> None:
    assert learning_rate(1.0, 0.0) == pytest.approx(0.05)
    assert learning_rate(1.0, 0.1) == pytest.approx(1.0)
    assert learning_rate(1.0, 0.55) == pytest.approx(0.505)
    assert learning_rate(1.0, 1.0) == pytest.approx(0.01)


def test_bad_training_config() -> None:
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(preset="x", seed=1000)
    with pytest.raises(ValueError, match="canvas"):
        TrainConfig(preset="x", canvas=100)


def _onehot(labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, NUM_CLASSES).permute(0, 3, 1, 2).float()


def test_loss_merges_muscle_sides_on_sagittal_slices_only() -> None:
    truth = torch.zeros((1, 8, 8), dtype=torch.long)
    truth[0, :, :4] = 6  # right muscle
    truth[0, :, 4:] = 1
    swapped = truth.clone()
    swapped[truth == 6] = 5  # the network calls it the left one
    logits = 30.0 * _onehot(swapped)
    targets = _onehot(truth)
    perfect = dice_ce_loss(30.0 * targets, targets, torch.tensor([False]))
    sagittal = dice_ce_loss(logits, targets, torch.tensor([True]))
    axial = dice_ce_loss(logits, targets, torch.tensor([False]))
    assert float(perfect) < 0.05
    assert float(sagittal) < 0.05
    assert float(axial) > 1.0


def _pool(sagittal: bool) -> SlicePool:
    image = torch.zeros((1, 40, 40), dtype=torch.float16)
    labels = torch.zeros((40, 40), dtype=torch.long)
    labels[10:30, 25:35] = 5  # left muscle on the image's right
    labels[10:30, 5:15] = 6
    labels[10:30, 18:22] = 1
    image[0, labels == 5] = 1.0  # the left one is brighter (fattier) here
    image[0, labels == 6] = 0.5
    targets = (_onehot(labels[None])[0] * 255).to(torch.uint8)
    pool = SlicePool()
    pool.images.append(image)
    pool.targets.append(targets)
    pool.sagittal.append(sagittal)
    pool.focus.append(torch.zeros((0, 2), dtype=torch.int16))
    return pool


@pytest.mark.parametrize("sagittal", [False, True])
def test_mirroring_keeps_the_side_convention(sagittal: bool) -> None:
    """Axial slices may be mirrored (a mirrored patient): the muscle on the image's right must
    then still be labelled left. Sagittal slices are never mirrored."""
    aug = Augmentation(rotation_deg=0.0, zoom=0.0, intensity_scale=0.0, intensity_shift=0.0,
                       gamma=0.0, mirror_axial=True)
    rng = np.random.default_rng(0)
    images, targets, flags = make_batch(_pool(sagittal), [0] * 16, 64, rng, aug)
    assert flags.tolist() == [sagittal] * 16
    cols = torch.arange(64, dtype=torch.float32)
    mirrored = 0
    for img, tgt in zip(images, targets, strict=True):
        left_x = (tgt[5].sum(0) * cols).sum() / tgt[5].sum()
        right_x = (tgt[6].sum(0) * cols).sum() / tgt[6].sum()
        assert left_x > right_x
        bright = img[0] == 1.0
        was_mirrored = bool(tgt[6][bright].min() > 0.99)
        assert was_mirrored or bool(tgt[5][bright].min() > 0.99)
        mirrored += was_mirrored
    if sagittal:
        assert mirrored == 0
    else:
        assert 0 < mirrored < 16
