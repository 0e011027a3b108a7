"""Deterministic text form of a :class:`LayerGraph`, one line per layer.

Example line (one line in the output, wrapped here)::

    %b3.dw = conv2d[k=5,s=2,g=96](%b3.pw1) : w4a8 [1,96,16,16]->[1,96,8,8] tile{b=1,ow=8,oh=8,ic=1,oc=16}
             order=oc>oh>ow>ic>b

Layout of a file: an optional ``graph "NAME"`` line, an optional ``accelerator k=v ...`` line, then the
layers in :meth:`LayerGraph.topo_order`. A choice layer opens a block (``{``) holding one
``candidate OP alpha=.. beta_w={..} beta_a={..} {`` block per candidate, indented by two spaces. Weights and
``meta`` are never printed. :func:`jaqc.ir.parser.parse` reads the text back.
"""

from __future__ import annotations

import json
import re

from attrs import NOTHING, fields

from .graph import LayerGraph
from .layer import Layer

_BARE = re.compile(r"[A-Za-z0-9_.\-/:<>]+")


def quote(text: str) -> str:
    """``text`` as is when it is a bare word, else as a JSON string."""
    return text if _BARE.fullmatch(text) else json.dumps(text)


def fmt_float(value: float) -> str:
    """Shortest text that reads back to exactly ``value``."""
    return repr(float(value))


def format_params(params: object) -> str:
    """``k=3,s=2,g=96,bias``: fields that differ from their default, by their short keys."""
    if params is None:
        return ""
    parts = []
    for f in fields(type(params)):
        value = getattr(params, f.name)
        default = f.default
        if default is not NOTHING and f.converter is not None:
            default = f.converter(default)
        if value == default:
            continue
        key, fmt = f.metadata["key"], f.metadata["fmt"]
        if fmt == "flag":
            parts.append(key)
        elif fmt == "pair":
            parts.append(f"{key}={value[0]}" if value[0] == value[1] else f"{key}={value[0]}x{value[1]}")
        elif fmt == "float":
            parts.append(f"{key}={fmt_float(value)}")
        else:
            parts.append(f"{key}={value}")
    return ",".join(parts)


def _floats(values: tuple[float, ...]) -> str:
    return "{" + ",".join(fmt_float(v) for v in values) + "}"


def format_layer(layer: Layer) -> str:
    """The one-line text form of a layer (without a choice layer's candidate block)."""
    params = format_params(layer.params)
    head = f"%{layer.name} = {layer.kind.value}"
    if params:
        head += f"[{params}]"
    if layer.inputs:
        head += "(" + ", ".join(f"%{i}" for i in layer.inputs) + ")"
    parts = [head, ":"]
    if layer.quant is not None:
        parts.append(str(layer.quant))
    shapes = str(layer.output_shape)
    if layer.input_shapes:
        shapes = ",".join(str(s) for s in layer.input_shapes) + "->" + shapes
    parts.append(shapes)
    if layer.mapping is not None:
        m = layer.mapping
        tiles = ",".join(f"{k.lower()}={v}" for k, v in m.tile_dict().items())
        parts.append(f"tile{{{tiles}}}")
        parts.append("order=" + ">".join(d.value.lower() for d in m.loop_order))
    if layer.cost is not None:
        c = layer.cost
        parts.append(f"cost{{compute={c.compute_cycles},stall={c.stall_cycles},energy_nJ={fmt_float(c.energy_nJ)}}}")
    if layer.op_vector is not None:
        parts.append(str(layer.op_vector))
    if layer.csq_channels is not None:
        parts.append("csq{" + ",".join(str(c) for c in layer.csq_channels) + "}")
    if layer.choice is not None:
        parts.append("bits={" + ",".join(str(b) for b in layer.choice.bits) + "}")
    if layer.source is not None:
        parts.append(";")
        if layer.source.fx_node:
            parts.append(f"fx={quote(layer.source.fx_node)}")
        if layer.source.module:
            parts.append(f"module={quote(layer.source.module)}")
    return " ".join(parts)


def _graph_lines(graph: LayerGraph, indent: str, header: bool) -> list[str]:
    lines = []
    if header:
        lines.append(f"{indent}graph {quote(graph.name)}")
        if graph.accelerator is not None:
            acc = graph.accelerator.to_json()
            lines.append(f"{indent}accelerator " + " ".join(f"{k}={_acc_value(v)}" for k, v in acc.items()))
        if graph.hw_model is not None:
            lines.append(f"{indent}hw_model {graph.hw_model}")
    for layer in graph.topo_order():
        line = indent + format_layer(layer)
        if layer.choice is None:
            lines.append(line)
            continue
        lines.append(line + " {")
        for cand in layer.choice.candidates:
            attrs_ = [f"candidate {quote(cand.op)}"]
            if cand.alpha is not None:
                attrs_.append(f"alpha={fmt_float(cand.alpha)}")
            if cand.beta_w is not None:
                attrs_.append(f"beta_w={_floats(cand.beta_w)}")
            if cand.beta_a is not None:
                attrs_.append(f"beta_a={_floats(cand.beta_a)}")
            lines.append(f"{indent}  " + " ".join(attrs_) + " {")
            lines.extend(_graph_lines(cand.graph, indent + "    ", header=False))
            lines.append(f"{indent}  }}")
        lines.append(f"{indent}}}")
    return lines


def _acc_value(value: object) -> str:
    if isinstance(value, float):
        return fmt_float(value)
    if isinstance(value, str):
        return quote(value) if value else '""'
    return str(value)


def print_graph(graph: LayerGraph) -> str:
    """The deterministic text form of ``graph`` (ends with a newline)."""
    return "\n".join(_graph_lines(graph, "", header=True)) + "\n"
