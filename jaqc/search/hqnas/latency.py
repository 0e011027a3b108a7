"""HQNAS's latency term: the expected latency of the relaxed choices on one fixed accelerator.

The table holds, for every block, op of :data:`~jaqc.search.hqnas.superkernel.HQNAS_OPS` and ``(w_bits, a_bits)``
pair, the latency of the op's layers at their BatchTile-optimal mappings (jaq space, latency objective): the
same :func:`~jaqc.hw.mapping.candidate_table.candidate_cost_table` and layer lists
(:class:`~jaqc.search.space_costs.SpaceCosts`, read from the IR) JAQ's expected hardware cost uses, built once because
the accelerator does not change. The expected latency is

``L = Σ_blocks Σ_ops p(op) Σ_(w,a) p(w) p(a) Σ_c p_b(c) · latency(block, op, w, a, c) + L(stem, head, classifier)``

where ``c`` is the width the block output is requantized to (its consumers' activation bits, distributed as
:func:`~jaqc.search.hw_binding.consumer_distributions` gives from the next blocks' choices).

with ``p`` the sigmoid relaxations of the thresholds' indicators (:meth:`BlockDecisions.op_probabilities`,
:func:`ladder_probabilities`). Energy is tabulated too (reported, not optimised). An op no tiling fits costs 10x
the largest feasible entry, as in JAQ.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import Tensor

from jaqc.hw.mapping.candidate_table import candidate_cost_table
from jaqc.hw.model.unit_costs import area_for
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.nn.config import SupernetConfig

from ..hw_binding import consumer_distributions, fixed_layer_costs, priced_costs
from ..space_costs import SpaceCosts
from .superkernel import HQNAS_OPS, BlockDecisions, ladder_probabilities


class LatencyTable:
    """Latency (s) and energy (nJ) of every (block, op, bit pair) of HQNAS's space on ``accelerator``."""

    def __init__(self, config: SupernetConfig, accelerator: AcceleratorConfig, hw_model: str = "deployment") -> None:
        self.config = config
        self.accelerator = accelerator
        self.hw_model = hw_model
        self.w_bits = tuple(config.quant.weight_bits)
        self.a_bits = tuple(config.quant.activation_bits)
        self.pairs = tuple((w, a) for w in self.w_bits for a in self.a_bits)
        #: The layers of HQNAS's ops, read from the IR of a supernet of the same config over HQNAS_OPS (the
        #: super-kernel shares weights between ops, not shapes); skip is only offered where it is an identity.
        self.space = SpaceCosts.from_config(attrs.evolve(config, candidates=HQNAS_OPS))
        self.head_bits = self.space.head_bits
        self.out_bits = tuple(sorted({*self.a_bits, self.head_bits}))
        self.residual = list(self.space.residual)
        blocks = [
            [
                [] if op == "skip" and not self.space.residual[b] else self.space.candidate_problems(b, op)
                for op in HQNAS_OPS
            ]
            for b in range(len(self.space.blocks))
        ]
        self.identity_ops = torch.tensor([[not layers for layers in ops] for ops in blocks])
        table = candidate_cost_table(
            blocks, accelerator, self.pairs, space="jaq", hw_model=hw_model, out_bits=self.out_bits
        )
        energy, latency = priced_costs(table)
        shape = (len(self.out_bits), len(blocks), len(HQNAS_OPS), len(self.w_bits), len(self.a_bits))
        self.latency_s = latency.reshape(shape)  # [out, block, op, w, a]
        self.energy_nj = energy.reshape(shape)
        self.feasible = table.feasible.reshape(shape)
        stem_and_fixed = fixed_layer_costs(self.space, accelerator, self.out_bits, hw_model)
        self.stem_energy_nj, self.stem_latency_s, fixed = stem_and_fixed
        self.fixed_latency_s = fixed.latency_s  # head, classifier
        self.fixed_energy_nj = fixed.energy_nJ
        self.area_mm2 = area_for(accelerator).total
        #: Latency and energy of the largest path (k5_e6 at the highest bits everywhere): the units of the log term.
        largest = ["k5_e6"] * len(blocks)
        self.reference_latency_s, self.reference_energy_nj = self.at(
            largest, [(self.w_bits[-1], self.a_bits[-1])] * len(blocks)
        )

    def _weights(self, decisions: Sequence[BlockDecisions]) -> Tensor:
        rows = []
        for d in decisions:
            ops = d.op_probabilities().to(torch.float64)
            w = ladder_probabilities(d.weight_gates).to(torch.float64)
            a = ladder_probabilities(d.activation_gates).to(torch.float64)
            rows.append(ops[:, None, None] * w[None, :, None] * a[None, None, :])
        return torch.stack(rows)

    def _consumers(self, decisions: Sequence[BlockDecisions]) -> Tensor:
        ops = torch.stack([d.op_probabilities().to(torch.float64) for d in decisions])
        a_probs = torch.zeros((*ops.shape, len(self.out_bits)), dtype=torch.float64)
        columns = [self.out_bits.index(a) for a in self.a_bits]
        for b, d in enumerate(decisions):
            a_probs[b, :, columns] = ladder_probabilities(d.activation_gates).to(torch.float64)
        return consumer_distributions(self.out_bits, ops, a_probs, self.identity_ops, self.residual, self.head_bits)

    def expected(self, decisions: Sequence[BlockDecisions]) -> tuple[Tensor, Tensor]:
        """Expected latency (s, differentiable in the thresholds) and energy (nJ) of the relaxed choices."""
        weights = self._weights(decisions)  # [block, op, w, a]
        consumer = self._consumers(decisions)  # [block + 1, out]
        by_out = consumer[1:].T[:, :, None, None, None] * weights[None]
        latency = (by_out * self.latency_s).sum() + (consumer[0] * self.stem_latency_s).sum() + self.fixed_latency_s
        energy = (by_out * self.energy_nj).sum() + (consumer[0] * self.stem_energy_nj).sum() + self.fixed_energy_nj
        return latency, energy

    def at(self, ops: Sequence[str], bits: Sequence[tuple[int, int]]) -> tuple[float, float]:
        """Latency (s) and energy (nJ) of one derived path, from the table."""
        consumer = [self.out_bits.index(c) for c in self.space.derived_consumer_bits(ops, bits)]
        latency = self.fixed_latency_s + float(self.stem_latency_s[consumer[0]])
        energy = self.fixed_energy_nj + float(self.stem_energy_nj[consumer[0]])
        for block, (op, (w, a)) in enumerate(zip(ops, bits, strict=True)):
            index = (consumer[block + 1], block, HQNAS_OPS.index(op), self.w_bits.index(w), self.a_bits.index(a))
            latency += float(self.latency_s[index])
            energy += float(self.energy_nj[index])
        return latency, energy
