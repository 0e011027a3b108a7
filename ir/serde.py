"""JSON form of a :class:`LayerGraph` (format ``jaqc-ir``, version 1), optionally with weights.

Weights are stored as ``{"dtype", "shape", "data"}`` with the raw little-endian bytes base64-encoded,
so a round trip is bit-exact. ``meta`` is never written.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaqc.core.files import atomic_write_text, read_json, read_text

from .accelerator import AcceleratorConfig, check_hw_model
from .choice import Candidate, Choice
from .encoding import OPERATOR_FIELDS, OperatorVector
from .errors import IRError, ParseError
from .graph import LayerGraph
from .layer import Layer
from .mapping import Mapping
from .parser import parse
from .printer import print_graph
from .types import LayerCost, QuantSpec, Source, params_from_dict, params_to_dict, to_kind
from .values import expect_object, to_int, to_list, to_text

FORMAT = "jaqc-ir"
VERSION = 1


def _array_to_json(array: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(array)
    return {
        "dtype": arr.dtype.newbyteorder("<").str,
        "shape": list(arr.shape),
        "data": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode("ascii"),
    }


def _array_from_json(data: Any, where: str) -> np.ndarray:
    data = expect_object(data, where)
    try:
        dtype = np.dtype(to_text(data["dtype"], f"{where}.dtype"))
        shape = tuple(to_int(d, f"{where}.shape", 0) for d in to_list(data["shape"], f"{where}.shape"))
        raw = base64.b64decode(to_text(data["data"], f"{where}.data"), validate=True)
    except KeyError as exc:
        raise IRError(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, binascii.Error) as exc:  # unknown dtype, bad base64
        raise IRError(f"{where}: {exc}") from None
    if dtype.hasobject or dtype.itemsize == 0:
        raise IRError(f"{where}: unsupported dtype {dtype.str!r}")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise IRError(
            f"{where}: {len(raw)} bytes of data for shape {list(shape)} of {dtype.str} ({count * dtype.itemsize})"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


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


def _object(data: Any, key: str, where: str) -> Any:
    """``data[key]`` when it is a JSON object or absent (None), else an error naming ``where.key``."""
    value = data.get(key)
    return None if value is None else expect_object(value, f"{where}.{key}")


def _params(kind: Any, data: Any, where: str) -> Any:
    try:
        return params_from_dict(kind, {} if data is None else expect_object(data, where), where)
    except IRError as exc:
        raise ParseError(str(exc)) from None


def _candidate_from_json(data: Any, where: str) -> Candidate:
    data = expect_object(data, where)
    if "graph" not in data:
        raise IRError(f"{where}: missing field 'graph'")
    return Candidate(
        op=data.get("op"),
        graph=graph_from_json(data["graph"], where=f"{where}.graph"),
        alpha=data.get("alpha"),
        beta_w=data.get("beta_w"),
        beta_a=data.get("beta_a"),
    )


def _layer_from_json(data: Any, where: str) -> Layer:
    try:
        data = expect_object(data, where)
        kind = to_kind(to_text(data["kind"], "kind"))
        choice = None
        if (ch := _object(data, "choice", where)) is not None:
            candidates = to_list(ch["candidates"], f"{where}.choice.candidates")
            choice = Choice(
                candidates=[
                    _candidate_from_json(c, f"{where}.choice.candidates[{i}]") for i, c in enumerate(candidates)
                ],
                bits=ch.get("bits", (2, 4, 8)),
            )
        quant = _object(data, "quant", where)
        cost = _object(data, "cost", where)
        source = _object(data, "source", where)
        mapping = _object(data, "mapping", where)
        op_vector = _object(data, "op_vector", where)
        params = data.get("params")
        weights = _object(data, "weights", where) or {}
        return Layer(
            name=data["name"],
            kind=kind,
            inputs=data.get("inputs", []),
            input_shapes=data.get("input_shapes", []),
            output_shape=data["output_shape"],
            params=_params(kind, params, f"{where}.params"),
            quant=None if quant is None else QuantSpec(quant["w_bits"], quant["a_bits"]),
            choice=choice,
            csq_channels=data.get("csq_channels"),
            mapping=None if mapping is None else Mapping.from_json(mapping),
            cost=None if cost is None else LayerCost(**cost),
            op_vector=None if op_vector is None else OperatorVector(**op_vector),
            source=None if source is None else Source(**source),
            weights={
                to_text(k, "weight name"): _array_from_json(v, f"{where}.weights.{k}") for k, v in weights.items()
            },
        )
    except ParseError:
        raise
    except KeyError as exc:
        raise ParseError(f"{where}: missing field {exc.args[0]!r}") from None
    except (IRError, TypeError, ValueError) as exc:
        raise ParseError(f"{where}: {exc}") from None


def graph_from_json(data: Any, where: str = "graph") -> LayerGraph:
    """Rebuild a graph from :func:`graph_to_json` output; errors name the offending field path."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ParseError(f'{where}: not a jaqc IR document (expected "format": "{FORMAT}")')
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        raise ParseError(f"{where}: unsupported jaqc IR version {data.get('version')!r} (this jaqc reads {VERSION})")
    try:
        graph = LayerGraph(to_text(data.get("name", "graph"), f"{where}.name"))
        if data.get("accelerator") is not None:
            graph.accelerator = AcceleratorConfig.from_json(data["accelerator"], where=f"{where}.accelerator")
        graph.hw_model = check_hw_model(data.get("hw_model"), f"{where}.hw_model")
        layers = to_list(data.get("layers", []), f"{where}.layers")
    except IRError as exc:
        raise ParseError(str(exc)) from None
    for i, item in enumerate(layers):
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
    """Read a graph saved by :func:`save_graph` (``.json`` or text); errors name the file. An empty file is
    an error, not an empty graph."""
    path = Path(path)
    if path.suffix == ".json":
        data = read_json(path, ParseError)
    else:
        data = read_text(path, ParseError)
        if not data.strip():
            raise ParseError(f"{path}: empty file (no graph)")
    try:
        if path.suffix == ".json":
            return graph_from_json(data, where=str(path))
        return parse(data, source=str(path))
    except RecursionError:
        raise ParseError(f"{path}: choice candidates nested too deeply") from None
