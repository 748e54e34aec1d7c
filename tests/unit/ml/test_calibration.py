"""Size calibration: fitted logit offsets, applied by the Segmenter, part of the model version."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml.calibration import BOUND, CalibrationSamples, fit_logit_offsets, offsets_from_config
from ml.checkpoint import model_version
from ml.cli import main as ml_main
from ml.evaluation import HELDOUT_SEED_BASE
from ml.inference.api import load_segmenter
from ml.labels import NUM_CLASSES
from ml.phantom import AXIAL, phantom_spec_random, render_phantom
from ml.training.train import MAX_CASES, calibrate_checkpoint, calibration_seeds

Model = tuple[Path, dict[str, Any]]


def _ramp_samples(shift: float, *, classes: int = 3, noise: float = 0.0) -> CalibrationSamples:
    """One row of 1000 pixels: class 1 where i < 500 (truth), its logit (500 - i) / 100 - shift
    against 0 for the background: the network's class 1 stops `shift` logits early."""
    i = np.arange(1000)
    logits = np.zeros((1, classes, 1, 1000), dtype=np.float32)
    rng = np.random.default_rng(0)
    logits[0, 1, 0] = (500 - i) / 100 - shift + noise * rng.standard_normal(1000)
    logits[0, 2, 0] = -10.0  # class 2: absent from the truth and from the prediction
    truth = (i < 500).astype(np.uint8)[None, None]
    samples = CalibrationSamples(classes)
    samples.add(torch.from_numpy(logits), truth)
    return samples


@pytest.mark.parametrize("shift", [-1.2, -0.3, 0.4, 1.5])
def test_fit_recovers_a_systematic_size_error(shift: float) -> None:
    samples = _ramp_samples(shift)
    fit = fit_logit_offsets(samples, [[1], [2]])
    assert fit.predicted_before[1] == pytest.approx(500 - 100 * shift, abs=1)
    assert fit.offsets[1] == pytest.approx(shift, abs=0.02)
    assert fit.predicted_after[1] == pytest.approx(500, abs=2)
    assert fit.offsets[0] == 0.0 and fit.offsets[2] == 0.0  # background fixed; absent class untouched
    assert fit.true_voxels == [500, 500, 0]
    config = fit.to_config(cases=[7], label_map={1: "one", 2: "two"})
    assert config["case_seeds"] == [7] and config["voxel_ratio_after"]["one"] == pytest.approx(1.0, abs=0.005)
    assert config["voxel_ratio_before"]["two"] is None


def test_offsets_stay_within_the_bound() -> None:
    fit = fit_logit_offsets(_ramp_samples(6.0), [[1]])  # class 1 starts past the ramp's end
    assert fit.offsets[1] == BOUND
    assert fit.predicted_after[1] < 500


def test_only_pixels_an_offset_can_change_are_kept() -> None:
    samples = _ramp_samples(0.0)
    # margin <= 2 * BOUND logits: |500 - i| / 100 <= 4
    assert len(samples.open_pixels) == 801
    assert samples.fixed.tolist() == [99, 100, 0]


def test_a_group_shares_one_offset() -> None:
    i = np.arange(1000)
    logits = np.zeros((1, 3, 1, 1000), dtype=np.float32)
    logits[0, 1, 0] = np.where(i < 500, (500 - i) / 100 - 0.5, -5)
    logits[0, 2, 0] = np.where(i >= 500, (i - 500) / 100 - 0.5, -5)
    truth = np.where(i < 300, 1, np.where(i >= 700, 2, 0)).astype(np.uint8)[None, None]
    samples = CalibrationSamples(3)
    samples.add(torch.from_numpy(logits), truth)
    fit = fit_logit_offsets(samples, [[1, 2]])
    assert fit.offsets[1] == fit.offsets[2]
    assert fit.predicted_after[1] + fit.predicted_after[2] == pytest.approx(600, abs=3)
    assert list(fit.voxel_ratios(fit.predicted_after, {1: "l", 2: "r"})) == ["l+r"]


@pytest.mark.parametrize("groups", [[[0]], [[3]], [[]], [[1], [1, 2]]])
def test_bad_groups_refused(groups: list[list[int]]) -> None:
    with pytest.raises(ValueError, match="groups"):
        fit_logit_offsets(_ramp_samples(0.0), groups)


def test_logits_that_do_not_fit_the_truth_refused() -> None:
    samples = CalibrationSamples(3)
    with pytest.raises(ValueError, match="do not fit"):
        samples.add(torch.zeros((1, 4, 2, 2)), np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="do not fit"):
        samples.add(torch.zeros((1, 3, 2, 2)), np.zeros((1, 2, 3), np.uint8))


@pytest.mark.parametrize(
    "calibration",
    [
        "nope",
        {},
        {"logit_offsets": [0.0] * (NUM_CLASSES - 1)},
        {"logit_offsets": [0.5] + [0.0] * (NUM_CLASSES - 1)},
        {"logit_offsets": [0.0, math.nan] + [0.0] * (NUM_CLASSES - 2)},
        {"logit_offsets": [0.0, BOUND + 1] + [0.0] * (NUM_CLASSES - 2)},
        {"logit_offsets": [0.0, True] + [0.0] * (NUM_CLASSES - 2)},
        {"logit_offsets": [0.0, "1"] + [0.0] * (NUM_CLASSES - 2)},
    ],
)
def test_malformed_calibration_refused(calibration: Any) -> None:
    with pytest.raises(ValueError, match="logit_offsets"):
        offsets_from_config({"calibration": calibration}, NUM_CLASSES)


def test_no_calibration_is_none() -> None:
    assert offsets_from_config({}, NUM_CLASSES) is None


def test_calibration_seeds_are_neither_training_nor_heldout_seeds() -> None:
    seeds = calibration_seeds(2, 3)
    assert seeds == [HELDOUT_SEED_BASE + 2 * MAX_CASES + 999, HELDOUT_SEED_BASE + 2 * MAX_CASES + 998,
                     HELDOUT_SEED_BASE + 2 * MAX_CASES + 997]


def test_trained_model_is_calibrated_and_segments_with_its_offsets(tiny_model: Model) -> None:
    folder, metrics = tiny_model
    config = json.loads((folder / "config.json").read_text())
    calibration = config["calibration"]
    assert calibration["case_seeds"] == calibration_seeds(0, 1)
    offsets = calibration["logit_offsets"]
    assert len(offsets) == NUM_CLASSES and offsets[0] == 0 and any(offsets)
    assert set(calibration["voxel_ratio_after"]) == {
        "vertebral_body", "intervertebral_disc", "spinal_canal", "dural_sac",
        "paraspinal_muscle_left+paraspinal_muscle_right"}
    card = (folder / "model_card.md").read_text()
    assert "## Calibration" in card and "| 4 | dural_sac |" in card

    segmenter = load_segmenter(folder, device="cpu")
    series = render_phantom(phantom_spec_random(5)).series[AXIAL]
    volume, spacing = series.image[:4], series.geometry.spacing_mm
    raw = segmenter.logits(volume, spacing)
    calibrated = segmenter.logits(volume, spacing, calibrated=True)
    assert raw.shape == (4, NUM_CLASSES, *volume.shape[1:])
    delta = (calibrated - raw).mean(dim=(0, 2, 3))
    assert delta.tolist() == pytest.approx(offsets, abs=1e-4)
    labels = segmenter.segment(volume, spacing).labels
    assert np.array_equal(labels, calibrated.argmax(dim=1).numpy())
    uncalibrated = segmenter.without_calibration()
    assert np.array_equal(uncalibrated.segment(volume, spacing).labels, raw.argmax(dim=1).numpy())
    assert uncalibrated.model_version == f"{metrics['model_version']} (uncalibrated)"


def test_offsets_are_part_of_the_model_version(tiny_model: Model, tmp_path: Path) -> None:
    folder, metrics = tiny_model
    config = json.loads((folder / "config.json").read_text())
    assert model_version("tiny", folder / "weights.pt", config) == metrics["model_version"]
    weights_only = model_version("tiny", folder / "weights.pt")
    assert weights_only != metrics["model_version"]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    config["calibration"]["logit_offsets"] = [0.0] * NUM_CLASSES
    (copy / "config.json").write_text(json.dumps(config))
    assert load_segmenter(copy, device="cpu").model_version == weights_only  # all zero: as uncalibrated
    config["calibration"]["logit_offsets"][4] = 0.25
    (copy / "config.json").write_text(json.dumps(config))
    assert load_segmenter(copy, device="cpu").model_version not in (weights_only, metrics["model_version"])


def test_calibrate_checkpoint_writes_a_new_version(tiny_model: Model, tmp_path: Path) -> None:
    folder, metrics = tiny_model
    source = tmp_path / "uncalibrated"  # as a checkpoint written before calibration existed
    shutil.copytree(folder, source)
    config = json.loads((source / "config.json").read_text())
    del config["calibration"]
    (source / "config.json").write_text(json.dumps(config))
    before = load_segmenter(source, device="cpu").model_version
    assert before == model_version("tiny", source / "weights.pt")

    out = tmp_path / "recalibrated"
    again = calibrate_checkpoint(source, out, cases=2, device="cpu", log=lambda _: None)
    config = json.loads((out / "config.json").read_text())
    assert config["calibration"]["case_seeds"] == calibration_seeds(0, 2)
    assert again["model_version"] == load_segmenter(out, device="cpu").model_version != before
    assert again["model_version"] == model_version("tiny", out / "weights.pt", config)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["heldout"]["seeds"] == [HELDOUT_SEED_BASE] and saved["iterations"] == metrics["iterations"]
    assert (out / "weights.pt").read_bytes() == (folder / "weights.pt").read_bytes()
    with pytest.raises(ValueError, match="exists"):
        calibrate_checkpoint(source, out, cases=1, device="cpu", log=lambda _: None)
    with pytest.raises(ValueError, match="cases"):
        calibrate_checkpoint(source, tmp_path / "none", cases=0, device="cpu", log=lambda _: None)
    assert not (tmp_path / "none").exists()


def test_calibrate_refuses_a_model_not_trained_on_the_phantom(tiny_model: Model, tmp_path: Path) -> None:
    copy = tmp_path / "volumes-model"
    shutil.copytree(tiny_model[0], copy)
    config = json.loads((copy / "config.json").read_text())
    config["training"]["data"] = {"dataset": "spine-real"}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="not trained on the phantom"):
        ml_main(["calibrate", "--model", str(copy), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
