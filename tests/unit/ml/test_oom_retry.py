"""Segmenter: CUDA out of memory halves the batch and retries; progress is reported per batch.

The model is a real (small) torch module; it raises torch.cuda.OutOfMemoryError, as the CUDA
allocator does, whenever it is given more slices than its "memory" holds (failure injection:
this machine has no GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ml.inference.api import Segmenter
from ml.preprocessing import Preprocessing

CLASSES = 3


class MemoryBoundNet(nn.Module):
    """Labels each pixel by intensity (0, 1, 2 by thirds); refuses batches above `max_slices`."""

    def __init__(self, max_slices: int) -> None:
        super().__init__()
        self.max_slices = max_slices
        self.batch_sizes: list[int] = []
        self.conv = nn.Conv2d(1, CLASSES, kernel_size=1)
        with torch.no_grad():
            # logits_k = w_k * x + b_k, chosen so that argmax is 0 below 1/3, 1 up to 2/3, then 2
            self.conv.weight[:] = torch.tensor([0.0, 3.0, 6.0]).view(CLASSES, 1, 1, 1)
            assert self.conv.bias is not None
            self.conv.bias[:] = torch.tensor([0.0, -1.0, -3.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(int(x.shape[0]))
        if x.shape[0] > self.max_slices:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for {x.shape[0]} slices")
        return self.conv(x)


def _segmenter(model: nn.Module, batch_size: int) -> Segmenter:
    config = {
        "label_map": {"1": "one", "2": "two"},
        "preprocessing": Preprocessing(target_spacing_mm=1.0, pad_multiple=8, percentile=100.0).to_dict(),
    }
    return Segmenter(model, config, "memory-bound@000000000000", "cpu", batch_size=batch_size)


def _volume(nz: int) -> np.ndarray:
    # Each slice: a left-to-right ramp 0..1 (the 100th percentile normalisation keeps it 0..1)
    ramp = np.tile(np.linspace(0.0, 1.0, 24, dtype=np.float32), (16, 1))
    return np.stack([ramp] * nz)


def test_out_of_memory_halves_the_batch_and_gives_the_same_labels() -> None:
    volume = _volume(20)
    reference = _segmenter(MemoryBoundNet(max_slices=64), batch_size=16).segment(volume, (3.0, 1.0, 1.0)).labels

    model = MemoryBoundNet(max_slices=5)
    seg = _segmenter(model, batch_size=16)
    calls: list[tuple[int, int]] = []
    result = seg.segment(volume, (3.0, 1.0, 1.0), progress=lambda done, total: calls.append((done, total)))

    np.testing.assert_array_equal(result.labels, reference)
    assert set(np.unique(result.labels).tolist()) == {0, 1, 2}
    # 16 refused, 8 refused, then batches of 4 (the largest power-of-two halving that fits 5)
    assert model.batch_sizes == [16, 8, 4, 4, 4, 4, 4]
    assert seg.batch_size == 4 and seg.oom_retries == 2
    assert calls == [(4, 20), (8, 20), (12, 20), (16, 20), (20, 20)]

    # The smaller batch is kept: the next volume does not hit the limit again
    model.batch_sizes.clear()
    seg.segment(_volume(6), (3.0, 1.0, 1.0))
    assert model.batch_sizes == [4, 2]
    assert seg.oom_retries == 2


def test_out_of_memory_at_one_slice_is_raised() -> None:
    seg = _segmenter(MemoryBoundNet(max_slices=0), batch_size=4)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        seg.segment(_volume(3), (3.0, 1.0, 1.0))
    assert seg.batch_size == 1 and seg.oom_retries == 2


def test_progress_counts_every_slice_once_per_batch() -> None:
    calls: list[tuple[int, int]] = []
    _segmenter(MemoryBoundNet(max_slices=64), batch_size=7).segment(
        _volume(15), (3.0, 1.0, 1.0), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(7, 15), (14, 15), (15, 15)]
