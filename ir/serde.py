"""JSON form of a :class:`LayerGraph` (format ``jaqc-ir``, version 1), optionally with weights.

Weights are stored as ``{"dtype", "shape", "data"}`` with the raw little-endian bytes base64-encoded,
so a round trip is bit-exact. ``meta`` is never written.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .accelerator import AcceleratorConfig, check_hw_model
from .choice import Candidate, Choice
from .encoding import OPERATOR_FIELDS, OperatorVector
from .errors import IRError, ParseError
from .fileio import atomic_write_text, read_json, read_text
from .graph import LayerGraph
from .layer import Layer
from .mapping import Mapping
from .parser import parse
from .printer import print_graph
from .types import LayerCost, QuantSpec, Source, params_from_dict, params_to_dict, to_kind

FORMAT = "jaqc-ir"
VERSION = 1


def _array_to_json(array: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(array)
    return {
        "dtype": arr.dtype.newbyteorder("<").str,
        "shape": list(arr.shape),
        "data": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode("ascii"),
    }


def _array_from_json(data: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(data["data"])
    return np.frombuffer(raw, dtype=np.dtype(data["dtype"])).reshape(data["shape"]).copy()


def layer_to_json(layer: Layer, weights: bool) -> dict[str, Any]:
    """One layer as a JSON-ready dict."""
    out: dict[str, Any] = {
        "name": layer.name,
        "kind": layer.kind.value,
        "inputs": list(layer.inputs),
        "input_shapes": [list(s) for s in layer.input_shapes],
        "output_shape": list(layer.output_shape),
    }
    if layer.params is not None:
        out["params"] = params_to_dict(layer.params)
    if layer.quant is not None:
        out["quant"] = {"w_bits": layer.quant.w_bits, "a_bits": layer.quant.a_bits}
    if layer.choice is not None:
        out["choice"] = {
            "bits": list(layer.choice.bits),
            "candidates": [
                {
                    "op": c.op,
                    "alpha": c.alpha,
                    "beta_w": None if c.beta_w is None else list(c.beta_w),
                    "beta_a": None if c.beta_a is None else list(c.beta_a),
                    "graph": graph_to_json(c.graph, weights=weights),
                }
                for c in layer.choice.candidates
            ],
        }
    if layer.csq_channels is not None:
        out["csq_channels"] = list(layer.csq_channels)
    if layer.mapping is not None:
        out["mapping"] = layer.mapping.to_json()
    if layer.cost is not None:
        c = layer.cost
        out["cost"] = {
            "compute_cycles": c.compute_cycles,
            "stall_cycles": c.stall_cycles,
            "energy_nJ": c.energy_nJ,
        }
    if layer.op_vector is not None:
        out["op_vector"] = dict(zip(OPERATOR_FIELDS, layer.op_vector.raw()))
    if layer.source is not None:
        out["source"] = {"fx_node": layer.source.fx_node, "module": layer.source.module}
    if weights and layer.weights:
        out["weights"] = {k: _array_to_json(v) for k, v in sorted(layer.weights.items())}
    return out


def graph_to_json(graph: LayerGraph, weights: bool = True) -> dict[str, Any]:
    """The graph as a JSON-ready dict, layers in topological order."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": graph.name,
        "accelerator": None if graph.accelerator is None else graph.accelerator.to_json(),
        **({} if graph.hw_model is None else {"hw_model": graph.hw_model}),
        "layers": [layer_to_json(x, weights) for x in graph.topo_order()],
    }


def _layer_from_json(data: dict[str, Any], where: str) -> Layer:
    try:
        kind = to_kind(data["kind"])
        choice = None
        if "choice" in data:
            ch = data["choice"]
            choice = Choice(
                candidates=[
                    Candidate(
                        op=c["op"],
                        graph=graph_from_json(c["graph"], where=f"{where}.choice.candidates[{i}].graph"),
                        alpha=c.get("alpha"),
                        beta_w=c.get("beta_w"),
                        beta_a=c.get("beta_a"),
                    )
                    for i, c in enumerate(ch["candidates"])
                ],
                bits=ch.get("bits", (2, 4, 8)),
            )
        quant = data.get("quant")
        cost = data.get("cost")
        source = data.get("source")
        return Layer(
            name=data["name"],
            kind=kind,
            inputs=data.get("inputs", []),
            input_shapes=data.get("input_shapes", []),
            output_shape=data["output_shape"],
            params=params_from_dict(kind, data.get("params", {}), f"{where}.params"),
            quant=None if quant is None else QuantSpec(quant["w_bits"], quant["a_bits"]),
            choice=choice,
            csq_channels=data.get("csq_channels"),
            mapping=None if data.get("mapping") is None else Mapping.from_json(data["mapping"]),
            cost=None if cost is None else LayerCost(**cost),
            op_vector=None if data.get("op_vector") is None else OperatorVector(**data["op_vector"]),
            source=None if source is None else Source(**source),
            weights={k: _array_from_json(v) for k, v in data.get("weights", {}).items()},
        )
    except ParseError:
        raise
    except KeyError as exc:
        raise ParseError(f"{where}: missing field {exc.args[0]!r}") from None
    except (IRError, TypeError, ValueError) as exc:
        raise ParseError(f"{where}: {exc}") from None


def graph_from_json(data: dict[str, Any], where: str = "graph") -> LayerGraph:
    """Rebuild a graph from :func:`graph_to_json` output; errors name the offending field path."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ParseError(f'{where}: not a jaqc IR document (expected "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise ParseError(f"{where}: unsupported jaqc IR version {data.get('version')!r} (this jaqc reads {VERSION})")
    graph = LayerGraph(str(data.get("name", "graph")))
    if data.get("accelerator") is not None:
        try:
            graph.accelerator = AcceleratorConfig.from_json(data["accelerator"], where=f"{where}.accelerator")
        except IRError as exc:
            raise ParseError(str(exc)) from None
    try:
        graph.hw_model = check_hw_model(data.get("hw_model"), f"{where}.hw_model")
    except IRError as exc:
        raise ParseError(str(exc)) from None
    for i, item in enumerate(data.get("layers", [])):
        layer_where = f"{where}.layers[{i}]"
        layer = _layer_from_json(item, layer_where)
        try:
            graph.add(layer)
        except IRError as exc:
            raise ParseError(f"{layer_where}: {exc}") from None
    return graph


def save_graph(graph: LayerGraph, path: str | os.PathLike[str], weights: bool = True) -> Path:
    """Write ``graph`` atomically: JSON for ``.json``, the text form otherwise (``.jaqc``)."""
    path = Path(path)
    if path.suffix == ".json":
        return atomic_write_text(path, json.dumps(graph_to_json(graph, weights=weights), indent=1) + "\n")
    return atomic_write_text(path, print_graph(graph))


def load_graph(path: str | os.PathLike[str]) -> LayerGraph:
    """Read a graph saved by :func:`save_graph` (``.json`` or text); errors name the file."""
    path = Path(path)
    if path.suffix == ".json":
        return graph_from_json(read_json(path, ParseError), where=str(path))
    return parse(read_text(path, IRError), source=str(path))
