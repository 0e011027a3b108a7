"""The fake-quantization custom op ``jaqc::fake_quant`` (JAQ Eq. 2) with straight-through gradients.

``fake_quant(x, lo, hi, bits, axis)`` quantizes ``x`` to ``bits`` bits over the clipping range
``[lo, hi]`` and dequantizes it again:

* the range is widened to contain zero: ``lo' = min(lo, 0)``, ``hi' = max(hi, 0)``, so that zero (conv
  padding, ReLU zeros) is exact;
* ``s = (hi' - lo') / (2^b - 1)`` (Eq. 2; ``s = 1`` when the range is empty),
  ``z = clamp(round(-lo' / s), 0, 2^b - 1)``;
* ``Q(x) = round(clip(x / s, -z, 2^b - 1 - z)) · s``: Eq. 2 with the integer range
  ``[min_b, max_b] = [-z, 2^b - 1 - z]``. This equals ONNX ``DequantizeLinear(QuantizeLinear(x, s, z))``
  with an unsigned ``b``-bit integer type, see docs/quantization.md.

``lo``/``hi`` are 0-d tensors (per-tensor) or 1-d tensors of length ``x.shape[axis]`` (per channel).

Gradients: ``x`` gets the straight-through estimate (the incoming gradient where ``lo' <= x <= hi'``, zero
outside); ``hi`` gets the sum of the incoming gradient over elements above ``hi'`` and ``lo`` over elements
below ``lo'`` (PACT's estimate, applied on both sides). For a range taken from ``x``'s own min/max pass
``lo``/``hi`` detached: every element is then inside the range.
"""

from __future__ import annotations

import torch
from torch import Tensor

_OP_NAME = "jaqc::fake_quant"


def quant_levels(bits: int) -> int:
    """The largest unsigned integer code ``2^bits - 1`` of a ``bits``-bit quantizer."""
    return (1 << bits) - 1


def _broadcast(param: Tensor, x: Tensor, axis: int) -> Tensor:
    if param.dim() == 0:
        return param
    shape = [1] * x.dim()
    shape[axis] = param.shape[0]
    return param.reshape(shape)


def quant_params(lo: Tensor, hi: Tensor, bits: int | Tensor) -> tuple[Tensor, Tensor]:
    """Scale ``s`` and integer zero point ``z`` (a float tensor) that ``fake_quant`` uses for ``[lo, hi]``.

    ``bits`` may be a tensor broadcasting against ``lo`` (several candidates at once).
    """
    levels = (2.0**bits - 1.0) if isinstance(bits, Tensor) else float(quant_levels(bits))
    lo_eff = torch.clamp(lo, max=0.0)
    hi_eff = torch.clamp(hi, min=0.0)
    scale = (hi_eff - lo_eff) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.minimum(torch.clamp(torch.round(-lo_eff / scale), min=0.0), torch.as_tensor(levels))
    return scale, zero_point


def check_fake_quant_args(x: Tensor, lo: Tensor, hi: Tensor, bits: int, axis: int) -> None:
    """Raise ``ValueError`` unless the arguments fit ``jaqc::fake_quant`` (bits, range shapes, axis)."""
    if not 1 <= bits <= 16:
        raise ValueError(f"jaqc::fake_quant: bits must be in 1..16, got {bits}")
    if lo.shape != hi.shape or lo.dim() > 1:
        raise ValueError(f"jaqc::fake_quant: lo and hi must both be 0-d or 1-d, got {lo.shape} and {hi.shape}")
    if lo.dim() == 1 and (not -x.dim() <= axis < x.dim() or x.shape[axis] != lo.shape[0]):
        raise ValueError(
            f"jaqc::fake_quant: a per-channel range of length {lo.shape[0]} does not fit "
            f"axis {axis} of {tuple(x.shape)}"
        )


def fake_quant_impl(x: Tensor, lo: Tensor, hi: Tensor, bits: int, axis: int) -> Tensor:
    """The computation of ``jaqc::fake_quant`` as plain torch code (no dispatch, no autograd formula)."""
    scale, zero_point = quant_params(lo.to(x.dtype), hi.to(x.dtype), bits)
    return quantize_with(x, scale, zero_point, bits, axis)


def quantize_with(x: Tensor, scale: Tensor, zero_point: Tensor, bits: int, axis: int) -> Tensor:
    """``round(clip(x / s, -z, 2^b - 1 - z)) · s`` for given scale and zero point (0-d, or 1-d on ``axis``)."""
    scale = _broadcast(scale, x, axis)
    zero_point = _broadcast(zero_point, x, axis)
    levels = quant_levels(bits)
    return torch.clamp(torch.round(x / scale), -zero_point, levels - zero_point) * scale


def _reduce_to(grad: Tensor, param: Tensor, axis: int) -> Tensor:
    if param.dim() == 0:
        return grad.sum().to(param.dtype)
    dims = [d for d in range(grad.dim()) if d != axis % grad.dim()]
    return grad.sum(dim=dims).to(param.dtype)


def ste_grads(
    x: Tensor, lo: Tensor, hi: Tensor, axis: int, grad: Tensor, need_range_grads: bool = True
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Straight-through gradients of ``fake_quant(x, lo, hi, ...)`` for the incoming ``grad``.

    Returns ``(grad_x, grad_lo, grad_hi)``: ``grad`` where ``lo' <= x <= hi'`` and zero elsewhere for ``x``;
    PACT's estimates for the range (``None`` unless ``need_range_grads``).
    """
    lo_eff = _broadcast(torch.clamp(lo, max=0.0).to(x.dtype), x, axis)
    hi_eff = _broadcast(torch.clamp(hi, min=0.0).to(x.dtype), x, axis)
    below = x < lo_eff
    above = x > hi_eff
    zeros = torch.zeros_like(grad)
    grad_x = torch.where(below | above, zeros, grad)
    if not need_range_grads:
        return grad_x, None, None
    # lo' = min(lo, 0) moves with lo only where lo < 0, and hi' with hi only where hi > 0.
    grad_lo = _reduce_to(torch.where(below, grad, zeros), lo, axis) * (lo < 0).to(lo.dtype)
    grad_hi = _reduce_to(torch.where(above, grad, zeros), hi, axis) * (hi > 0).to(hi.dtype)
    return grad_x, grad_lo, grad_hi


@torch.library.custom_op(_OP_NAME, mutates_args=())
def fake_quant(x: Tensor, lo: Tensor, hi: Tensor, bits: int, axis: int) -> Tensor:
    """Quantize-dequantize ``x`` to ``bits`` bits over ``[lo, hi]`` (per tensor, or per channel on axis)."""
    check_fake_quant_args(x, lo, hi, bits, axis)
    return fake_quant_impl(x, lo, hi, bits, axis)


@fake_quant.register_fake
def _fake_quant_fake(x: Tensor, lo: Tensor, hi: Tensor, bits: int, axis: int) -> Tensor:
    check_fake_quant_args(x, lo, hi, bits, axis)
    return torch.empty_like(x)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    x, lo, hi, _bits, axis = inputs
    ctx.axis = axis
    ctx.save_for_backward(x, lo, hi)


def _backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple:
    x, lo, hi = ctx.saved_tensors
    need_range = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    grad_x, grad_lo, grad_hi = ste_grads(x, lo, hi, ctx.axis, grad, need_range)
    return (
        grad_x if ctx.needs_input_grad[0] else None,
        grad_lo if ctx.needs_input_grad[1] else None,
        grad_hi if ctx.needs_input_grad[2] else None,
        None,
        None,
    )


fake_quant.register_autograd(_backward, setup_context=_setup_context)


def fake_quant_per_channel_minmax(weight: Tensor, bits: int, axis: int = 0) -> Tensor:
    """Quantize a weight per output channel over each channel's own min/max (no gradient to the range)."""
    flat = weight.detach().movedim(axis, 0).flatten(1)
    return fake_quant(weight, flat.amin(dim=1), flat.amax(dim=1), bits, axis)


def fake_quant_per_tensor_minmax(x: Tensor, bits: int) -> Tensor:
    """Quantize a tensor over its own min/max (no gradient to the range)."""
    detached = x.detach()
    return fake_quant(x, detached.amin(), detached.amax(), bits, 0)
