"""The β-mix of fake-quantized candidates as one custom op, ``jaqc::mixed_fake_quant`` (Eq. 5's inner sum).

``mixed_fake_quant(x, lo, hi, probs, bits, axis) = Σ_k probs[k] · fake_quant(x, lo[k], hi[k], bits[k], axis)``
with ``lo``/``hi`` of shape ``[m]`` (per tensor) or ``[m, C]`` (per channel on ``axis``).

Autograd keeps only ``x`` and the small range and probability tensors; backward recomputes each
``Q_k(x)`` for the gradient of ``probs[k]``. Gradients are those of the sum of ``fake_quant`` terms:
straight-through for ``x`` (each term's in-range mask weighted by ``probs[k]``), PACT for the ranges,
``Σ grad · Q_k(x)`` for ``probs[k]``. This op only serves the search; a derived subnet has one bitwidth
per layer and uses ``jaqc::fake_quant``.

``mixed_fake_quant_symmetric(x, amax, probs, bits, axis)`` is the same mix of ``fake_quant_symmetric`` terms
(the weights' symmetric narrow-range quantizer), with ``amax`` of shape ``[m]`` or ``[m, C]``.

Every candidate is computed at once, on one ``[m, *x.shape]`` tensor: a handful of kernels whatever ``m`` (the
search runs these ops on every conv's weight and Ω activations, where per-op overhead dominates). Candidates
that share one range (``lo``/``hi`` or ``amax`` expanded from one row: an activation's observed min/max, a
weight's ``max |w|``) share one straight-through mask in backward.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .fake_quant import (
    check_fake_quant_args,
    check_fake_quant_symmetric_args,
    quant_levels,
    quant_params_for_levels,
    ste_grads,
    symmetric_levels,
    symmetric_scale_for_levels,
    symmetric_ste_grads,
)

_OP_NAME = "jaqc::mixed_fake_quant"
_SYMMETRIC_OP_NAME = "jaqc::mixed_fake_quant_symmetric"


# --- every candidate at once ----------------------------------------------------------------------------------

#: The largest codes of each bit tuple as a tensor, per (bits, symmetric, per-channel shape, dtype, device): the
#: search asks for them twice per conv per step, and building a tensor from a list is a host-to-device copy.
_LEVELS: dict[tuple[tuple[int, ...], bool, bool, torch.dtype, torch.device], Tensor] = {}


def _levels(bits: list[int], symmetric: bool, like: Tensor, dtype: torch.dtype) -> Tensor:
    """``2^b - 1`` (or ``2^(b-1) - 1`` when ``symmetric``) for every candidate, in ``dtype`` on ``like``'s device,
    shaped to broadcast against ``like`` (``[m]`` or ``[m, C]``). Cached; never write to the result."""
    cacheable = type(like) in (Tensor, torch.nn.Parameter)  # not a fake or traced tensor (opcheck, compile)
    key = (tuple(bits), symmetric, like.dim() == 2, dtype, like.device)
    found = _LEVELS.get(key) if cacheable else None
    if found is None:
        codes = [float(symmetric_levels(b) if symmetric else quant_levels(b)) for b in bits]
        found = like.new_tensor(codes, dtype=dtype)
        found = found[:, None] if like.dim() == 2 else found
        if cacheable:
            _LEVELS[key] = found
    return found


def _per_candidate(param: Tensor, x: Tensor, axis: int) -> Tensor:
    """``param`` (``[m]``, or ``[m, C]`` with C on ``axis``) shaped to broadcast against ``[m, *x.shape]``."""
    shape = [param.shape[0]] + [1] * x.dim()
    if param.dim() == 2:
        shape[1 + axis % x.dim()] = param.shape[1]
    return param.reshape(shape)


def _shared(param: Tensor) -> bool:
    """Whether every candidate's row of ``param`` is one and the same row (expanded from it, or one candidate)."""
    return param.shape[0] == 1 or param.stride(0) == 0


def candidates_from_params(x: Tensor, params: tuple[Tensor, Tensor, Tensor], axis: int) -> Tensor:
    """``[m, *x.shape]``: ``clamp(round(x / s_k), low_k, high_k) · s_k`` for every candidate ``k``, from
    ``params = (scales, lows, highs)``."""
    scales, lows, highs = params
    scale = _per_candidate(scales, x, axis)
    codes = torch.round(x.unsqueeze(0) / scale)
    return torch.clamp(codes, _per_candidate(lows, x, axis), _per_candidate(highs, x, axis)).mul_(scale)


def _without_autocast(function: Any, quantized: Tensor, *args: Tensor) -> Tensor:
    """``function(quantized, *args)`` in ``quantized``'s dtype even under autocast (which would run the product
    in bfloat16)."""
    device = quantized.device.type
    if torch.is_autocast_enabled(device):
        with torch.autocast(device, enabled=False):
            return function(quantized, *args)
    return function(quantized, *args)


def _weighted_sum(quantized: Tensor, probs: Tensor) -> Tensor:
    flat = quantized.reshape(quantized.shape[0], -1)
    return torch.mm(probs.to(quantized.dtype)[None], flat).view(quantized.shape[1:])


def mix_candidates(quantized: Tensor, probs: Tensor) -> Tensor:
    """``Σ_k probs[k] · quantized[k]`` of ``[m, ...]`` candidates (those of :func:`quantized_candidates` or
    :func:`symmetric_quantized_candidates`), in their dtype: the ops' forward value, bit for bit."""
    return _without_autocast(_weighted_sum, quantized, probs)


def _dot_each(quantized: Tensor, grad: Tensor) -> Tensor:
    return quantized.reshape(quantized.shape[0], -1) @ grad.reshape(-1).to(quantized.dtype)


def candidates_probs_grad(quantized: Tensor, grad: Tensor, probs: Tensor) -> Tensor:
    """``[m]``: ``Σ grad · quantized[k]`` for every candidate ``k``, the gradient of ``probs`` in
    :func:`mix_candidates` (in ``probs``' dtype)."""
    return _without_autocast(_dot_each, quantized, grad).to(probs.dtype)


# --- the asymmetric (activation) op -----------------------------------------------------------------------------


def _check(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> None:
    count = len(bits)
    if probs.shape != (count,) or lo.shape != hi.shape or lo.dim() not in (1, 2) or lo.shape[0] != count:
        raise ValueError(
            f"jaqc::mixed_fake_quant: {count} bit candidates need probs [{count}] and lo/hi [{count}] or "
            f"[{count}, C]; got probs {tuple(probs.shape)}, lo {tuple(lo.shape)}, hi {tuple(hi.shape)}"
        )
    first_lo, first_hi = lo[0], hi[0]  # every row has the same shape
    for bit in bits:
        check_fake_quant_args(x, first_lo, first_hi, bit, axis)


def candidate_params(x: Tensor, lo: Tensor, hi: Tensor, bits: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """``(scales, lows, highs)`` of every candidate (``[m]`` or ``[m, C]``): ``fake_quant``'s ``s`` and its
    integer range ``[-z, 2^b - 1 - z]``, for :func:`candidates_from_params` and :func:`mixed_fake_quant_grads`
    (which then need not recompute them)."""
    levels = _levels(bits, False, lo, x.dtype)
    scales, zero_points = quant_params_for_levels(lo.to(x.dtype), hi.to(x.dtype), levels)
    return scales, -zero_points, levels - zero_points


def quantized_candidates(x: Tensor, lo: Tensor, hi: Tensor, bits: list[int], axis: int) -> Tensor:
    """``[m, *x.shape]``: ``fake_quant(x, lo[k], hi[k], bits[k], axis)`` for every candidate ``k``."""
    return candidates_from_params(x, candidate_params(x, lo, hi, bits), axis)


def mixed_fake_quant_impl(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """The computation of ``jaqc::mixed_fake_quant`` as plain torch code (no dispatch or autograd)."""
    return mix_candidates(quantized_candidates(x, lo, hi, bits, axis), probs)


@torch.library.custom_op(_OP_NAME, mutates_args=())
def mixed_fake_quant(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """``Σ_k probs[k] · fake_quant(x, lo[k], hi[k], bits[k], axis)``."""
    _check(x, lo, hi, probs, bits, axis)
    return mixed_fake_quant_impl(x, lo, hi, probs, bits, axis)


@mixed_fake_quant.register_fake
def _mixed_fake_quant_fake(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    _check(x, lo, hi, probs, bits, axis)
    return torch.empty_like(x)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    x, lo, hi, probs, bits, axis = inputs
    ctx.bits = list(bits)
    ctx.axis = axis
    ctx.params = None  # recomputed in backward where needed
    ctx.save_for_backward(x, lo, hi, probs)


def mixed_fake_quant_grads(
    x: Tensor,
    lo: Tensor,
    hi: Tensor,
    probs: Tensor,
    bits: list[int],
    axis: int,
    grad: Tensor,
    needs: tuple[bool, bool, bool, bool],
    params: tuple[Tensor, Tensor, Tensor] | None = None,
    in_range: bool = False,
) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
    """The gradients of ``(x, lo, hi, probs)`` in ``jaqc::mixed_fake_quant`` for the incoming ``grad``, those of
    ``needs`` only (``params``: the candidates' :func:`candidate_params`, recomputed when not given).

    ``in_range``: every element of ``x`` lies in every candidate's range (the ranges are ``x``'s own minimum and
    maximum, as an activation quantizer's training-mode min/max observation makes them), so ``x``'s
    straight-through mask is all ones and is not computed: ``x`` gets ``grad · Σ_k probs[k]``, the same values."""
    need_x, need_lo, need_hi, need_probs = needs
    grad_x = grad_lo = grad_hi = grad_probs = None
    if in_range and need_x and not (need_lo or need_hi):
        grad_x = grad * probs.sum().to(x.dtype)
    elif need_lo or need_hi or (need_x and not (_shared(lo) and _shared(hi))):
        terms = [ste_grads(x, lo[k], hi[k], axis, grad, need_lo or need_hi) for k in range(len(bits))]
        weights = probs.to(x.dtype)
        if need_x:
            grad_x = sum((weights[k] * term[0] for k, term in enumerate(terms)), torch.zeros_like(x))
        if need_lo:
            grad_lo = torch.stack([weights[k].to(lo.dtype) * term[1] for k, term in enumerate(terms)])
        if need_hi:
            grad_hi = torch.stack([weights[k].to(hi.dtype) * term[2] for k, term in enumerate(terms)])
    elif need_x:  # one range for every candidate: one mask, weighted by the candidates' total probability
        grad_x = ste_grads(x, lo[0], hi[0], axis, grad, False)[0] * probs.sum().to(x.dtype)
    if need_probs:
        params = params if params is not None else candidate_params(x, lo, hi, bits)
        grad_probs = candidates_probs_grad(candidates_from_params(x, params, axis), grad, probs)
    return grad_x, grad_lo, grad_hi, grad_probs


def _backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple:
    x, lo, hi, probs = ctx.saved_tensors
    needs = tuple(ctx.needs_input_grad[:4])
    grads = mixed_fake_quant_grads(x, lo, hi, probs, ctx.bits, ctx.axis, grad, needs, ctx.params)  # type: ignore[arg-type]
    return *grads, None, None


mixed_fake_quant.register_autograd(_backward, setup_context=_setup_context)


class _MixedFakeQuant(torch.autograd.Function):
    """``jaqc::mixed_fake_quant`` without torch.library's dispatch: the same forward and autograd formula; the
    candidates' (small) parameters are kept for backward instead of recomputed."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int
    ) -> Tensor:
        params = candidate_params(x, lo, hi, bits)
        output = mix_candidates(candidates_from_params(x, params, axis), probs)
        _setup_context(ctx, (x, lo, hi, probs, bits, axis), output)
        ctx.params = params
        return output

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple:  # type: ignore[override]
        return _backward(ctx, grad)


def mixed_fake_quant_fn(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """``jaqc::mixed_fake_quant`` as an ``autograd.Function``: the same values and gradients without the custom
    op's dispatch, which costs about as much as the op itself on the search's small tensors (every conv's
    weight and Ω activations, every step). The search's modules call this; the op serves torch.library users."""
    _check(x, lo, hi, probs, bits, axis)
    return _MixedFakeQuant.apply(x, lo, hi, probs, bits, axis)


# --- the symmetric (weight) op ----------------------------------------------------------------------------------


def _check_symmetric(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> None:
    count = len(bits)
    if probs.shape != (count,) or amax.dim() not in (1, 2) or amax.shape[0] != count:
        raise ValueError(
            f"jaqc::mixed_fake_quant_symmetric: {count} bit candidates need probs [{count}] and amax [{count}] or "
            f"[{count}, C]; got probs {tuple(probs.shape)}, amax {tuple(amax.shape)}"
        )
    first = amax[0]  # every row has the same shape
    for bit in bits:
        check_fake_quant_symmetric_args(x, first, bit, axis)


def _symmetric_params(x: Tensor, amax: Tensor, bits: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """``(scales, lows, highs)`` of every candidate: ``fake_quant_symmetric``'s ``s`` and codes ``-n..n``."""
    levels = _levels(bits, True, amax, x.dtype)
    return symmetric_scale_for_levels(amax.to(x.dtype), levels), -levels, levels


def symmetric_quantized_candidates(x: Tensor, amax: Tensor, bits: list[int], axis: int) -> Tensor:
    """``[m, *x.shape]``: ``fake_quant_symmetric(x, amax[k], bits[k], axis)`` for every candidate ``k``."""
    return candidates_from_params(x, _symmetric_params(x, amax, bits), axis)


def own_range_symmetric_candidates(x: Tensor, amax: Tensor, bits: list[int], axis: int) -> Tensor:
    """:func:`symmetric_quantized_candidates` where ``amax`` is ``x``'s own ``max |x|`` on ``axis`` (a weight's
    per-channel range): the same values, bit for bit, without the clamp to ``[-n, n]``, which cannot bind there.
    ``|x| ≤ amax`` and ``s = amax / n`` put ``|x / s|`` within about ``n (1 + eps)`` (``eps``: the dtype's
    machine epsilon), which rounds to at most ``n`` while ``n · eps ≤ 1/4`` (float32: every bitwidth to 16;
    bfloat16: to 6 bits; beyond, the clamp is kept); a zero range has scale 1 and an all-zero ``x``."""
    params = _symmetric_params(x, amax, bits)
    if max(symmetric_levels(b) for b in bits) * torch.finfo(x.dtype).eps > 0.25:
        return candidates_from_params(x, params, axis)
    scale = _per_candidate(params[0], x, axis)
    return torch.round(x.unsqueeze(0) / scale).mul_(scale)


def mixed_fake_quant_symmetric_impl(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """The computation of ``jaqc::mixed_fake_quant_symmetric`` as plain torch code."""
    return mix_candidates(symmetric_quantized_candidates(x, amax, bits, axis), probs)


@torch.library.custom_op(_SYMMETRIC_OP_NAME, mutates_args=())
def mixed_fake_quant_symmetric(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """``Σ_k probs[k] · fake_quant_symmetric(x, amax[k], bits[k], axis)``."""
    _check_symmetric(x, amax, probs, bits, axis)
    return mixed_fake_quant_symmetric_impl(x, amax, probs, bits, axis)


@mixed_fake_quant_symmetric.register_fake
def _mixed_fake_quant_symmetric_fake(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    _check_symmetric(x, amax, probs, bits, axis)
    return torch.empty_like(x)


def _setup_symmetric_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    x, amax, probs, bits, axis = inputs
    ctx.bits = list(bits)
    ctx.axis = axis
    ctx.params = None
    ctx.save_for_backward(x, amax, probs)


def _symmetric_backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple:
    x, amax, probs = ctx.saved_tensors
    need_x, need_amax, need_probs = ctx.needs_input_grad[:3]
    grad_x = grad_amax = grad_probs = None
    if need_amax or (need_x and not _shared(amax)):
        terms = [symmetric_ste_grads(x, amax[k], ctx.axis, grad, need_amax) for k in range(len(ctx.bits))]
        weights = probs.to(x.dtype)
        if need_x:
            grad_x = sum((weights[k] * term[0] for k, term in enumerate(terms)), torch.zeros_like(x))
        if need_amax:
            grad_amax = torch.stack([weights[k].to(amax.dtype) * term[1] for k, term in enumerate(terms)])
    elif need_x:  # one range for every candidate: one mask, weighted by the candidates' total probability
        grad_x = symmetric_ste_grads(x, amax[0], ctx.axis, grad, False)[0] * probs.sum().to(x.dtype)
    if need_probs:
        params = ctx.params if ctx.params is not None else _symmetric_params(x, amax, ctx.bits)
        grad_probs = candidates_probs_grad(candidates_from_params(x, params, ctx.axis), grad, probs)
    return grad_x, grad_amax, grad_probs, None, None


mixed_fake_quant_symmetric.register_autograd(_symmetric_backward, setup_context=_setup_symmetric_context)


class _MixedFakeQuantSymmetric(torch.autograd.Function):
    """``jaqc::mixed_fake_quant_symmetric`` without torch.library's dispatch (see :class:`_MixedFakeQuant`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:  # type: ignore[override]
        params = _symmetric_params(x, amax, bits)
        output = mix_candidates(candidates_from_params(x, params, axis), probs)
        _setup_symmetric_context(ctx, (x, amax, probs, bits, axis), output)
        ctx.params = params
        return output

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple:  # type: ignore[override]
        return _symmetric_backward(ctx, grad)


def mixed_fake_quant_symmetric_fn(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """``jaqc::mixed_fake_quant_symmetric`` as an ``autograd.Function`` (see :func:`mixed_fake_quant_fn`)."""
    _check_symmetric(x, amax, probs, bits, axis)
    return _MixedFakeQuantSymmetric.apply(x, amax, probs, bits, axis)
