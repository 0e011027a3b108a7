"""From the raw ``torch.onnx`` export of a jaqc model to the exported low-bit ONNX model (qdq or qonnx).

The exporter's model computes every quantizer's scale and zero point in the graph (from the weights' ``max |w|``
and the activations' running ranges) and quantizes the weights at run time. :func:`lower` turns it into the
deployable form:

1. every node is assigned to the IR layer whose module produced it (the exporter's ``name_scopes`` metadata);
2. each ``QuantizeLinear -> [Clip] -> DequantizeLinear`` chain is found and classified as the layer's weight
   or input quantizer;
3. constant sub-graphs are folded with ``onnx.reference``: scales and zero points become initializers, and in
   the qdq format the weights' ``QuantizeLinear`` becomes an integer initializer (``<layer>.weight``; the
   2-bit ``Clip`` of the QCDQ form stays, so the width stays visible); in the qonnx format each chain becomes
   one QONNX ``Quant`` node over the float weight or activation;
4. nodes, values and initializers get stable names (a layer's main node is named after the layer, its other
   nodes ``<layer>/<role>``), every node of a layer carries ``metadata_props`` ``jaqc.layer``, exporter
   metadata and doc strings are dropped, the IR version is the minimum for the opset;
5. each quantized layer is checked to have exactly its two quantizers (:class:`ExportError` names the layer
   when one is missing or was lowered to plain arithmetic).

This module needs onnx and numpy, not torch.
"""

from __future__ import annotations

import ast
import itertools
import json
from collections import Counter

import numpy as np
import onnx
from attrs import define, frozen
from onnx import TensorProto, helper, numpy_helper

from jaqc import __version__
from jaqc.core import JaqcError
from jaqc.frontend.onnx_import import LAYER_NAME_KEY
from jaqc.ir import LayerGraph, LayerKind

from .embedded import HW_MODEL_KEY, SCHEDULE_KEY, SCHEMA_VERSION_KEY
from .onnx_translation import integer_type

QONNX_DOMAIN = "qonnx.custom_op.general"
FORMATS: tuple[str, ...] = ("qdq", "qonnx")
OPSETS: tuple[int, ...] = (21, 25)

_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
#: Ops a quantizer lowered to arithmetic leaves (with a ``Round``, which nothing else in a CNN computes).
_QUANT_ARITHMETIC = frozenset(
    {"Round", "Floor", "Ceil", "Div", "Sub", "Where", "Cast", "Min", "Max", "Greater", "Less", "Neg", "Abs"}
)
_WEIGHTED = (LayerKind.CONV2D, LayerKind.LINEAR)
_MAIN_INPUT_NAMES: dict[str, dict[int, str]] = {
    "Conv": {1: "weight", 2: "bias"},
    "Gemm": {1: "weight", 2: "bias"},
    "MatMul": {1: "weight"},
    "BatchNormalization": {1: "weight", 2: "bias", 3: "running_mean", 4: "running_var"},
}


class ExportError(JaqcError):
    """The model cannot be exported, or the exported model is not what the IR says (names the layer)."""


@frozen
class ExportedLayer:
    """A conv2d / linear layer of an export: its bits and the quantization nodes that carry them."""

    name: str
    kind: str
    w_bits: int | None
    a_bits: int | None
    #: QuantizeLinear / Clip / DequantizeLinear nodes (qdq) or Quant nodes (qonnx) of the layer.
    quant_nodes: int
    #: How the weight is stored, e.g. ``int4``, ``int8+clip[-1,1]``, ``int2``, ``float+Quant``, ``float``.
    weight_storage: str


@define(eq=False)
class _Node:
    proto: onnx.NodeProto
    layer: str | None
    role: str = ""  # weight_quantize / input_clip / ... for quantizer nodes


@define(eq=False)
class _Chain:
    """One exported fake-quant op: ``QuantizeLinear -> [Clip] -> DequantizeLinear``."""

    layer: str
    role: str  # "weight" or "input"
    quantize: _Node
    clip: _Node | None
    dequantize: _Node


def _scopes_layer(proto: onnx.NodeProto, graph: LayerGraph) -> str | None:
    for entry in proto.metadata_props:
        if entry.key == _SCOPES_KEY:
            try:
                scopes = ast.literal_eval(entry.value)
            except (ValueError, SyntaxError):
                return None
            # The last entry is the fx node's own name, the ones before it the module path, outermost first.
            for scope in reversed(list(scopes)[:-1]):
                if scope and scope in graph:
                    return scope
    return None


def _to_initializer(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


class _Lowering:
    """One lowering run; see :func:`lower`."""

    def __init__(self, raw: onnx.ModelProto, graph: LayerGraph, fmt: str, opset: int) -> None:
        self.graph = graph
        self.fmt = fmt
        self.opset = opset
        self.raw = onnx.ModelProto()
        self.raw.CopyFrom(raw)  # nodes are edited in place
        raw = self.raw
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in raw.graph.initializer}
        self.nodes = [_Node(n, _scopes_layer(n, graph)) for n in raw.graph.node]
        self.input_name = raw.graph.input[0].name if raw.graph.input else ""
        self.output_names = [o.name for o in raw.graph.output]
        self.chains: list[_Chain] = []
        self.types = {
            vi.name: vi.type.tensor_type
            for vi in [*raw.graph.input, *raw.graph.value_info, *raw.graph.output]
            if vi.type.HasField("tensor_type")
        }

    # --- analysis ------------------------------------------------------------------------------------------
    def producers(self) -> dict[str, _Node]:
        return {out: node for node in self.nodes for out in node.proto.output if out}

    def constant_values(self) -> set[str]:
        """Values computable without the graph input: initializers and everything derived only from them."""
        known = set(self.consts)
        for node in self.nodes:
            inputs = [t for t in node.proto.input if t]
            if all(t in known for t in inputs):
                known.update(t for t in node.proto.output if t)
        return known

    def find_chains(self) -> None:
        producers = self.producers()
        constant = self.constant_values()
        for node in self.nodes:
            if node.proto.op_type != "DequantizeLinear":
                continue
            source = producers.get(node.proto.input[0])
            clip = None
            if source is not None and source.proto.op_type == "Clip":
                clip, source = source, producers.get(source.proto.input[0])
            if source is None or source.proto.op_type != "QuantizeLinear":
                raise ExportError(
                    f"layer %{node.layer}: a DequantizeLinear in the exported model reads no QuantizeLinear"
                )
            layer = node.layer or source.layer
            if layer is None:
                raise ExportError("a quantizer of the exported model belongs to no IR layer")
            role = "weight" if source.proto.input[0] in constant else "input"
            for part, suffix in ((source, "quantize"), (clip, "clip"), (node, "dequantize")):
                if part is not None:
                    part.role = f"{role}_{suffix}"
                    part.layer = layer
            self.chains.append(_Chain(layer, role, source, clip, node))

    # --- constant folding ------------------------------------------------------------------------------------
    def _protected(self, node: _Node) -> bool:
        if node.role.endswith(("_dequantize", "_clip")):
            return True
        return node.role == "weight_quantize" and self.fmt == "qonnx"

    def static_shape(self, value: str) -> list[int] | None:
        tensor_type = self.types.get(value)
        if tensor_type is None or not tensor_type.HasField("shape"):
            return None
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        return None if any(d < 0 for d in dims) else dims

    def resolve_static(self, node: _Node, known: set[str]) -> bool:
        """``Shape`` of a statically shaped value is a constant (folded here, returns true); ``CastLike`` to a typed
        value becomes a ``Cast`` (folded with the other constants when its input is constant)."""
        proto = node.proto
        if proto.op_type == "Shape" and proto.input[0] not in known and not node.role:
            dims = self.static_shape(proto.input[0])
            if dims is None:
                return False
            start = next((helper.get_attribute_value(a) for a in proto.attribute if a.name == "start"), 0)
            end = next((helper.get_attribute_value(a) for a in proto.attribute if a.name == "end"), None)
            self.consts[proto.output[0]] = np.array(dims[start:end], dtype=np.int64)
            return True
        if proto.op_type == "CastLike" and proto.input[0] in known and proto.input[1] not in known:
            tensor_type = self.types.get(proto.input[1])
            if tensor_type is None or not tensor_type.elem_type:
                return False
            cast = helper.make_node("Cast", [proto.input[0]], list(proto.output), to=tensor_type.elem_type)
            proto.CopyFrom(cast)  # now a Cast of a constant: folded with the rest
        return False

    def bypass_identities(self) -> None:
        """Drop ``Identity`` nodes (``detach``, ``contiguous``) whose output is not a graph output."""
        rename: dict[str, str] = {}
        kept = []
        for node in self.nodes:
            proto = node.proto
            for position, t in enumerate(proto.input):
                if t in rename:
                    proto.input[position] = rename[t]
            if proto.op_type == "Identity" and proto.output[0] not in self.output_names:
                rename[proto.output[0]] = proto.input[0]
            else:
                kept.append(node)
        self.nodes = kept

    def fold_constants(self) -> None:
        """Evaluate every node whose inputs are all constants (one ``onnx.reference`` run)."""
        from onnx.reference import ReferenceEvaluator

        known = set(self.consts)
        folded: list[_Node] = []
        kept: list[_Node] = []
        for node in self.nodes:
            if self.resolve_static(node, known):
                known.update(t for t in node.proto.output if t)
                continue
            inputs = [t for t in node.proto.input if t]
            if not self._protected(node) and all(t in known for t in inputs):
                folded.append(node)
                known.update(t for t in node.proto.output if t)
            else:
                kept.append(node)
        if not folded:
            return
        needed = {t for node in kept for t in node.proto.input if t} | set(self.output_names)
        outputs = sorted({t for node in folded for t in node.proto.output if t in needed})
        used = {t for node in folded for t in node.proto.input if t in self.consts}
        sub = helper.make_graph(
            [node.proto for node in folded],
            "fold",
            [],
            [helper.make_empty_tensor_value_info(t) for t in outputs],
            [_to_initializer(name, self.consts[name]) for name in sorted(used)],
        )
        model = helper.make_model(sub, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = self.raw.ir_version
        try:
            results = ReferenceEvaluator(model).run(None, {})
        except Exception as exc:  # the reference raises many types; all mean "cannot fold"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"cannot fold the constant part of the exported model: {first}") from exc
        for name, value in zip(outputs, results, strict=True):
            self.consts[name] = np.asarray(value)
        self.nodes = kept

    # --- qonnx --------------------------------------------------------------------------------------------------
    def to_qonnx(self) -> None:
        """Replace each chain by one QONNX ``Quant`` node (unsigned with zero point, or signed narrow range)."""
        replace: dict[int, _Node | None] = {}
        for chain in self.chains:
            q = chain.quantize.proto
            scale, zero_point = self.const_input(chain, q, 1), self.const_input(chain, q, 2)
            bits = self.chain_bits(chain)
            prefix = f"{chain.layer}.{chain.role}"
            if scale.ndim == 1:  # per channel: Quant broadcasts numpy-style, so put the channels on the axis
                axis = next((helper.get_attribute_value(a) for a in q.attribute if a.name == "axis"), 1)
                rank = len(self.static_shape(q.input[0]) or self.consts[q.input[0]].shape)
                shape = [1] * rank
                shape[axis % rank] = -1
                scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
            self.consts[f"{prefix}_qonnx_scale"] = scale
            self.consts[f"{prefix}_qonnx_zeropt"] = zero_point.astype(np.float32)
            self.consts[f"{prefix}_qonnx_bitwidth"] = np.array(float(bits), dtype=np.float32)
            signed = int(chain.role == "weight")
            proto = helper.make_node(
                "Quant",
                [q.input[0], f"{prefix}_qonnx_scale", f"{prefix}_qonnx_zeropt", f"{prefix}_qonnx_bitwidth"],
                [chain.dequantize.proto.output[0]],
                domain=QONNX_DOMAIN,
                signed=signed,
                narrow=signed,
                rounding_mode="ROUND",
            )
            replace[id(chain.dequantize)] = _Node(proto, chain.layer, f"{chain.role}_quant")
            replace[id(chain.quantize)] = None
            if chain.clip is not None:
                replace[id(chain.clip)] = None
        nodes = []
        for node in self.nodes:
            new = replace.get(id(node), node)
            if new is not None:
                nodes.append(new)
        self.nodes = nodes

    def const_input(self, chain: _Chain, proto: onnx.NodeProto, position: int) -> np.ndarray:
        name = proto.input[position] if position < len(proto.input) else ""
        if name not in self.consts:
            raise ExportError(
                f"layer %{chain.layer}: the {chain.role} quantizer's {'scale' if position == 1 else 'zero point'} "
                "is not a constant in the exported model"
            )
        return self.consts[name]

    def chain_bits(self, chain: _Chain) -> int:
        """The width of a chain from its integer type (and the QCDQ clip), checked against the IR layer."""
        layer = self.graph[chain.layer]
        want = None if layer.quant is None else (layer.quant.w_bits if chain.role == "weight" else layer.quant.a_bits)
        if want is None:
            raise ExportError(f"layer %{chain.layer}: the export has a {chain.role} quantizer the IR layer lacks")
        elem_type, needs_clip = integer_type(want, signed=chain.role == "weight", opset=self.opset)
        zero_point = self.const_input(chain, chain.quantize.proto, 2)
        got_type = helper.np_dtype_to_tensor_dtype(zero_point.dtype)
        if got_type != elem_type or needs_clip != (chain.clip is not None):
            raise ExportError(
                f"layer %{chain.layer}: the {chain.role} quantizer was exported as "
                f"{TensorProto.DataType.Name(got_type)}{' + Clip' if chain.clip else ''}, expected "
                f"{TensorProto.DataType.Name(elem_type)}{' + Clip' if needs_clip else ''} for {want} bits"
            )
        return want

    # --- clean-up ---------------------------------------------------------------------------------------------
    def drop_zero_biases(self) -> None:
        """The exporter gives a bias-free conv an explicit zero bias; drop it where the IR layer has none."""
        for node in self.nodes:
            proto = node.proto
            layer = self.graph[node.layer] if node.layer in self.graph else None
            if (
                proto.op_type == "Conv"
                and layer is not None
                and layer.kind is LayerKind.CONV2D
                and not layer.params.bias
                and len(proto.input) == 3
                and proto.input[2] in self.consts
                and not np.any(self.consts[proto.input[2]])
            ):
                del proto.input[2]

    def remove_dead(self) -> None:
        used = set(self.output_names)
        alive = []
        for node in reversed(self.nodes):
            if any(t in used for t in node.proto.output) or node.proto.op_type == "Quant":
                alive.append(node)
                used.update(t for t in node.proto.input if t)
        self.nodes = list(reversed(alive))

    # --- names ---------------------------------------------------------------------------------------------------
    def main_nodes(self) -> dict[str, _Node]:
        """Per layer, the node producing its result (read outside the layer or a graph output)."""
        consumers: dict[str, set[str | None]] = {}
        for node in self.nodes:
            for t in node.proto.input:
                consumers.setdefault(t, set()).add(node.layer)
        main: dict[str, _Node] = {}
        for node in self.nodes:
            if node.layer is None:
                continue
            leaves = any(
                t in self.output_names or (consumers.get(t, set()) - {node.layer}) for t in node.proto.output if t
            )
            if leaves or node.layer not in main:
                main[node.layer] = node
        for node in self.nodes:  # a conv/linear layer is named by its Conv/Gemm even where a bias Add follows it
            if node.layer is not None and node.proto.op_type in ("Conv", "Gemm"):
                main[node.layer] = node
        return main

    def rename(self) -> dict[str, str]:
        """Name nodes and values; returns the value renaming."""
        main = self.main_nodes()
        main_ids = {id(node) for node in main.values()}
        counts: Counter[str] = Counter()
        values: dict[str, str] = {}
        taken: set[str] = set()
        for index, node in enumerate(self.nodes):
            proto = node.proto
            if node.layer is None:
                name = f"{proto.op_type}_{index}"
            elif id(node) in main_ids:
                name = node.layer
            else:
                base = f"{node.layer}/{node.role or proto.op_type}"
                counts[base] += 1
                name = base if counts[base] == 1 else f"{base}_{counts[base] - 1}"
            if name in taken:
                raise ExportError(f"two nodes of the exported model would both be named {name!r}")
            taken.add(name)
            proto.name = name
            for position, out in enumerate(proto.output):
                if out:
                    values[out] = name if position == 0 else f"{name}:{position}"
        ir_inputs = [x.name for x in self.graph.inputs()]
        ir_outputs = [x.name for x in self.graph.outputs()]
        if self.input_name:
            values[self.input_name] = ir_inputs[0]
        for old, new in zip(self.output_names, ir_outputs, strict=True):
            values[old] = new
        # Constants keep the exporter's names until initializers() names them after their consumers, so a value
        # renamed here must not take one: a layer named `view` whose output became `view` read the exporter's
        # constant `view` (a bias reshape) instead of its activation. Such constants move out of the way.
        new_names = set(values.values())
        produced = {t for node in self.nodes for t in node.proto.output}  # a folded output still produced stays
        moved: dict[str, str] = {}
        taken = new_names | set(self.consts)
        for name in [c for c in self.consts if c in new_names and c not in produced]:
            fresh = next(f"{name}#{n}" for n in itertools.count() if f"{name}#{n}" not in taken)
            self.consts[fresh] = self.consts.pop(name)
            moved[name] = fresh
            taken.add(fresh)
        for node in self.nodes:
            for position, t in enumerate(node.proto.input):
                if t in moved:
                    node.proto.input[position] = moved[t]
                elif t in values:
                    node.proto.input[position] = values[t]
            for position, t in enumerate(node.proto.output):
                if t in values:
                    node.proto.output[position] = values[t]
        return values

    def initializer_name(self, node: _Node, position: int) -> str:
        proto, layer = node.proto, node.layer
        if node.role and layer is not None:
            role = node.role.split("_")[0]
            if position == 0:
                return f"{layer}.weight"
            if proto.op_type == "Clip":
                return f"{layer}.{role}_clip_{'min' if position == 1 else 'max'}"
            if proto.op_type == "Quant" and position == 3:
                return f"{layer}.{role}_bitwidth"
            return f"{layer}.{role}_{'scale' if position == 1 else 'zero_point'}"
        if layer is not None and proto.name == layer and position in _MAIN_INPUT_NAMES.get(proto.op_type, {}):
            return f"{layer}.{_MAIN_INPUT_NAMES[proto.op_type][position]}"
        try:
            schema = onnx.defs.get_schema(proto.op_type, self.opset, proto.domain)
            slot = schema.inputs[min(position, len(schema.inputs) - 1)].name
        except onnx.defs.SchemaError:
            slot = f"input{position}"
        return f"{proto.name}.{slot}"

    def initializers(self) -> list[onnx.TensorProto]:
        """Give every constant input a name of its consumer and slot; shared constants are copied per name."""
        named: dict[str, np.ndarray] = {}
        order: list[str] = []
        for node in self.nodes:
            for position, t in enumerate(node.proto.input):
                if t not in self.consts:
                    continue
                name = self.initializer_name(node, position)
                if name in named:
                    if not np.array_equal(named[name], self.consts[t]) or named[name].dtype != self.consts[t].dtype:
                        raise ExportError(f"two different constants would both be named {name!r}")
                else:
                    named[name] = self.consts[t]
                    order.append(name)
                node.proto.input[position] = name
        return [_to_initializer(name, named[name]) for name in order]

    # --- assembly ------------------------------------------------------------------------------------------------
    def build(self, schedule_text: str, schema_version: int) -> onnx.ModelProto:
        self.bypass_identities()
        self.find_chains()
        self.fold_constants()
        for chain in self.chains:
            self.chain_bits(chain)
        if self.fmt == "qonnx":
            self.to_qonnx()
        self.drop_zero_biases()
        self.remove_dead()
        self.rename()
        initializers = self.initializers()
        for node in self.nodes:
            node.proto.ClearField("metadata_props")
            node.proto.doc_string = ""
            if node.layer is not None:
                node.proto.metadata_props.add(key=LAYER_NAME_KEY, value=node.layer)
        raw_in = self.raw.graph.input[0]
        raw_out = {o.name: o for o in self.raw.graph.output}
        inputs = [self._value_info(raw_in, self.graph.inputs()[0].name)]
        outputs = [
            self._value_info(raw_out[old], layer.name)
            for old, layer in zip(self.output_names, self.graph.outputs(), strict=True)
        ]
        graph = helper.make_graph([n.proto for n in self.nodes], self.graph.name, inputs, outputs, initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        if self.fmt == "qonnx":
            opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="jaqc", producer_version=__version__)
        model.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
        hw_model = json.loads(schedule_text).get("hw_model", "simulator")
        helper.set_model_props(
            model, {SCHEDULE_KEY: schedule_text, SCHEMA_VERSION_KEY: str(schema_version), HW_MODEL_KEY: hw_model}
        )
        return _with_shapes(model)

    @staticmethod
    def _value_info(raw: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
        info = onnx.ValueInfoProto()
        info.CopyFrom(raw)
        info.name = name
        info.doc_string = ""
        info.ClearField("metadata_props")
        info.metadata_props.add(key=LAYER_NAME_KEY, value=name)
        return info


def _with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``value_info`` from shape inference; a QONNX ``Quant`` output has its input's type."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    for _ in range(len(model.graph.node)):
        known = {vi.name: vi.type for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}
        for init in inferred.graph.initializer:
            known.setdefault(init.name, helper.make_tensor_type_proto(init.data_type, list(init.dims)))
        added = False
        for node in inferred.graph.node:
            if node.domain == QONNX_DOMAIN and node.output[0] not in known and node.input[0] in known:
                info = model.graph.value_info.add()
                info.name = node.output[0]
                info.type.CopyFrom(known[node.input[0]])
                added = True
        if not added:
            break
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    for info in inferred.graph.value_info:
        info.ClearField("metadata_props")
        info.doc_string = ""
    return inferred


def _layer_of(node: onnx.NodeProto) -> str | None:
    return next((p.value for p in node.metadata_props if p.key == LAYER_NAME_KEY), None)


def quant_nodes_by_layer(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """The quantization nodes per layer (``jaqc.layer``): QuantizeLinear, DequantizeLinear, a Clip feeding a
    DequantizeLinear (QCDQ), QONNX Quant."""
    dequantized = {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        layer = _layer_of(node)
        is_quant = (
            node.op_type in ("QuantizeLinear", "DequantizeLinear")
            or (node.op_type == "Quant" and node.domain == QONNX_DOMAIN)
            or (node.op_type == "Clip" and node.output[0] in dequantized)
        )
        if is_quant and layer is not None:
            out.setdefault(layer, []).append(node)
    return out


def check_quantizers(model: onnx.ModelProto, graph: LayerGraph, fmt: str) -> list[ExportedLayer]:
    """Every quantized conv/linear layer has exactly its weight and input quantizer, and no quantizer was
    lowered to arithmetic (a ``Round`` left in the graph). Returns the per-layer summary; raises
    :class:`ExportError` naming the layer otherwise."""
    by_layer = quant_nodes_by_layer(model)
    for node in model.graph.node:
        if node.op_type == "Round":
            layer = _layer_of(node)
            ops = sorted(
                {n.op_type for n in model.graph.node if _layer_of(n) == layer and n.op_type in _QUANT_ARITHMETIC}
            )
            raise ExportError(
                f"layer %{layer or '?'}: a quantizer was lowered to plain arithmetic ({', '.join(ops)}) instead of "
                + ("QONNX Quant" if fmt == "qonnx" else "QuantizeLinear/DequantizeLinear")
            )
    inits = {i.name: i for i in model.graph.initializer}
    producers = {t: n for n in model.graph.node for t in n.output}
    summary = []
    for layer in graph.layers_of(*_WEIGHTED):
        nodes = by_layer.get(layer.name, [])
        q = layer.quant
        quantized = q is not None and q.w_bits is not None and q.a_bits is not None
        main = next((n for n in model.graph.node if n.name == layer.name), None)
        if main is None:
            raise ExportError(f"layer %{layer.name}: no node of the exported model is named after it")
        weight_source = producers.get(main.input[1])
        data_source = producers.get(main.input[0])
        if not quantized:
            if nodes:
                raise ExportError(f"layer %{layer.name} is floating point but has quantization nodes in the export")
            summary.append(ExportedLayer(layer.name, layer.kind.value, None, None, 0, "float"))
            continue
        assert q is not None
        if fmt == "qonnx":
            ok_w = weight_source is not None and weight_source.op_type == "Quant"
            ok_a = data_source is not None and data_source.op_type == "Quant"
            expected = 2
            storage = "float+Quant"
        else:
            ok_w = weight_source is not None and weight_source.op_type == "DequantizeLinear"
            ok_a = data_source is not None and data_source.op_type == "DequantizeLinear"
            clipped = _clipped(model)
            expected = 3 + int(q.w_bits == 2 and clipped) + int(q.a_bits == 2 and clipped)
            storage = _weight_storage(weight_source, inits, producers) if ok_w else "?"
        for ok, role, bits in ((ok_w, "weight", q.w_bits), (ok_a, "input", q.a_bits)):
            if not ok:
                raise ExportError(
                    f"layer %{layer.name}: the {bits}-bit {role} quantizer is missing from the exported model "
                    f"(its {'Conv/Gemm' if role == 'weight' else 'data'} input is not quantized)"
                )
        if len(nodes) != expected:
            raise ExportError(
                f"layer %{layer.name}: {len(nodes)} quantization node(s) in the export, expected {expected} "
                f"({', '.join(n.op_type for n in nodes)})"
            )
        summary.append(ExportedLayer(layer.name, layer.kind.value, q.w_bits, q.a_bits, len(nodes), storage))
    return summary


def _clipped(model: onnx.ModelProto) -> bool:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return integer_type(2, signed=True, opset=opset)[1]


def _weight_storage(
    dequantize: onnx.NodeProto, inits: dict[str, onnx.TensorProto], producers: dict[str, onnx.NodeProto]
) -> str:
    source = dequantize.input[0]
    clip = producers.get(source)
    suffix = ""
    if clip is not None and clip.op_type == "Clip":
        low = numpy_helper.to_array(inits[clip.input[1]]).item()
        high = numpy_helper.to_array(inits[clip.input[2]]).item()
        suffix = f"+clip[{low},{high}]"
        source = clip.input[0]
    init = inits.get(source)
    if init is None:
        return "?"
    return TensorProto.DataType.Name(init.data_type).lower() + suffix


def lower(
    raw: onnx.ModelProto,
    graph: LayerGraph,
    fmt: str,
    opset: int,
    schedule_text: str,
    schema_version: int,
) -> tuple[onnx.ModelProto, list[ExportedLayer]]:
    """The exported model of ``graph`` from the exporter's ``raw`` model, and its per-layer summary."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if opset not in OPSETS:
        raise ExportError(f"unsupported opset {opset}; expected one of {', '.join(map(str, OPSETS))}")
    model = _Lowering(raw, graph, fmt, opset).build(schedule_text, schema_version)
    return model, check_quantizers(model, graph, fmt)
