"""Ways of mixing a tensor's quantized versions over bit candidates with β weights (Eq. 5 and Auto-NBA)."""

from __future__ import annotations

from typing import Any

import torch
from attrs import frozen
from torch import Tensor

from .fake_quant import fake_quant, fake_quant_symmetric
from .mixed_fake_quant import (
    mixed_fake_quant_fn,
    mixed_fake_quant_impl,
    mixed_fake_quant_symmetric_fn,
    mixed_fake_quant_symmetric_impl,
)


@frozen(eq=False)
class BitCandidates:
    """The clipping ranges and bitwidths of a tensor's bit candidates.

    ``lo``/``hi`` are ``[m]`` (per tensor) or ``[m, C]`` (per channel on ``axis``). ``symmetric`` candidates
    (weights) are quantized by ``fake_quant_symmetric`` over ``[-hi, hi]`` (``lo`` is ``-hi``); build them with
    :meth:`symmetric_range`.
    """

    lo: Tensor
    hi: Tensor
    bits: tuple[int, ...]
    axis: int = 0
    symmetric: bool = False

    @classmethod
    def symmetric_range(cls, amax: Tensor, bits: tuple[int, ...], axis: int = 0) -> BitCandidates:
        """Symmetric narrow-range candidates over ``[-amax, amax]`` (``amax`` of shape ``[m]`` or ``[m, C]``)."""
        return cls(-amax, amax, bits, axis, symmetric=True)

    def subset(self, indices: list[int]) -> BitCandidates:
        """The candidates at ``indices``, in that order."""
        index = torch.tensor(indices, device=self.lo.device)
        return BitCandidates(
            self.lo.index_select(0, index),
            self.hi.index_select(0, index),
            tuple(self.bits[i] for i in indices),
            self.axis,
            self.symmetric,
        )


def mix_quantized(x: Tensor, candidates: BitCandidates, probs: Tensor | None) -> Tensor:
    """``Σ_k probs[k] · Q_k(x)`` (Eq. 5) via the fused op; the single candidate's ``Q(x)`` without probs."""
    c = candidates
    if probs is None:
        if len(c.bits) != 1:
            raise ValueError(f"bit probabilities are needed to mix {len(c.bits)} candidates")
        if c.symmetric:
            return fake_quant_symmetric(x, c.hi[0], c.bits[0], c.axis)
        return fake_quant(x, c.lo[0], c.hi[0], c.bits[0], c.axis)
    if probs.shape != (len(c.bits),):
        raise ValueError(f"expected {len(c.bits)} bit probabilities, got shape {tuple(probs.shape)}")
    if c.symmetric:
        return mixed_fake_quant_symmetric_fn(x, c.hi, probs, list(c.bits), c.axis)
    return mixed_fake_quant_fn(x, c.lo, c.hi, probs, list(c.bits), c.axis)


class _HeteroBlend(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, probs: Tensor, candidates: BitCandidates) -> Tensor:
        lo, hi = candidates.lo.detach(), candidates.hi.detach()
        if candidates.symmetric:
            return mixed_fake_quant_symmetric_impl(x, hi, probs, list(candidates.bits), candidates.axis)
        return mixed_fake_quant_impl(x, lo, hi, probs, list(candidates.bits), candidates.axis)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return grad, None, None


def hetero_blend(x: Tensor, candidates: BitCandidates, probs: Tensor) -> Tensor:
    """Auto-NBA's weight step: the β-blend in one autograd node whose backward is the identity to ``x``.

    Nothing of the blend is kept for backward; ``probs`` and the ranges get no gradient.
    """
    return _HeteroBlend.apply(x, probs.detach(), candidates)


def hard_top_k_mix(x: Tensor, candidates: BitCandidates, probs: Tensor, top_k: int) -> Tensor:
    """Auto-NBA's architecture step: only the ``top_k`` most probable candidates are computed.

    The forward value is the top-1 candidate's ``Q(x)``; each of the ``top_k`` candidates passes a
    straight-through gradient to its probability (weight ``onehot - p.detach() + p``).
    """
    order = torch.argsort(probs.detach(), descending=True, stable=True).tolist()[:top_k]
    chosen = probs[torch.tensor(order, device=probs.device)]
    one_hot = torch.zeros_like(chosen)
    one_hot[0] = 1.0
    weights = one_hot - chosen.detach() + chosen
    return mix_quantized(x, candidates.subset(order), weights)
