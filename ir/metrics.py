"""Per-layer workload figures: multiply-accumulates and parameter counts."""

from __future__ import annotations

from typing import Any

from .layer import Layer
from .types import LayerKind

#: Bitwidth the BitFusion target runs floating-point weights or activations at: its widest precision.
FLOAT_AS_BITS = 8


def target_bits(layer: Layer) -> tuple[int, int]:
    """(w_bits, a_bits) the layer runs at on the target; floating point (no QuantSpec, or None) runs at 8."""
    q = layer.quant
    w = FLOAT_AS_BITS if q is None or q.w_bits is None else q.w_bits
    a = FLOAT_AS_BITS if q is None or q.a_bits is None else q.a_bits
    return w, a


def weighted_consumers(graph: Any, layer: Layer) -> tuple[list[Layer], bool]:
    """The conv2d, linear (and choice) layers that read ``layer``'s output, through any layers that compute
    no MACs (activations, adds, pools, reshapes, ...), in a stable order; and whether it reaches a graph
    output."""
    found: dict[str, Layer] = {}
    reaches_output, seen = False, {layer.name}
    frontier = list(graph.consumers(layer.name))
    if not frontier:
        return [], True
    while frontier:
        consumer = frontier.pop()
        if consumer.name in seen:
            continue
        seen.add(consumer.name)
        if consumer.kind in (LayerKind.CONV2D, LayerKind.LINEAR, LayerKind.CHOICE):
            found[consumer.name] = consumer
            continue
        following = graph.consumers(consumer.name)
        reaches_output = reaches_output or not following
        frontier.extend(following)
    return [found[name] for name in sorted(found)], reaches_output


def consumer_a_bits(graph: Any, layer: Layer, output_bits: int = FLOAT_AS_BITS) -> int:
    """The activation bits the layer's output is requantized to: the largest ``a_bits`` of the conv2d and
    linear layers that consume it (:func:`weighted_consumers`; a choice layer counts as 8 bits), and
    ``output_bits`` where it reaches a graph output. Floating point counts as 8 bits."""
    consumers, reaches_output = weighted_consumers(graph, layer)
    widths = [FLOAT_AS_BITS if c.kind is LayerKind.CHOICE else target_bits(c)[1] for c in consumers]
    return max([*widths, *([output_bits] if reaches_output else [])])


def layer_macs(layer: Layer) -> int:
    """Multiply-accumulates of one forward pass (conv2d and linear; 0 for every other kind).

    For a choice layer: the largest candidate's MACs (an upper bound of the derived layer).
    """
    if layer.kind is LayerKind.CONV2D:
        p = layer.params
        return layer.output_shape.numel() * (layer.in_channels // p.groups) * p.kernel[0] * p.kernel[1]
    if layer.kind is LayerKind.LINEAR:
        return layer.output_shape.numel() * layer.in_channels
    if layer.kind is LayerKind.CHOICE:
        return max(sum(layer_macs(x) for x in c.graph) for c in layer.choice.candidates)
    return 0


def layer_params(layer: Layer) -> int:
    """Number of trainable parameters (conv2d, linear, batchnorm; a choice layer sums its candidates)."""
    if layer.kind is LayerKind.CONV2D:
        p = layer.params
        n = layer.out_channels * (layer.in_channels // p.groups) * p.kernel[0] * p.kernel[1]
        return n + (layer.out_channels if p.bias else 0)
    if layer.kind is LayerKind.LINEAR:
        n = layer.out_channels * layer.in_channels
        return n + (layer.out_channels if layer.params.bias else 0)
    if layer.kind is LayerKind.BATCHNORM:
        return 2 * layer.output_shape[1]
    if layer.kind is LayerKind.CHOICE:
        return sum(layer_params(x) for c in layer.choice.candidates for x in c.graph)
    return 0
