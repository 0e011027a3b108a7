"""The per-layer mapping table and network totals that ``jaqc map`` prints (and export will reuse)."""

from __future__ import annotations

from typing import Any

from jaqc.ir import LayerGraph, LayerKind


def mapping_rows(graph: LayerGraph) -> list[dict[str, Any]]:
    """One dict per mapped layer (after the ``batchtile`` pass), in topological order."""
    rows = []
    for layer in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR):
        record = layer.meta.get("cost_record")
        if layer.mapping is None or record is None:
            continue
        rows.append(
            {
                "name": layer.name,
                "kind": layer.kind.value,
                "bits": str(layer.quant) if layer.quant is not None else "w8a8 (float)",
                "tile": layer.mapping.tile_dict(),
                "loop_order": layer.mapping.order_string(),
                "cycles": {
                    "compute": record.compute_cycles,
                    "stall": record.stall_cycles,
                    "total": record.total_cycles,
                },
                "utilization": record.utilization,
                "bound": "memory" if record.stall_cycles > 0 else "compute",
                "latency_s": record.latency_s,
                "energy_nJ": dict(record.energy_nj),
                "access_bits": dict(record.access_bits),
            }
        )
    return rows


def network_totals(graph: LayerGraph, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The network's totals (:class:`~jaqc.hw.model.totals.NetworkTotals`, in the schedule's units: latency ms,
    energy mJ, area mm², EDP mJ·ms, EDAP mJ·ms·mm²), with the accelerator's area breakdown
    (``area_breakdown_mm2``). Layers run one after another: cycles and energy add up."""
    from jaqc.hw.model.totals import NetworkTotals

    first = next(
        (x.meta["cost_record"] for x in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR) if "cost_record" in x.meta),
        None,
    )
    area = dict(first.area_mm2) if first is not None else {}
    assert graph.accelerator is not None
    totals = NetworkTotals.of_layers(
        [r["cycles"]["total"] for r in rows], [r["energy_nJ"]["total"] for r in rows], graph.accelerator,
        area.get("total", 0.0),
    )  # fmt: skip
    return {**totals.to_json(), "area_breakdown_mm2": area}


#: Layers below this utilisation (useful MACs over the array's peak) are flagged under a mapping table.
LOW_UTILIZATION = 0.10


def dataflow_note(accelerator: dict[str, Any]) -> str | None:
    """A note for a design whose dataflow is a jaqc extension (OS, RS), not validated against the simulator."""
    flow = accelerator.get("dataflow", "WS")
    if flow == "WS":
        return None
    return (
        f"dataflow {flow} is a jaqc extension: only WS (BitFusion's) is validated against the BitFusion simulator "
        "(docs/cost_model.md, sections 12 and 19.3)"
    )


def design_notes(accelerator: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> list[str]:
    """What a reader of a design's figures should know: an unvalidated dataflow, layers that use little of the
    array (below :data:`LOW_UTILIZATION`)."""
    notes = [n for n in (dataflow_note(accelerator),) if n]
    low = [r for r in rows or [] if r["utilization"] < LOW_UTILIZATION]
    if low:
        names = ", ".join(f"{r['name']} {r['utilization']:.1%}" for r in low[:6]) + (", ..." if len(low) > 6 else "")
        notes.append(
            f"{len(low)} of {len(rows or [])} layers use less than {LOW_UTILIZATION:.0%} of the array's peak MAC rate "
            f"({names}): too few channels (or a depthwise layer) for this array"
        )
    return notes


def schedule_utilization(schedule: dict[str, Any], entry: dict[str, Any]) -> float:
    """A schedule layer's useful MACs over the array's peak during its compute cycles (what the cost model
    reports as utilisation), from the schedule's own fields."""
    from jaqc.hw.model.problem import perf_factor

    extents, geometry, bits = entry["loop_extents"], entry["geometry"], entry["bits"]
    macs = geometry["kernel"] ** 2
    for dim in ("B", "OW", "OH", "IC", "OC"):
        macs *= extents[dim]
    if schedule.get("hw_model", "simulator") == "simulator":
        macs *= geometry["groups"]  # the simulator's extents are one group's
    accelerator = schedule["accelerator"]
    peak = entry["cycles"]["compute"] * accelerator["pe_rows"] * accelerator["pe_cols"]
    return macs / (peak * perf_factor(bits["w"], bits["a"])) if peak else 0.0


def schedule_rows(schedule: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per layer of a ``jaqc.schedule`` document (e.g. embedded in an export), like :func:`mapping_rows`
    without the energy breakdown the schedule does not store."""
    rows = []
    for entry in schedule["layers"]:
        bits = entry["bits"]
        cycles = entry["cycles"]
        rows.append(
            {
                "name": entry["name"],
                "kind": entry["kind"],
                "bits": f"w{bits['w']}a{bits['a']}" + ("" if bits["quantized"] else " (float)"),
                "tile": {d: entry["tile"][d] for d in ("B", "OW", "OH", "IC", "OC")},
                "loop_order": ">".join(entry["loop_order"]),
                "cycles": dict(cycles),
                "bound": "memory" if cycles["stall"] > 0 else "compute",
                "utilization": schedule_utilization(schedule, entry),
                "energy_nJ": entry["energy_nJ"],
                "occupancy": {buf: occ["fraction"] for buf, occ in entry["buffer_occupancy"].items()},
            }
        )
    return rows
