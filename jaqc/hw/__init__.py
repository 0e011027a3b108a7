"""jaqc.hw: the BitFusion-style accelerator model, its search space and the BatchTile mapping search.

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

Attributes are imported lazily (PEP 562), so ``import jaqc.hw.problem`` (``ConvProblem``, torch-free) does
not import torch; the other modules do.
"""

from __future__ import annotations

from jaqc.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BatchTileSelection": "batchtile",
    "MappingResult": "batchtile",
    "MappingSpace": "batchtile",
    "Objective": "batchtile",
    "candidate_order_ranks": "batchtile",
    "candidate_tiles": "batchtile",
    "map_layer": "batchtile",
    "map_layers": "batchtile",
    "select_mappings": "batchtile",
    "tile_options": "batchtile",
    "CandidateCostTable": "candidate_table",
    "candidate_cost_table": "candidate_table",
    "CostTensors": "cost_model",
    "evaluate": "cost_model",
    "HardwareError": "errors",
    "DEFAULT_HW_MODEL": "hw_models",
    "HardwareModel": "hw_models",
    "parse_hw_model": "hw_models",
    "InfeasibleMappingError": "errors",
    "layer_cost": "layer_cost",
    "layer_costs": "layer_cost",
    "ALL_ORDERS": "orders",
    "order_at": "orders",
    "order_rank": "orders",
    "ConvProblem": "problem",
    "perf_factor": "problem",
    "CostRecord": "records",
    "AcceleratorSpace": "space",
    "HardwarePoint": "space",
    "HardwareTensors": "tensors",
    "MappingTensors": "tensors",
    "ProblemTensors": "tensors",
    "UnitCostTensors": "tensors",
    "AreaBreakdown": "unit_costs",
    "UnitCosts": "unit_costs",
    "area_for": "unit_costs",
    "unit_costs_for": "unit_costs",
    "ALL_BIT_PAIRS": "workloads",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
