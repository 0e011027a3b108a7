"""SearchConv2d: CSQ equals the dense definition of Eq. 6, keeps no full-size quantized copy, and the modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from jaqc.nn.config import QuantSearchMode, SearchStep
from jaqc.nn.errors import NNStateError
from jaqc.nn.fake_quant import fake_quant, fake_quant_symmetric
from jaqc.nn.memory import SavedTensorMeter
from jaqc.nn.search_conv import SearchConv2d

BITS = (2, 4, 8)


def make_conv(mode: QuantSearchMode, in_ch: int, out_ch: int, kernel: int, groups: int, seed: int = 0) -> SearchConv2d:
    torch.manual_seed(seed)
    return SearchConv2d(in_ch, out_ch, kernel, 1, groups, mode=mode, weight_bits=BITS, activation_bits=BITS)


def dense_reference(conv: SearchConv2d, x: torch.Tensor, channels: list[int], wp: torch.Tensor, ap: torch.Tensor):
    """Eq. 6 literally: quantize the Ω channels, mix over bits, put them back in place, then convolve."""
    selected = x[:, channels]
    lo, hi = selected.detach().amin(), selected.detach().amax()
    mixed = sum(ap[k] * fake_quant(selected, lo, hi, b, 0) for k, b in enumerate(BITS))
    merged = x.clone()
    merged[:, channels] = mixed
    amax = conv.weight.detach().abs().flatten(1).amax(1)
    weight = sum(wp[k] * fake_quant_symmetric(conv.weight, amax, b, 0) for k, b in enumerate(BITS))
    return F.conv2d(merged, weight, None, conv.stride, conv.padding, 1, conv.groups)


@pytest.mark.parametrize(
    ("in_ch", "out_ch", "kernel", "groups", "channels"),
    [
        (8, 16, 1, 1, [1, 4]),
        (8, 16, 1, 2, [0, 5, 6]),
        (8, 8, 1, 2, [5]),
        (12, 12, 3, 12, [0, 7, 11]),
        (6, 12, 5, 6, [2]),
    ],
)
@pytest.mark.parametrize("layout", ["leaf", "relu", "relu_channels_last"])
@pytest.mark.parametrize("trained", ["all", "weights", "arch"])
def test_csq_forward_and_gradients_match_dense_eq6(in_ch, out_ch, kernel, groups, channels, layout, trained) -> None:
    """A leaf input is copied; a ReLU's output has its Ω channels swapped in place, and the ReLU's backward,
    which reads that output, still gets it unchanged: gradients reach the leaf as through Eq. 6's copy.

    ``trained``: what needs gradients, as in the search's steps: everything; the weight step's weight and input
    (constant β); the architecture step's β and input (a constant weight: a depthwise conv then takes β_w's
    gradient from one forward convolution per candidate instead of the weight gradient)."""
    conv = make_conv(QuantSearchMode.CSQ, in_ch, out_ch, kernel, groups)
    conv.set_csq_channels(channels)
    conv.weight.requires_grad_(trained != "arch")
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(2, in_ch, 6, 6, generator=gen)
    if layout == "relu_channels_last":
        base = base.contiguous(memory_format=torch.channels_last)
    leaf = (base.relu() if layout == "leaf" else base).requires_grad_()
    wp = torch.softmax(torch.randn(3, generator=gen), 0).requires_grad_(trained != "weights")
    ap = torch.softmax(torch.randn(3, generator=gen), 0).requires_grad_(trained != "weights")
    upstream = torch.randn(2, out_ch, 6, 6, generator=gen)

    def input_() -> torch.Tensor:
        return leaf if layout == "leaf" else leaf.relu()

    x = input_()
    before = x.detach().clone()
    out = conv(x, wp, ap)
    assert torch.equal(x.detach(), before)  # restored bit for bit
    out.backward(upstream)
    assert torch.equal(x.detach(), before)
    tensors = (leaf, wp, ap, conv.weight)
    got = [None if t.grad is None else t.grad.clone() for t in tensors]
    assert [g is not None for g in got] == [t.requires_grad for t in tensors]
    for tensor in tensors:
        tensor.grad = None
    want_out = dense_reference(conv, input_(), channels, wp, ap)
    want_out.backward(upstream)
    torch.testing.assert_close(out.detach(), want_out, atol=2e-6, rtol=1e-5)
    for a, t in zip(got, tensors, strict=True):
        torch.testing.assert_close(a, t.grad, atol=5e-5, rtol=1e-4)


def _saved_shapes(conv: SearchConv2d, x: torch.Tensor, probs: torch.Tensor) -> tuple[list[tuple[int, ...]], int]:
    """Shapes of the saved tensors other than parameters and ``x``, and their unique bytes."""
    with SavedTensorMeter([*conv.parameters(), *conv.buffers(), x]) as meter:
        out = conv(x, probs, probs)
    out.sum().backward()
    return [shape for shape, excluded in meter.saved if not excluded], meter.activation_bytes


@pytest.mark.parametrize("groups", [1, 8])
def test_csq_under_bf16_autocast_runs_the_conv_in_bf16_and_keeps_float32_gradients(groups: int) -> None:
    """--amp bf16: a float32 input and weight, the conv in bfloat16; gradients come back in the inputs' dtypes
    (float32) and stay within bfloat16's precision of the float32 step."""
    conv = make_conv(QuantSearchMode.CSQ, 8, 16, 3, groups)
    conv.set_csq_channels([1, 3, 6])
    gen = torch.Generator().manual_seed(4)
    base = torch.randn(2, 8, 6, 6, generator=gen)
    probs = torch.softmax(torch.randn(3, generator=gen), 0)
    results = []
    for amp in (False, True):
        x, p = base.clone().requires_grad_(), probs.clone().requires_grad_()
        conv.weight.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = conv(x, p, p)
        assert out.dtype == (torch.bfloat16 if amp else torch.float32)
        out.float().square().sum().backward()
        assert x.grad.dtype == p.grad.dtype == conv.weight.grad.dtype == torch.float32
        results.append((out.detach().float(), x.grad, p.grad, conv.weight.grad.clone()))
    for full, half in zip(*results, strict=True):
        assert (half - full).abs().max() <= 0.02 * full.abs().max()


def test_csq_keeps_no_full_size_quantized_activation() -> None:
    conv = make_conv(QuantSearchMode.CSQ, 64, 64, 3, 64)
    conv.set_csq_channels([3, 10])
    x = torch.randn(8, 64, 16, 16).relu().requires_grad_()
    probs = torch.softmax(torch.zeros(3), 0).requires_grad_()
    shapes, extra_bytes = _saved_shapes(conv, x, probs)
    full = x.numel() * x.element_size()
    # Besides the input itself, only |Ω|-channel activations (and weight-sized tensors) are kept.
    activations = [s for s in shapes if len(s) == 4 and s[0] == 8]
    assert activations and all(s[1] == 2 for s in activations)
    assert 0 < extra_bytes < 0.1 * full  # two 2-of-64-channel tensors and the quantized weight


def test_naive_keeps_one_full_size_copy_per_conv_input() -> None:
    conv = make_conv(QuantSearchMode.NAIVE, 64, 64, 3, 64)
    x = torch.randn(4, 64, 8, 8).relu().requires_grad_()
    probs = torch.softmax(torch.zeros(3), 0).requires_grad_()
    _, extra_bytes = _saved_shapes(conv, x, probs)
    full = x.numel() * x.element_size()
    assert full <= extra_bytes < 1.15 * full  # the mixed input the conv keeps


def test_csq_with_all_channels_equals_naive() -> None:
    naive = make_conv(QuantSearchMode.NAIVE, 8, 8, 3, 8, seed=3)
    csq = make_conv(QuantSearchMode.CSQ, 8, 8, 3, 8, seed=3)
    csq.set_csq_channels(list(range(8)))
    x = torch.randn(2, 8, 5, 5)
    probs = torch.tensor([0.2, 0.3, 0.5])
    torch.testing.assert_close(csq(x, probs, probs), naive(x, probs, probs), atol=2e-6, rtol=1e-5)


def test_hetero_weight_step_is_identity_backward_and_arch_step_is_hard_top2() -> None:
    conv = make_conv(QuantSearchMode.HETERO, 4, 4, 1, 1, seed=4)
    naive = make_conv(QuantSearchMode.NAIVE, 4, 4, 1, 1, seed=4)
    x = torch.randn(2, 4, 3, 3).requires_grad_()
    probs = torch.tensor([0.5, 0.3, 0.2], requires_grad=True)
    out = conv(x, probs, probs)
    torch.testing.assert_close(out, naive(x, probs, probs))  # same blend in the forward pass
    out.sum().backward()
    assert probs.grad is None  # the weight step does not train β
    conv.search_step = SearchStep.ARCH
    one_hot = torch.tensor([1.0, 0.0, 0.0])
    hard = conv(x, probs, probs)
    torch.testing.assert_close(hard, naive(x, one_hot, one_hot))  # forward: the top-1 bitwidth only
    hard.sum().backward()
    assert probs.grad[0] != 0 and probs.grad[1] != 0 and probs.grad[2] == 0  # top-2 get gradients


def test_fixed_and_float_modes() -> None:
    fixed = SearchConv2d(4, 4, 3, mode=QuantSearchMode.FIXED, weight_bits=(4,), activation_bits=(2,))
    x = torch.randn(1, 4, 5, 5)
    amax = fixed.weight.detach().abs().flatten(1).amax(1)
    want = F.conv2d(fake_quant(x, x.amin(), x.amax(), 2, 0), fake_quant_symmetric(fixed.weight, amax, 4, 0), padding=1)
    torch.testing.assert_close(fixed(x), want)
    plain = SearchConv2d(4, 4, 3)
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.weight, padding=1))


def test_bad_channel_sets_are_rejected() -> None:
    conv = make_conv(QuantSearchMode.CSQ, 8, 8, 1, 1)
    for bad in ([], [3, 1], [2, 2], [8], [-1]):
        with pytest.raises(NNStateError, match="CSQ channels"):
            conv.set_csq_channels(bad)


@pytest.mark.parametrize("clipping", ["minmax", "pact", "mse"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("groups", "stride"), [(1, 1), (12, 2)])
def test_fused_csq_conv_equals_its_three_nodes(clipping: str, training: bool, groups: int, stride: int) -> None:
    """The one-node CSQ conv gives the values and gradients (x, β_w, β_a, W, PACT's clip ranges) of the β-mixes of
    x_Ω and W as separate nodes feeding the sparse-input conv, whatever the clipping; in eval the running range
    clips, so the straight-through masks are not all ones."""
    from jaqc.nn.config import QuantizerConfig

    def run(fused: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        conv = SearchConv2d(
            12,
            12,
            3,
            stride,
            groups,
            mode=QuantSearchMode.CSQ,
            weight_bits=BITS,
            activation_bits=BITS,
            quantizer=QuantizerConfig(activation_clipping=clipping),
        )
        conv.set_csq_channels([0, 5, 6, 11])
        gen = torch.Generator().manual_seed(2)
        conv.train()
        with torch.no_grad():  # a running range, a little narrower than the next batch's
            conv(torch.randn(2, 12, 7, 7, generator=gen).relu() * 0.5, torch.ones(3) / 3, torch.ones(3) / 3)
        conv.train(training)
        leaf = torch.randn(2, 12, 7, 7, generator=gen).requires_grad_()
        wp = torch.softmax(torch.randn(3, generator=gen), 0).requires_grad_()
        ap = torch.softmax(torch.randn(3, generator=gen), 0).requires_grad_()
        x = leaf.relu()
        if fused:
            out = conv(x, wp, ap)
        else:
            out = conv._sparse_forward(x, conv._mix(conv.weight, conv._weight_bit_candidates(), wp), ap)
        out.backward(torch.randn(out.shape, generator=gen))
        params = [
            leaf,
            wp,
            ap,
            conv.weight,
            *([conv.act_quant.clip_lo, conv.act_quant.clip_hi] if clipping == "pact" else []),
        ]
        return [out.detach(), *(p.grad for p in params)]

    fused, separate = run(True), run(False)
    assert len(fused) == len(separate)
    for a, b in zip(fused, separate, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("probs", [(0.2, 0.5, 0.3), (0.98, 0.01, 0.01), (1e-6, 1e-6, 1.0 - 2e-6)])
def test_per_candidate_probs_grad_derives_the_likeliest_term_from_the_output(probs) -> None:
    """β_w's gradient of the architecture step's depthwise path: ``m - 1`` convolutions and ``⟨∂L/∂out, out⟩``
    give every ``⟨∂L/∂out, conv(x, Q_k(W))⟩``, the most probable candidate's too, whatever the probabilities."""
    from jaqc.nn.search_conv import _per_candidate_probs_grad

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 6, 9, 9, generator=gen)
    candidates = torch.randn(3, 6, 1, 3, 3, generator=gen)
    grad = torch.randn(2, 6, 5, 5, generator=gen)
    conv = ((2, 2), (1, 1), (1, 1), 6)
    p = torch.tensor(probs)

    def output(dtype: torch.dtype) -> torch.Tensor:
        mixed = (p.to(dtype)[:, None, None, None, None] * candidates.to(dtype)).sum(0)
        return F.conv2d(x.to(dtype), mixed, None, *conv)

    want = torch.stack([(F.conv2d(x.double(), c.double(), None, *conv) * grad.double()).sum() for c in candidates])
    got = _per_candidate_probs_grad(grad, output(torch.float32), x, candidates, p, conv)
    assert got.dtype == p.dtype
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-5)
    got64 = _per_candidate_probs_grad(
        grad.double(), output(torch.float64), x.double(), candidates.double(), p.double(), conv
    )
    torch.testing.assert_close(got64, want, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("which", ["weights", "activations"])
def test_csq_refuses_bad_bit_probabilities_before_observing_the_range(which: str) -> None:
    """A probability vector of the wrong length is a clear error, and the running range is left as it was."""
    conv = make_conv(QuantSearchMode.CSQ, 4, 4, 3, 1)
    conv.set_csq_channels([0, 2])
    good, bad = torch.full((3,), 1 / 3), torch.full((2,), 0.5)
    x = torch.randn(2, 4, 5, 5)
    conv(x, good, good)
    assert conv.act_quant is not None
    state = {k: v.clone() for k, v in conv.act_quant.state_dict().items()}
    probs = (bad, good) if which == "weights" else (good, bad)
    with pytest.raises(ValueError, match=r"^expected 3 bit probabilities, got shape \(2,\)$"):
        conv(10 * x, *probs)
    assert all(torch.equal(v, state[k]) for k, v in conv.act_quant.state_dict().items())


def test_weight_candidates_are_kept_until_the_weight_changes() -> None:
    """CSQ quantizes a weight once per value: the same tensor while the weight is unchanged (the architecture
    step's forward and backward and the next weight step's forward), new ones after an optimiser's in-place
    update, a load, a dtype change or :meth:`forget_weight_candidates` — equal bit for bit to a fresh conv's."""

    def fresh(conv: SearchConv2d) -> torch.Tensor:
        twin = make_conv(QuantSearchMode.CSQ, 6, 6, 3, 6)
        twin.load_state_dict(conv.state_dict())
        return twin.to(conv.weight.dtype).weight_candidates()

    conv = make_conv(QuantSearchMode.CSQ, 6, 6, 3, 6)
    conv.set_csq_channels([1, 4])
    first = conv.weight_candidates()
    assert first.shape == (3, 6, 1, 3, 3) and not first.requires_grad
    assert torch.equal(first, fresh(conv))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 5, 5, generator=gen).relu().requires_grad_()
    wp, ap = torch.full((3,), 1 / 3, requires_grad=True), torch.full((3,), 1 / 3)
    conv(x, wp, ap).sum().backward()  # the architecture step's backward uses the kept candidates
    assert conv.weight_candidates() is first
    assert wp.grad is not None and torch.isfinite(wp.grad).all()

    torch.optim.SGD(conv.parameters(), lr=0.1).step()  # an in-place update bumps the weight's version
    updated = conv.weight_candidates()
    assert updated is not first and not torch.equal(updated, first)
    assert torch.equal(updated, fresh(conv))

    other = make_conv(QuantSearchMode.CSQ, 6, 6, 3, 6, seed=5)
    conv.load_state_dict(other.state_dict())
    assert torch.equal(conv.weight_candidates(), other.weight_candidates())

    conv.double()
    assert conv.weight_candidates().dtype == torch.float64
    assert torch.equal(conv.weight_candidates(), fresh(conv))

    with torch.no_grad():
        conv.weight.data.mul_(2.0)  # bypasses the version: the caller forgets the candidates
    conv.forget_weight_candidates()
    assert torch.equal(conv.weight_candidates(), fresh(conv))


def test_csq_forward_after_a_weight_update_equals_a_fresh_conv() -> None:
    """A search iteration's conv (arch step, SGD update, weight step) gives the values and gradients a conv
    built afresh with the updated weight gives: no stale candidates reach the output."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 8, 6, 6, generator=gen)
    wp, ap = torch.softmax(torch.randn(3, generator=gen), 0), torch.softmax(torch.randn(3, generator=gen), 0)
    conv = make_conv(QuantSearchMode.CSQ, 8, 16, 1, 1)
    conv.set_csq_channels([2, 7])
    conv(x.relu(), wp, ap).square().sum().backward()
    torch.optim.SGD(conv.parameters(), lr=0.5).step()
    twin = make_conv(QuantSearchMode.CSQ, 8, 16, 1, 1)
    twin.load_state_dict(conv.state_dict())
    twin.set_csq_channels([2, 7])
    outs = []
    for module in (conv, twin):
        module.zero_grad()
        leaf = x.clone().requires_grad_()
        out = module(leaf.relu(), wp, ap)
        out.square().sum().backward()
        outs.append((out.detach(), leaf.grad, module.weight.grad))
    for got, want in zip(*outs, strict=True):
        assert torch.equal(got, want)
