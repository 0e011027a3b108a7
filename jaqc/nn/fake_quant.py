"""The fake-quantization custom ops ``jaqc::fake_quant`` (JAQ Eq. 2, activations) and
``jaqc::fake_quant_symmetric`` (weights), with straight-through gradients.

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

``fake_quant_symmetric(x, amax, bits, axis)`` is the symmetric narrow-range quantizer of the weights:
``s = amax / (2^(b-1) - 1)`` (``s = 1`` when ``amax = 0``) and ``Q(x) = clamp(round(x / s), -n, n) · s`` with
``n = 2^(b-1) - 1`` (2 bits: ternary). ``amax`` is 0-d or 1-d on ``axis`` (per output channel: ``max |w|``).
It equals ONNX ``DequantizeLinear(QuantizeLinear(x, s, 0))`` with a signed type and a ``Clip`` to ``[-n, n]``
(which ``|x| <= amax`` makes a no-op), and QONNX ``Quant(signed=1, narrow=1)``.

Gradients: ``x`` gets the straight-through estimate (the incoming gradient where ``lo' <= x <= hi'``, zero
outside); ``hi`` gets the sum of the incoming gradient over elements above ``hi'`` and ``lo`` over elements
below ``lo'`` (PACT's estimate, applied on both sides). For a range taken from ``x``'s own min/max pass
``lo``/``hi`` detached: every element is then inside the range. ``fake_quant_symmetric`` passes the gradient
to ``x`` where ``|x| <= amax``; ``amax`` gets the sum over the elements above it minus those below ``-amax``.
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
    return quant_params_for_levels(lo, hi, levels)


def quant_params_for_levels(lo: Tensor, hi: Tensor, levels: float | Tensor) -> tuple[Tensor, Tensor]:
    """:func:`quant_params` for the largest code ``levels = 2^bits - 1`` (a float, or a tensor broadcasting
    against ``lo``) instead of the bitwidth."""
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


def fake_quant_per_tensor_minmax(x: Tensor, bits: int) -> Tensor:
    """Quantize a tensor over its own min/max (no gradient to the range)."""
    detached = x.detach()
    return fake_quant(x, detached.amin(), detached.amax(), bits, 0)


# --- symmetric narrow-range quantizer (weights) --------------------------------------------------------------

_SYMMETRIC_OP_NAME = "jaqc::fake_quant_symmetric"


def symmetric_levels(bits: int) -> int:
    """The largest code ``n = 2^(bits-1) - 1`` of a symmetric narrow-range quantizer (codes ``-n..n``)."""
    return (1 << (bits - 1)) - 1


def symmetric_scale(amax: Tensor, bits: int | Tensor) -> Tensor:
    """The scale ``s = amax / (2^(b-1) - 1)`` of ``fake_quant_symmetric`` (``s = 1`` where ``amax <= 0``).

    ``bits`` may be a tensor broadcasting against ``amax`` (several candidates at once).
    """
    levels = (2.0 ** (bits - 1) - 1.0) if isinstance(bits, Tensor) else float(symmetric_levels(bits))
    return symmetric_scale_for_levels(amax, levels)


def symmetric_scale_for_levels(amax: Tensor, levels: float | Tensor) -> Tensor:
    """:func:`symmetric_scale` for the largest code ``levels = 2^(bits-1) - 1`` instead of the bitwidth."""
    scale = amax / levels
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def check_fake_quant_symmetric_args(x: Tensor, amax: Tensor, bits: int, axis: int) -> None:
    """Raise ``ValueError`` unless the arguments fit ``jaqc::fake_quant_symmetric``."""
    if not 2 <= bits <= 16:
        raise ValueError(f"jaqc::fake_quant_symmetric: bits must be in 2..16, got {bits}")
    if amax.dim() > 1:
        raise ValueError(f"jaqc::fake_quant_symmetric: amax must be 0-d or 1-d, got {tuple(amax.shape)}")
    if amax.dim() == 1 and (not -x.dim() <= axis < x.dim() or x.shape[axis] != amax.shape[0]):
        raise ValueError(
            f"jaqc::fake_quant_symmetric: a per-channel amax of length {amax.shape[0]} does not fit "
            f"axis {axis} of {tuple(x.shape)}"
        )


def quantize_symmetric_with(x: Tensor, scale: Tensor, bits: int, axis: int) -> Tensor:
    """``clamp(round(x / s), -n, n) · s`` with ``n = 2^(b-1) - 1`` for a given scale (0-d, or 1-d on ``axis``)."""
    scale = _broadcast(scale, x, axis)
    levels = symmetric_levels(bits)
    return torch.clamp(torch.round(x / scale), -levels, levels) * scale


def fake_quant_symmetric_impl(x: Tensor, amax: Tensor, bits: int, axis: int) -> Tensor:
    """The computation of ``jaqc::fake_quant_symmetric`` as plain torch code."""
    return quantize_symmetric_with(x, symmetric_scale(amax.to(x.dtype), bits), bits, axis)


def symmetric_ste_grads(
    x: Tensor, amax: Tensor, axis: int, grad: Tensor, need_amax_grad: bool = True
) -> tuple[Tensor, Tensor | None]:
    """Straight-through gradients of ``fake_quant_symmetric(x, amax, ...)`` for the incoming ``grad``.

    ``grad_x`` is ``grad`` where ``|x| <= amax`` and zero elsewhere; ``grad_amax`` (``None`` unless asked) is
    the sum of ``grad`` over the elements above ``amax`` minus the sum over those below ``-amax`` (clipped
    elements dequantize to ``±amax``).
    """
    bound = _broadcast(amax.to(x.dtype), x, axis)
    if not need_amax_grad:
        return torch.where(x.abs() <= bound, grad, 0.0), None
    above = x > bound
    below = x < -bound
    zeros = torch.zeros_like(grad)
    grad_x = torch.where(above | below, zeros, grad)
    signed = torch.where(above, grad, zeros) - torch.where(below, grad, zeros)
    return grad_x, _reduce_to(signed, amax, axis)


@torch.library.custom_op(_SYMMETRIC_OP_NAME, mutates_args=())
def fake_quant_symmetric(x: Tensor, amax: Tensor, bits: int, axis: int) -> Tensor:
    """Quantize-dequantize ``x`` symmetrically (narrow range, codes ``-n..n``) over ``[-amax, amax]``."""
    check_fake_quant_symmetric_args(x, amax, bits, axis)
    return fake_quant_symmetric_impl(x, amax, bits, axis)


@fake_quant_symmetric.register_fake
def _fake_quant_symmetric_fake(x: Tensor, amax: Tensor, bits: int, axis: int) -> Tensor:
    check_fake_quant_symmetric_args(x, amax, bits, axis)
    return torch.empty_like(x)


def _setup_symmetric_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    x, amax, _bits, axis = inputs
    ctx.axis = axis
    ctx.save_for_backward(x, amax)


def _symmetric_backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple:
    x, amax = ctx.saved_tensors
    grad_x, grad_amax = symmetric_ste_grads(x, amax, ctx.axis, grad, ctx.needs_input_grad[1])
    return (grad_x if ctx.needs_input_grad[0] else None, grad_amax, None, None)


fake_quant_symmetric.register_autograd(_symmetric_backward, setup_context=_setup_symmetric_context)


def channel_amax(weight: Tensor, axis: int = 0) -> Tensor:
    """``max |w|`` per channel on ``axis`` (detached): the range of the per-channel weight quantizer."""
    dims = tuple(d for d in range(weight.dim()) if d != axis % weight.dim())
    return weight.detach().abs().amax(dim=dims)


def fake_quant_per_channel_symmetric(weight: Tensor, bits: int, axis: int = 0) -> Tensor:
    """Quantize a weight per output channel, symmetric narrow range over ``max |w|`` (no gradient to the range)."""
    return fake_quant_symmetric(weight, channel_amax(weight, axis), bits, axis)
