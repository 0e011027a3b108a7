"""BatchTile: the exact best mapping of many layers, all candidate mappings evaluated as one batch.

For every layer the candidates are all tilings of the chosen space (jaqc.hw.mapping.mapping_space) times the loop
orders; they are evaluated with the cost model's tensor code and the exact argmin of the objective is taken
per layer (jaqc.hw.mapping.batchtile_search). Tie-breaking (deterministic): minimise (objective, secondary
objective), then the smallest tile tuple in LOOP_DIMS order (B, OW, OH, IC, OC) compared
lexicographically, then the smallest loop-order rank (jaqc.hw.model.orders). Secondary objective: energy for
``latency``, cycles for ``energy`` and ``edp``. Only provably exact reductions are applied (overflowing
tilings dropped, one order per cost-equivalence class, factored traffic, bounding); docs/cost_model.md,
section 14, gives the proofs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from attrs import frozen

from jaqc.hw.errors import HardwareError, InfeasibleMappingError
from jaqc.hw.mapping.batchtile_search import UNIT_KEYS, search_chunk
from jaqc.hw.mapping.mapping_space import (
    JAQ_MAX_TILE_EXPONENT,
    MappingSpace,
    Objective,
    candidate_order_ranks,
    candidate_tiles,
    parse_enum,
    shared_candidate_tiles,
    tile_options,
)
from jaqc.hw.model.constants import LOOP_OPERAND_DEPENDENCE
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.layer_cost import layer_costs, stack_unit_costs
from jaqc.hw.model.orders import order_at, order_rank
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.records import CostRecord
from jaqc.hw.model.tensors import HardwareTensors, ProblemTensors, UnitCostTensors
from jaqc.hw.model.traffic import GROUPED_DEPENDENCE
from jaqc.hw.model.unit_costs import UnitCosts, unit_cost_tensors
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LoopDim, Mapping

__all__ = [
    "JAQ_MAX_TILE_EXPONENT",
    "BatchTileSelection",
    "MappingResult",
    "MappingSpace",
    "Objective",
    "candidate_order_ranks",
    "candidate_tiles",
    "map_layer",
    "map_layers",
    "select_mappings",
    "tile_options",
]


@frozen(kw_only=True)
class MappingResult:
    """The best mapping of one layer, its full cost and how many candidates were compared."""

    problem: ConvProblem
    mapping: Mapping
    cost: CostRecord
    candidates: int

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: the layer (reference-data format), its mapping, cost and candidate count."""
        return {
            "layer": self.problem.to_reference(),
            "mapping": self.mapping.to_json(),
            "cost": self.cost.to_json(),
            "candidates": self.candidates,
        }


@frozen(eq=False)
class BatchTileSelection:
    """Tensor form of BatchTile's choice for L layers (the fast path used by the search loop).

    ``tile`` (L, 5) and ``order_rank`` (L,) are the chosen mappings; ``total_cycles`` and ``energy`` their
    cost (inf where ``feasible`` is False: no candidate fits); ``candidates`` (L,) the candidate counts.
    """

    tile: torch.Tensor
    order_rank: torch.Tensor
    total_cycles: torch.Tensor
    energy: torch.Tensor
    feasible: torch.Tensor
    candidates: torch.Tensor


def select_mappings(
    problems: Sequence[ConvProblem],
    accelerators: Sequence[AcceleratorConfig],
    space: MappingSpace | str = MappingSpace.BITFUSION,
    objective: Objective | str = Objective.LATENCY,
    unit_costs: UnitCostTensors | None = None,
    max_rows: int = 1 << 20,
    loop_orders: Sequence[Sequence[LoopDim | str]] | None = None,
    hw_model: HardwareModel | str | None = None,
) -> BatchTileSelection:
    """BatchTile for L layers, each on its accelerator, in few vectorised calls.

    Layers are grouped by their loop-order set (at most four sets) and, in the deployment model, by whether
    they are grouped convolutions; each group is evaluated in chunks of about ``max_rows`` candidate rows (a
    chunk always holds at least one whole layer). ``unit_costs`` has one row per layer, or one row for all
    (default: the CACTI/synthesis costs of each accelerator). ``loop_orders`` restricts every layer to the
    given loop orders (default: all orders of the space). ``hw_model``: deployment (default) or simulator.
    """
    space = parse_enum(MappingSpace, space, "mapping space")
    objective = parse_enum(Objective, objective, "objective")
    model = parse_hw_model(hw_model)
    count = len(problems)
    if count == 0 or len(accelerators) != count:
        raise HardwareError(f"select_mappings: need one accelerator per problem, got {count} and {len(accelerators)}")
    hardware = HardwareTensors.from_accelerators(accelerators)
    problem_t = ProblemTensors.from_problems(problems)
    units = unit_costs if unit_costs is not None else unit_cost_tensors(hardware)
    units = UnitCostTensors(**{k: getattr(units, k).expand(count) for k in UNIT_KEYS})

    tiles_per_layer = [shared_candidate_tiles(p, a, space, model) for p, a in zip(problems, accelerators, strict=True)]
    if loop_orders is None:
        order_sets = [tuple(candidate_order_ranks(p, space)) for p in problems]
    else:  # only these loop orders (e.g. the generator's tile order), evaluated as given
        fixed = tuple(sorted({order_rank(o) for o in loop_orders}))
        if not fixed:
            raise HardwareError("select_mappings: loop_orders is empty")
        order_sets = [fixed] * count
    result_tile = torch.zeros(count, 5, dtype=torch.float64)
    result_rank = torch.zeros(count, dtype=torch.int64)
    result_cycles = torch.full((count,), math.inf, dtype=torch.float64)
    result_energy = torch.full((count,), math.inf, dtype=torch.float64)
    candidates = torch.zeros(count, dtype=torch.int64)
    # The deployment model's grouped layers have their own loop -> operand table (OC indexes activations).
    grouped = [model is HardwareModel.DEPLOYMENT and p.groups > 1 for p in problems]
    for ranks, is_grouped in sorted(set(zip(order_sets, grouped, strict=True))):
        layers = [i for i in range(count) if order_sets[i] == ranks and grouped[i] == is_grouped]
        for chunk in _chunks(layers, [tiles_per_layer[i].shape[0] * len(ranks) for i in layers], max_rows):
            chosen = search_chunk(
                [tiles_per_layer[i] for i in chunk],
                torch.tensor(chunk),
                problem_t,
                hardware,
                units,
                list(ranks),
                objective,
                model,
                GROUPED_DEPENDENCE if is_grouped else LOOP_OPERAND_DEPENDENCE,
            )
            index = torch.tensor(chunk)
            result_tile[index] = chosen[0]
            result_rank[index] = chosen[1]
            result_cycles[index] = chosen[2]
            result_energy[index] = chosen[3]
            candidates[index] = torch.tensor([tiles_per_layer[i].shape[0] * len(ranks) for i in chunk])
    return BatchTileSelection(
        tile=result_tile,
        order_rank=result_rank,
        total_cycles=result_cycles,
        energy=result_energy,
        feasible=torch.isfinite(result_cycles),
        candidates=candidates,
    )


def _chunks(items: list[int], weights: list[int], limit: int) -> list[list[int]]:
    chunks: list[list[int]] = [[]]
    total = 0
    for item, weight in zip(items, weights, strict=True):
        if chunks[-1] and total + weight > limit:
            chunks.append([])
            total = 0
        chunks[-1].append(item)
        total += weight
    return chunks


def _mapping_from(tile: Sequence[float], rank: int) -> Mapping:
    return Mapping(tile=[int(t) for t in tile], loop_order=order_at(rank))


def map_layers(
    problems: Sequence[ConvProblem],
    accelerator: AcceleratorConfig | Sequence[AcceleratorConfig],
    space: MappingSpace | str = MappingSpace.BITFUSION,
    objective: Objective | str = Objective.LATENCY,
    unit_costs: UnitCosts | Sequence[UnitCosts] | None = None,
    loop_orders: Sequence[Sequence[LoopDim | str]] | None = None,
    hw_model: HardwareModel | str | None = None,
) -> list[MappingResult]:
    """The best mapping of each layer (one accelerator for all, or one per layer) with its full cost under
    ``hw_model`` (deployment by default).

    Raises InfeasibleMappingError naming the first layer none of whose candidates fits the buffers.
    """
    model = parse_hw_model(hw_model)
    count = len(problems)
    accs = [accelerator] * count if isinstance(accelerator, AcceleratorConfig) else list(accelerator)
    unit_list = None
    units = None
    if unit_costs is not None:
        unit_list = [unit_costs] * count if isinstance(unit_costs, UnitCosts) else list(unit_costs)
        units = stack_unit_costs(unit_list)
    selection = select_mappings(problems, accs, space, objective, units, loop_orders=loop_orders, hw_model=model)
    for i in range(count):
        if not bool(selection.feasible[i]):
            p = problems[i]
            raise InfeasibleMappingError(
                f"layer {p.name or i}: no {MappingSpace(space).value}-space mapping fits the buffers of "
                f"accelerator {accs[i].name or accs[i]} (every tile block must fit half of its buffer)"
            )
    mappings = [_mapping_from(selection.tile[i].tolist(), int(selection.order_rank[i])) for i in range(count)]
    costs = layer_costs(problems, accs, mappings, unit_list, model)
    return [
        MappingResult(problem=p, mapping=m, cost=c, candidates=int(n))
        for p, m, c, n in zip(problems, mappings, costs, selection.candidates.tolist(), strict=True)
    ]


def map_layer(
    problem: ConvProblem,
    accelerator: AcceleratorConfig,
    space: MappingSpace | str = MappingSpace.BITFUSION,
    objective: Objective | str = Objective.LATENCY,
    unit_costs: UnitCosts | None = None,
    hw_model: HardwareModel | str | None = None,
) -> MappingResult:
    """The best mapping of one layer (see :func:`map_layers`)."""
    return map_layers([problem], accelerator, space, objective, unit_costs, hw_model=hw_model)[0]
