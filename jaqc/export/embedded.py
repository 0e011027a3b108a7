"""The schedule inside an exported ONNX model, and reading an export back (``jaqc dump MODEL.onnx --mappings``).

An export stores the ``jaqc.schedule`` document in the model's ``metadata_props``: ``jaqc.schedule`` (the JSON
text), ``jaqc.schema_version`` and ``jaqc.hw_model``. :func:`read_export` imports the model with the ONNX
importer and checks that the embedded schedule is valid and describes exactly this model: the same weighted
layers, bits and loop extents (under the schedule's hardware model). Needs onnx and numpy only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from jaqc.ir import LayerGraph, LayerKind
from jaqc.ir.metrics import target_bits
from jaqc.ir.verify import loop_extents

from .schedule import (
    READABLE_VERSIONS,
    SCHEMA_NAME,
    ScheduleError,
    check_matches,
    schedule_hw_model,
    validate_schedule,
)

SCHEDULE_KEY = "jaqc.schedule"
SCHEMA_VERSION_KEY = "jaqc.schema_version"
#: The hardware model the embedded schedule's cycles and energy come from (also the schedule's ``hw_model``).
HW_MODEL_KEY = "jaqc.hw_model"


def check_schedule_against(graph: LayerGraph, schedule: Mapping[str, Any], where: str = "schedule") -> None:
    """The schedule names exactly the graph's conv2d/linear layers, at their bits and loop extents."""
    weighted = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    check_matches(schedule, [x.name for x in weighted], where=where)
    entries = {entry["name"]: (i, entry) for i, entry in enumerate(schedule["layers"])}
    for layer in weighted:
        index, entry = entries[layer.name]
        at = f"{where}.layers[{index}] ({layer.name})"
        w_bits, a_bits = target_bits(layer)
        if (entry["bits"]["w"], entry["bits"]["a"]) != (w_bits, a_bits):
            raise ScheduleError(
                f"{at}: bits w{entry['bits']['w']}a{entry['bits']['a']} do not match the model's w{w_bits}a{a_bits}"
            )
        extents = loop_extents(layer, schedule_hw_model(schedule))
        if entry["loop_extents"] != extents:
            raise ScheduleError(f"{at}: loop extents {entry['loop_extents']} do not match the model's {extents}")


def embedded_schedule(model: onnx.ModelProto, label: str) -> dict[str, Any]:
    """The validated schedule in ``model``'s metadata; errors name ``label`` and the problem."""
    props = {p.key: p.value for p in model.metadata_props}
    if SCHEDULE_KEY not in props:
        raise ScheduleError(f"{label}: no embedded schedule (metadata_props {SCHEDULE_KEY!r}); not a jaqc export?")
    version = props.get(SCHEMA_VERSION_KEY)
    if version not in {str(v) for v in READABLE_VERSIONS}:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ScheduleError(f"{label}: {SCHEMA_VERSION_KEY} is {version!r}; this jaqc reads {SCHEMA_NAME} {readable}")
    try:
        document = json.loads(props[SCHEDULE_KEY])
    except json.JSONDecodeError as exc:
        raise ScheduleError(
            f"{label}: the embedded schedule is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    return validate_schedule(document, where=f"{label}: schedule")


def read_export(path: str | os.PathLike[str]) -> tuple[LayerGraph, dict[str, Any]]:
    """Import an exported model and its embedded schedule, checked against each other."""
    from jaqc.frontend.onnx_import import import_onnx

    path = Path(path)
    graph = import_onnx(path, with_weights=False)
    model = onnx.load(str(path), load_external_data=False)
    schedule = embedded_schedule(model, str(path))
    check_schedule_against(graph, schedule, where=f"{path}: schedule")
    return graph, schedule
