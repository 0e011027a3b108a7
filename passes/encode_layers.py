"""``encode-layers``: write each conv2d/linear layer's operator encoding vector (JAQ Fig. 2).

Reads: conv2d and linear layers (shapes, params, quant). Writes: ``op_vector`` (see
:mod:`jaqc.ir.encoding` for the fields, the per-group input channels and the normalisation). Non-square
kernels, strides or outputs are encoded by their height (the encoding has one field each). Options: none.
In place; changed when any vector changed. The hardware generation network reads the vectors in
topological order (:func:`encoded_layers`).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen
from jaqc.ir.encoding import OperatorVector
from jaqc.ir.graph import LayerGraph
from jaqc.ir.layer import Layer
from jaqc.ir.metrics import target_bits
from jaqc.ir.types import LayerKind

from .base import Pass, PassContext, PassResult


def encode_layer(layer: Layer) -> OperatorVector:
    """The operator vector of one conv2d or linear layer."""
    w_bits, a_bits = target_bits(layer)
    if layer.kind is LayerKind.CONV2D:
        p = layer.params
        return OperatorVector(
            kernel=p.kernel[0],
            stride=p.stride[0],
            out_rows=layer.output_shape[2],
            in_channels=layer.in_channels // p.groups,
            out_channels=layer.out_channels,
            a_bits=a_bits,
            w_bits=w_bits,
        )
    return OperatorVector(
        kernel=1,
        stride=1,
        out_rows=1,
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        a_bits=a_bits,
        w_bits=w_bits,
    )


def encoded_layers(graph: LayerGraph) -> list[Layer]:
    """The layers that carry an operator vector, in topological order."""
    return [x for x in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR) if x.op_vector is not None]


@frozen
class EncodeLayers(Pass):
    """Annotate conv2d and linear layers with their operator encoding vectors."""

    name: ClassVar[str] = "encode-layers"

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        changed = 0
        for layer in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR):
            vector = encode_layer(layer)
            if layer.op_vector != vector:
                layer.op_vector = vector
                changed += 1
        ctx.log(f"encode-layers: encoded {changed} layer(s)")
        return PassResult(graph, changed > 0)
