"""Reading the BitFusion reference cases (the ``bitfusion_ref/*.json`` format described in the data README).

The package does not ship the reference data; callers pass the file's path (tests and the validation
script use the project's shared data folder).
"""

from __future__ import annotations

import json
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from attrs import frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.unit_costs import UnitCosts
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping


@frozen
class ReferenceRecord:
    """One simulator evaluation: a mapping and the simulator's results for it (raw JSON sections)."""

    kind: str
    mapping: Mapping
    cycles: dict[str, int]
    access_bits: dict[str, int]
    energy_nj: dict[str, float]
    latency_s: float
    in_simulator_search_space: bool


@frozen
class ReferenceCase:
    """One reference case: a layer, an accelerator, the simulator's unit costs, area, optimum and fixed
    mappings."""

    case_id: str
    problem: ConvProblem
    accelerator: AcceleratorConfig
    unit_costs: UnitCosts
    area_mm2: dict[str, float]
    sim_input: dict[str, Any]
    optimized: ReferenceRecord
    orders_tied_with_best: tuple[str, ...]
    fixed: tuple[ReferenceRecord, ...]

    @property
    def records(self) -> tuple[ReferenceRecord, ...]:
        """The optimum followed by the fixed mappings."""
        return (self.optimized, *self.fixed)


def _record(data: MappingABC[str, Any], kind: str) -> ReferenceRecord:
    return ReferenceRecord(
        kind=kind,
        mapping=Mapping.from_json(data["mapping"]),
        cycles=dict(data["cycles"]),
        access_bits=dict(data["access_bits"]),
        energy_nj=dict(data["energy_nJ"]),
        latency_s=float(data["latency_s"]),
        in_simulator_search_space=bool(data.get("in_simulator_search_space", True)),
    )


def case_from_json(data: MappingABC[str, Any]) -> ReferenceCase:
    """One case record of the reference file."""
    try:
        accelerator = AcceleratorConfig.from_json(data["accelerator"], where=f"case {data['id']}")
        return ReferenceCase(
            case_id=data["id"],
            problem=ConvProblem.from_reference(data["layer"]),
            accelerator=accelerator,
            unit_costs=UnitCosts.from_reference(data["unit_costs"]),
            area_mm2=dict(data["area_mm2"]),
            sim_input=dict(data["sim_input"]),
            optimized=_record(data["optimized"], "optimized"),
            orders_tied_with_best=tuple(data["optimized"].get("orders_tied_with_best", ())),
            fixed=tuple(_record(r, r["kind"]) for r in data["fixed_mappings"]),
        )
    except KeyError as exc:
        raise HardwareError(f"reference case is missing field {exc.args[0]!r}") from None


def load_reference_cases(path: str | Path) -> list[ReferenceCase]:
    """All cases of a reference JSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HardwareError(f"cannot read reference cases from {path}: {exc}") from None
    return [case_from_json(case) for case in data["cases"]]
