"""The mapping schedule: versioned JSON describing how every layer runs on the accelerator.

Schema ``jaqc.schedule`` version 2 (docs/schedule.md): the hardware model and the accelerator, per layer its
name (matching the ONNX node and the ``<name>.weight`` initializer), bits, the width its outputs are written
at, loop extents and geometry, tile sizes, loop order, tile counts, cycles, energy and buffer occupancy, and
network totals. Version 1 documents (no ``hw_model``; written by jaqc before the deployment model) are read
as the simulator model's. :func:`validate_schedule` checks a document
on write and on read; errors name the field path (``layers[3].tile.OC``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from jaqc import __version__
from jaqc.core import JaqcError
from jaqc.core.files import atomic_write_text, read_json
from jaqc.ir import LOOP_DIMS, AcceleratorConfig, LayerGraph, LayerKind
from jaqc.ir.accelerator import HW_MODELS
from jaqc.ir.errors import IRError
from jaqc.ir.metrics import target_bits
from jaqc.ir.verify import loop_extents

SCHEMA_NAME = "jaqc.schedule"
SCHEMA_VERSION = 2
#: Versions this jaqc reads (1: before hardware models were named; its mappings are the simulator's).
READABLE_VERSIONS = (1, 2)
BUFFERS = ("ibuf", "wbuf", "obuf")  # the order of the cost model's (activations, weights, outputs)


class ScheduleError(JaqcError):
    """A schedule document is malformed or does not match its model."""


def schedule_hw_model(schedule: MappingABC[str, Any]) -> str:
    """The hardware model a (validated) schedule was computed with."""
    return schedule.get("hw_model", "simulator")


def _occupancy(graph: LayerGraph, layer: Any, problem: Any) -> dict[str, dict[str, float]]:
    import torch

    from jaqc.hw.model.cost_model import tile_terms
    from jaqc.hw.model.tensors import HardwareTensors, ProblemTensors

    hardware = HardwareTensors.from_accelerators([graph.accelerator])
    tile = torch.tensor([layer.mapping.tile], dtype=torch.float64)
    terms = tile_terms(ProblemTensors.from_problems([problem]), hardware, tile, hw_model=graph.hw_model)
    out = {}
    for i, buf in enumerate(BUFFERS):
        bits = int(terms.tile_bits[0, i])
        limit = float(terms.capacity_bits[0, i])  # half the buffer: the other half double-buffers
        out[buf] = {"tile_bits": bits, "limit_bits": int(limit), "fraction": bits / limit if limit else math.inf}
    return out


def build_schedule(graph: LayerGraph, model_name: str | None = None) -> dict[str, Any]:
    """The schedule of a mapped graph (after the ``batchtile`` pass)."""
    from jaqc.hw.model.lowering import layer_problem
    from jaqc.hw.model.totals import NetworkTotals
    from jaqc.hw.model.unit_costs import area_for

    if graph.accelerator is None:
        raise ScheduleError("schedule: the graph has no accelerator (run the batchtile pass on a mapped graph)")
    if graph.hw_model is None:
        raise ScheduleError("schedule: the graph names no hardware model (run the batchtile pass on it)")
    acc = graph.accelerator
    layers = []
    for layer in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR):
        if layer.mapping is None or layer.cost is None:
            raise ScheduleError(f"schedule: layer %{layer.name} has no mapping/cost; run the batchtile pass first")
        extents = loop_extents(layer, graph.hw_model)
        problem = layer_problem(graph, layer)
        m = layer.mapping
        w_bits, a_bits = target_bits(layer)
        geometry = {"kernel": 1, "stride": 1, "groups": 1}
        if layer.kind is LayerKind.CONV2D:
            p = layer.params
            geometry = {"kernel": p.kernel[0], "stride": p.stride[0], "groups": p.groups}
        c = layer.cost
        layers.append(
            {
                "name": layer.name,
                "kind": layer.kind.value,
                "onnx_node": layer.name,
                "weight_initializer": f"{layer.name}.weight",
                "bits": {"w": w_bits, "a": a_bits, "out": problem.out_bits, "quantized": layer.quant is not None},
                "loop_extents": extents,
                "geometry": geometry,
                "tile": m.tile_dict(),
                "loop_order": [d.value for d in m.loop_order],
                "num_tiles": {d.value: -(-extents[d.value] // t) for d, t in zip(LOOP_DIMS, m.tile, strict=True)},
                "cycles": {"compute": c.compute_cycles, "stall": c.stall_cycles, "total": c.total_cycles},
                "energy_nJ": c.energy_nJ,
                "buffer_occupancy": _occupancy(graph, layer, problem),
            }
        )
    totals = NetworkTotals.of_layers(
        [x["cycles"]["total"] for x in layers], [x["energy_nJ"] for x in layers], acc, area_for(acc).total
    )
    schedule = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "generator": f"jaqc {__version__}",
        "model": model_name or graph.name,
        "hw_model": graph.hw_model,
        "accelerator": acc.to_json(),
        "layers": layers,
        "totals": totals.to_json(),
    }
    return validate_schedule(schedule)


def _need(data: MappingABC[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ScheduleError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (
        isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ScheduleError(f"{where}.{key}: expected {names}, got {type(value).__name__}")
    return value


def validate_schedule(data: Any, where: str = "schedule") -> dict[str, Any]:
    """Check a schedule document against its schema version; returns it unchanged or raises ScheduleError."""
    if not isinstance(data, dict):
        raise ScheduleError(f"{where}: expected a JSON object")
    if data.get("schema") != SCHEMA_NAME:
        raise ScheduleError(
            f"{where}: not a jaqc schedule (schema is {data.get('schema')!r}, expected {SCHEMA_NAME!r})"
        )
    version = data.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ScheduleError(
            f"{where}: unsupported schedule schema_version {version!r} (this jaqc reads "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    if version >= 2 and _need(data, "hw_model", str, where) not in HW_MODELS:
        raise ScheduleError(f"{where}.hw_model: {data['hw_model']!r} is not one of {', '.join(HW_MODELS)}")
    try:
        AcceleratorConfig.from_json(_need(data, "accelerator", dict, where), where=f"{where}.accelerator")
    except IRError as exc:
        raise ScheduleError(str(exc)) from None
    layers = _need(data, "layers", list, where)
    names = set()
    for i, layer in enumerate(layers):
        at = f"{where}.layers[{i}]"
        if not isinstance(layer, dict):
            raise ScheduleError(f"{at}: expected an object")
        name = _need(layer, "name", str, at)
        if name in names:
            raise ScheduleError(f"{at}.name: duplicate layer name {name!r}")
        names.add(name)
        for key in ("onnx_node", "weight_initializer", "kind"):
            _need(layer, key, str, at)
        bits = _need(layer, "bits", dict, at)
        for key in ("w", "a"):
            if _need(bits, key, int, f"{at}.bits") not in (2, 4, 8):
                raise ScheduleError(f"{at}.bits.{key}: must be 2, 4 or 8, got {bits[key]}")
        extents = _need(layer, "loop_extents", dict, at)
        tile = _need(layer, "tile", dict, at)
        num_tiles = _need(layer, "num_tiles", dict, at)
        for d in LOOP_DIMS:
            e = _need(extents, d.value, int, f"{at}.loop_extents")
            t = _need(tile, d.value, int, f"{at}.tile")
            if not 1 <= t <= e:
                raise ScheduleError(f"{at}.tile.{d.value}: {t} is outside 1..{e} (its loop extent)")
            if _need(num_tiles, d.value, int, f"{at}.num_tiles") != -(-e // t):
                raise ScheduleError(f"{at}.num_tiles.{d.value}: {num_tiles[d.value]} != ceil({e}/{t})")
        order = _need(layer, "loop_order", list, at)
        if sorted(order) != sorted(d.value for d in LOOP_DIMS):
            raise ScheduleError(f"{at}.loop_order: {order} is not a permutation of B, OW, OH, IC, OC")
        cycles = _need(layer, "cycles", dict, at)
        for key in ("compute", "stall", "total"):
            _need(cycles, key, int, f"{at}.cycles")
        if cycles["total"] != cycles["compute"] + cycles["stall"]:
            raise ScheduleError(f"{at}.cycles.total: {cycles['total']} != compute + stall")
        _need(layer, "energy_nJ", (int, float), at)
        occupancy = _need(layer, "buffer_occupancy", dict, at)
        for buf in BUFFERS:
            occ = _need(occupancy, buf, dict, f"{at}.buffer_occupancy")
            if _need(occ, "tile_bits", int, f"{at}.buffer_occupancy.{buf}") > _need(
                occ, "limit_bits", int, f"{at}.buffer_occupancy.{buf}"
            ):
                raise ScheduleError(f"{at}.buffer_occupancy.{buf}: tile does not fit half of the buffer")
    totals = _need(data, "totals", dict, where)
    for key in ("cycles", "latency_ms", "energy_mJ", "area_mm2"):
        _need(totals, key, (int, float), f"{where}.totals")
    return data


def check_matches(schedule: MappingABC[str, Any], layer_names: list[str], where: str = "schedule") -> None:
    """The schedule's layers are exactly ``layer_names`` (the model's weighted layers), in any order."""
    have = {x["name"] for x in schedule["layers"]}
    missing, extra = sorted(set(layer_names) - have), sorted(have - set(layer_names))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no schedule for layer(s) {', '.join(missing)}")
        if extra:
            parts.append(f"schedule names unknown layer(s) {', '.join(extra)}")
        raise ScheduleError(f"{where} does not match its model: {'; '.join(parts)}")


def schedule_to_text(schedule: MappingABC[str, Any]) -> str:
    """Deterministic JSON text of a schedule (same input, byte-identical output)."""
    return json.dumps(schedule, indent=1, sort_keys=False, allow_nan=False) + "\n"


def write_schedule(path: str | os.PathLike[str], schedule: MappingABC[str, Any]) -> Path:
    """Validate and write a schedule atomically."""
    validate_schedule(schedule, where=str(path))
    return atomic_write_text(path, schedule_to_text(schedule))


def read_schedule(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a schedule file; errors name the file and the field."""
    path = Path(path)
    return validate_schedule(read_json(path, ScheduleError), where=str(path))
