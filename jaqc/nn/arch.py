"""Architecture parameters: α per block over the candidate ops, β_w and β_a per block and op over the bits."""

from __future__ import annotations

import torch
from attrs import frozen
from torch import Tensor, nn

from .config import GumbelConfig
from .errors import NNConfigError
from .gumbel import gumbel_softmax


@frozen(eq=False)
class ArchSample:
    """One architecture draw: ``alpha [blocks, ops]``, ``beta_w``/``beta_a [blocks, ops, bits]``."""

    alpha: Tensor
    beta_w: Tensor
    beta_a: Tensor


class ArchParameters(nn.Module):
    """The architecture logits of the supernet and their Gumbel-softmax sampling.

    Logits start at zero (uniform distributions). In training, :meth:`sample` draws Gumbel noise from a
    private, seeded ``torch.Generator`` at the current temperature (see :meth:`set_epoch`); in eval it
    returns the noise-free softmax at temperature 1, the same as the ``*_probs`` methods.
    """

    def __init__(
        self,
        num_blocks: int,
        num_ops: int,
        weight_bits: int,
        activation_bits: int,
        gumbel: GumbelConfig | None = None,
    ) -> None:
        super().__init__()
        if min(num_blocks, num_ops, weight_bits, activation_bits) < 1:
            raise NNConfigError(
                f"ArchParameters sizes must be >= 1, got blocks={num_blocks}, ops={num_ops}, "
                f"weight_bits={weight_bits}, activation_bits={activation_bits}"
            )
        self.gumbel = gumbel or GumbelConfig()
        self.alpha = nn.Parameter(torch.zeros(num_blocks, num_ops))
        self.beta_w = nn.Parameter(torch.zeros(num_blocks, num_ops, weight_bits))
        self.beta_a = nn.Parameter(torch.zeros(num_blocks, num_ops, activation_bits))
        self.temperature = self.gumbel.temperature.temperature(0)
        self.generator = torch.Generator()
        self.generator.manual_seed(self.gumbel.seed)

    def reseed(self, seed: int) -> None:
        """Restart the Gumbel noise sequence from ``seed``."""
        self.generator.manual_seed(seed)

    def set_epoch(self, epoch: int) -> float:
        """Set the temperature of the schedule for ``epoch``; returns it."""
        self.temperature = self.gumbel.temperature.temperature(epoch)
        return self.temperature

    def _draw(self, logits: Tensor, hard: bool) -> Tensor:
        if not self.training:
            return torch.softmax(logits, dim=-1)
        return gumbel_softmax(logits, self.temperature, self.generator, hard=hard)

    def sample(self, hard: bool | None = None) -> ArchSample:
        """Gumbel-softmax weights for every block (``hard`` defaults to the config's setting)."""
        use_hard = self.gumbel.hard if hard is None else hard
        return ArchSample(
            alpha=self._draw(self.alpha, use_hard),
            beta_w=self._draw(self.beta_w, use_hard),
            beta_a=self._draw(self.beta_a, use_hard),
        )

    def forward(self) -> ArchSample:
        """Same as :meth:`sample` with the configured hard/soft mode."""
        return self.sample()

    def alpha_probs(self) -> Tensor:
        """``softmax(α)`` per block, ``[blocks, ops]``, without noise (chooses the derived subnet)."""
        return torch.softmax(self.alpha, dim=-1)

    def beta_w_probs(self) -> Tensor:
        """``softmax(β_w)`` per block and op, ``[blocks, ops, weight_bits]``."""
        return torch.softmax(self.beta_w, dim=-1)

    def beta_a_probs(self) -> Tensor:
        """``softmax(β_a)`` per block and op, ``[blocks, ops, activation_bits]``."""
        return torch.softmax(self.beta_a, dim=-1)

    def extra_repr(self) -> str:
        shapes = f"alpha={tuple(self.alpha.shape)}, beta_w={tuple(self.beta_w.shape)}"
        return f"{shapes}, temperature={self.temperature:.4g}"
