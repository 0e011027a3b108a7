"""Activation quantizer (running range, PACT clipping), weight quantizer and the common-way baseline."""

from __future__ import annotations

import pytest
import torch

from jaqc.nn.common_quant import fake_quant_common
from jaqc.nn.config import Clipping, QuantizerConfig
from jaqc.nn.fake_quant import fake_quant
from jaqc.nn.quantizers import ActivationQuantizer, quantize_weight


def test_running_range_follows_batches_and_is_used_in_eval() -> None:
    quantizer = ActivationQuantizer((2, 4, 8), QuantizerConfig(running_momentum=0.5))
    first = torch.tensor([-1.0, 0.0, 2.0])
    second = torch.tensor([-3.0, 0.0, 4.0])
    lo, hi = quantizer.clip_ranges(first)
    assert lo.tolist() == [-1.0] * 3 and hi.tolist() == [2.0] * 3
    lo, hi = quantizer.clip_ranges(second)
    assert lo.tolist() == [-3.0] * 3 and hi.tolist() == [4.0] * 3  # training uses the batch range
    assert quantizer.running_min.item() == -2.0 and quantizer.running_max.item() == 3.0
    quantizer.eval()
    lo, hi = quantizer.clip_ranges(torch.tensor([-100.0, 100.0]))
    assert lo.tolist() == [-2.0] * 3 and hi.tolist() == [3.0] * 3
    assert quantizer.running_min.item() == -2.0  # eval does not update
    x = torch.tensor([-5.0, 0.5, 5.0])
    assert torch.equal(quantizer(x, 1), fake_quant(x, torch.tensor(-2.0), torch.tensor(3.0), 4, 0))


def test_pact_clip_is_initialised_from_first_batch_and_learns() -> None:
    quantizer = ActivationQuantizer((2, 4), QuantizerConfig(activation_clipping=Clipping.PACT))
    assert quantizer.learned
    x = torch.tensor([0.0, 1.0, 6.0])
    quantizer(x, 0)
    assert quantizer.clip_lo.tolist() == [0.0, 0.0] and quantizer.clip_hi.tolist() == [6.0, 6.0]
    with torch.no_grad():
        quantizer.clip_hi.fill_(2.0)
    quantizer(torch.tensor([0.5, 3.0, 5.0]), 1).sum().backward()
    assert quantizer.clip_hi.grad.tolist() == [0.0, 2.0]  # two elements above hi, candidate 1 only
    assert quantizer.clip_lo.grad.tolist() == [0.0, 0.0]


def test_weight_quantizer_is_per_output_channel() -> None:
    w = torch.stack([torch.linspace(-1, 1, 27).reshape(3, 3, 3), torch.linspace(-10, 10, 27).reshape(3, 3, 3)])
    q = quantize_weight(w, 2)
    # Channel 0 spans [-1, 1]: s = 2/3, z = round(1.5) = 2, grid {-2, -1, 0, 1}·s; channel 1 is 10x wider.
    grid = torch.tensor([-2.0, -1.0, 0.0, 1.0]) * (2.0 / 3.0)
    torch.testing.assert_close(torch.unique(q[0]), grid)
    torch.testing.assert_close(torch.unique(q[1]), grid * 10)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_common_way_matches_fused_op(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    x = torch.randn(2, 3, 4, 4, generator=gen)
    want = fake_quant(x, x.amin(), x.amax(), bits, 0)
    torch.testing.assert_close(fake_quant_common(x, bits), want, rtol=0, atol=1e-6)
    w = torch.randn(4, 3, 3, 3, generator=gen)
    flat = w.flatten(1)
    want_w = fake_quant(w, flat.amin(1), flat.amax(1), bits, 0)
    torch.testing.assert_close(fake_quant_common(w, bits, per_channel_axis=0), want_w, rtol=0, atol=1e-6)


def test_common_way_gradient_is_straight_through() -> None:
    x = torch.linspace(-1.0, 2.0, 31, requires_grad=True)
    g = torch.randn(31, generator=torch.Generator().manual_seed(0))
    fake_quant_common(x, 2).backward(g)
    # Inside the range the gradient passes unchanged; at the very ends float rounding of x / s may clip.
    torch.testing.assert_close(x.grad[1:-1], g[1:-1])
