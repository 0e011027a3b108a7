"""The one lowering from an IR layer to the cost model's problem (:class:`~jaqc.hw.model.problem.ConvProblem`), and
the one operator encoding of such a problem (JAQ Fig. 2, :class:`~jaqc.ir.encoding.OperatorVector`).

Every path that prices IR layers goes through :func:`layer_problem`: the ``batchtile`` and
``generate-accelerator`` passes, the export schedule, HAQ's network costs and the search's cost tables
(:mod:`jaqc.search.space_costs`). Torch-free: it reads the IR and builds ``ConvProblem`` values.
"""

from __future__ import annotations

from jaqc.hw.model.problem import ConvProblem
from jaqc.ir import Layer, LayerGraph, LayerKind
from jaqc.ir.encoding import OperatorVector
from jaqc.ir.errors import IRError
from jaqc.ir.metrics import consumer_a_bits, target_bits

#: The layer kinds the cost model prices (a linear layer is a 1x1 convolution of a 1x1 input).
PRICED_KINDS: tuple[LayerKind, ...] = (LayerKind.CONV2D, LayerKind.LINEAR)


def is_first_layer(graph: LayerGraph, layer: Layer) -> bool:
    """Whether every producer of ``layer`` is a graph input (the host lowers such a layer with im2col)."""
    return all(p.kind is LayerKind.INPUT for p in graph.producers(layer.name))


def layer_problem(
    graph: LayerGraph,
    layer: Layer,
    im2col_first: bool = True,
    output_bits: int = 8,
    *,
    name: str | None = None,
) -> ConvProblem:
    """The cost model's ``ConvProblem`` of a conv2d or linear layer of ``graph``: its shapes, its bits on the
    target (floating point runs at 8), ``im2col`` for a first layer (``im2col_first``), and ``out_bits`` =
    its consumers' activation bits (``output_bits`` where it reaches a network output). ``name`` overrides the
    problem's name (default: the layer's)."""
    if layer.kind not in PRICED_KINDS:
        raise IRError(f"layer %{layer.name}: the cost model prices conv2d and linear layers, not {layer.kind.value}")
    w_bits, a_bits = target_bits(layer)
    out_bits = consumer_a_bits(graph, layer, output_bits)
    label = layer.name if name is None else name
    if layer.kind is LayerKind.LINEAR:
        batch = layer.output_shape.numel() // layer.out_channels
        return ConvProblem(
            batch=batch, in_channels=layer.in_channels, out_channels=layer.out_channels, in_h=1, in_w=1, kernel=1,
            w_bits=w_bits, a_bits=a_bits, out_bits=out_bits, name=label,
        )  # fmt: skip
    p = layer.params
    if p.kernel[0] != p.kernel[1] or p.stride[0] != p.stride[1] or p.padding[0] != p.padding[1]:
        raise IRError(
            f"layer %{layer.name} has a non-square kernel/stride/padding {p.kernel}/{p.stride}/{p.padding}; "
            "the BitFusion cost model is square-only"
        )
    x = layer.input_shape
    return ConvProblem(
        batch=x[0], in_channels=x[1], out_channels=layer.out_channels, in_h=x[2], in_w=x[3], kernel=p.kernel[0],
        stride=p.stride[0], pad=p.padding[0], groups=p.groups, w_bits=w_bits, a_bits=a_bits,
        im2col=im2col_first and is_first_layer(graph, layer), out_bits=out_bits, name=label,
    )  # fmt: skip


def operator_vector(problem: ConvProblem) -> OperatorVector:
    """The operator encoding of a cost-model problem, the hardware generator's input: kernel, stride, output
    rows, input channels per group, output channels, activation and weight bits. The ``encode-layers`` pass
    writes ``operator_vector(layer_problem(graph, layer))`` on every conv2d/linear layer."""
    return OperatorVector(
        kernel=problem.kernel, stride=problem.stride, out_rows=problem.out_h, in_channels=problem.group_in_channels,
        out_channels=problem.out_channels, a_bits=problem.a_bits, w_bits=problem.w_bits,
    )  # fmt: skip
