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

from jaqc.core.files import atomic_write_text, read_json, sha256_file
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
#: The manifest of an export folder: the SHA-256 of each file, written after them.
MANIFEST_FILE = "export.json"
MANIFEST_FORMAT = "jaqc-export"


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


def write_manifest(folder: Path, files: tuple[Path, ...]) -> Path:
    """Write ``folder/export.json`` naming ``files`` with their SHA-256 and size (atomically, after them)."""
    entries = {f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files}
    document = {"format": MANIFEST_FORMAT, "version": 1, "files": entries}
    return atomic_write_text(folder / MANIFEST_FILE, json.dumps(document, indent=1) + "\n")


def check_export_files(model_path: str | os.PathLike[str]) -> None:
    """The files of ``model_path``'s export folder are the ones its manifest (``export.json``) names: an export
    killed between its files leaves a new model beside an older schedule, which this reports. Without a
    manifest (a model copied alone, or exported by an older jaqc) there is nothing to check."""
    folder = Path(model_path).parent
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return
    document = read_json(manifest, ScheduleError)
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
        raise ScheduleError(f"{manifest}: not a jaqc export manifest (expected format {MANIFEST_FORMAT!r})")
    if Path(model_path).name not in files:
        return  # a model saved under another name in the folder: the manifest does not describe it
    for name, entry in files.items():
        path = folder / str(name)
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if not path.is_file():
            raise ScheduleError(f"{manifest}: lists {name}, which is missing; export again")
        if expected != sha256_file(path):
            raise ScheduleError(
                f"{path}: not the file {manifest.name} lists (its SHA-256 differs): the export's files are not from "
                "one export (an interrupted jaqc export?); export again"
            )
