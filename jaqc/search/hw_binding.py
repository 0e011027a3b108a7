"""Hardware cost bound to α and β: the expected E_HW of the supernet (issue: JAQ search, part 3).

``E[cost] = Σ_blocks Σ_ops p(α) Σ_(w,a) p(β_w)·p(β_a) Σ_c p_b(c) · cost(block, op, w, a, c | accelerator, mapping)``
plus the fixed layers (stem, head, classifier), where ``c`` is the activation width the block's output is
requantized to (the deployment model writes finished outputs at their consumers' bits): the largest ``a_bits``
of the convolutions that read it, through residual adds and identity skips (:func:`consumer_distributions`,
exact for independent per-block choices). From the candidate cost table
(:func:`jaqc.hw.mapping.candidate_table.candidate_cost_table`), refreshed whenever the accelerator changes. Energy and
latency are differentiable in α and β; area depends only on the accelerator. Each term is normalised by the
same quantity of the reference design (:data:`jaqc.hw.generator.training.REFERENCE_ACCELERATOR`) running the
uniform-α/β supernet, so ``λE·E/E_ref + λL·L/L_ref + λA·A/A_ref`` is unitless and about 1 at the start.
A table entry whose op cannot be mapped (no tiling fits) costs 10x the largest feasible entry of the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from jaqc.hw.generator.objective import HardwareWeights, NetworkTotals, mapped_totals
from jaqc.hw.generator.training import REFERENCE_ACCELERATOR
from jaqc.hw.mapping.candidate_table import CandidateCostTable, candidate_cost_table
from jaqc.hw.model.totals import e_hw
from jaqc.hw.model.unit_costs import area_for
from jaqc.ir.accelerator import AcceleratorConfig

from .space_costs import SpaceCosts

INFEASIBLE_FACTOR = 10.0


def priced_costs(table: CandidateCostTable) -> tuple[Tensor, Tensor]:
    """``table``'s energy (nJ) and latency (s) with every infeasible entry (no tiling fits) priced at
    :data:`INFEASIBLE_FACTOR` times the table's largest feasible entry, so expectations stay finite."""
    energy, latency = table.energy_nj.clone(), table.latency_s.clone()
    finite = table.feasible
    if not finite.all():
        energy[~finite] = INFEASIBLE_FACTOR * energy[finite].max()
        latency[~finite] = INFEASIBLE_FACTOR * latency[finite].max()
    return energy, latency


def fixed_layer_costs(
    space: SpaceCosts, accelerator: AcceleratorConfig, out_bits: Sequence[int], hw_model: str
) -> tuple[Tensor, Tensor, NetworkTotals]:
    """The layers outside the search on ``accelerator``: those before the blocks (the stem), energy (nJ) and
    latency (s) for each width ``out_bits[i]`` they may write block 0's input at, and the totals of those after."""
    before = len(space.prefix)
    stems = [mapped_totals(space.fixed_problems(c)[:before], accelerator, hw_model=hw_model) for c in out_bits]
    energy = torch.tensor([t.energy_nJ for t in stems], dtype=torch.float64)
    latency = torch.tensor([t.latency_s for t in stems], dtype=torch.float64)
    return energy, latency, mapped_totals(space.fixed_problems()[before:], accelerator, hw_model=hw_model)


def consumer_distributions(
    a_bits: Sequence[int],
    op_probs: Tensor,
    op_a_probs: Tensor,
    identity_ops: Tensor,
    residual: Sequence[bool],
    head_bits: int,
) -> Tensor:
    """``[blocks + 1, len(a_bits)]``: the distribution of the bits each block's output (stem first) is
    requantized to, under independent per-block choices.

    ``op_probs [B, O]`` are the ops' probabilities, ``op_a_probs [B, O, len(a_bits)]`` each op's activation-bit
    probabilities, ``identity_ops [B, O]`` marks ops without layers (identity skips pass their input on),
    ``residual[b]`` whether block b also passes its input to its output. The consumer of block n's input is its
    op's first conv (bits A), and, where block n passes its input on, also block n's own consumers (C): the
    distribution of max(A, C) has the CDF ``F_A · F_C`` (independent choices), linear in the op mixture.
    ``a_bits`` must be ascending and contain ``head_bits``.
    """
    n_blocks, count = op_probs.shape[0], len(a_bits)
    last = torch.zeros(count, dtype=torch.float64, device=op_probs.device)
    last[list(a_bits).index(head_bits)] = 1.0
    rows = [last]
    ident = identity_ops.to(device=op_probs.device, dtype=torch.float64)
    for n in range(n_blocks - 1, -1, -1):
        after = rows[-1]
        probs = op_probs[n].to(torch.float64)
        layered = probs * (1 - ident[n])  # ops whose first conv reads the input
        mixture = (layered[:, None] * op_a_probs[n].to(torch.float64)).sum(0)  # mass = Σ layered
        if residual[n]:
            cdf = torch.cumsum(mixture, 0) * torch.cumsum(after, 0)  # max(A, C) over the layered ops
            row = torch.diff(cdf, prepend=cdf.new_zeros(1)) + (probs * ident[n]).sum() * after
        else:
            row = mixture + (probs * ident[n]).sum() * after  # (every op of such a block has layers)
        rows.append(row)
    return torch.stack(rows[::-1])


class ExpectedHardwareCost:
    """E_HW of the supernet as a differentiable function of α and β on the current accelerator.

    The cost table is indexed [out, block, op, pair]: ``out`` is the width the op's last layer writes the
    block output at (its consumers' activation bits); the expectation weights it with the distribution of the
    consumers' bits (:func:`consumer_distributions`), itself a function of the next blocks' α and β. The stem's
    cost likewise depends on block 0's bits; head and classifier are fixed.
    """

    def __init__(
        self,
        space: SpaceCosts,
        bits: tuple[Sequence[int], Sequence[int]],
        weights: HardwareWeights,
        reference_accelerator: AcceleratorConfig = REFERENCE_ACCELERATOR,
        hw_model: str = "deployment",
    ) -> None:
        self.space = space
        self.weights = weights
        self.hw_model = hw_model
        self.w_bits, self.a_bits = tuple(bits[0]), tuple(bits[1])
        self.pairs = tuple((w, a) for w in self.w_bits for a in self.a_bits)
        self.head_bits = space.head_bits
        #: The widths a block output can be written at (ascending): the searchable bits and the head's.
        self.out_bits = tuple(sorted({*self.a_bits, self.head_bits}))
        self.blocks = [[c.at() for c in ops] for ops in space.blocks]
        self.identity_ops = torch.tensor([[c.identity for c in ops] for ops in space.blocks])
        self.residual = list(space.residual)
        #: Where the tables live and E_HW is computed (:meth:`to`); they are built on the CPU.
        self.device = torch.device("cpu")
        self.accelerator: AcceleratorConfig | None = None
        self.table: CandidateCostTable | None = None
        self.refresh(reference_accelerator)
        n_blocks, n_ops = len(space.blocks), len(space.ops)
        uniform_alpha = torch.full((n_blocks, n_ops), 1.0 / n_ops)
        uniform_w = torch.full((*uniform_alpha.shape, len(self.w_bits)), 1.0 / len(self.w_bits))
        uniform_a = torch.full((*uniform_alpha.shape, len(self.a_bits)), 1.0 / len(self.a_bits))
        energy, latency = self.expected(uniform_alpha, uniform_w, uniform_a)
        self.reference = NetworkTotals(
            energy_nJ=float(energy), latency_s=float(latency), area_mm2=area_for(reference_accelerator).total
        )

    @classmethod
    def for_supernet(
        cls, supernet: Any, weights: HardwareWeights, hw_model: str = "deployment", space: SpaceCosts | None = None
    ) -> ExpectedHardwareCost:
        """E_HW of ``supernet`` (a :class:`~jaqc.nn.supernet.Supernet`), priced from its traced IR (or ``space``)."""
        quant = supernet.config.quant
        space = space or SpaceCosts.from_supernet(supernet)
        return cls(space, (quant.weight_bits, quant.activation_bits), weights, hw_model=hw_model)

    def refresh(self, accelerator: AcceleratorConfig) -> None:
        """Rebuild the candidate cost table (and the fixed layers' cost) for ``accelerator``."""
        table = candidate_cost_table(
            self.blocks, accelerator, self.pairs, space="jaq", hw_model=self.hw_model, out_bits=self.out_bits,
            writers=[[c.writes_output for c in ops] for ops in self.space.blocks],
        )  # fmt: skip
        self.energy_table, self.latency_table = priced_costs(table)  # [out, block, op, pair]
        self.stem_energy, self.stem_latency, self.fixed_totals = fixed_layer_costs(
            self.space, accelerator, self.out_bits, self.hw_model
        )
        self.area_mm2 = area_for(accelerator).total
        self.accelerator, self.table = accelerator, table
        self.to(self.device)

    def to(self, device: torch.device | str) -> ExpectedHardwareCost:
        """Keep the cost tables on ``device`` (the supernet's), so E_HW is computed next to α and β."""
        self.device = torch.device(device)
        for name in ("energy_table", "latency_table", "stem_energy", "stem_latency", "identity_ops"):
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def consumers(self, alpha: Tensor, beta_a: Tensor) -> Tensor:
        """``[blocks + 1, len(out_bits)]``: the distribution of each block output's consumer bits, stem first."""
        a_probs = beta_a.new_zeros((*beta_a.shape[:-1], len(self.out_bits)))
        a_probs[..., [self.out_bits.index(a) for a in self.a_bits]] = beta_a
        return consumer_distributions(self.out_bits, alpha, a_probs, self.identity_ops, self.residual, self.head_bits)

    def expected(self, alpha: Tensor, beta_w: Tensor, beta_a: Tensor) -> tuple[Tensor, Tensor]:
        """Expected energy (nJ) and latency (s) of the whole network for probabilities α [B,O], β [B,O,bits]."""
        pair = (beta_w[..., :, None] * beta_a[..., None, :]).reshape(*alpha.shape, len(self.pairs))
        weight = alpha[..., None].to(torch.float64) * pair.to(torch.float64)  # [block, op, pair]
        consumer = self.consumers(alpha, beta_a)  # [block + 1, out]
        by_out = consumer[1:].T[:, :, None, None] * weight[None]  # [out, block, op, pair]
        energy = (by_out * self.energy_table).sum() + (consumer[0] * self.stem_energy).sum()
        latency = (by_out * self.latency_table).sum() + (consumer[0] * self.stem_latency).sum()
        return energy + self.fixed_totals.energy_nJ, latency + self.fixed_totals.latency_s

    def __call__(self, alpha: Tensor, beta_w: Tensor, beta_a: Tensor) -> tuple[Tensor, dict[str, float]]:
        """E_HW (normalised, see the module docstring) and its parts in physical units."""
        energy, latency = self.expected(alpha, beta_w, beta_a)
        area = torch.tensor(self.area_mm2, dtype=torch.float64, device=energy.device)
        parts = {"energy_nJ": float(energy.detach()), "latency_s": float(latency.detach()), "area_mm2": self.area_mm2}
        return e_hw(self.weights, energy, latency, area, self.reference), parts
