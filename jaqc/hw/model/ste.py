"""Rounding with straight-through gradients, for the relaxed (continuous) accelerator parameters."""

from __future__ import annotations

import torch


def ceil_ste(x: torch.Tensor) -> torch.Tensor:
    """ceil(x) in the forward pass; the identity's gradient in the backward pass."""
    return x + (torch.ceil(x) - x).detach()


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass; the identity's gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def ceil_div(numerator: torch.Tensor, denominator: torch.Tensor, relaxed: bool) -> torch.Tensor:
    """ceil(numerator / denominator), straight-through when ``relaxed``.

    Exact for integer-valued float64 operands below 2**52 (the quotient of two such integers is never
    rounded onto an integer it is not).
    """
    quotient = numerator / denominator
    return ceil_ste(quotient) if relaxed else torch.ceil(quotient)


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x) in the forward pass; the identity's gradient in the backward pass."""
    return x + (torch.floor(x) - x).detach()


def floor_div(numerator: torch.Tensor, denominator: torch.Tensor, relaxed: bool) -> torch.Tensor:
    """floor(numerator / denominator), straight-through when ``relaxed`` (exact like :func:`ceil_div`)."""
    quotient = numerator / denominator
    return floor_ste(quotient) if relaxed else torch.floor(quotient)
