"""`python -m ml` subcommands, run in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml.cli import main
from ml.labels import LABEL_MAP
from ml.preprocessing import Preprocessing, normalise, pad_to_multiple, prepare_slices

Model = tuple[Path, dict[str, Any]]


def test_phantom_then_predict(tiny_model: Model, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phantom", "--out", str(tmp_path / "cases"), "--seed", "41", "--cases", "1"]) == 0
    case = tmp_path / "cases" / "phantom-000041"
    truth = json.loads((case / "truth" / "measurements.json").read_text())
    out = tmp_path / "pred.npz"
    assert main([
        "predict", "--model", str(tiny_model[0]), "--dicom", str(case / "dicom" / "axial_t2"),
        "--out", str(out), "--device", "cpu",
    ]) == 0
    assert tiny_model[1]["model_version"] in capsys.readouterr().out
    with np.load(out) as pred, np.load(case / "truth" / f"{truth['series']['axial_t2']}.npz") as t:
        assert pred["labels"].shape == t["labels"].shape == (25, 256, 256)
        assert pred["labels"].dtype == np.uint8
        # same slice order as the truth: ascending along the normal
        assert pred["sop_instance_uids"].tolist() == t["sop_instance_uids"].tolist()
        assert str(pred["model_version"]) == tiny_model[1]["model_version"]
        assert str(pred["series_instance_uid"]) == truth["series"]["axial_t2"]
        assert json.loads(str(pred["label_map"])) == {str(k): v for k, v in LABEL_MAP.items()}
        assert pred["spacing_mm"].tolist() == [4.0, 0.78125, 0.78125]


def test_predict_refuses_a_folder_without_dicom(tiny_model: Model, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code = main(["predict", "--model", str(tiny_model[0]), "--dicom", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "x.npz"), "--device", "cpu"])
    assert code == 2
    assert "no DICOM images" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_evaluate_prints_a_table(tiny_model: Model, capsys: pytest.CaptureFixture[str],
                                 tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(tiny_model[0]), "--cases", "1", "--seed", "2000007",
                 "--device", "cpu", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    for name in LABEL_MAP.values():
        assert name in out
    assert json.loads(report.read_text())["seeds"] == [2000007]


def test_evaluate_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_rejects_epochs_with_iterations(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not both"):
        main(["train", "--out", str(tmp_path / "m"), "--preset", "test", "--epochs", "1",
              "--iterations", "3"])
    assert not (tmp_path / "m").exists()


def test_train_refuses_existing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    assert main(["train", "--out", str(tmp_path / "m"), "--preset", "test"]) == 2
    assert "exists" in capsys.readouterr().err


def test_preprocessing_shapes_and_normalisation() -> None:
    prep = Preprocessing(target_spacing_mm=1.25)
    slices = torch.zeros((3, 200, 150))
    slices[1] = 7.0  # a constant slice
    slices[2] = torch.linspace(0, 1000, 150)
    x = prepare_slices(slices, (0.625, 2.5), prep)
    assert x.shape == (3, 1, 100, 300)
    assert torch.isfinite(x).all()
    assert float(x[0].abs().max()) == 0.0
    assert torch.allclose(x[1], torch.ones_like(x[1]))
    n = normalise(slices[2:])
    assert float(torch.quantile(n.flatten(), 0.995)) == pytest.approx(1.0, abs=1e-6)
    padded = pad_to_multiple(x, 32)
    assert padded.shape == (3, 1, 128, 320)
    assert torch.equal(padded[..., :100, :300], x)
    assert Preprocessing.from_dict(prep.to_dict()) == prep
