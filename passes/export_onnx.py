"""``export-onnx{path=,format=qdq,opset=21,hw_model=}``: low-bit ONNX with its schedule (docs/export.md).

Reads: a plain (choice-free) graph with weights, e.g. a search run's ``subnet.json``; conv2d/linear ``quant``;
the mapping schedule from ``ctx.data["schedule"]`` when an ``export-schedule`` pass ran before, else built from
the layers' ``mapping``/``cost`` (mapped by BatchTile on ``graph.accelerator`` where they have none).
Writes: nothing on the graph; ``ctx.data["onnx_model"]`` (the ``onnx.ModelProto``), ``ctx.data["schedule"]`` and
``ctx.data["onnx_export"]`` (the per-layer :class:`~jaqc.export.onnx_lowering.ExportedLayer` list); with ``path``
set, ``PATH/model.onnx`` and ``PATH/schedule.json`` (atomic).
Options: ``path`` (an output directory; empty: in memory only), ``format`` (``qdq`` QuantizeLinear/DequantizeLinear
or ``qonnx`` Quant nodes), ``opset`` (21, or 25 for native 2-bit types), ``hw_model`` (the schedule's hardware
model; empty: the graph's own, else ``deployment``). torch is imported when the pass runs.
Functional: the graph is returned unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import field, frozen
from jaqc.ir.accelerator import HW_MODELS
from jaqc.ir.graph import LayerGraph

from .base import Pass, PassContext, PassError, PassResult

FORMATS = ("qdq", "qonnx")
OPSETS = (21, 25)


def _one_of(choices: tuple[Any, ...]):  # type: ignore[no-untyped-def]
    def check(_inst: object, attribute: Any, value: Any) -> None:
        if value not in choices:
            options = ", ".join(map(str, choices))
            raise PassError(f"export-onnx: {attribute.name} must be one of {options}, got {value!r}")

    return check


@frozen
class ExportOnnx(Pass):
    """Export low-bit ONNX (Q/DQ or QONNX) with the mapping schedule embedded."""

    name: ClassVar[str] = "export-onnx"
    requires: ClassVar[tuple[str, ...]] = ("plain",)
    in_place: ClassVar[bool] = False
    path: str = ""
    format: str = field(default="qdq", validator=_one_of(FORMATS))
    opset: int = field(default=21, validator=_one_of(OPSETS))
    #: The hardware model of the schedule: "" keeps the graph's mappings (the deployment model where the graph
    #: has none); a name re-maps the graph under that model when its mappings come from another.
    hw_model: str = field(default="", validator=_one_of(("", *HW_MODELS)))

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        from jaqc.export.onnx_export import build_onnx, write_export

        model, schedule, layers = build_onnx(
            graph, self.format, self.opset, ctx.data.get("schedule"), hw_model=self.hw_model or None
        )
        ctx.data["onnx_model"] = model
        ctx.data["schedule"] = schedule
        ctx.data["onnx_export"] = layers
        where = ""
        if self.path:
            result = write_export(self.path, model, schedule, layers, self.format, self.opset)
            where = f" -> {result.model_path}"
        quantized = sum(1 for x in layers if x.quant_nodes)
        ctx.log(f"export-onnx: {self.format} opset {self.opset}, {quantized}/{len(layers)} quantized layer(s){where}")
        return PassResult(graph, False)
