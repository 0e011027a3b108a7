"""Auto-NBA's heterogeneous sampling: Gumbel top-k draws, the ProxylessNAS pair gates and their rescaling."""

from __future__ import annotations

import torch
from torch import Tensor

from jaqc.nn.gumbel import sample_gumbel


def gumbel_top_k(logits: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Indices ``[..., min(k, n)]`` of the ``k`` largest ``logits + Gumbel noise`` over the last dimension.

    The first is a draw from ``softmax(logits)`` (Gumbel-max), the next ones draws without replacement from
    what remains. No gradient.
    """
    noise = sample_gumbel(logits.shape, generator).to(device=logits.device, dtype=logits.dtype)
    keys = logits.detach() + noise
    return torch.argsort(keys, dim=-1, descending=True, stable=True)[..., : min(k, logits.shape[-1])]


def pair_probs(logits: Tensor, order: Tensor) -> Tensor:
    """``softmax`` of the sampled logits only (renormalised over the sampled pair), ``[..., k]``."""
    return torch.softmax(logits.gather(-1, order), dim=-1)


def pair_gates(logits: Tensor, order: Tensor) -> Tensor:
    """Straight-through gates, shaped like ``logits``: zero outside ``order``; on ``order`` the value is one for
    the first (active) index and zero for the others, the gradient that of :func:`pair_probs`."""
    probs = pair_probs(logits, order)
    one_hot = torch.zeros_like(probs)
    one_hot[..., 0] = 1.0
    gate = one_hot + (probs - probs.detach())  # exactly the one-hot in the forward pass
    return torch.zeros_like(logits).scatter(-1, order, gate)


def conv_bit_probs(gates: Tensor, order: Tensor) -> Tensor:
    """What a HETERO conv's architecture step takes as bit "probabilities" to run the sampled pair.

    :func:`jaqc.nn.mixing.hard_top_k_mix` keeps the top-k by value, runs the first and passes
    ``w - w.detach()`` as gradient to each; adding 1 at both sampled positions ranks active > other sampled >
    the rest, so it runs exactly the sampled pair with the :func:`pair_gates` gradients.
    """
    return gates + torch.zeros_like(gates).scatter(-1, order, 1.0)


@torch.no_grad()
def keep_pair_mass(logits: Tensor, before: Tensor, order: Tensor, rows: Tensor | None = None) -> None:
    """Shift the sampled logits of each row by one offset so their log-sum-exp equals that of ``before``
    (ProxylessNAS' rescaling after an update); ``rows`` (bool, ``logits.shape[:-1]``) limits it."""
    offset = before.gather(-1, order).logsumexp(-1, keepdim=True) - logits.gather(-1, order).logsumexp(-1, keepdim=True)
    if rows is not None:
        offset = offset * rows.unsqueeze(-1).to(offset.dtype)
    logits.scatter_add_(-1, order, offset.expand(order.shape).contiguous())
