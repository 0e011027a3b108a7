"""jaqc.hw: the BitFusion-style accelerator model, its search space and the BatchTile mapping search.

One subpackage per subsystem:

* :mod:`jaqc.hw.model`: the cost model (layer problems and their lowering from the IR, tensors, the equations,
  unit costs from CACTI, network totals and E_HW);
* :mod:`jaqc.hw.mapping`: the mapping search (BatchTile, the candidate cost table, the mapping report);
* :mod:`jaqc.hw.generator`: the accelerator search space and the hardware generation network with its training;
* :mod:`jaqc.hw.reference`: the references the model is checked against (the BitFusion reference cases, the
  loop-nest oracle, the scalar model, example workloads) and ``jaqc cost``;
* :mod:`jaqc.hw.accelerators`: the named accelerator presets and accelerator files.

Public API (see docs/cost_model.md for the equations):

* layers and accelerators: :class:`ConvProblem`, :class:`AcceleratorSpace` / :class:`HardwarePoint`,
  unit costs and area (:func:`unit_costs_for`, :func:`area_for`, :class:`UnitCosts`);
* cost of given mappings: :func:`layer_cost`, :func:`layer_costs` (records), :func:`evaluate` (tensors,
  batched, differentiable with ``relaxed=True``);
* mapping search: :func:`map_layer`, :func:`map_layers`, :func:`select_mappings` (tensors) in the
  ``bitfusion`` or ``jaq`` :class:`MappingSpace` for an :class:`Objective`;
* the supernet's per-step table: :func:`candidate_cost_table`;
* two named hardware models (:class:`HardwareModel`): ``deployment`` (the default) and ``simulator``; every
  entry point above takes ``hw_model=``.

Attributes are imported lazily (PEP 562), so ``import jaqc.hw.model.problem`` (``ConvProblem``, torch-free) does
not import torch; the other modules do.
"""

from __future__ import annotations

from jaqc.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BatchTileSelection": "mapping.batchtile",
    "MappingResult": "mapping.batchtile",
    "MappingSpace": "mapping.batchtile",
    "Objective": "mapping.batchtile",
    "candidate_order_ranks": "mapping.batchtile",
    "candidate_tiles": "mapping.batchtile",
    "map_layer": "mapping.batchtile",
    "map_layers": "mapping.batchtile",
    "select_mappings": "mapping.batchtile",
    "tile_options": "mapping.batchtile",
    "CandidateCostTable": "mapping.candidate_table",
    "candidate_cost_table": "mapping.candidate_table",
    "CostTensors": "model.cost_model",
    "evaluate": "model.cost_model",
    "HardwareError": "errors",
    "DEFAULT_HW_MODEL": "model.hw_models",
    "HardwareModel": "model.hw_models",
    "parse_hw_model": "model.hw_models",
    "InfeasibleMappingError": "errors",
    "layer_cost": "model.layer_cost",
    "layer_costs": "model.layer_cost",
    "ALL_ORDERS": "model.orders",
    "order_at": "model.orders",
    "order_rank": "model.orders",
    "ConvProblem": "model.problem",
    "perf_factor": "model.problem",
    "CostRecord": "model.records",
    "AcceleratorSpace": "generator.space",
    "HardwarePoint": "generator.space",
    "HardwareTensors": "model.tensors",
    "MappingTensors": "model.tensors",
    "ProblemTensors": "model.tensors",
    "UnitCostTensors": "model.tensors",
    "AreaBreakdown": "model.unit_costs",
    "UnitCosts": "model.unit_costs",
    "area_for": "model.unit_costs",
    "unit_costs_for": "model.unit_costs",
    "ALL_BIT_PAIRS": "reference.workloads",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
