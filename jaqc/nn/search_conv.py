"""``SearchConv2d``: a conv whose weight and input activation are quantized as the search mode says.

The search's convs have no bias; a user model's conv (or one with BatchNorm folded into it) may have one, which
stays in floating point and is added once to the quantized conv's output.

The same module serves every :class:`QuantSearchMode` and, with one weight and one activation bitwidth,
a derived subnet's fixed-precision conv. In CSQ mode only the input channels in Ω (``csq_channels``) are
quantized (Eq. 6): the conv's input is ``Ã``, ``A`` with its Ω channels replaced by their β-mix of quantized
versions. ``Ã`` exists only inside one autograd node's forward and backward, made by swapping the quantized
channels into ``A`` in place and back, so autograd keeps the unquantized input ``A`` (which the preceding ReLU
keeps anyway) and tensors of size ``|Ω|`` per bit candidate, never a full-size quantized copy of the
activation, and a step runs one convolution per conv like a float step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common_quant import fake_quant_common, fake_quant_common_symmetric, sum_weighted
from .config import QuantizerConfig, QuantSearchMode, SearchStep
from .errors import NNStateError
from .fake_quant import channel_amax
from .mixed_fake_quant import (
    candidate_params,
    candidates_from_params,
    candidates_probs_grad,
    mix_candidates,
    mixed_fake_quant_grads,
    own_range_symmetric_candidates,
)
from .mixing import BitCandidates, hard_top_k_mix, hetero_blend, mix_quantized
from .quantizers import ActivationQuantizer

#: Modes that quantize only the channels in Ω.
SPARSE_MODES = frozenset({QuantSearchMode.CSQ, QuantSearchMode.CHANNEL0})


def _with_quantized_channels(x: Tensor, channels: Tensor, quantized: Tensor) -> Tensor:
    """``x̃``: a copy of ``x`` whose ``channels`` (dim 1) are ``quantized``."""
    return x.index_copy(1, channels, quantized.to(x.dtype))


def _swappable(x: Tensor) -> bool:
    """Whether ``x``'s channels may be swapped in place: an activation autograd produced (not a caller's tensor,
    which may be read-only memory) whose elements are distinct memory (not expanded)."""
    return x.grad_fn is not None and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))


@contextlib.contextmanager
def _quantized_input(
    x: Tensor, channels: Tensor, quantized: Tensor, original: Tensor | None = None
) -> Iterator[Tensor]:
    """``x̃`` for the duration of the block: ``x`` with its ``channels`` (dim 1) replaced by ``quantized``.

    The channels are swapped into ``x``'s own memory and the originals copied back, bit for bit, on exit, so
    ``x̃`` costs two copies of ``|Ω|`` channels instead of a copy of ``x``. The swap goes through ``x.data``,
    which does not bump ``x``'s autograd version: no reader of ``x`` (the ReLU that produced it keeps it for its
    backward) runs while the block does, and every later one sees ``x`` restored. Any other ``x`` (a leaf, an
    expanded tensor) gets a copy instead. ``original``: ``x``'s ``channels`` as they are, when the caller has
    them (CSQ's ``x_Ω``), copied back instead of a copy taken here.
    """
    if not _swappable(x):
        yield _with_quantized_channels(x, channels, quantized)
        return
    data = x.data
    kept = data.index_select(1, channels) if original is None else original
    data.index_copy_(1, channels, quantized.to(data.dtype))
    try:
        yield data
    finally:
        data.index_copy_(1, channels, kept)


class _SparseInputConv(torch.autograd.Function):
    """``conv(x̃, w)`` where ``x̃`` is ``x`` with its channels ``Ω`` replaced by ``quantized`` (CSQ, Eq. 6).

    ``x̃`` exists only inside forward and backward (:func:`_quantized_input`): autograd keeps ``x`` (which the
    preceding ReLU keeps anyway), the ``|Ω|``-channel ``quantized`` and the weight, and backward rebuilds ``x̃``
    before the convolution's backward. The step therefore costs one convolution like a float step, not a
    full-size quantized copy of the activation per conv nor a second, partial convolution.
    Gradients: ``x`` gets the input gradient outside ``Ω``, ``quantized`` the input gradient on ``Ω``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        quantized: Tensor,
        weight: Tensor,
        channels: Tensor,
        stride: tuple[int, ...],
        padding: tuple[int, ...],
        dilation: tuple[int, ...],
        groups: int,
    ) -> Tensor:
        ctx.save_for_backward(x, quantized, weight, channels)
        with _quantized_input(x, channels, quantized) as x_tilde:
            out = F.conv2d(x_tilde, weight, None, stride, padding, dilation, groups)
        ctx.conv = (stride, padding, dilation, groups, out.dtype)  # out.dtype: bfloat16 under autocast
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, quantized, weight, channels = ctx.saved_tensors
        stride, padding, dilation, groups, dtype = ctx.conv
        need_x, need_quantized, need_weight = ctx.needs_input_grad[:3]
        with _quantized_input(x, channels, quantized) as x_tilde:
            conv = (stride, padding, dilation, groups)  # on the operands the forward's conv ran on:
            mask = (need_x or need_quantized, need_weight)
            grad_input, grad_weight = _conv_backward(grad.to(dtype), x_tilde.to(dtype), weight.to(dtype), conv, mask)
        assert grad_input is not None or not (need_x or need_quantized)
        grad_quantized = grad_input.index_select(1, channels).to(quantized.dtype) if need_quantized else None
        grad_x = grad_input.index_fill_(1, channels, 0.0).to(x.dtype) if need_x else None  # grad_input is ours
        grad_weight = grad_weight.to(weight.dtype) if need_weight else None
        return grad_x, grad_quantized, grad_weight, None, None, None, None, None


def _conv_backward(
    grad: Tensor,
    x: Tensor,
    weight: Tensor,
    conv: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int],
    mask: tuple[bool, bool],
) -> tuple[Tensor | None, Tensor | None]:
    """The input and weight gradients (those ``mask`` asks for) of ``conv2d(x, weight, None, *conv)``."""
    stride, padding, dilation, groups = conv
    grad_input, grad_weight, _ = torch.ops.aten.convolution_backward(
        grad, x, weight, None, stride, padding, dilation, False, [0] * len(padding), groups, [*mask, False]
    )
    return grad_input, grad_weight


def _per_candidate_probs_grad(
    grad: Tensor,
    out: Tensor,
    x: Tensor,
    candidates: Tensor,
    probs: Tensor,
    conv: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int],
) -> Tensor:
    """``[m]``: ``t_k = ⟨grad, conv(x, candidates[k])⟩``, the gradient of ``probs`` where ``out = conv(x, Σ_k probs[k]
    candidates[k])``, with ``m - 1`` convolutions: the conv is linear in its weight, so ``Σ_k probs[k] t_k =
    ⟨grad, out⟩`` gives the term of the most probable candidate ``j`` from the others' (dividing by
    ``probs[j] ≥ 1/m`` amplifies their rounding at most ``m``-fold). Sums in float32 (in float64 on a float64 input)."""
    acc = torch.promote_types(grad.dtype, torch.float32)
    flat = grad.reshape(-1).to(acc)
    weights = probs.detach().to(acc)
    j = int(torch.argmax(weights))
    terms = [
        torch.dot(F.conv2d(x, c, None, *conv).reshape(-1).to(acc), flat) if k != j else None
        for k, c in enumerate(candidates)
    ]
    rest = sum((weights[k] * t for k, t in enumerate(terms) if t is not None), torch.zeros((), dtype=acc))
    terms[j] = (torch.dot(out.reshape(-1).to(acc), flat) - rest) / weights[j]
    return torch.stack(terms).to(probs.dtype)  # type: ignore[arg-type]


class _CsqConv(torch.autograd.Function):
    """CSQ's conv with both β-mixes inside one autograd node (Eq. 6): ``conv(x̃, W̃)``, where ``x̃`` is ``x`` with
    its channels ``Ω`` replaced by ``Σ_k a_k Q_k(x_Ω)`` (over ``[lo_k, hi_k]``) and ``W̃ = Σ_k w_k Q_k(W)``.

    The same values and gradients as the three nodes ``mixed_fake_quant(x_Ω)``, ``mixed_fake_quant_symmetric(W)``
    and :class:`_SparseInputConv`, with less work per conv, which the search runs on every conv of the supernet
    every step:

    * the gradient of ``x`` is built in the input gradient the conv's backward returns: its ``Ω`` channels are
      overwritten with the straight-through gradient of ``x_Ω``, where the three nodes add a second, full-size
      gradient (zeros but for ``Ω``) into ``x``'s;
    * the weight's candidates are quantized over its own per-channel range ``max |w|``, where every element
      lies in range: ``W``'s straight-through gradient is ``∂L/∂W̃ · Σ_k w_k``, with no mask to compute, and the
      candidates need no clamp (:func:`own_range_symmetric_candidates`). They come in as ``w_candidates``, the
      conv's :meth:`SearchConv2d.weight_candidates`, computed once per value of the weight: the architecture
      step's forward and backward and the next weight step's forward share them;
    * likewise ``x_Ω``'s, when its range is its own batch minimum and maximum (``in_range``: a min/max
      observer in training mode), and the candidates' scales and zero points are kept for backward (a few
      numbers), not recomputed;
    * ``w``'s gradient is ``⟨∂L/∂W̃, Q_k(W)⟩``. In the architecture step, where ``W`` is a constant, a depthwise
      conv on the CPU computes it as ``⟨∂L/∂out, conv(x̃, Q_k(W))⟩`` instead (the conv is linear in its
      weight): ``m - 1`` depthwise forward convolutions (:func:`_per_candidate_probs_grad`), which oneDNN runs
      faster than the one depthwise weight gradient they replace (docs/search.md, "Step cost"). On a GPU the
      weight gradient is kept until measured there.

    Autograd keeps what the three nodes keep: ``x`` (which the preceding ReLU keeps anyway), ``x_Ω``, its mix,
    ``W̃`` and the small range and probability tensors, and on that depthwise path the output (which the batch
    norm after it keeps anyway); backward recomputes the candidates of ``x_Ω`` where the gradient of their
    probabilities needs them and reads ``W``'s from the conv's kept ones (a reference, not counted as saved).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        selected: Tensor,
        lo: Tensor,
        hi: Tensor,
        a_probs: Tensor,
        weight: Tensor,
        w_candidates: Tensor,
        w_probs: Tensor,
        channels: Tensor,
        bits: tuple[list[int], list[int]],
        conv: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int],
        in_range: bool,
    ) -> Tensor:
        a_bits = bits[0]
        stride, padding, dilation, groups = conv
        a_params = candidate_params(selected, lo, hi, a_bits)
        quantized = mix_candidates(candidates_from_params(selected, a_params, 0), a_probs)
        mixed = mix_candidates(w_candidates, w_probs)
        with _quantized_input(x, channels, quantized, selected) as x_tilde:
            out = F.conv2d(x_tilde, mixed, None, stride, padding, dilation, groups)
        # on the CPU only: oneDNN's depthwise weight gradient is the slow one (cuDNN's is not measured yet)
        depthwise = groups == weight.shape[0] == x.shape[1] and weight.shape[1] == 1 and x.device.type == "cpu"
        need_weight, need_w = ctx.needs_input_grad[5], ctx.needs_input_grad[7]
        per_candidate = need_w and depthwise and not need_weight  # the architecture step's ⟨∂L/∂out, conv(x̃, Q_k(W))⟩
        # ... whose sum over k weighted by w is ⟨∂L/∂out, out⟩: one candidate's term follows from the others'. The
        # output is kept only then; the batch norm after the conv keeps it anyway (one storage, no extra memory).
        kept = (out,) if per_candidate else ()
        saved = (x, selected, quantized, lo, hi, a_probs, weight, mixed, w_probs, channels, *a_params, *kept)
        ctx.save_for_backward(*saved)
        # Q_k(W) for w's gradient: the conv's cache of them (SearchConv2d.weight_candidates), which lives as long as
        # the weight does not change, whatever autograd keeps; a reference, not a copy
        ctx.w_candidates = w_candidates if need_w else None
        ctx.bits = bits
        ctx.in_range = in_range
        ctx.conv = (conv, out.dtype, per_candidate)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, selected, quantized, lo, hi, a_probs, weight, mixed, w_probs, channels, *rest = ctx.saved_tensors
        a_params, kept = tuple(rest[:3]), rest[3:]
        a_bits = ctx.bits[0]
        conv, dtype, per_candidate = ctx.conv
        need_x, _, need_lo, need_hi, need_a, need_weight, _, need_w = ctx.needs_input_grad[:8]
        need_quantized = need_x or need_lo or need_hi or need_a  # everything of x_Ω's mix
        need_mixed = need_weight or (need_w and not per_candidate)
        w_candidates = ctx.w_candidates
        grad = grad.to(dtype)
        grad_input = grad_weight = grad_w = None
        with _quantized_input(x, channels, quantized, selected) as x_tilde:
            x_tilde = x_tilde.to(dtype)  # the operands the forward's conv ran on
            if need_quantized or need_mixed:
                mask = (need_quantized, need_mixed)
                grad_input, grad_mixed = _conv_backward(grad, x_tilde, mixed.to(dtype), conv, mask)
                if need_weight:
                    grad_weight = (grad_mixed * w_probs.sum().to(grad_mixed.dtype)).to(weight.dtype)
                if need_w and not per_candidate:
                    assert w_candidates is not None
                    grad_w = candidates_probs_grad(w_candidates, grad_mixed, w_probs)
            if per_candidate:
                assert w_candidates is not None
                grad_w = _per_candidate_probs_grad(grad, kept[0], x_tilde, w_candidates.to(dtype), w_probs, conv)
        grad_x = grad_lo = grad_hi = grad_a = None
        if need_quantized:
            assert grad_input is not None
            grad_quantized = grad_input.index_select(1, channels).to(selected.dtype)
            needs = (need_x, need_lo, need_hi, need_a)
            grad_selected, grad_lo, grad_hi, grad_a = mixed_fake_quant_grads(
                selected, lo, hi, a_probs, a_bits, 0, grad_quantized, needs, a_params, ctx.in_range
            )
            if need_x:
                assert grad_selected is not None
                grad_x = grad_input.index_copy_(1, channels, grad_selected.to(grad_input.dtype)).to(x.dtype)
        return grad_x, None, grad_lo, grad_hi, grad_a, grad_weight, None, grad_w, None, None, None, None


class SearchConv2d(nn.Conv2d):
    """Bias-free conv with mode-dependent quantization of its weight and input activation.

    ``forward(x, w_probs, a_probs)`` takes the β probabilities over ``weight_bits`` and
    ``activation_bits`` (``None`` when there is a single bitwidth, or in ``FLOAT`` mode).
    """

    #: Ω as a tensor (read-only; change it with :meth:`set_csq_channels`).
    csq_channels: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        *,
        mode: QuantSearchMode = QuantSearchMode.FLOAT,
        weight_bits: Sequence[int] = (),
        activation_bits: Sequence[int] = (),
        quantizer: QuantizerConfig | None = None,
        hetero_top_k: int = 2,
        bias: bool = False,
        padding: int | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2 if padding is None else padding,  # "same" for odd kernels by default
            groups=groups,
            bias=bias,
        )
        self.mode = QuantSearchMode(mode)
        self.weight_bits: tuple[int, ...] = tuple(weight_bits)
        self.activation_bits: tuple[int, ...] = tuple(activation_bits)
        if self.mode is not QuantSearchMode.FLOAT and not (self.weight_bits and self.activation_bits):
            raise NNStateError(f"SearchConv2d in mode {self.mode.value!r} needs weight and activation bits")
        self.hetero_top_k = hetero_top_k
        self.search_step = SearchStep.WEIGHTS
        #: False: compute in floating point whatever the mode (a retraining's float warm-up, see
        #: :func:`jaqc.nn.subnet.quantization_disabled`).
        self.quantize = True
        self.act_quant: ActivationQuantizer | None = None
        if self.mode is not QuantSearchMode.FLOAT:
            self.act_quant = ActivationQuantizer(self.activation_bits, quantizer)
        self._candidates: Tensor | None = None  # weight_candidates() and the weight it was computed from
        self._candidates_key: tuple[Any, ...] | None = None
        self.register_buffer("csq_channels", torch.zeros(1, dtype=torch.long), persistent=False)
        self._csq_list: list[int] = [0]
        self.set_csq_channels([0])

    # ----------------------------------------------------------------------------------------- CSQ channels
    def set_csq_channels(self, indices: Sequence[int] | Tensor) -> None:
        """Set Ω, the input channels quantized in CSQ mode (sorted, unique, in range)."""
        values = [int(v) for v in (indices.tolist() if isinstance(indices, Tensor) else indices)]
        if not values or sorted(set(values)) != values or values[0] < 0 or values[-1] >= self.in_channels:
            raise NNStateError(
                f"CSQ channels must be sorted, unique and in 0..{self.in_channels - 1}, got {values[:8]}"
                + ("..." if len(values) > 8 else "")
            )
        if values == self._csq_list and self.csq_channels.device == self.weight.device:
            return
        self.csq_channels = torch.tensor(values, dtype=torch.long, device=self.weight.device)
        self._csq_list = values

    # ------------------------------------------------------------------------------------------ forward
    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        # Every forward path calls this once on the whole input, so an optional bias is added exactly once; it stays
        # in floating point (the 32-bit accumulator adds it). It is added after the convolution, not inside it, so
        # an exported Conv + Add computes the same floats (a bias inside the conv kernel changes the summation
        # order, and the next layer's low-bit quantizer can round the difference to a whole step).
        out = F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)

    def _weight_ranges(self) -> Tensor:
        """``[m, C_out]``: every weight candidate's symmetric range, the weight's per-channel ``max |w|``."""
        return channel_amax(self.weight).expand(len(self.weight_bits), -1)

    def weight_candidates(self) -> Tensor:
        """``[m, *weight.shape]``: the weight quantized with every bit candidate over its own per-channel range
        (``Q_k(W)``; CSQ's weight candidates, :func:`own_range_symmetric_candidates`), without gradient.

        Computed once per value of the weight and kept until the weight changes (an in-place update, which bumps
        its version, or another tensor): a search iteration quantizes each weight once, not three times (its
        architecture step's forward and backward and the next weight step's forward all see the same weight).
        It costs ``m`` times the weight's memory per conv, whatever the batch. A write through ``weight.data``
        bypasses the version; call :meth:`forget_weight_candidates` after one."""
        weight = self.weight
        key = (weight._version, weight.data_ptr(), weight.dtype, weight.device, self.weight_bits)
        if self._candidates_key != key:
            self._candidates = None  # free the old ones before the new ones are computed
            amax = self._weight_ranges()
            self._candidates = own_range_symmetric_candidates(weight.detach(), amax, list(self.weight_bits), 0)
            self._candidates_key = key
        assert self._candidates is not None
        return self._candidates

    def forget_weight_candidates(self) -> None:
        """Drop :meth:`weight_candidates`' kept tensor (its memory; it is recomputed when next needed)."""
        self._candidates = None
        self._candidates_key = None

    def _weight_bit_candidates(self) -> BitCandidates:
        return BitCandidates.symmetric_range(self._weight_ranges(), self.weight_bits, 0)

    def _activation_candidates(self, x: Tensor) -> BitCandidates:
        assert self.act_quant is not None
        lo, hi = self.act_quant.clip_ranges(x)
        return BitCandidates(lo, hi, self.activation_bits, 0)

    def _mix(self, x: Tensor, candidates: BitCandidates, probs: Tensor | None) -> Tensor:
        if self.mode is QuantSearchMode.HETERO and probs is not None:
            if self.search_step is SearchStep.WEIGHTS:
                return hetero_blend(x, candidates, probs)
            return hard_top_k_mix(x, candidates, probs, self.hetero_top_k)
        return mix_quantized(x, candidates, probs)

    def forward(self, x: Tensor, w_probs: Tensor | None = None, a_probs: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """The conv of the quantized input with the quantized weight, as ``mode`` prescribes."""
        if self.mode is QuantSearchMode.FLOAT or not self.quantize:
            return self._conv(x, self.weight)
        if self.mode is QuantSearchMode.NAIVE_COMMON:
            return self._common_forward(x, w_probs, a_probs)
        if self.mode in SPARSE_MODES and w_probs is not None and a_probs is not None:
            return self._csq_forward(x, w_probs, a_probs)
        weight = self._mix(self.weight, self._weight_bit_candidates(), w_probs)
        if self.mode not in SPARSE_MODES:
            return self._conv(self._mix(x, self._activation_candidates(x), a_probs), weight)
        return self._sparse_forward(x, weight, a_probs)

    def _common_forward(self, x: Tensor, w_probs: Tensor | None, a_probs: Tensor | None) -> Tensor:
        if w_probs is None or a_probs is None:
            raise NNStateError("mode naive_common needs bit probabilities")
        weight = sum_weighted([fake_quant_common_symmetric(self.weight, b, axis=0) for b in self.weight_bits], w_probs)
        inputs = sum_weighted([fake_quant_common(x, b) for b in self.activation_bits], a_probs)
        return self._conv(inputs, weight)

    def _sparse_forward(self, x: Tensor, weight: Tensor, a_probs: Tensor | None) -> Tensor:
        channels = self.csq_channels  # a buffer: on the module's device, like the weight
        selected = x.index_select(1, channels)
        quantized = self._mix(selected, self._activation_candidates(selected), a_probs)
        out = _SparseInputConv.apply(
            x, quantized, weight, channels, self.stride, self.padding, self.dilation, self.groups
        )
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)

    def _csq_forward(self, x: Tensor, w_probs: Tensor, a_probs: Tensor) -> Tensor:
        """:meth:`_sparse_forward` with both mixes inside the conv's autograd node (:class:`_CsqConv`)."""
        for probs, count in ((w_probs, len(self.weight_bits)), (a_probs, len(self.activation_bits))):
            if probs.shape != (count,):
                raise ValueError(f"expected {count} bit probabilities, got shape {tuple(probs.shape)}")
        channels = self.csq_channels
        selected = x.detach().index_select(1, channels)  # x_Ω; its gradient comes back through x's
        activations = self._activation_candidates(selected)
        bits = (list(self.activation_bits), list(self.weight_bits))
        conv = (self.stride, self.padding, self.dilation, self.groups)
        lo, hi, weight = activations.lo, activations.hi, self.weight
        in_range = self.act_quant is not None and self.act_quant.observes_own_range()
        candidates = self.weight_candidates()
        out = _CsqConv.apply(x, selected, lo, hi, a_probs, weight, candidates, w_probs, channels, bits, conv, in_range)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        text = super().extra_repr() + f", mode={self.mode.value}"
        if self.mode is not QuantSearchMode.FLOAT:
            text += f", weight_bits={self.weight_bits}, activation_bits={self.activation_bits}"
        return text
