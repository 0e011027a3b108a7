"""The supernet's candidate cost table: every (block, candidate op, bit pair) at its best mapping.

Called every hardware step of the joint search. Each candidate op is a list of layers (empty for a skip
op, which costs nothing); an op's cost is the sum over its layers, each at its own BatchTile-optimal
mapping with the op's (w_bits, a_bits). Identical layer problems (same shape, bits and im2col, whatever
their names) are mapped once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from attrs import evolve, frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.mapping.batchtile import MappingSpace, Objective, select_mappings
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.unit_costs import UnitCosts
from jaqc.hw.reference.workloads import ALL_BIT_PAIRS
from jaqc.ir.accelerator import AcceleratorConfig


@frozen(eq=False)
class CandidateCostTable:
    """Costs indexed [block, op, pair] with ``bit_pairs[pair] = (w_bits, a_bits)`` (with ``out_bits`` given:
    [out, block, op, pair], ``out_bits[out]`` the width the op's last layer writes its outputs at).

    ``total_cycles`` (cycles), ``energy_nj`` (nJ) and ``latency_s`` (s) are float64 tensors; missing ops
    of blocks with fewer candidates, and skip ops, are 0. ``feasible`` is False where some layer of the op
    has no mapping that fits the buffers (its costs are then inf).
    """

    bit_pairs: tuple[tuple[int, int], ...]
    total_cycles: torch.Tensor
    energy_nj: torch.Tensor
    latency_s: torch.Tensor
    feasible: torch.Tensor


def _shape_key(layer: ConvProblem) -> tuple:
    return (
        layer.batch, layer.in_channels, layer.out_channels, layer.in_h, layer.in_w, layer.kernel,
        layer.stride, layer.pad, layer.groups, layer.im2col,
    )  # fmt: skip


def candidate_cost_table(
    blocks: Sequence[Sequence[Sequence[ConvProblem]]],
    accelerator: AcceleratorConfig,
    bit_pairs: Sequence[tuple[int, int]] = ALL_BIT_PAIRS,
    space: MappingSpace | str = MappingSpace.BITFUSION,
    objective: Objective | str = Objective.LATENCY,
    unit_costs: UnitCosts | None = None,
    hw_model: HardwareModel | str | None = None,
    out_bits: Sequence[int] | None = None,
    writers: Sequence[Sequence[Sequence[bool]]] | None = None,
) -> CandidateCostTable:
    """Cost table of a supernet on one accelerator: ``blocks[b][o]`` is the layer list of op o of block b.

    An op's layers form a chain. Without ``out_bits`` each layer keeps its own ``out_bits`` (the width its
    outputs are written at in the deployment model); with ``out_bits`` the table has a leading axis over those
    widths: the op's inner layers write at the pair's activation bits (their consumer is the next layer of
    the op) and its last layer at the width of that axis (the block output's consumers). ``writers[b][o][i]``,
    when given, says which layers write the block output instead of "the last one" (ops that are not chains)."""
    pairs = tuple((int(w), int(a)) for w, a in bit_pairs)
    if not pairs:
        raise HardwareError("candidate_cost_table: bit_pairs is empty")
    if out_bits is not None and not out_bits:
        raise HardwareError("candidate_cost_table: out_bits is empty")
    outs: tuple[int | None, ...] = (None,) if out_bits is None else tuple(int(c) for c in out_bits)
    n_blocks = len(blocks)
    n_ops = max((len(ops) for ops in blocks), default=0)
    shape = (n_blocks, n_ops, len(pairs)) if out_bits is None else (len(outs), n_blocks, n_ops, len(pairs))
    unique: dict[tuple, int] = {}  # (shape fields, w_bits, a_bits, out_bits) -> index into ``problems``
    problems: list[ConvProblem] = []
    slots: list[int] = []  # flat (out, block, op, pair) slot of each layer occurrence
    layer_ids: list[int] = []
    for c, out in enumerate(outs):
        for b, ops in enumerate(blocks):
            for o, layers in enumerate(ops):
                keyed = [(_shape_key(layer), layer) for layer in layers]
                for p, (w, a) in enumerate(pairs):
                    for index, (layer_key, layer) in enumerate(keyed):
                        writes = index == len(keyed) - 1 if writers is None else writers[b][o][index]
                        width = layer.out_bits if out is None else (out if writes else a)
                        key = (*layer_key, w, a, width)
                        if key not in unique:
                            unique[key] = len(problems)
                            problems.append(evolve(layer, name="", w_bits=w, a_bits=a, out_bits=width))
                        layer_ids.append(unique[key])
                        slots.append(((c * n_blocks + b) * n_ops + o) * len(pairs) + p)
    cycles = torch.zeros(shape, dtype=torch.float64)
    energy = torch.zeros(shape, dtype=torch.float64)
    if problems:
        units = unit_costs.to_tensors() if unit_costs is not None else None
        selection = select_mappings(
            problems, [accelerator] * len(problems), space, objective, units, hw_model=parse_hw_model(hw_model)
        )
        index = torch.tensor(layer_ids)
        slot = torch.tensor(slots)
        cycles.view(-1).index_add_(0, slot, selection.total_cycles[index])
        energy.view(-1).index_add_(0, slot, selection.energy[index])
    return CandidateCostTable(
        bit_pairs=pairs,
        total_cycles=cycles,
        energy_nj=energy,
        latency_s=cycles / (accelerator.freq_mhz * 1.0e6),
        feasible=torch.isfinite(cycles),
    )
