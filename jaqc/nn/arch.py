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

    def detached(self) -> ArchSample:
        """The same draw as constants (a weight step's: no gradient reaches α or β)."""
        return ArchSample(self.alpha.detach(), self.beta_w.detach(), self.beta_a.detach())


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
        # Which ops and bits each block may choose (all, unless a search pass restricted them; see restrict()).
        # Not in the state_dict: a run derives them from its settings again when it resumes.
        self.register_buffer("op_mask", torch.ones(num_blocks, num_ops, dtype=torch.bool), persistent=False)
        self.register_buffer("w_mask", torch.ones(num_blocks, num_ops, weight_bits, dtype=torch.bool), persistent=False)
        self.register_buffer(
            "a_mask", torch.ones(num_blocks, num_ops, activation_bits, dtype=torch.bool), persistent=False
        )

    def restrict(self, op_mask: Tensor, w_mask: Tensor, a_mask: Tensor) -> None:
        """Let block b choose op o only where ``op_mask[b, o]``, and its bits only where ``w_mask[b, o, i]`` /
        ``a_mask[b, o, i]``: the others get probability 0 in sampling, in the ``*_probs`` and so in E_HW and the
        derivation. Every block keeps at least one op and every op at least one width."""
        for name, mask, current in (("op", op_mask, self.op_mask), ("w", w_mask, self.w_mask),
                                    ("a", a_mask, self.a_mask)):  # fmt: skip
            if tuple(mask.shape) != tuple(current.shape):
                raise NNConfigError(f"{name} mask has shape {tuple(mask.shape)}, expected {tuple(current.shape)}")
            if not bool(mask.to(torch.bool).any(-1).all()):
                raise NNConfigError(f"{name} mask leaves a block (or an op) with nothing to choose")
        self.op_mask.copy_(op_mask.to(torch.bool))
        self.w_mask.copy_(w_mask.to(torch.bool))
        self.a_mask.copy_(a_mask.to(torch.bool))

    @staticmethod
    def _masked(logits: Tensor, mask: Tensor) -> Tensor:
        return logits if bool(mask.all()) else logits.masked_fill(~mask, float("-inf"))

    def reseed(self, seed: int) -> None:
        """Restart the Gumbel noise sequence from ``seed``."""
        self.generator.manual_seed(seed)

    def set_epoch(self, epoch: int) -> float:
        """Set the temperature of the schedule for ``epoch``; returns it."""
        self.temperature = self.gumbel.temperature.temperature(epoch)
        return self.temperature

    def set_step(self, step: int, steps: int) -> float:
        """Set the anneal schedule's temperature for step ``step`` of ``steps``
        (:meth:`~jaqc.nn.config.TemperatureSchedule.temperature_at_step`); returns it."""
        self.temperature = self.gumbel.temperature.temperature_at_step(step, steps)
        return self.temperature

    def _draw(self, logits: Tensor, hard: bool) -> Tensor:
        if not self.training:
            return torch.softmax(logits, dim=-1)
        return gumbel_softmax(logits, self.temperature, self.generator, hard=hard)

    def sample(self, hard: bool | None = None) -> ArchSample:
        """Gumbel-softmax weights for every block (``hard`` defaults to the config's setting)."""
        use_hard = self.gumbel.hard if hard is None else hard
        return ArchSample(
            alpha=self._draw(self._masked(self.alpha, self.op_mask), use_hard),
            beta_w=self._draw(self._masked(self.beta_w, self.w_mask), use_hard),
            beta_a=self._draw(self._masked(self.beta_a, self.a_mask), use_hard),
        )

    def forward(self) -> ArchSample:
        """Same as :meth:`sample` with the configured hard/soft mode."""
        return self.sample()

    def alpha_probs(self) -> Tensor:
        """``softmax(α)`` per block, ``[blocks, ops]``, without noise (chooses the derived subnet)."""
        return torch.softmax(self._masked(self.alpha, self.op_mask), dim=-1)

    def beta_w_probs(self) -> Tensor:
        """``softmax(β_w)`` per block and op, ``[blocks, ops, weight_bits]``."""
        return torch.softmax(self._masked(self.beta_w, self.w_mask), dim=-1)

    def beta_a_probs(self) -> Tensor:
        """``softmax(β_a)`` per block and op, ``[blocks, ops, activation_bits]``."""
        return torch.softmax(self._masked(self.beta_a, self.a_mask), dim=-1)

    def extra_repr(self) -> str:
        shapes = f"alpha={tuple(self.alpha.shape)}, beta_w={tuple(self.beta_w.shape)}"
        return f"{shapes}, temperature={self.temperature:.4g}"
