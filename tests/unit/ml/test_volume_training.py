"""Training on labelled volumes: partial labels, patient split in the model card, reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.datasets.volumes import VolumeCase
from ml.inference.api import load_segmenter
from ml.training.volumes import VolumeTrainConfig, partial_dice_ce_loss, train_on_volumes


def _onehot(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).float()


def test_marginal_loss_ignores_unannotated_structures() -> None:
    """A disc-only case: the network calling a pixel 'vertebra' where the label says 0 is not
    penalised (0 means 'background or vertebra' there); with full labels it is."""
    truth = torch.zeros((1, 8, 8), dtype=torch.long)
    truth[0, 2:4] = 2  # a disc
    predicted = truth.clone()
    predicted[0, 5:8] = 1  # the network also sees a vertebral body
    logits = 30.0 * _onehot(predicted, 3)
    targets = _onehot(truth, 3)
    disc_only = torch.tensor([[True, False, True]])
    full = torch.tensor([[True, True, True]])
    assert float(partial_dice_ce_loss(logits, targets, disc_only)) < 0.05
    assert float(partial_dice_ce_loss(logits, targets, full)) > 1.0
    # a missed disc is penalised either way
    missed = 30.0 * _onehot(torch.zeros_like(truth), 3)
    assert float(partial_dice_ce_loss(missed, targets, disc_only)) > 1.0


def _case(case_id: str, patient: str, labelled: set[int], seed: int) -> VolumeCase:
    rng = np.random.default_rng(seed)
    labels = np.zeros((4, 64, 64), np.uint8)
    image = rng.normal(100, 5, (4, 64, 64)).astype(np.float32)
    for k in (1, 2):
        if k in labelled:
            labels[1:3, 10 * k : 10 * k + 8, 20:40] = k
        image[:, 10 * k : 10 * k + 8, 20:40] += 200 * k  # both structures are in every image
    return VolumeCase(case_id, patient, image, labels, (3.0, 1.0, 1.0), frozenset(labelled))


TINY = VolumeTrainConfig(dataset="unit", iterations=2, batch_size=2, canvas=32, name="tiny-vol",
                         encoder="tu-mobilenetv3_small_100", target_spacing_mm=1.0, threads=1)


def test_train_on_volumes_writes_the_model_card(tmp_path: Path) -> None:
    train = [_case("a1", "A", {1}, 0), _case("b1", "B", {2}, 1)]
    held = [_case("c1", "C", {1, 2}, 2)]
    metrics = train_on_volumes(TINY, train, held, tmp_path / "m", log=lambda _: None,
                               data_summary={"dataset": "unit"})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["label_map"] == {"1": "vertebral_body", "2": "intervertebral_disc"}
    assert config["classes"] == 3
    split = config["training"]["split"]
    assert split["train_patients"] == ["A", "B"] and split["heldout_patients"] == ["C"]
    assert [c["case_id"] for c in config["training"]["train_cases"]] == ["a1", "b1"]
    assert config["training"]["train_cases"][0]["labelled"] == ["vertebral_body"]
    assert config["training"]["data"] == {"dataset": "unit"}
    # 2 annotated slices + up to 3 empty ones on each side, within the 4 slices
    assert config["training"]["train_cases"][0]["slices_used"] == 4
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert set(saved["dice"]) == {"vertebral_body", "intervertebral_disc"}
    assert saved["heldout"]["cases"] == ["c1"] and saved["iterations"] == 2
    assert set(saved["heldout"]["by_structure"]["vertebral_body"]) >= {
        "dice", "iou", "precision", "recall", "f1", "hd95_mm"}
    seg = load_segmenter(tmp_path / "m", device="cpu")
    assert seg.model_version == metrics["model_version"]
    assert seg.segment(held[0].image, held[0].spacing_mm).labels.max() <= 2
    card = (tmp_path / "m" / "model_card.md").read_text()
    assert "Held-out patients: C" in card


def test_a_patient_on_both_sides_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"patients \['A'\] are both"):
        train_on_volumes(TINY, [_case("a1", "A", {1}, 0)], [_case("a2", "A", {1}, 1)],
                         tmp_path / "m", log=lambda _: None)
    assert not (tmp_path / "m").exists()


def _write_nifti(path: Path, array: np.ndarray) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))


def test_cli_trains_on_spine_real_layout_and_evaluates_the_heldout_patients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.cli import main

    data = tmp_path / "spine-real"
    data.mkdir()
    rng = np.random.default_rng(0)
    for case, value in (("IVD_01", 3), ("VB2_01", 9), ("VB3_01", 1)):
        image = rng.integers(0, 255, (40, 40, 6)).astype(np.uint8)  # (S-I, A-P, L-R)
        labels = np.zeros((40, 40, 6), np.uint8)
        labels[10:20, 10:20, 2:4] = value
        _write_nifti(data / f"{case}_image.nii.gz", image)
        _write_nifti(data / f"{case}_labels.nii.gz", labels)
    out = tmp_path / "model"
    code = main(["train", "--dataset", "spine-real", "--data", str(data), "--out", str(out),
                 "--heldout-patients", "VB3_01", "--iterations", "1", "--batch-size", "2",
                 "--canvas", "32", "--target-spacing", "2", "--device", "cpu", "--threads", "1"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["split"]["heldout_patients"] == ["VB3_01"]
    assert config["training"]["split"]["train_patients"] == ["IVD_01", "VB2_01"]
    assert config["training"]["data"]["dataset"] == "spine-real"
    assert config["label_map"] == {"1": "vertebral_body", "2": "intervertebral_disc"}
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--dataset", "spine-real", "--data", str(data),
                 "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "cases 1: VB3_01" in table
    assert "vertebral_body" in table and "intervertebral_disc" not in table
    code = main(["train", "--dataset", "volumes", "--out", str(tmp_path / "x")])
    assert code == 2 and "needs --data DIR" in capsys.readouterr().err


def test_same_seed_same_weights(tmp_path: Path) -> None:
    import dataclasses

    cases = [_case("a1", "A", {1}, 0), _case("b1", "B", {2}, 1)]
    cfg = dataclasses.replace(TINY, iterations=1)
    first = train_on_volumes(cfg, cases, [], tmp_path / "1", log=lambda _: None)
    second = train_on_volumes(cfg, cases, [], tmp_path / "2", log=lambda _: None)
    other = train_on_volumes(dataclasses.replace(cfg, seed=1), cases, [], tmp_path / "3", log=lambda _: None)
    assert first["model_version"] == second["model_version"] != other["model_version"]
