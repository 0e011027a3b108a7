"""Low-bit ONNX export of a LayerGraph with weights, with the BitFusion mapping schedule (docs/export.md).

:func:`export_onnx` builds the eval-mode torch model of the graph (:func:`jaqc.nn.subnet.build_subnet`),
exports it with ``torch.onnx.export(dynamo=True)`` translating ``jaqc::fake_quant`` and
``jaqc::fake_quant_symmetric`` into ONNX quantizers (:mod:`jaqc.export.onnx_translation`), lowers the result to the
deployable form (:mod:`jaqc.export.onnx_lowering`) and writes ``model.onnx`` and ``schedule.json``; the schedule
is also embedded in the model's ``metadata_props``. Formats: ``qdq`` (QuantizeLinear/DequantizeLinear, integer
weight initializers) and ``qonnx`` (QONNX ``Quant`` nodes, as FINN and hls4ml read). The same graph gives
byte-identical files. torch is imported when an export runs, not when this module is imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import onnx
from attrs import frozen

from jaqc.core.files import atomic_write_bytes
from jaqc.hw.model.hw_models import DEFAULT_HW_MODEL
from jaqc.ir import AcceleratorConfig, LayerGraph, LayerKind

from .embedded import check_schedule_against, write_manifest
from .onnx_lowering import FORMATS, OPSETS, ExportedLayer, ExportError, lower
from .schedule import SCHEMA_VERSION, build_schedule, schedule_to_text, validate_schedule, write_schedule

MODEL_FILE = "model.onnx"
SCHEDULE_FILE = "schedule.json"


@frozen
class ExportResult:
    """What :func:`export_onnx` wrote: the model and schedule files and the per-layer quantization summary."""

    model_path: Path
    schedule_path: Path
    format: str
    opset: int
    layers: tuple[ExportedLayer, ...]


def _check_graph(graph: LayerGraph) -> None:
    from jaqc.quantize import is_calibrated

    if graph.layers_of(LayerKind.CHOICE):
        raise ExportError(f"graph {graph.name!r} still has choice layers; run the extract-subnet pass first")
    if len(graph.inputs()) != 1 or len(graph.outputs()) != 1:
        raise ExportError(f"graph {graph.name!r}: export needs one input and one output layer")
    for layer in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR):
        if "weight" not in layer.weights:
            raise ExportError(f"layer %{layer.name} has no weights; export needs an IR with weights (subnet.json)")
        q = layer.quant
        if q is not None and (q.w_bits is None) != (q.a_bits is None):
            raise ExportError(
                f"layer %{layer.name} is {q}: export quantizes a layer's weight and input together (or neither)"
            )
        if q is not None and q.a_bits is not None and not is_calibrated(layer):
            raise ExportError(
                f"layer %{layer.name} is {q} but its activation quantizer was never calibrated (the IR holds no "
                "input range, so every activation would quantize to one value): calibrate it on data with "
                "`jaqc quantize MODEL --bits SPEC --calib DATA -o q.json`, or export a trained subnet (subnet.json)"
            )


def mapped_graph(
    graph: LayerGraph, accelerator: AcceleratorConfig | None = None, hw_model: str | None = None
) -> LayerGraph:
    """``graph`` itself when every conv2d/linear layer has a mapping and cost (under ``hw_model``, when given),
    else a copy mapped by BatchTile (jaq space) on ``accelerator`` (default: the graph's own) under
    ``hw_model`` (default: the deployment model)."""
    weighted = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    mapped = all(x.mapping is not None and x.cost is not None for x in weighted) and graph.hw_model is not None
    if graph.accelerator is not None and mapped and hw_model in (None, graph.hw_model):
        if accelerator is None or accelerator == graph.accelerator:
            return graph
    target = accelerator or graph.accelerator
    if target is None:
        raise ExportError(f"graph {graph.name!r} has no mappings and no accelerator to map it on (give an accelerator)")
    from jaqc.passes import PassContext, PassManager, make_pass

    mapped = graph.clone()
    mapped.accelerator = target
    options = {"space": "jaq", "hw_model": hw_model or DEFAULT_HW_MODEL.value}
    return PassManager([make_pass("batchtile", options)]).run(mapped, PassContext()).graph


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints, warnings and log lines (an export reports through its result)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def torch_export(graph: LayerGraph, opset: int) -> onnx.ModelProto:
    """The exporter's raw model of ``graph``'s eval-mode torch model (quantizers as in-graph Q/DQ)."""
    import torch

    from jaqc.nn.fake_quant import fake_quant, fake_quant_symmetric  # noqa: F401  (registers the ops)
    from jaqc.nn.subnet import build_subnet

    from .onnx_translation import translations

    model = build_subnet(graph).eval()
    example = torch.zeros(graph.inputs()[0].output_shape.dims)
    fq, fq_symmetric = translations(opset)
    table = {torch.ops.jaqc.fake_quant.default: fq, torch.ops.jaqc.fake_quant_symmetric.default: fq_symmetric}
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=opset,
                custom_translation_table=table,
                optimize=False,
                verify=False,
                report=False,
                external_data=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean "this graph did not export"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.onnx.export of graph {graph.name!r} failed: {first}") from exc
    return program.model_proto


def build_onnx(
    graph: LayerGraph,
    format: str = "qdq",
    opset: int = 21,
    schedule: Mapping[str, Any] | None = None,
    accelerator: AcceleratorConfig | None = None,
    hw_model: str | None = None,
) -> tuple[onnx.ModelProto, dict[str, Any], list[ExportedLayer]]:
    """The exported model, its schedule and the per-layer summary, in memory (see :func:`export_onnx`)."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    if opset not in OPSETS:
        raise ExportError(f"unsupported opset {opset}; expected one of {', '.join(map(str, OPSETS))}")
    _check_graph(graph)
    if schedule is None:
        schedule = build_schedule(mapped_graph(graph, accelerator, hw_model))
    schedule = validate_schedule(dict(schedule))
    check_schedule_against(graph, schedule)
    raw = torch_export(graph, opset)
    model, layers = lower(raw, graph, format, opset, schedule_to_text(schedule), SCHEMA_VERSION)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug of the export, not of the user's graph
        raise ExportError(f"the exported model of {graph.name!r} fails the ONNX checker: {exc}") from exc
    return model, schedule, layers


def model_bytes(model: onnx.ModelProto) -> bytes:
    """Deterministic serialisation of an ONNX model."""
    return model.SerializeToString(deterministic=True)


def write_export(
    out_dir: str | os.PathLike[str],
    model: onnx.ModelProto,
    schedule: Mapping[str, Any],
    layers: list[ExportedLayer],
    format: str,
    opset: int,
) -> ExportResult:
    """Write ``out_dir/model.onnx`` and ``out_dir/schedule.json`` atomically, then ``out_dir/export.json`` (their
    SHA-256s): the manifest is written last, so files of an interrupted export do not match it and
    :func:`~jaqc.export.embedded.check_export_files` (``jaqc dump --mappings``) says so."""
    out = Path(out_dir)
    model_path = atomic_write_bytes(out / MODEL_FILE, model_bytes(model))
    schedule_path = write_schedule(out / SCHEDULE_FILE, schedule)
    write_manifest(out, (model_path, schedule_path))
    return ExportResult(model_path, schedule_path, format, opset, tuple(layers))


def export_onnx(
    graph: LayerGraph,
    out_dir: str | os.PathLike[str],
    format: str = "qdq",
    opset: int = 21,
    schedule: Mapping[str, Any] | None = None,
    accelerator: AcceleratorConfig | None = None,
    hw_model: str | None = None,
) -> ExportResult:
    """Export ``graph`` (an IR with weights) to ``out_dir/model.onnx`` with ``out_dir/schedule.json``.

    ``format``: ``qdq`` (default) or ``qonnx``; ``opset``: 21 (2-bit values as QCDQ: an 8-bit container and a
    ``Clip``) or 25 (native INT2/UINT2). ``schedule``: a ``jaqc.schedule`` document for the graph; by default it
    is built from the graph's mappings, mapping it first with BatchTile on ``accelerator`` (or the graph's own)
    where it has none, or where ``hw_model`` names another hardware model than its mappings' (default: keep the
    graph's, else the deployment model). Both files are written atomically; raises :class:`ExportError`.
    """
    model, schedule_doc, layers = build_onnx(graph, format, opset, schedule, accelerator, hw_model)
    return write_export(out_dir, model, schedule_doc, layers, format, opset)
