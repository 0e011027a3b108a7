"""Per-layer summaries of a LayerGraph for tables (``jaqc dump --format table``) and reports."""

from __future__ import annotations

from typing import Any

from jaqc.ir import LayerGraph, LayerKind, layer_macs, layer_params
from jaqc.ir.layer import Layer


def _geometry(layer: Layer) -> str:
    p = layer.params
    if layer.kind is LayerKind.CONV2D or layer.kind in (LayerKind.AVGPOOL, LayerKind.MAXPOOL):
        k = f"{p.kernel[0]}" if p.kernel[0] == p.kernel[1] else f"{p.kernel[0]}x{p.kernel[1]}"
        s = f"{p.stride[0]}" if p.stride[0] == p.stride[1] else f"{p.stride[0]}x{p.stride[1]}"
        text = f"k{k} s{s}"
        if layer.kind is LayerKind.CONV2D and p.groups > 1:
            text += f" g{p.groups}" if p.groups != layer.in_channels else " dw"
        return text
    if layer.kind is LayerKind.CHANNEL_SHUFFLE:
        return f"g{p.groups}"
    if layer.kind is LayerKind.CHOICE:
        return f"{len(layer.choice.candidates)} candidates"
    return ""


def layer_rows(graph: LayerGraph) -> list[dict[str, Any]]:
    """One dict per layer in topological order: name, kind, shapes, geometry, params, MACs, bits."""
    rows = []
    for layer in graph.topo_order():
        rows.append(
            {
                "name": layer.name,
                "kind": layer.kind.value,
                "input_shape": ",".join(str(s) for s in layer.input_shapes),
                "output_shape": str(layer.output_shape),
                "geometry": _geometry(layer),
                "params": layer_params(layer),
                "macs": layer_macs(layer),
                "bits": "" if layer.quant is None else str(layer.quant),
            }
        )
    return rows


def human(n: float) -> str:
    """``1234567`` -> ``1.23M``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"
