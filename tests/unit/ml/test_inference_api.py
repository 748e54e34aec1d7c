"""ml.inference.api: the web side's only entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.inference import api
from ml.inference.api import (
    SegmentationResult,
    _assign_sides,
    axis_directions_from_dicom,
    load_segmenter,
)
from ml.labels import LABEL_MAP
from ml.phantom import AXIAL, phantom_spec_random, render_phantom

Model = tuple[Path, dict[str, Any]]


def test_import_is_cheap() -> None:
    code = (
        "import sys, ml.inference.api; "
        "print(sorted(m for m in ('torch', 'segmentation_models_pytorch', 'django') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def rendering() -> Any:
    return render_phantom(phantom_spec_random(33))


def test_segment_shape_dtype_version(tiny_model: Model, rendering: Any) -> None:
    folder, metrics = tiny_model
    segmenter = load_segmenter(folder, device="cpu")
    assert segmenter.model_version == metrics["model_version"]
    assert segmenter.label_map == LABEL_MAP
    series = rendering.series[AXIAL]
    volume = series.image[:3]
    result = segmenter.segment(volume, series.geometry.spacing_mm)
    assert isinstance(result, SegmentationResult)
    assert result.labels.shape == volume.shape
    assert result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) <= set(range(7))
    assert result.model_version == metrics["model_version"]
    assert result.label_map == LABEL_MAP
    # any numeric dtype and odd sizes; deterministic
    odd = volume[:2, :101, :77].astype(np.int32)
    a = segmenter.segment(odd, (4.0, 0.7, 1.1)).labels
    b = segmenter.segment(odd.astype(np.float64), (4.0, 0.7, 1.1)).labels
    assert a.shape == (2, 101, 77)
    np.testing.assert_array_equal(a, b)


def test_loaded_once_per_process(tiny_model: Model) -> None:
    folder, _ = tiny_model
    assert load_segmenter(folder, device="cpu") is load_segmenter(str(folder), device="cpu")


@pytest.mark.parametrize(
    ("volume", "spacing", "message"),
    [
        (np.zeros((64, 64)), (1.0, 1.0, 1.0), "3-D"),
        (np.zeros((0, 64, 64)), (1.0, 1.0, 1.0), "empty"),
        (np.full((1, 64, 64), np.nan), (1.0, 1.0, 1.0), "NaN"),
        (np.zeros((1, 64, 64), dtype=bool), (1.0, 1.0, 1.0), "dtype"),
        (np.zeros((1, 4, 64)), (1.0, 1.0, 1.0), "too small"),
        ([[[0.0]]], (1.0, 1.0, 1.0), "numpy array"),
        (np.zeros((1, 64, 64)), (1.0, 1.0), "spacing_mm"),
        (np.zeros((1, 64, 64)), (1.0, -1.0, 1.0), "spacing_mm"),
        (np.zeros((1, 64, 64)), "abc", "spacing_mm"),
    ],
)
def test_bad_input_raises(tiny_model: Model, volume: Any, spacing: Any, message: str) -> None:
    segmenter = load_segmenter(tiny_model[0], device="cpu")
    with pytest.raises(ValueError, match=message):
        segmenter.segment(volume, spacing)


def test_bad_axis_directions(tiny_model: Model) -> None:
    segmenter = load_segmenter(tiny_model[0], device="cpu")
    with pytest.raises(ValueError, match="unit vectors"):
        segmenter.segment(np.zeros((1, 64, 64)), (1, 1, 1), axis_directions=((0, 0, 2), (0, 1, 0), (1, 0, 0)))


def _copy(folder: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(folder, dest)
    return dest


def _corrupt_weights(d: Path) -> None:
    (d / "weights.pt").write_bytes(b"not a checkpoint")


def _truncate_weights(d: Path) -> None:
    data = (d / "weights.pt").read_bytes()
    (d / "weights.pt").write_bytes(data[: len(data) // 2])


def _edit_config(**changes: Any) -> Any:
    def edit(d: Path) -> None:
        config = json.loads((d / "config.json").read_text())
        for key, value in changes.items():
            if value is None:
                del config[key]
            else:
                config[key] = value
        (d / "config.json").write_text(json.dumps(config))

    return edit


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "weights.pt").unlink(), "has no weights.pt"),
        (lambda d: (d / "config.json").unlink(), "has no config.json"),
        (lambda d: (d / "config.json").write_text("{oops"), "not valid JSON"),
        (_corrupt_weights, "not a readable torch checkpoint"),
        (_truncate_weights, "not a readable torch checkpoint"),
        (_edit_config(architecture=None), "lacks architecture"),
        (_edit_config(architecture="unet-scse"), "does not match the architecture"),
        (_edit_config(decoder_channels=[8, 8, 8, 8, 8]), "does not match the architecture"),
        (_edit_config(architecture="transunet"), "unknown model 'transunet'"),
        (_edit_config(format="other/2"), "unsupported format"),
        (_edit_config(label_map={"9": "x"}), "label_map"),
        (_edit_config(preprocessing={"target_spacing_mm": -1, "pad_multiple": 32, "percentile": 99}), "preprocessing"),
        (_edit_config(calibration={"logit_offsets": [0.0, 9.0]}), "calibration.logit_offsets"),
    ],
)
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # scse on 16 channels
def test_broken_checkpoint_refused_with_reason(
    tiny_model: Model, tmp_path: Path, damage: Any, message: str
) -> None:
    folder = _copy(tiny_model[0], tmp_path)
    damage(folder)
    with pytest.raises(ValueError, match=message):
        load_segmenter(folder, device="cpu")


def test_missing_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_segmenter(tmp_path / "nope")


def test_bad_device_refused(tiny_model: Model) -> None:
    with pytest.raises(ValueError, match="device"):
        load_segmenter(tiny_model[0], device="tpu")


def test_axis_directions_from_dicom() -> None:
    sag = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    assert axis_directions_from_dicom(sag, (30, 0, 0), (-30, 0, 0)) == (
        (-1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)
    )
    # slices stored the other way round
    assert axis_directions_from_dicom(sag, (-30, 0, 0), (30, 0, 0))[0] == (1.0, 0.0, 0.0)
    # one slice: along the normal
    assert axis_directions_from_dicom((1, 0, 0, 0, 1, 0), (0, 0, 5))[0] == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="6 finite"):
        axis_directions_from_dicom((1, 0, 0), (0, 0, 0))


def _muscles_both_sides() -> np.ndarray:
    labels = np.zeros((3, 10, 20), dtype=np.uint8)
    labels[:, 4:6, 9:11] = 4  # spine in the middle column
    labels[:, 2:8, 2:6] = 5  # both muscles called "left" by the network
    labels[:, 2:8, 14:18] = 5
    return labels


def test_sides_from_geometry_axial() -> None:
    labels = _muscles_both_sides()
    dirs = np.array([(0, 0, 1), (0, 1, 0), (1, 0, 0)], dtype=float)  # columns run along +x
    _assign_sides(labels, (4.0, 1.0, 1.0), dirs)
    assert np.all(labels[:, 2:8, 14:18] == 5)  # patient left = +x = image right
    assert np.all(labels[:, 2:8, 2:6] == 6)
    flipped = _muscles_both_sides()
    dirs[2] = (-1, 0, 0)  # a mirrored acquisition
    _assign_sides(flipped, (4.0, 1.0, 1.0), dirs)
    assert np.all(flipped[:, 2:8, 14:18] == 6)
    assert np.all(flipped[:, 2:8, 2:6] == 5)


def test_sides_from_geometry_sagittal() -> None:
    labels = np.zeros((5, 8, 8), dtype=np.uint8)
    labels[2, 3:5, 3:5] = 2  # the disc sits on the middle slice
    labels[0] = 6
    labels[4] = 6
    dirs = np.array([(-1, 0, 0), (0, 0, -1), (0, 1, 0)], dtype=float)  # slice 0 is leftmost
    _assign_sides(labels, (4.0, 1.0, 1.0), dirs)
    assert np.all(labels[0] == 5) and np.all(labels[4] == 6)


def test_api_module_exports() -> None:
    assert callable(api.load_segmenter)
    assert api.Segmenter.segment.__doc__


def test_checkpoint_describe_matches_the_loaded_model(tiny_model: Model, tmp_path: Path) -> None:
    folder, metrics = tiny_model
    info = api.checkpoint_describe(folder)
    assert info.name == "tiny"
    assert info.model_version == metrics["model_version"] == load_segmenter(folder, device="cpu").model_version
    assert info.label_map == LABEL_MAP
    assert info.metrics["dice"] == metrics["dice"]
    broken = _copy(folder, tmp_path)
    (broken / "config.json").write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        api.checkpoint_describe(broken)
