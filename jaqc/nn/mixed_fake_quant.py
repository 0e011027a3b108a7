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
"""

from __future__ import annotations

import torch
from torch import Tensor

from .fake_quant import (
    check_fake_quant_args,
    check_fake_quant_symmetric_args,
    quant_params,
    quantize_symmetric_with,
    quantize_with,
    ste_grads,
    symmetric_scale,
    symmetric_ste_grads,
)

_OP_NAME = "jaqc::mixed_fake_quant"
_SYMMETRIC_OP_NAME = "jaqc::mixed_fake_quant_symmetric"


def _check(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> None:
    count = len(bits)
    if probs.shape != (count,) or lo.shape != hi.shape or lo.dim() not in (1, 2) or lo.shape[0] != count:
        raise ValueError(
            f"jaqc::mixed_fake_quant: {count} bit candidates need probs [{count}] and lo/hi [{count}] or "
            f"[{count}, C]; got probs {tuple(probs.shape)}, lo {tuple(lo.shape)}, hi {tuple(hi.shape)}"
        )
    for index, bit in enumerate(bits):
        check_fake_quant_args(x, lo[index], hi[index], bit, axis)


def mixed_fake_quant_impl(x: Tensor, lo: Tensor, hi: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """The computation of ``jaqc::mixed_fake_quant`` as plain torch code (no dispatch or autograd)."""
    scales, zero_points = _all_params(x, lo, hi, bits)
    weights = probs.to(x.dtype)
    out = weights[0] * quantize_with(x, scales[0], zero_points[0], bits[0], axis)
    for index in range(1, len(bits)):
        out.add_(weights[index] * quantize_with(x, scales[index], zero_points[index], bits[index], axis))
    return out


def _all_params(x: Tensor, lo: Tensor, hi: Tensor, bits: list[int]) -> tuple[Tensor, Tensor]:
    bit_tensor = torch.tensor(bits, dtype=x.dtype, device=lo.device)
    if lo.dim() == 2:
        bit_tensor = bit_tensor[:, None]
    return quant_params(lo.to(x.dtype), hi.to(x.dtype), bit_tensor)


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
    grad_x = torch.zeros_like(x) if need_x else None
    grad_lo = [] if need_lo else None
    grad_hi = [] if need_hi else None
    grad_probs = [] if need_probs else None
    scales, zero_points = _all_params(x, lo, hi, ctx.bits)
    for index, bit in enumerate(ctx.bits):
        weight = probs[index].to(x.dtype)
        term_x, term_lo, term_hi = ste_grads(x, lo[index], hi[index], ctx.axis, grad, need_lo or need_hi)
        if grad_x is not None:
            grad_x = grad_x + weight * term_x
        if grad_lo is not None and term_lo is not None:
            grad_lo.append(weight.to(lo.dtype) * term_lo)
        if grad_hi is not None and term_hi is not None:
            grad_hi.append(weight.to(hi.dtype) * term_hi)
        if grad_probs is not None:
            quantized = quantize_with(x, scales[index], zero_points[index], bit, ctx.axis)
            grad_probs.append((grad * quantized).sum().to(probs.dtype))
    return (
        grad_x,
        None if grad_lo is None else torch.stack(grad_lo),
        None if grad_hi is None else torch.stack(grad_hi),
        None if grad_probs is None else torch.stack(grad_probs),
        None,
        None,
    )


mixed_fake_quant.register_autograd(_backward, setup_context=_setup_context)


# --- the symmetric (weight) variant -------------------------------------------------------------------------


def _check_symmetric(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> None:
    count = len(bits)
    if probs.shape != (count,) or amax.dim() not in (1, 2) or amax.shape[0] != count:
        raise ValueError(
            f"jaqc::mixed_fake_quant_symmetric: {count} bit candidates need probs [{count}] and amax [{count}] or "
            f"[{count}, C]; got probs {tuple(probs.shape)}, amax {tuple(amax.shape)}"
        )
    for index, bit in enumerate(bits):
        check_fake_quant_symmetric_args(x, amax[index], bit, axis)


def _all_scales(x: Tensor, amax: Tensor, bits: list[int]) -> Tensor:
    bit_tensor = torch.tensor(bits, dtype=x.dtype, device=amax.device)
    if amax.dim() == 2:
        bit_tensor = bit_tensor[:, None]
    return symmetric_scale(amax.to(x.dtype), bit_tensor)


def mixed_fake_quant_symmetric_impl(x: Tensor, amax: Tensor, probs: Tensor, bits: list[int], axis: int) -> Tensor:
    """The computation of ``jaqc::mixed_fake_quant_symmetric`` as plain torch code."""
    scales = _all_scales(x, amax, bits)
    weights = probs.to(x.dtype)
    out = weights[0] * quantize_symmetric_with(x, scales[0], bits[0], axis)
    for index in range(1, len(bits)):
        out.add_(weights[index] * quantize_symmetric_with(x, scales[index], bits[index], axis))
    return out


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
    grad_x = torch.zeros_like(x) if need_x else None
    grad_amax = [] if need_amax else None
    grad_probs = [] if need_probs else None
    scales = _all_scales(x, amax, ctx.bits)
    for index, bit in enumerate(ctx.bits):
        weight = probs[index].to(x.dtype)
        term_x, term_amax = symmetric_ste_grads(x, amax[index], ctx.axis, grad, need_amax)
        if grad_x is not None:
            grad_x = grad_x + weight * term_x
        if grad_amax is not None and term_amax is not None:
            grad_amax.append(weight.to(amax.dtype) * term_amax)
        if grad_probs is not None:
            quantized = quantize_symmetric_with(x, scales[index], bit, ctx.axis)
            grad_probs.append((grad * quantized).sum().to(probs.dtype))
    return (
        grad_x,
        None if grad_amax is None else torch.stack(grad_amax),
        None if grad_probs is None else torch.stack(grad_probs),
        None,
        None,
    )


mixed_fake_quant_symmetric.register_autograd(_symmetric_backward, setup_context=_setup_symmetric_context)
