"""The model factory: every registered architecture builds and runs; errors name the options."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ml.models import registry
from ml.models.registry import MODEL_REGISTRY, build_model

REQUIRED = {"unet", "unet-scse", "unetplusplus", "manet", "fpn", "deeplabv3plus"}


def test_registry_has_the_required_architectures() -> None:
    assert set(MODEL_REGISTRY) >= REQUIRED


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_every_model_builds_and_runs(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, classes=7).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 7, 64, 64)
    assert torch.isfinite(out).all()


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        build_model("transunet")
    message = str(info.value)
    assert message.startswith("unknown model 'transunet'; valid models: ")
    for name in MODEL_REGISTRY:
        assert name in message


def test_encoder_weights_are_never_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(**kwargs: Any) -> torch.nn.Module:
        seen.update(kwargs)
        return torch.nn.Identity()

    monkeypatch.setitem(MODEL_REGISTRY, "unet", fake)
    build_model("unet", encoder="resnet34", classes=3)
    assert seen == {
        "encoder_name": "resnet34",
        "encoder_weights": None,
        "in_channels": 1,
        "classes": 3,
    }
    assert registry.MODEL_REGISTRY["unet"] is fake


def test_small_decoder_options() -> None:
    model = build_model("unet", encoder_depth=4, decoder_channels=(32, 16, 16, 8)).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 32, 48)).shape == (2, 7, 32, 48)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "unet", "encoder": "no-such-encoder"}, "cannot build 'unet' with encoder"),
        ({"name": "fpn", "decoder_channels": (8, 8, 8, 8, 8)}, "decoder_channels is not supported"),
        ({"name": "deeplabv3plus", "encoder_depth": 4}, "encoder_depth is not supported"),
        ({"name": "unet", "classes": 1}, "classes >= 2"),
        ({"name": "unet", "in_channels": 0}, "in_channels >= 1"),
    ],
)
def test_bad_options_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)
