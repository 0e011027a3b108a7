"""Gumbel-softmax sampling of architecture distributions, soft or straight-through hard, seeded."""

from __future__ import annotations

import torch
from torch import Tensor

_TINY = 1e-10


def sample_gumbel(shape: torch.Size | tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Standard Gumbel noise ``-log(-log(U))``, ``U ~ U(0, 1)``, drawn on the generator's device in float32.

    (The paper writes ``ε ~ U(0, 1)`` in its Gumbel-softmax formula; the Gumbel-softmax of Jang et al.,
    which it cites, adds Gumbel noise, which is what this draws.)
    """
    uniform = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return -torch.log(-torch.log(uniform.clamp(_TINY, 1.0 - _TINY)))


def gumbel_softmax(logits: Tensor, temperature: float, generator: torch.Generator | None, hard: bool = False) -> Tensor:
    """``softmax((logits + g) / τ)``; ``hard``: one-hot forward, soft (straight-through) gradient.

    ``generator=None`` adds no noise (the expected distribution at temperature τ). Ties of the hard
    argmax go to the lower index.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    noisy = logits
    if generator is not None:
        noisy = logits + sample_gumbel(logits.shape, generator).to(device=logits.device, dtype=logits.dtype)
    soft = torch.softmax(noisy / temperature, dim=-1)
    if not hard:
        return soft
    index = soft.detach().argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft
