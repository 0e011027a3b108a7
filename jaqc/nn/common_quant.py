"""Eq. 2 written the common way, as public research code does: element-wise torch ops and a detach STE.

This is the baseline of the memory comparison (``QuantSearchMode.NAIVE_COMMON``): numerically the same
functions as ``jaqc::fake_quant`` with a min/max range (activations) and ``jaqc::fake_quant_symmetric`` per
channel (weights), but autograd records every element-wise step and keeps
the full-size intermediates it needs (the clamp input and each dequantized candidate) for backward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .fake_quant import quant_levels, quant_params, symmetric_levels, symmetric_scale


def fake_quant_common(x: Tensor, bits: int, per_channel_axis: int | None = None) -> Tensor:
    """Eq. 2 over ``x``'s min/max (per tensor, or per channel on ``per_channel_axis``) with a detach STE."""
    with torch.no_grad():
        if per_channel_axis is None:
            lo, hi = x.amin(), x.amax()
            scale, zero_point = quant_params(lo, hi, bits)
        else:
            flat = x.movedim(per_channel_axis, 0).flatten(1)
            scale, zero_point = quant_params(flat.amin(dim=1), flat.amax(dim=1), bits)
            shape = [1] * x.dim()
            shape[per_channel_axis] = -1
            scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    scaled = x / scale
    clipped = torch.maximum(torch.minimum(scaled, quant_levels(bits) - zero_point), -zero_point)
    rounded = clipped + (torch.round(clipped) - clipped).detach()
    return rounded * scale


def fake_quant_common_symmetric(x: Tensor, bits: int, axis: int = 0) -> Tensor:
    """The weight quantizer (per channel on ``axis``, symmetric narrow range over ``max |x|``) with a detach STE."""
    levels = symmetric_levels(bits)
    with torch.no_grad():
        shape = [1] * x.dim()
        shape[axis] = -1
        scale = symmetric_scale(x.abs().movedim(axis, 0).flatten(1).amax(dim=1), bits).reshape(shape)
    scaled = x / scale
    clipped = torch.clamp(scaled, -levels, levels)
    rounded = clipped + (torch.round(clipped) - clipped).detach()
    return rounded * scale


def sum_weighted(values: list[Tensor], probs: Tensor) -> Tensor:
    """``Σ_k probs[k] · values[k]`` with plain autograd (each product keeps ``values[k]`` for backward)."""
    total = probs[0] * values[0]
    for index in range(1, len(values)):
        total = total + probs[index] * values[index]
    return total
