"""``encode-layers``: write each conv2d/linear layer's operator encoding vector (JAQ Fig. 2).

Reads: conv2d and linear layers (shapes, params, quant). Writes: ``op_vector`` (see
:mod:`jaqc.ir.encoding` for the fields, the per-group input channels and the normalisation): the encoding of
the layer's cost-model problem (:func:`jaqc.hw.model.lowering.operator_vector` of
:func:`~jaqc.hw.model.lowering.layer_problem`), the same vectors the hardware generator reads during a search. A
non-square kernel, stride or padding is an error naming the layer (the BitFusion cost model is square-only).
Options: none.
In place; changed when any vector changed. The hardware generation network reads the vectors in
topological order (:func:`encoded_layers`).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen
from jaqc.ir.errors import IRError
from jaqc.ir.graph import LayerGraph
from jaqc.ir.layer import Layer
from jaqc.ir.types import LayerKind

from .base import Pass, PassContext, PassError, PassResult


def encoded_layers(graph: LayerGraph) -> list[Layer]:
    """The layers that carry an operator vector, in topological order."""
    return [x for x in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR) if x.op_vector is not None]


@frozen
class EncodeLayers(Pass):
    """Annotate conv2d and linear layers with their operator encoding vectors."""

    name: ClassVar[str] = "encode-layers"

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        from jaqc.hw.model.lowering import layer_problem, operator_vector  # torch-free

        changed = 0
        for layer in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR):
            try:
                vector = operator_vector(layer_problem(graph, layer))
            except IRError as exc:
                raise PassError(f"encode-layers: {exc}") from None
            if layer.op_vector != vector:
                layer.op_vector = vector
                changed += 1
        ctx.log(f"encode-layers: encoded {changed} layer(s)")
        return PassResult(graph, changed > 0)
