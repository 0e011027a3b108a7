"""Hardware cost bound to α and β: the expected E_HW of the supernet (issue: JAQ search, part 3).

``E[cost] = Σ_blocks Σ_ops p(α) Σ_(w,a) p(β_w)·p(β_a) · cost(block, op, w, a | accelerator, best mapping)``
plus the fixed layers (stem, head, classifier), from the candidate cost table
(:func:`jaqc.hw.candidate_table.candidate_cost_table`), refreshed whenever the accelerator changes. Energy and
latency are differentiable in α and β; area depends only on the accelerator. Each term is normalised by the
same quantity of the reference design (:data:`jaqc.hw.generator_training.REFERENCE_ACCELERATOR`) running the
uniform-α/β supernet, so ``λE·E/E_ref + λL·L/L_ref + λA·A/A_ref`` is unitless and about 1 at the start.
A table entry whose op cannot be mapped (no tiling fits) costs 10x the largest feasible entry of the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jaqc.hw.candidate_table import CandidateCostTable, candidate_cost_table
from jaqc.hw.generator_training import REFERENCE_ACCELERATOR
from jaqc.hw.hw_objective import HardwareTotals, HardwareWeights, mapped_totals
from jaqc.hw.problem import ConvProblem
from jaqc.hw.unit_costs import area_for
from jaqc.hw.workloads import inverted_residual
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.nn.candidates import candidate_spec
from jaqc.nn.config import SupernetConfig

INFEASIBLE_FACTOR = 10.0


def _bits(bits: object) -> tuple[int, int]:
    """(w, a) a fixed layer runs at: floating point (None) runs at the target's 8 bits."""
    if bits is None:
        return (8, 8)
    w, a = getattr(bits, "w_bits", 8), getattr(bits, "a_bits", 8)
    return (w or 8, a or 8)


def block_input_sizes(config: SupernetConfig) -> list[int]:
    """The input resolution of every searchable block."""
    size = (config.input_size + 2 - 3) // config.stem_stride + 1
    sizes = []
    for _cin, _cout, stride in config.block_specs():
        sizes.append(size)
        size = (size + 2 - 3) // stride + 1 if stride > 1 else size
    return sizes


def candidate_problems(
    config: SupernetConfig, block: int, op: str, bits: tuple[int, int] = (8, 8)
) -> list[ConvProblem]:
    """The conv layers of candidate ``op`` of block ``block`` (a skip op: none, or its 1x1 projection)."""
    cin, cout, stride = config.block_specs()[block]
    size = block_input_sizes(config)[block]
    spec = candidate_spec(op)
    name = f"blocks.{block}.{op}"
    if spec.is_skip:
        if stride == 1 and cin == cout:
            return []
        return [
            ConvProblem(name=f"{name}.proj", batch=1, in_channels=cin, out_channels=cout, in_h=size, in_w=size,
                        kernel=1, stride=stride, w_bits=bits[0], a_bits=bits[1])
        ]  # fmt: skip
    return inverted_residual(name, cin, cout, size, spec.kernel, spec.expansion, stride, spec.groups, bits)


def fixed_problems(config: SupernetConfig) -> list[ConvProblem]:
    """Stem (im2col), head and classifier: the layers outside the search."""
    last_size = block_input_sizes(config)[-1]
    _, _, last_stride = config.block_specs()[-1]
    out_size = (last_size - 1) // last_stride + 1
    w, a = _bits(config.stem_bits)
    hw, ha = _bits(config.head_bits)
    fw, fa = _bits(config.fc_bits)
    return [
        ConvProblem(name="stem", batch=1, in_channels=config.in_channels, out_channels=config.stem_channels,
                    in_h=config.input_size, in_w=config.input_size, kernel=3, stride=config.stem_stride, pad=1,
                    w_bits=w, a_bits=a, im2col=True),
        ConvProblem(name="head", batch=1, in_channels=config.stage_channels[-1], out_channels=config.head_channels,
                    in_h=out_size, in_w=out_size, kernel=1, w_bits=hw, a_bits=ha),
        ConvProblem(name="classifier", batch=1, in_channels=config.head_channels, out_channels=config.num_classes,
                    in_h=1, in_w=1, kernel=1, w_bits=fw, a_bits=fa),
    ]  # fmt: skip


def derived_problems(config: SupernetConfig, ops: Sequence[str], bits: Sequence[tuple[int, int]]) -> list[ConvProblem]:
    """All conv layers of a derived subnet: the fixed layers around the chosen op (with its bits) per block."""
    stem, head, classifier = fixed_problems(config)
    layers = [stem]
    for block, (op, pair) in enumerate(zip(ops, bits, strict=True)):
        layers += candidate_problems(config, block, op, pair)
    return [*layers, head, classifier]


class ExpectedHardwareCost:
    """E_HW of the supernet as a differentiable function of α and β on the current accelerator."""

    def __init__(
        self,
        config: SupernetConfig,
        weights: HardwareWeights,
        reference_accelerator: AcceleratorConfig = REFERENCE_ACCELERATOR,
    ) -> None:
        self.config = config
        self.weights = weights
        self.w_bits = tuple(config.quant.weight_bits)
        self.a_bits = tuple(config.quant.activation_bits)
        self.pairs = tuple((w, a) for w in self.w_bits for a in self.a_bits)
        self.blocks = [
            [candidate_problems(config, b, op) for op in config.candidates] for b in range(config.num_blocks)
        ]
        self.fixed = fixed_problems(config)
        self.accelerator: AcceleratorConfig | None = None
        self.table: CandidateCostTable | None = None
        self.refresh(reference_accelerator)
        uniform_alpha = torch.full((config.num_blocks, len(config.candidates)), 1.0 / len(config.candidates))
        uniform_w = torch.full((*uniform_alpha.shape, len(self.w_bits)), 1.0 / len(self.w_bits))
        uniform_a = torch.full((*uniform_alpha.shape, len(self.a_bits)), 1.0 / len(self.a_bits))
        energy, latency = self.expected(uniform_alpha, uniform_w, uniform_a)
        self.reference = HardwareTotals(
            energy_nJ=float(energy), latency_s=float(latency), area_mm2=area_for(reference_accelerator).total
        )

    def refresh(self, accelerator: AcceleratorConfig) -> None:
        """Rebuild the candidate cost table (and the fixed layers' cost) for ``accelerator``."""
        table = candidate_cost_table(self.blocks, accelerator, self.pairs, space="jaq")
        finite = torch.isfinite(table.energy_nj)
        energy, latency = table.energy_nj.clone(), table.latency_s.clone()
        if not finite.all():
            energy[~finite] = INFEASIBLE_FACTOR * energy[finite].max()
            latency[~finite] = INFEASIBLE_FACTOR * latency[finite].max()
        self.energy_table, self.latency_table = energy, latency
        self.fixed_totals = mapped_totals(self.fixed, accelerator)
        self.area_mm2 = area_for(accelerator).total
        self.accelerator, self.table = accelerator, table

    def expected(self, alpha: Tensor, beta_w: Tensor, beta_a: Tensor) -> tuple[Tensor, Tensor]:
        """Expected energy (nJ) and latency (s) of the whole network for probabilities α [B,O], β [B,O,bits]."""
        pair = (beta_w[..., :, None] * beta_a[..., None, :]).reshape(*alpha.shape, len(self.pairs))
        weight = alpha[..., None].to(torch.float64) * pair.to(torch.float64)
        energy = (weight * self.energy_table).sum() + self.fixed_totals.energy_nJ
        latency = (weight * self.latency_table).sum() + self.fixed_totals.latency_s
        return energy, latency

    def __call__(self, alpha: Tensor, beta_w: Tensor, beta_a: Tensor) -> tuple[Tensor, dict[str, float]]:
        """E_HW (normalised, see the module docstring) and its parts in physical units."""
        energy, latency = self.expected(alpha, beta_w, beta_a)
        ref, w = self.reference, self.weights
        ratios = (
            (w.energy, energy / ref.energy_nJ),
            (w.latency, latency / ref.latency_s),
            (w.area, torch.tensor(self.area_mm2 / ref.area_mm2, dtype=torch.float64)),
        )
        if w.form == "log":
            e_hw = sum(lam * torch.log(r) for lam, r in ratios)
        else:
            e_hw = sum(lam * r for lam, r in ratios)
        parts = {"energy_nJ": float(energy.detach()), "latency_s": float(latency.detach()), "area_mm2": self.area_mm2}
        return e_hw, parts  # type: ignore[return-value]
