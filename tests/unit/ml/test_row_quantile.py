"""ml.preprocessing.row_quantile: the slice normalisation's percentile, equal to torch.quantile."""

from __future__ import annotations

import pytest
import torch

from ml.preprocessing import row_quantile


@pytest.mark.parametrize("q", [0.995, 0.99, 0.999, 1.0, 0.9, 0.5])
@pytest.mark.parametrize("n", [2, 3, 100, 256 * 256 + 7])
def test_equals_torch_quantile(q: float, n: int) -> None:
    generator = torch.Generator().manual_seed(n)
    flat = torch.rand(5, n, generator=generator) * 3000.0
    flat[1] = 0.0  # an empty slice
    flat[2, : n // 2] = 7.0  # ties
    expected = torch.quantile(flat, q, dim=1)
    torch.testing.assert_close(row_quantile(flat, q), expected, rtol=1e-6, atol=1e-4)


def test_integer_valued_slices_give_the_exact_order_statistic() -> None:
    flat = torch.arange(1000, dtype=torch.float32).flip(0)[None].repeat(2, 1)
    # position 0.995 * 999 = 994.005: 994 + 0.005 * (995 - 994)
    assert row_quantile(flat, 0.995).tolist() == pytest.approx([994.005, 994.005], abs=1e-3)
