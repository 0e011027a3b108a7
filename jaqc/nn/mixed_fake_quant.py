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

import torch
from torch import Tensor

from .fake_quant import (
    check_fake_quant_args,
    check_fake_quant_symmetric_args,
    quant_params,
    ste_grads,
    symmetric_scale,
    symmetric_ste_grads,
)

_OP_NAME = "jaqc::mixed_fake_quant"
_SYMMETRIC_OP_NAME = "jaqc::mixed_fake_quant_symmetric"


# --- every candidate at once ----------------------------------------------------------------------------------


def _per_candidate(param: Tensor, x: Tensor, axis: int) -> Tensor:
    """``param`` (``[m]``, or ``[m, C]`` with C on ``axis``) shaped to broadcast against ``[m, *x.shape]``."""
    shape = [param.shape[0]] + [1] * x.dim()
    if param.dim() == 2:
        shape[1 + axis % x.dim()] = param.shape[1]
    return param.reshape(shape)


def _shared(param: Tensor) -> bool:
    """Whether every candidate's row of ``param`` is one and the same row (expanded from it, or one candidate)."""
    return param.shape[0] == 1 or param.stride(0) == 0


def _bit_tensor(bits: list[int], x: Tensor, like: Tensor) -> Tensor:
    """``bits`` as ``x``'s dtype on ``like``'s device, shaped to broadcast against ``like`` (``[m]`` or ``[m, C]``)."""
    tensor = torch.tensor(bits, dtype=x.dtype, device=like.device)
    return tensor[:, None] if like.dim() == 2 else tensor


def _quantized(x: Tensor, scales: Tensor, lows: Tensor, highs: Tensor, axis: int) -> Tensor:
    """``[m, *x.shape]``: ``clamp(round(x / s_k), low_k, high_k) · s_k`` for every candidate ``k``."""
    scale = _per_candidate(scales, x, axis)
    codes = torch.round(x.unsqueeze(0) / scale)
    return torch.clamp(codes, _per_candidate(lows, x, axis), _per_candidate(highs, x, axis)).mul_(scale)


def _mix(quantized: Tensor, probs: Tensor) -> Tensor:
    """``Σ_k probs[k] · quantized[k]``, in ``quantized``'s dtype (autocast would run the product in bfloat16)."""
    with torch.autocast(quantized.device.type, enabled=False):
        return torch.tensordot(probs.to(quantized.dtype), quantized, dims=1)


def _probs_grad(quantized: Tensor, grad: Tensor, probs: Tensor) -> Tensor:
    """``[m]``: ``Σ grad · quantized[k]`` for every candidate ``k``."""
    with torch.autocast(quantized.device.type, enabled=False):
        return (quantized.flatten(1) @ grad.flatten().to(quantized.dtype)).to(probs.dtype)


# --- the asymmetric (activation) op -----------------------------------------------------------------------------


def _check(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> None:
    count = len(bits)
    if probs.shape != (count,) or lo.shape != hi.shape or lo.dim() not in (1, 2) or lo.shape[0] != count:
        raise ValueError(
            f"jaqc::mixed_fake_quant: {count} bit candidates need probs [{count}] and lo/hi [{count}] or "
            f"[{count}, C]; got probs {tuple(probs.shape)}, lo {tuple(lo.shape)}, hi {tuple(hi.shape)}"
        )
    for index, bit in enumerate(bits):
        check_fake_quant_args(x, lo[index], hi[index], bit, axis)


def quantized_candidates(x: Tensor, lo: Tensor, hi: Tensor, bits: list[int], axis: int) -> Tensor:
    """``[m, *x.shape]``: ``fake_quant(x, lo[k], hi[k], bits[k], axis)`` for every candidate ``k``."""
    bit_tensor = _bit_tensor(bits, x, lo)
    scales, zero_points = quant_params(lo.to(x.dtype), hi.to(x.dtype), bit_tensor)
    return _quantized(x, scales, -zero_points, (2.0**bit_tensor - 1.0) - zero_points, axis)


def mixed_fake_quant_impl(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """The computation of ``jaqc::mixed_fake_quant`` as plain torch code (no dispatch or autograd)."""
    return _mix(quantized_candidates(x, lo, hi, bits, axis), probs)


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
    ctx.save_for_backward(x, lo, hi, probs)


def _backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple:
    x, lo, hi, probs = ctx.saved_tensors
    need_x, need_lo, need_hi, need_probs = ctx.needs_input_grad[:4]
    grad_x = grad_lo = grad_hi = grad_probs = None
    if need_lo or need_hi or (need_x and not (_shared(lo) and _shared(hi))):
        terms = [ste_grads(x, lo[k], hi[k], ctx.axis, grad, need_lo or need_hi) for k in range(len(ctx.bits))]
        weights = probs.to(x.dtype)
        if need_x:
            grad_x = sum((weights[k] * term[0] for k, term in enumerate(terms)), torch.zeros_like(x))
        if need_lo:
            grad_lo = torch.stack([weights[k].to(lo.dtype) * term[1] for k, term in enumerate(terms)])
        if need_hi:
            grad_hi = torch.stack([weights[k].to(hi.dtype) * term[2] for k, term in enumerate(terms)])
    elif need_x:  # one range for every candidate: one mask, weighted by the candidates' total probability
        grad_x = ste_grads(x, lo[0], hi[0], ctx.axis, grad, False)[0] * probs.sum().to(x.dtype)
    if need_probs:
        grad_probs = _probs_grad(quantized_candidates(x, lo, hi, ctx.bits, ctx.axis), grad, probs)
    return grad_x, grad_lo, grad_hi, grad_probs, None, None


mixed_fake_quant.register_autograd(_backward, setup_context=_setup_context)


# --- the symmetric (weight) op ----------------------------------------------------------------------------------


def _check_symmetric(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> None:
    count = len(bits)
    if probs.shape != (count,) or amax.dim() not in (1, 2) or amax.shape[0] != count:
        raise ValueError(
            f"jaqc::mixed_fake_quant_symmetric: {count} bit candidates need probs [{count}] and amax [{count}] or "
            f"[{count}, C]; got probs {tuple(probs.shape)}, amax {tuple(amax.shape)}"
        )
    for index, bit in enumerate(bits):
        check_fake_quant_symmetric_args(x, amax[index], bit, axis)


def _symmetric_candidates(x: Tensor, amax: Tensor, bits: list[int], axis: int) -> Tensor:
    """``[m, *x.shape]``: ``fake_quant_symmetric(x, amax[k], bits[k], axis)`` for every candidate ``k``."""
    bit_tensor = _bit_tensor(bits, x, amax)
    levels = 2.0 ** (bit_tensor - 1) - 1.0  # symmetric_levels, for every candidate
    return _quantized(x, symmetric_scale(amax.to(x.dtype), bit_tensor), -levels, levels, axis)


def mixed_fake_quant_symmetric_impl(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """The computation of ``jaqc::mixed_fake_quant_symmetric`` as plain torch code."""
    return _mix(_symmetric_candidates(x, amax, bits, axis), probs)


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
        grad_probs = _probs_grad(_symmetric_candidates(x, amax, ctx.bits, ctx.axis), grad, probs)
    return grad_x, grad_amax, grad_probs, None, None


mixed_fake_quant_symmetric.register_autograd(_symmetric_backward, setup_context=_setup_symmetric_context)
