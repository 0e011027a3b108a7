"""jaqc::fake_quant, jaqc::fake_quant_symmetric and the mixed ops: exact values, straight-through and PACT
gradients, opcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jaqc.nn.fake_quant import channel_amax, fake_quant, fake_quant_symmetric, quant_params, symmetric_scale
from jaqc.nn.mixed_fake_quant import (
    candidate_params,
    candidates_from_params,
    mixed_fake_quant,
    mixed_fake_quant_fn,
    mixed_fake_quant_grads,
    mixed_fake_quant_symmetric,
    mixed_fake_quant_symmetric_fn,
    own_range_symmetric_candidates,
    quantized_candidates,
    symmetric_quantized_candidates,
)


def numpy_fake_quant(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int, axis: int = 0) -> np.ndarray:
    """Hand-written reference of Eq. 2 with a zero point, in float32 like the op."""
    x = x.astype(np.float32)
    levels = np.float32(2**bits - 1)
    lo = np.minimum(np.asarray(lo, np.float32), np.float32(0))
    hi = np.maximum(np.asarray(hi, np.float32), np.float32(0))
    scale = ((hi - lo) / levels).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    zero = np.clip(np.round(-lo / scale), 0, levels).astype(np.float32)
    if scale.ndim == 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    q = np.clip(np.round(x / scale), -zero, levels - zero)
    return (q * scale).astype(np.float32)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_tensor_values_match_numpy(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    x = torch.randn(4, 6, 5, 5, generator=gen) * 3
    lo, hi = x.amin(), x.amax()
    got = fake_quant(x, lo, hi, bits, 0).numpy()
    want = numpy_fake_quant(x.numpy(), lo.numpy(), hi.numpy(), bits)
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(got)) <= 2**bits


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_channel_values_match_numpy(bits: int) -> None:
    gen = torch.Generator().manual_seed(10 + bits)
    w = torch.randn(8, 3, 3, 3, generator=gen)
    lo, hi = w.flatten(1).amin(1), w.flatten(1).amax(1)
    got = fake_quant(w, lo, hi, bits, 0).numpy()
    want = numpy_fake_quant(w.numpy(), lo.numpy(), hi.numpy(), bits, axis=0)
    np.testing.assert_array_equal(got, want)
    for channel in range(8):
        assert len(np.unique(got[channel])) <= 2**bits


def test_two_bit_grid_known_values() -> None:
    # Range [0, 3] at 2 bits: s = 1, z = 0, levels {0, 1, 2, 3}; 1.5 rounds half to even.
    x = torch.tensor([-1.0, 0.0, 0.4, 0.6, 1.5, 2.5, 3.0, 7.0])
    got = fake_quant(x, torch.tensor(0.0), torch.tensor(3.0), 2, 0)
    assert got.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_signed_range_zero_point_and_onnx_semantics() -> None:
    x = torch.linspace(-2.0, 1.0, 41)
    lo, hi = torch.tensor(-2.0), torch.tensor(1.0)
    scale, zero = quant_params(lo, hi, 4)
    assert scale.item() == pytest.approx(3.0 / 15)
    assert zero.item() == 10.0
    # QuantizeLinear (round half to even, then add the zero point, saturate) followed by DequantizeLinear.
    q = torch.clamp(torch.round(x / scale) + zero, 0, 15)
    onnx = (q - zero) * scale
    assert torch.equal(fake_quant(x, lo, hi, 4, 0), onnx)


def test_zero_is_exact_and_empty_range_is_zero() -> None:
    x = torch.tensor([0.0, 0.3, 0.9])
    assert fake_quant(x, torch.tensor(0.2), torch.tensor(0.9), 2, 0)[0].item() == 0.0
    zeros = torch.zeros(5)
    assert torch.equal(fake_quant(zeros, zeros.amin(), zeros.amax(), 4, 0), zeros)


def test_ste_gradient_passes_inside_range_only() -> None:
    x = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.5, 1.0, 2.5], requires_grad=True)
    upstream = torch.arange(1.0, 8.0)
    fake_quant(x, torch.tensor(-1.0), torch.tensor(1.0), 4, 0).backward(upstream)
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_minmax_range_gradient_is_identity() -> None:
    x = torch.randn(3, 4, 5, requires_grad=True)
    g = torch.randn(3, 4, 5)
    fake_quant(x, x.detach().amin(), x.detach().amax(), 2, 0).backward(g)
    assert torch.equal(x.grad, g)


def test_pact_range_gradient_formula() -> None:
    x = torch.tensor([-4.0, -2.5, -1.0, 0.0, 1.0, 2.0, 5.0])
    lo = torch.tensor(-2.0, requires_grad=True)
    hi = torch.tensor(1.5, requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    fake_quant(x, lo, hi, 4, 0).backward(g)
    assert lo.grad.item() == 1.0 + 2.0  # elements below lo
    assert hi.grad.item() == 6.0 + 7.0  # elements above hi


def test_pact_gradient_per_channel() -> None:
    x = torch.tensor([[[-3.0, 0.5, 4.0]], [[-0.5, 0.5, 0.7]]])  # [C=2, 1, 3], axis 0
    lo = torch.tensor([-1.0, -1.0], requires_grad=True)
    hi = torch.tensor([1.0, 0.6], requires_grad=True)
    fake_quant(x, lo, hi, 2, 0).sum().backward()
    assert lo.grad.tolist() == [1.0, 0.0]
    assert hi.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pact_upper_clip_gradient_matches_finite_difference(bits: int) -> None:
    # With lo = 0 the clipped elements dequantize to exactly hi, so d/dhi is exact there.
    x = torch.tensor([3.0, 4.0, 10.0], dtype=torch.float64)
    lo = torch.tensor(0.0, dtype=torch.float64)
    hi = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    fake_quant(x, lo, hi, bits, 0).sum().backward()
    eps = 1e-6
    plus = fake_quant(x, lo, hi.detach() + eps, bits, 0).sum()
    minus = fake_quant(x, lo, hi.detach() - eps, bits, 0).sum()
    assert hi.grad.item() == pytest.approx(((plus - minus) / (2 * eps)).item(), rel=1e-6)
    assert hi.grad.item() == 3.0


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pact_lower_clip_gradient_matches_finite_difference(bits: int) -> None:
    x = torch.tensor([-3.0, -7.0], dtype=torch.float64)
    lo = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
    hi = torch.tensor(0.0, dtype=torch.float64)
    fake_quant(x, lo, hi, bits, 0).sum().backward()
    eps = 1e-6
    plus = fake_quant(x, lo.detach() + eps, hi, bits, 0).sum()
    minus = fake_quant(x, lo.detach() - eps, hi, bits, 0).sum()
    assert lo.grad.item() == pytest.approx(((plus - minus) / (2 * eps)).item(), rel=1e-6)
    assert lo.grad.item() == 2.0


def test_opcheck_fake_quant() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=gen, requires_grad=True)
    torch.library.opcheck(fake_quant, (x, torch.tensor(-1.0, requires_grad=True), torch.tensor(1.0), 4, 0))
    w = torch.randn(5, 3, 3, 3, generator=gen, requires_grad=True)
    flat = w.detach().flatten(1)
    torch.library.opcheck(fake_quant, (w, flat.amin(1), flat.amax(1), 2, 0))


def test_opcheck_mixed_fake_quant() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=gen, requires_grad=True)
    lo = torch.tensor([-1.0, -0.5, -2.0], requires_grad=True)
    hi = torch.tensor([1.0, 0.5, 2.0], requires_grad=True)
    probs = torch.softmax(torch.randn(3, generator=gen), 0).requires_grad_()
    torch.library.opcheck(torch.ops.jaqc.mixed_fake_quant.default, (x, lo, hi, probs, [2, 4, 8], 0))


def test_mixed_op_equals_sum_of_single_ops_in_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(2, 5, 4, 4, generator=gen)
    upstream = torch.randn(2, 5, 4, 4, generator=gen)
    logits = torch.randn(3, generator=gen)

    def leaves() -> tuple[torch.Tensor, ...]:
        return (
            base.clone().requires_grad_(),
            torch.tensor([-1.0, -0.5, -2.0], requires_grad=True),
            torch.tensor([1.0, 0.7, 2.0], requires_grad=True),
            torch.softmax(logits, 0).requires_grad_(),
        )

    x1, lo1, hi1, p1 = leaves()
    mixed = mixed_fake_quant(x1, lo1, hi1, p1, [2, 4, 8], 0)
    mixed.backward(upstream)
    x2, lo2, hi2, p2 = leaves()
    summed = sum(p2[k] * fake_quant(x2, lo2[k], hi2[k], b, 0) for k, b in enumerate([2, 4, 8]))
    summed.backward(upstream)
    torch.testing.assert_close(mixed, summed)
    for a, b in ((x1, x2), (lo1, lo2), (hi1, hi2), (p1, p2)):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("per_channel", [False, True])
def test_mixed_ops_with_one_shared_range_match_the_sum_of_single_ops(per_channel: bool) -> None:
    """Ranges expanded from one row (the search's: observed min/max, a weight's max |w|) take backward's one-mask
    path; values and gradients still equal the sum of single ops, with elements clipped on both sides."""
    gen = torch.Generator().manual_seed(7)
    base = torch.randn(2, 5, 4, 4, generator=gen) * 2
    upstream = torch.randn(2, 5, 4, 4, generator=gen)
    probs = torch.softmax(torch.randn(3, generator=gen), 0)
    row_lo = torch.linspace(-1.5, -0.2, 5) if per_channel else torch.tensor(-0.8)
    row_hi = torch.linspace(0.3, 1.9, 5) if per_channel else torch.tensor(1.1)
    axis = 1
    shape = (3, 5) if per_channel else (3,)

    def run(single: bool, symmetric: bool) -> tuple[torch.Tensor, ...]:
        x, p = base.clone().requires_grad_(), probs.clone().requires_grad_()
        if symmetric:
            amax = row_hi.expand(shape)
            out = (
                sum(p[k] * fake_quant_symmetric(x, amax[k], b, axis) for k, b in enumerate([2, 4, 8]))
                if single
                else mixed_fake_quant_symmetric(x, amax, p, [2, 4, 8], axis)
            )
        else:
            lo, hi = row_lo.expand(shape), row_hi.expand(shape)
            out = (
                sum(p[k] * fake_quant(x, lo[k], hi[k], b, axis) for k, b in enumerate([2, 4, 8]))
                if single
                else mixed_fake_quant(x, lo, hi, p, [2, 4, 8], axis)
            )
        out.backward(upstream)
        return out.detach(), x.grad, p.grad

    for symmetric in (False, True):
        mixed, single = run(False, symmetric), run(True, symmetric)
        assert (mixed[1] == 0).any() and (mixed[1] != 0).any()  # some elements are clipped, some pass
        for a, b in zip(mixed, single, strict=True):
            torch.testing.assert_close(a, b)


def test_bad_arguments_are_rejected() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="bits"):
        fake_quant(x, torch.tensor(0.0), torch.tensor(1.0), 0, 0)
    with pytest.raises(ValueError, match="axis"):
        fake_quant(x, torch.zeros(4), torch.ones(4), 4, 1)


# --- the symmetric narrow-range weight quantizer ---------------------------------------------------------


def numpy_fake_quant_symmetric(x: np.ndarray, amax: np.ndarray, bits: int, axis: int = 0) -> np.ndarray:
    """Hand-written reference: s = amax / (2^(b-1) - 1) (1 when amax = 0), codes clamp(round(x/s), -n, n)."""
    x = x.astype(np.float32)
    levels = np.float32(2 ** (bits - 1) - 1)
    scale = (np.asarray(amax, np.float32) / levels).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    if scale.ndim == 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
    return (np.clip(np.round(x / scale), -levels, levels) * scale).astype(np.float32)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_symmetric_per_channel_values_match_numpy(bits: int) -> None:
    gen = torch.Generator().manual_seed(20 + bits)
    w = torch.randn(8, 3, 3, 3, generator=gen)
    w[3] = 0.0  # an all-zero channel: s = 1, stays zero
    amax = w.abs().flatten(1).amax(1)
    got = fake_quant_symmetric(w, amax, bits, 0).numpy()
    np.testing.assert_array_equal(got, numpy_fake_quant_symmetric(w.numpy(), amax.numpy(), bits))
    levels = 2 ** (bits - 1) - 1
    scale = symmetric_scale(amax, bits).numpy()
    codes = np.round(got / scale[:, None, None, None])
    np.testing.assert_array_equal(codes * scale[:, None, None, None], got)
    assert codes.min() >= -levels and codes.max() <= levels
    assert not got[3].any()


def test_symmetric_two_bit_is_ternary() -> None:
    x = torch.tensor([[-3.0, -1.6, -1.5, -0.2, 0.0, 1.5, 1.6, 3.0]])
    got = fake_quant_symmetric(x, torch.tensor([3.0]), 2, 0)
    # s = 3, x / s = [-1, -0.53, -0.5, -0.07, 0, 0.5, 0.53, 1]: half to even at +-0.5.
    assert got.tolist() == [[-3.0, -3.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0]]
    assert set(fake_quant_symmetric(torch.randn(4, 50), torch.full((4,), 1.0), 2, 0).unique().tolist()) <= {
        -1.0,
        0.0,
        1.0,
    }


def test_symmetric_gradients() -> None:
    x = torch.tensor([-3.0, -1.0, 0.5, 1.0, 2.5], requires_grad=True)
    amax = torch.tensor(1.0, requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    fake_quant_symmetric(x, amax, 4, 0).backward(g)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]  # straight through inside [-amax, amax]
    assert amax.grad.item() == 5.0 - 1.0  # clipped to +amax counts +1, to -amax counts -1
    w = torch.randn(3, 4, requires_grad=True)
    upstream = torch.randn(3, 4)
    fake_quant_symmetric(w, w.detach().abs().amax(1), 2, 0).backward(upstream)
    assert torch.equal(w.grad, upstream)


def test_opcheck_symmetric_ops() -> None:
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(5, 3, 3, 3, generator=gen, requires_grad=True)
    amax = w.detach().abs().flatten(1).amax(1)
    torch.library.opcheck(fake_quant_symmetric, (w, amax, 2, 0))
    torch.library.opcheck(fake_quant_symmetric, (w, torch.tensor(0.5, requires_grad=True), 4, 0))
    probs = torch.softmax(torch.randn(3, generator=gen), 0).requires_grad_()
    torch.library.opcheck(
        torch.ops.jaqc.mixed_fake_quant_symmetric.default, (w, amax.expand(3, -1).clone(), probs, [2, 4, 8], 0)
    )


def test_mixed_symmetric_equals_sum_of_single_ops() -> None:
    gen = torch.Generator().manual_seed(6)
    base = torch.randn(4, 3, 3, 3, generator=gen)
    upstream = torch.randn(4, 3, 3, 3, generator=gen)
    logits = torch.randn(3, generator=gen)
    amax = base.abs().flatten(1).amax(1) * torch.tensor([[1.0], [0.5], [2.0]])

    def leaves() -> tuple[torch.Tensor, ...]:
        return base.clone().requires_grad_(), amax.clone().requires_grad_(), torch.softmax(logits, 0).requires_grad_()

    x1, a1, p1 = leaves()
    mixed = mixed_fake_quant_symmetric(x1, a1, p1, [2, 4, 8], 0)
    mixed.backward(upstream)
    x2, a2, p2 = leaves()
    summed = sum(p2[k] * fake_quant_symmetric(x2, a2[k], b, 0) for k, b in enumerate([2, 4, 8]))
    summed.backward(upstream)
    torch.testing.assert_close(mixed, summed)
    for a, b in ((x1, x2), (a1, a2), (p1, p2)):
        torch.testing.assert_close(a.grad, b.grad)


def test_symmetric_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"bits must be in 2\.\.16"):
        fake_quant_symmetric(torch.zeros(2, 3), torch.tensor(1.0), 1, 0)
    with pytest.raises(ValueError, match="does not fit axis"):
        fake_quant_symmetric(torch.zeros(2, 3), torch.ones(4), 4, 0)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_the_search_functions_equal_the_custom_ops_bit_for_bit(per_channel: bool, shared: bool) -> None:
    """``mixed_fake_quant_fn`` and ``mixed_fake_quant_symmetric_fn`` (what the search calls) give the custom ops'
    values and every gradient exactly, ranges with gradients included."""
    gen = torch.Generator().manual_seed(11)
    base = torch.randn(3, 5, 4, 4, generator=gen) * 2
    upstream = torch.randn(3, 5, 4, 4, generator=gen)
    probs = torch.softmax(torch.randn(3, generator=gen), 0)
    shape = (3, 5) if per_channel else (3,)
    if shared:
        lo = (-torch.rand(shape[1:], generator=gen) - 0.2).expand(shape)
        hi = (torch.rand(shape[1:], generator=gen) + 0.2).expand(shape)
    else:
        lo, hi = -torch.rand(shape, generator=gen) - 0.2, torch.rand(shape, generator=gen) + 0.2

    def run(function, symmetric: bool) -> list[torch.Tensor]:
        x, p = base.clone().requires_grad_(), probs.clone().requires_grad_()
        if symmetric:
            amax = hi.clone().requires_grad_() if not shared else hi
            out = function(x, amax, p, [2, 4, 8], 1)
            leaves = [x, p] + ([amax] if not shared else [])
        else:
            lo_, hi_ = (lo.clone().requires_grad_(), hi.clone().requires_grad_()) if not shared else (lo, hi)
            out = function(x, lo_, hi_, p, [2, 4, 8], 1)
            leaves = [x, p] + ([lo_, hi_] if not shared else [])
        out.backward(upstream)
        return [out.detach()] + [leaf.grad for leaf in leaves]

    for symmetric, op, fn in (
        (False, mixed_fake_quant, mixed_fake_quant_fn),
        (True, mixed_fake_quant_symmetric, mixed_fake_quant_symmetric_fn),
    ):
        for a, b in zip(run(op, symmetric), run(fn, symmetric), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_own_range_weight_candidates_equal_the_clamped_ones_bit_for_bit(dtype: torch.dtype) -> None:
    """Over a weight's own per-channel ``max |w|`` the clamp to ``[-n, n]`` cannot bind: the unclamped candidates
    are the same values, bit for bit, at every bitwidth, with a channel of zeros, tiny and huge channels."""
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(6, 7, 3, 3, generator=gen, dtype=torch.float64)
    weight[1] = 0.0
    weight[2] *= 1e-30
    weight[3] *= 1e30
    weight[4, 0, 0, 0] = -weight[4].abs().max() * 2  # the channel's extreme on the negative side
    weight = weight.to(dtype)
    bits = list(range(2, 17))
    amax = channel_amax(weight).expand(len(bits), -1)
    ours = own_range_symmetric_candidates(weight, amax, bits, 0)
    reference = symmetric_quantized_candidates(weight, amax, bits, 0)
    assert torch.equal(ours, reference)
    for wide in range(2, 17):  # each bitwidth alone too (bfloat16 keeps the clamp from 7 bits on)
        assert torch.equal(
            own_range_symmetric_candidates(weight, amax[:1], [wide], 0),
            symmetric_quantized_candidates(weight, amax[:1], [wide], 0),
        )


def test_x_gradient_in_its_own_range_skips_the_mask_and_keeps_the_values() -> None:
    """With the ranges ``x``'s own min/max (a training-mode min/max observer), ``mixed_fake_quant_grads``'s
    ``in_range`` shortcut gives ``x`` and ``probs`` exactly the gradients of the masked computation, and saved
    ``candidate_params`` give the candidates ``quantized_candidates`` computes."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 5, 5, generator=gen).relu()
    grad = torch.randn(x.shape, generator=gen)
    probs = torch.softmax(torch.randn(3, generator=gen), 0)
    low, high = torch.aminmax(x)
    lo, hi = low.expand(3), high.expand(3)
    bits = [2, 4, 8]
    params = candidate_params(x, lo, hi, bits)
    assert torch.equal(candidates_from_params(x, params, 0), quantized_candidates(x, lo, hi, bits, 0))
    needs = (True, False, False, True)
    masked = mixed_fake_quant_grads(x, lo, hi, probs, bits, 0, grad, needs)
    shortcut = mixed_fake_quant_grads(x, lo, hi, probs, bits, 0, grad, needs, params, in_range=True)
    for a, b in zip(masked, shortcut, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)
    # outside its own range the mask binds: the shortcut is only for the observer's own min/max
    narrow = mixed_fake_quant_grads(x, lo * 0.5, hi * 0.5, probs, bits, 0, grad, needs)
    assert not torch.equal(narrow[0], shortcut[0])
