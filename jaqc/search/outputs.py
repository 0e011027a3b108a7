"""What a search and a retraining both produce from a trained subnet: its test accuracy, and its IR mapped on
the accelerator with the schedule, written as ``subnet.json`` / ``subnet.jaqc`` / ``schedule.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from jaqc.core.files import atomic_write_text
from jaqc.data import make_loader
from jaqc.device import model_device, to_device
from jaqc.ir import AcceleratorConfig, LayerGraph, save_graph

from .rundir import ACCELERATOR_FILE, ARCHITECTURE_FILE, SCHEDULE_FILE, SUBNET_FILE, SUBNET_TEXT_FILE

#: The hardware figures every summary reports, from a schedule's totals.
HARDWARE_KEYS: tuple[str, ...] = ("latency_ms", "energy_mJ", "area_mm2", "edap_mJ_ms_mm2")


def accuracy(model: torch.nn.Module, dataset: Any, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` in eval mode on ``dataset``, on the model's device (NaN for an empty dataset)."""
    if len(dataset) == 0:
        return float("nan")
    model.eval()
    device = model_device(model)
    correct = 0
    with torch.no_grad():
        for images, labels in make_loader(dataset, batch_size=batch_size, shuffle=False):
            images, labels = to_device((images, labels), device)
            correct += int((model(images).argmax(-1) == labels).sum())
    return correct / len(dataset)


def mapped_subnet(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    accelerator: AcceleratorConfig,
    name: str | None = None,
    model_name: str | None = None,
    hw_model: str = "deployment",
) -> tuple[LayerGraph, dict[str, Any]]:
    """The IR of ``model`` (with weights) mapped by BatchTile (jaq space) on ``accelerator`` under ``hw_model``,
    and its schedule."""
    from jaqc.export.schedule import build_schedule
    from jaqc.nn.tracing import trace_model
    from jaqc.passes import PassContext, PassManager, make_pass

    graph = trace_model(model.eval(), input_shape, name=name)
    graph.accelerator = accelerator
    options = {"space": "jaq", "hw_model": hw_model}
    graph = PassManager([make_pass("batchtile", options)]).run(graph, PassContext()).graph
    return graph, build_schedule(graph, model_name=model_name)


def write_subnet(out: Path, graph: LayerGraph, schedule: dict[str, Any]) -> None:
    """``subnet.json`` (with weights), ``subnet.jaqc`` and ``schedule.json`` in ``out`` (atomic writes)."""
    from jaqc.export.schedule import write_schedule

    save_graph(graph, out / SUBNET_FILE, weights=True)
    save_graph(graph, out / SUBNET_TEXT_FILE)
    write_schedule(out / SCHEDULE_FILE, schedule)


def hardware_figures(schedule: dict[str, Any]) -> dict[str, Any]:
    """Latency, energy, area and EDAP from a schedule's ``totals`` (the keys of :data:`HARDWARE_KEYS`), the
    hardware model they were computed with (``hw_model``) and notes on the design (an unvalidated dataflow, layers
    that use little of the array)."""
    from jaqc.export.schedule import schedule_hw_model
    from jaqc.hw.mapping.report import design_notes, schedule_rows

    rows = schedule_rows(schedule) if "layers" in schedule else []
    return {
        **{key: schedule["totals"][key] for key in HARDWARE_KEYS},
        "hw_model": schedule_hw_model(schedule),
        "notes": design_notes(schedule["accelerator"], rows),
    }


def write_search_outputs(
    out: Path, graph: LayerGraph, schedule: dict[str, Any], architecture: dict[str, Any], accelerator: AcceleratorConfig
) -> None:
    """What every search method leaves in its run directory: the subnet files (:func:`write_subnet`),
    ``architecture.json`` and ``accelerator.json`` (atomic writes)."""
    write_subnet(out, graph, schedule)
    atomic_write_text(out / ARCHITECTURE_FILE, json.dumps(architecture, indent=1) + "\n")
    atomic_write_text(out / ACCELERATOR_FILE, json.dumps(accelerator.to_json(), indent=1) + "\n")
