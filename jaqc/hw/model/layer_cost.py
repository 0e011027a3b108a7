"""Cost of given (layer, accelerator, mapping) triples: the entry point of ``jaqc cost``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.cost_model import evaluate
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.records import CostRecord, cost_records
from jaqc.hw.model.tensors import (
    HardwareTensors,
    MappingTensors,
    ProblemTensors,
    UnitCostTensors,
    check_tiles_within_extents,
)
from jaqc.hw.model.unit_costs import UnitCosts
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping

_UNIT_FIELDS = [a.name for a in UnitCosts.__attrs_attrs__]  # type: ignore[attr-defined]


def stack_unit_costs(costs: Sequence[UnitCosts], device: torch.device | str | None = None) -> UnitCostTensors:
    """One row of unit costs per entry."""
    return UnitCostTensors(
        **{n: torch.tensor([getattr(c, n) for c in costs], dtype=torch.float64, device=device) for n in _UNIT_FIELDS}
    )


def layer_costs(
    problems: Sequence[ConvProblem],
    accelerators: AcceleratorConfig | Sequence[AcceleratorConfig],
    mappings: Sequence[Mapping],
    unit_costs: UnitCosts | Sequence[UnitCosts] | None = None,
    hw_model: HardwareModel | str | None = None,
) -> list[CostRecord]:
    """The cost of each layer at its mapping, in one batched evaluation.

    ``accelerators`` and ``unit_costs`` are one value for all layers or one per layer; ``unit_costs``
    defaults to the packaged CACTI/synthesis costs of each accelerator. ``hw_model``: the deployment model
    (default) or the simulator's.
    """
    model = parse_hw_model(hw_model)
    count = len(problems)
    if len(mappings) != count:
        raise HardwareError(f"layer_costs: {count} problems but {len(mappings)} mappings")
    accs = [accelerators] * count if isinstance(accelerators, AcceleratorConfig) else list(accelerators)
    if len(accs) != count:
        raise HardwareError(f"layer_costs: {count} problems but {len(accs)} accelerators")
    check_tiles_within_extents(problems, mappings, model)
    units = None
    if unit_costs is not None:
        unit_list = [unit_costs] * count if isinstance(unit_costs, UnitCosts) else list(unit_costs)
        if len(unit_list) != count:
            raise HardwareError(f"layer_costs: {count} problems but {len(unit_list)} unit-cost records")
        units = stack_unit_costs(unit_list)
    costs = evaluate(
        ProblemTensors.from_problems(problems),
        HardwareTensors.from_accelerators(accs),
        MappingTensors.from_mappings(mappings),
        units,
        hw_model=model,
    )
    return cost_records(costs)


def layer_cost(
    problem: ConvProblem,
    accelerator: AcceleratorConfig,
    mapping: Mapping,
    unit_costs: UnitCosts | None = None,
    hw_model: HardwareModel | str | None = None,
) -> CostRecord:
    """The cost of one layer at one mapping on one accelerator."""
    return layer_costs([problem], accelerator, [mapping], unit_costs, hw_model)[0]
