"""Evaluate layer/accelerator cases given in the reference-data JSON format (``jaqc cost``).

Accepted inputs:

- a file shaped like ``bitfusion_ref/public.json`` (``{"cases": [...]}``): each case is evaluated at its
  ``optimized.mapping`` and at every ``fixed_mappings[].mapping``, with the case's ``unit_costs`` when present
  (``own_sram=True`` uses the package's CACTI table instead), and compared with the simulator's numbers
  the file carries;
- a plain list (or ``{"cases": [...]}``) of ``{id, layer, accelerator, mapping?, unit_costs?}``.

With ``search=True`` each case is also mapped by BatchTile in the chosen space and objective, every case of the
file in one batched search.

Hardware model: a file that carries the simulator's reference numbers is evaluated with the ``simulator``
model unless one is named, and evaluations are compared with the reference only under that model; any
other file uses the ``deployment`` model by default.
"""

from __future__ import annotations

import time
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from jaqc.core import JaqcError
from jaqc.core.files import read_json
from jaqc.ir import AcceleratorConfig, Mapping
from jaqc.ir.errors import IRError
from jaqc.ir.values import expect_object, to_int, to_list, to_real, to_text


def _cost_json(mapping: Mapping, record: Any) -> dict[str, Any]:
    full = record.to_json()
    return {
        "mapping": mapping.to_json(),
        "cycles": full["cycles"],
        "access_bits": full["access_bits"],
        "energy_nJ": full["energy_nJ"],
        "area_mm2": full["area_mm2"],
        "latency_s": full["latency_s"],
        "feasible": full["feasible"],
    }


def _compare(evaluation: dict[str, Any], reference: MappingABC[str, Any]) -> dict[str, Any]:
    """Exact match of cycles and access counts, relative error of the total energy."""
    cycles_ok = all(evaluation["cycles"][k] == reference["cycles"][k] for k in ("total", "stall", "compute"))
    access_ok = all(evaluation["access_bits"][k] == v for k, v in reference["access_bits"].items())
    ref_energy = reference["energy_nJ"]["total"]
    rel = abs(evaluation["energy_nJ"]["total"] - ref_energy) / ref_energy if ref_energy else 0.0
    return {"cycles_match": cycles_ok, "access_bits_match": access_ok, "energy_rel_error": rel}


#: The simulator figures a reference record carries (all three or none).
REFERENCE_FIELDS: tuple[str, ...] = ("cycles", "access_bits", "energy_nJ")


def _check_reference(record: MappingABC[str, Any], where: str) -> None:
    """A record's reference numbers are all there and well typed, so comparing with them cannot fail."""
    from jaqc.hw.model.records import ACCESS_NAMES

    given = [k for k in REFERENCE_FIELDS if k in record]
    if not given:
        return
    missing = [k for k in REFERENCE_FIELDS if k not in record]
    if missing:
        raise IRError(f"{where}: reference numbers need {', '.join(REFERENCE_FIELDS)}; missing {', '.join(missing)}")
    cycles = expect_object(record["cycles"], f"{where}.cycles")
    for key in ("total", "stall", "compute"):
        if key not in cycles:
            raise IRError(f"{where}.cycles: missing field {key!r}")
        to_int(cycles[key], f"{where}.cycles.{key}", 0, maximum=None)
    access = expect_object(record["access_bits"], f"{where}.access_bits")
    unknown = sorted(set(access) - set(ACCESS_NAMES))
    if unknown:
        raise IRError(f"{where}.access_bits: unknown field(s) {', '.join(map(str, unknown))}")
    for key, value in access.items():
        to_int(value, f"{where}.access_bits.{key}", 0, maximum=None)
    energy = expect_object(record["energy_nJ"], f"{where}.energy_nJ")
    if "total" not in energy:
        raise IRError(f"{where}.energy_nJ: missing field 'total'")
    to_real(energy["total"], f"{where}.energy_nJ.total", 0.0)


def _reference_records(case: MappingABC[str, Any]) -> list[tuple[str, MappingABC[str, Any]]]:
    """The case's evaluations: ``optimized``, each of ``fixed_mappings`` and a given ``mapping``, checked."""
    records: list[tuple[str, MappingABC[str, Any]]] = []
    if case.get("optimized") is not None:
        records.append(("optimized", expect_object(case["optimized"], "optimized")))
    for i, record in enumerate(to_list(case.get("fixed_mappings", []), "fixed_mappings")):
        record = expect_object(record, f"fixed_mappings[{i}]")
        records.append((to_text(record.get("kind", "fixed"), f"fixed_mappings[{i}].kind"), record))
    if "mapping" in case:
        records.append(("given", {"mapping": case["mapping"]}))
    for kind, record in records:
        if "mapping" not in record:
            raise IRError(f"{kind}: missing field 'mapping'")
        _check_reference(record, kind)
    return records


def carries_reference(cases: list[MappingABC[str, Any]]) -> bool:
    """Whether any case carries the simulator's reference numbers (an evaluation with ``cycles``)."""
    return any(_carries(case) for case in cases)


def _carries(case: MappingABC[str, Any]) -> bool:
    try:
        return any("cycles" in record for _, record in _reference_records(case))
    except IRError:
        return False  # reported with the case's id when the case is parsed


def _parse_case(case: MappingABC[str, Any], own_sram: bool) -> tuple[str, Any, AcceleratorConfig, Any, list, list]:
    from jaqc.hw.model.problem import ConvProblem
    from jaqc.hw.model.unit_costs import UnitCosts

    case_id = str(case.get("id", "?"))
    try:
        problem = ConvProblem.from_reference(case["layer"])
        accelerator = AcceleratorConfig.from_json(case["accelerator"], where="accelerator")
        units = None if own_sram or "unit_costs" not in case else UnitCosts.from_reference(case["unit_costs"])
        records = _reference_records(case)
        mappings = [Mapping.from_json(r["mapping"]) for _, r in records]
    except KeyError as exc:
        raise JaqcError(f"case {case_id}: missing field {exc.args[0]!r}") from None
    except (JaqcError, TypeError, ValueError) as exc:
        raise JaqcError(f"case {case_id}: {exc}") from None
    return case_id, problem, accelerator, units, records, mappings


def evaluate_case(
    case: MappingABC[str, Any],
    search: bool,
    space: str,
    objective: str,
    own_sram: bool,
    hw_model: str = "deployment",
) -> dict[str, Any]:
    """Evaluate one case (see the module docstring); errors name the case id and the field."""
    from jaqc.hw.model.layer_cost import layer_costs

    case_id, problem, accelerator, units, records, mappings = _parse_case(case, own_sram)
    out: dict[str, Any] = {"id": case_id, "evaluations": []}
    if mappings:
        try:
            costs = layer_costs([problem] * len(mappings), accelerator, mappings, units, hw_model)
        except JaqcError as exc:
            raise JaqcError(f"case {case_id}: {exc}") from None
        for (kind, reference), mapping, cost in zip(records, mappings, costs, strict=True):
            evaluation = {"kind": kind, **_cost_json(mapping, cost)}
            if "cycles" in reference and hw_model == "simulator":
                evaluation["reference"] = _compare(evaluation, reference)
            out["evaluations"].append(evaluation)
    if search:
        out["search"] = search_cases([case], space, objective, own_sram, hw_model)[0]
    return out


def search_cases(
    cases: list[MappingABC[str, Any]], space: str, objective: str, own_sram: bool, hw_model: str = "deployment"
) -> list[dict[str, Any]]:
    """BatchTile's best mapping of every case, all cases in one batched search (cases sharing an accelerator share
    its tensors); each result's ``seconds`` is its share of the batch's time. An infeasible case is named."""
    from jaqc.hw.errors import InfeasibleMappingError
    from jaqc.hw.mapping.batchtile import map_layer, map_layers

    parsed = [_parse_case(case, own_sram) for case in cases]
    if not parsed:
        return []
    problems = [p[1] for p in parsed]
    accelerators = [p[2] for p in parsed]
    units = [p[3] for p in parsed]
    # The packaged CACTI costs where a case gives none: one unit-cost source for the whole batch.
    if any(u is not None for u in units):
        from jaqc.hw.model.unit_costs import unit_costs_for

        units = [u if u is not None else unit_costs_for(a) for u, a in zip(units, accelerators, strict=True)]
    start = time.perf_counter()
    try:
        results = map_layers(
            problems, accelerators, space, objective, None if all(u is None for u in units) else units,
            hw_model=hw_model,
        )  # fmt: skip
    except InfeasibleMappingError:
        for case_id, problem, accelerator, unit, _, _ in parsed:  # name the first case that cannot be mapped
            try:
                map_layer(problem, accelerator, space, objective, unit, hw_model=hw_model)
            except InfeasibleMappingError as exc:
                raise JaqcError(f"case {case_id}: {exc}") from None
        raise
    share = (time.perf_counter() - start) / len(parsed)
    return [{**_cost_json(r.mapping, r.cost), "candidates": r.candidates, "seconds": share} for r in results]


def load_cases(path: str | Path) -> list[MappingABC[str, Any]]:
    """The cases of a FILE argument, with clear errors for a missing file or bad JSON."""
    path = Path(path)
    data = read_json(path)
    cases = data.get("cases") if isinstance(data, dict) else data
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise JaqcError(f'{path}: expected a list of cases or an object with a "cases" list')
    return cases


def evaluate_file(
    path: str | Path, search: bool, space: str, objective: str, own_sram: bool, hw_model: str | None = None
) -> dict[str, Any]:
    """Evaluate every case of a file under ``hw_model`` (default: ``simulator`` for a file carrying reference
    numbers, else ``deployment``); ``search_seconds_total`` sums the in-process BatchTile times."""
    cases = load_cases(path)
    model = hw_model or ("simulator" if carries_reference(cases) else "deployment")
    results = [evaluate_case(c, False, space, objective, own_sram, model) for c in cases]
    if search:  # every case in one BatchTile batch
        for result, found in zip(results, search_cases(cases, space, objective, own_sram, model), strict=True):
            result["search"] = found
    out: dict[str, Any] = {"hw_model": model, "cases": results}
    if search:
        out["search_seconds_total"] = sum(r["search"]["seconds"] for r in results)
    return out
