"""Activation quantizer (running range, PACT clipping), weight quantizer and the common-way baseline."""

from __future__ import annotations

import pytest
import torch

from jaqc.nn.common_quant import fake_quant_common, fake_quant_common_symmetric
from jaqc.nn.config import Clipping, QuantizerConfig
from jaqc.nn.fake_quant import fake_quant, fake_quant_symmetric
from jaqc.nn.quantizers import MSE_GRID, MSE_SAMPLE, ActivationQuantizer, mse_clip_factors, quantize_weight


def _best_factor(x: torch.Tensor, bits: int) -> float:
    """The MSE-optimal shrink factor by brute force over the grid with the fake-quant op itself."""
    lo, hi = x.amin(), x.amax()
    errors = []
    for j in range(MSE_GRID, 0, -1):  # widest first: ties go to the wider range
        f = torch.tensor(j / MSE_GRID)
        errors.append((float((fake_quant(x, lo * f, hi * f, bits, 0) - x).square().mean()), j / MSE_GRID))
    best = min(e for e, _ in errors)
    return next(f for e, f in errors if e == best)


@pytest.mark.parametrize("signed", [False, True])
def test_mse_clip_factors_are_the_least_error_grid_points(signed: bool) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 50, generator=g) ** 3  # heavy tails: the low widths clip, 8 bits hardly
    x = x if signed else x.relu()
    factors = mse_clip_factors(x, x.amin(), x.amax(), (2, 4, 8))
    for got, bits in zip(factors.tolist(), (2, 4, 8), strict=True):
        assert got == pytest.approx(_best_factor(x, bits), abs=1e-7)
    assert factors[0] < factors[1] <= factors[2]
    assert factors[0] < 0.5  # 2 bits over min/max would round most of this tensor to zero


def test_mse_clip_factors_sample_large_tensors_spread_out() -> None:
    # a tensor whose every 1024th element is 10 and the rest small: a plain stride of 1024 would see only the 10s
    x = torch.rand(8 * MSE_SAMPLE * 2) * 0.1
    x[::1024] = 10.0
    f = mse_clip_factors(x, x.amin(), x.amax(), (2,))
    index = torch.arange(MSE_SAMPLE) * 2_147_483_647 % x.numel()
    assert f.item() == pytest.approx(_best_factor(x[index], 2), abs=1e-7)
    assert (x[index] == 10.0).sum().item() < MSE_SAMPLE // 100  # the sample sees the tensor's proportions


def test_mse_clipping_ranges_running_factor_and_eval() -> None:
    quantizer = ActivationQuantizer((2, 8), QuantizerConfig(activation_clipping="mse", running_momentum=0.5))
    assert quantizer.clip_factor.tolist() == [1.0, 1.0]
    g = torch.Generator().manual_seed(0)
    first = torch.randn(1000, generator=g).relu() ** 2
    second = 2 * torch.randn(1000, generator=g).relu() ** 2
    lo, hi = quantizer.clip_ranges(first)
    f1 = mse_clip_factors(first, first.amin(), first.amax(), (2, 8))
    assert torch.equal(hi, first.amax() * f1) and torch.equal(lo, first.amin() * f1)
    assert torch.equal(quantizer.clip_factor, f1)
    lo, hi = quantizer.clip_ranges(second)
    f2 = mse_clip_factors(second, second.amin(), second.amax(), (2, 8))
    assert torch.equal(hi, second.amax() * f2)  # training: this batch's range and factors
    assert torch.allclose(quantizer.clip_factor, (f1 + f2) / 2)
    quantizer.eval()
    lo, hi = quantizer.clip_ranges(torch.tensor([100.0]))
    assert torch.equal(hi, quantizer.running_max * quantizer.clip_factor)
    assert set(quantizer.state_dict()) == {"running_min", "running_max", "initialized", "clip_factor"}
    assert "clip_factor" not in ActivationQuantizer((2, 8)).state_dict()  # min/max keeps its state as before


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


def test_weight_quantizer_is_per_output_channel_symmetric() -> None:
    w = torch.stack([torch.linspace(-1, 1, 27).reshape(3, 3, 3), torch.linspace(-10, 10, 27).reshape(3, 3, 3)])
    # 2 bits is ternary: amax = 1, s = amax / (2^1 - 1) = 1, codes {-1, 0, 1}; channel 1 is 10x wider.
    q = quantize_weight(w, 2)
    assert torch.unique(q[0]).tolist() == [-1.0, 0.0, 1.0]
    assert torch.unique(q[1]).tolist() == [-10.0, 0.0, 10.0]
    assert torch.equal(q[0].flatten(), torch.round(torch.linspace(-1, 1, 27)))
    # 4 bits: s = amax / 7, codes -7..7, so the grid is symmetric and zero is exact.
    q4 = quantize_weight(w, 4)
    s4 = torch.tensor(1.0) / 7
    assert torch.equal(q4[0], torch.round(w[0] / s4) * s4)
    assert q4[0].amax().item() == 1.0 and q4[0].amin().item() == -1.0
    # 8 bits: s = amax / 127.
    q8 = quantize_weight(w, 8)
    s8 = torch.tensor(10.0) / 127
    assert torch.equal(q8[1], torch.round(w[1] / s8) * s8)
    # An all-zero channel stays zero (s = 1).
    assert torch.equal(quantize_weight(torch.zeros(2, 3), 4), torch.zeros(2, 3))


def test_weight_quantizer_uses_max_abs_not_min_max() -> None:
    # A channel in [-0.5, 2]: amax = 2, 2 bits -> {-2, 0, 2}; -0.5 rounds (half to even) to 0.
    w = torch.tensor([[-0.5, 0.4, 1.2, 2.0]])
    assert quantize_weight(w, 2).tolist() == [[0.0, 0.0, 2.0, 2.0]]
    assert torch.equal(quantize_weight(w, 4), torch.tensor([[-2.0, 1.0, 4.0, 7.0]]) * (torch.tensor(2.0) / 7))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_common_way_matches_fused_op(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    x = torch.randn(2, 3, 4, 4, generator=gen)
    want = fake_quant(x, x.amin(), x.amax(), bits, 0)
    torch.testing.assert_close(fake_quant_common(x, bits), want, rtol=0, atol=1e-6)
    w = torch.randn(4, 3, 3, 3, generator=gen)
    want_w = fake_quant_symmetric(w, w.abs().flatten(1).amax(1), bits, 0)
    torch.testing.assert_close(fake_quant_common_symmetric(w, bits, axis=0), want_w, rtol=0, atol=1e-6)
    assert torch.equal(quantize_weight(w, bits), want_w)


def test_common_way_gradient_is_straight_through() -> None:
    x = torch.linspace(-1.0, 2.0, 31, requires_grad=True)
    g = torch.randn(31, generator=torch.Generator().manual_seed(0))
    fake_quant_common(x, 2).backward(g)
    # Inside the range the gradient passes unchanged; at the very ends float rounding of x / s may clip.
    torch.testing.assert_close(x.grad[1:-1], g[1:-1])


def test_hqnas_subnet_copies_the_chosen_widths_mse_factor() -> None:
    from jaqc.search.hqnas.superkernel import _copy_activation

    config = QuantizerConfig(activation_clipping="mse")
    source = ActivationQuantizer((2, 4, 8), config)
    x = torch.randn(2000, generator=torch.Generator().manual_seed(5)).relu() ** 2
    source.clip_ranges(x)
    target = ActivationQuantizer((4,), config)
    _copy_activation(target, source, 1)
    assert torch.equal(target.clip_factor, source.clip_factor[1:2]) and target.clip_factor.item() < 1.0
    assert (target.running_min, target.running_max) == (source.running_min, source.running_max)
    target.eval()
    source.eval()
    assert torch.equal(target.clip_ranges(x)[1], source.clip_ranges(x)[1][1:2])
