"""ONNX importer: translate a plain ONNX CNN (float, Q/DQ, QCDQ or QONNX-quantized) into a :class:`LayerGraph`.

Needs only ``onnx`` and ``numpy`` (this module never imports torch). Shapes come from ONNX shape inference
(``strict_mode`` off) and, where it leaves a value without a static shape, from the IR's own shape rules; the
two must agree. Weights come from initializers and ``Constant`` nodes; a node whose inputs are all constants
is evaluated once with ``onnx.reference`` (constant folding), so weight-side ``DequantizeLinear``,
``Transpose``, ``Reshape``, ``Shape`` arithmetic and the like become plain float arrays.

Quantization nodes are folded away. ``QuantizeLinear``/``DequantizeLinear`` pairs (also ``Q -> Clip -> DQ``,
the QCDQ form) and QONNX ``Quant`` nodes leave the dequantized float values in the graph and record their bit
width; a ``Conv``/``Gemm``/``MatMul`` layer gets ``QuantSpec(w_bits, a_bits)`` from the quantizer of its weight
and of its data input. Layer names are the ONNX node names (sanitised and made unique), or the value of a
node's ``jaqc.layer`` metadata property when present; ``Layer.source.module`` holds the ONNX node name.
Anything the importer cannot translate is an :class:`OnnxImportError` naming the node, its op type and index.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import onnx
from attrs import frozen
from onnx import TensorProto, helper, numpy_helper

from jaqc.core import JaqcError
from jaqc.ir import (
    LEGAL_BITS,
    BatchNormParams,
    ConcatParams,
    Conv2dParams,
    Layer,
    LayerGraph,
    LayerKind,
    LinearParams,
    PoolParams,
    QuantSpec,
    Shape,
    ShuffleParams,
    SliceParams,
    Source,
)
from jaqc.ir.errors import IRError
from jaqc.ir.shape_rules import infer_output_shape

#: Metadata key (on nodes, graph inputs and graph outputs) whose value is the IR layer name to use.
LAYER_NAME_KEY = "jaqc.layer"

#: Domains whose ``Quant`` / ``IntQuant`` node is the QONNX integer fake-quantizer.
QONNX_DOMAINS: frozenset[str] = frozenset({"qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas"})

_STANDARD_DOMAINS = ("", "ai.onnx")

#: Integer ONNX element types and their bit widths (the width a quantizer to that type stores).
_INT_TYPE_BITS: dict[int, int] = {
    TensorProto.INT2: 2,
    TensorProto.UINT2: 2,
    TensorProto.INT4: 4,
    TensorProto.UINT4: 4,
    TensorProto.INT8: 8,
    TensorProto.UINT8: 8,
    TensorProto.INT16: 16,
    TensorProto.UINT16: 16,
    TensorProto.INT32: 32,
    TensorProto.UINT32: 32,
}

_ACTIVATIONS: dict[str, LayerKind] = {
    "Relu": LayerKind.RELU,
    "Sigmoid": LayerKind.SIGMOID,
    "HardSwish": LayerKind.HARDSWISH,
}

#: Ops folded into their consumers' values: the quantization tag of the input survives them.
_VALUE_PRESERVING_CONST_OPS = frozenset({"Identity", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})

#: The op types the importer translates (for error messages and docs).
SUPPORTED_OPS: tuple[str, ...] = (
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "DequantizeLinear",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "MatMul",
    "MaxPool",
    "Mul",
    "QuantizeLinear",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Squeeze",
    "Transpose",
    "Unsqueeze",
    "Quant (QONNX)",
)

_UNBOUNDED = 3.0e38  # Clip bounds at or beyond this (float32 max) are "no bound" (opset < 11 defaults)


class OnnxImportError(JaqcError):
    """An ONNX model could not be read or translated; the message names the file or the node."""


@frozen
class QuantTag:
    """A quantizer a value went through: its bit width, where it is, and whether the value is still integer.

    ``bits`` is ``None`` for a non-integer format (``detail`` names it, e.g. ``float8e4m3fn``). ``integer`` is
    true between ``QuantizeLinear`` and ``DequantizeLinear`` (where a ``Clip`` narrows the range: QCDQ).
    """

    bits: int | None
    origin: str
    integer: bool = False
    detail: str = ""

    def describe(self) -> str:
        """``4-bit`` or the format name."""
        return f"{self.bits}-bit" if self.bits is not None else self.detail


@frozen
class _Act:
    """A tensor computed at run time: the IR layer producing it and the quantizer it went through."""

    layer: str
    tag: QuantTag | None = None


@frozen(eq=False)
class _Const:
    """A tensor known at import time (initializer, Constant node, folded expression)."""

    array: np.ndarray
    tag: QuantTag | None = None


@frozen
class _Shuffle:
    """Part of the channel-shuffle pattern ``Reshape(n,g,c/g,h,w) -> Transpose(0,2,1,3,4) -> Reshape(n,c,h,w)``."""

    source: str
    groups: int
    transposed: bool
    origin: str


_Value = _Act | _Const | _Shuffle


def sanitize_name(text: str) -> str:
    """``text`` with every character outside the IR's layer-name pattern replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", text)


def _meta_name(proto: Any) -> str | None:
    for entry in getattr(proto, "metadata_props", ()):
        if entry.key == LAYER_NAME_KEY and entry.value:
            return entry.value
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _elem_type_of(array: np.ndarray) -> int | None:
    try:
        return helper.np_dtype_to_tensor_dtype(array.dtype)
    except (KeyError, TypeError, ValueError):
        return None


def _is_integer_array(array: np.ndarray) -> bool:
    return _elem_type_of(array) in _INT_TYPE_BITS or array.dtype.kind in "iu"


def _type_tag(elem_type: int, origin: str, integer: bool) -> QuantTag:
    if elem_type in _INT_TYPE_BITS:
        return QuantTag(_INT_TYPE_BITS[elem_type], origin, integer)
    return QuantTag(None, origin, integer, detail=TensorProto.DataType.Name(elem_type).lower())


def qonnx_quant(
    x: np.ndarray,
    scale: np.ndarray,
    zeropt: np.ndarray,
    bitwidth: int,
    signed: bool,
    narrow: bool,
    rounding_mode: str = "ROUND",
) -> np.ndarray:
    """The QONNX ``Quant`` op: ``(round(clip(x / scale + zeropt)) - zeropt) * scale`` at ``bitwidth`` bits.

    The integer range is ``[-2^(b-1) + narrow, 2^(b-1) - 1]`` when signed, ``[0, 2^b - 1 - narrow]`` otherwise;
    ``rounding_mode`` is ``ROUND`` (half to even), ``CEIL``, ``FLOOR`` or ``ROUND_TO_ZERO``.
    """
    if signed:
        lo, hi = -(2 ** (bitwidth - 1)) + int(narrow), 2 ** (bitwidth - 1) - 1
    else:
        lo, hi = 0, 2**bitwidth - 1 - int(narrow)
    rounding = {"ROUND": np.round, "CEIL": np.ceil, "FLOOR": np.floor, "ROUND_TO_ZERO": np.trunc}
    mode = rounding_mode.upper()
    if mode not in rounding:
        raise ValueError(f"unknown rounding_mode {rounding_mode!r}; expected one of {', '.join(rounding)}")
    y = np.clip(x / scale + zeropt, lo, hi)
    return ((rounding[mode](y) - zeropt) * scale).astype(np.float32)


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _static_shape(value_info: onnx.ValueInfoProto) -> Shape | None:
    t = value_info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 1:
            return None
        dims.append(d.dim_value)
    return Shape(dims) if dims else None


class OnnxImporter:
    """Translate one checked ``ModelProto`` into a LayerGraph; ``label`` names the model in errors."""

    def __init__(self, model: onnx.ModelProto, name: str, label: str, with_weights: bool = True) -> None:
        self.model = model
        self.label = label
        self.with_weights = with_weights
        self.graph = LayerGraph(name)
        self.values: dict[str, _Value] = {}
        self.shapes: dict[str, Shape] = {}
        self.uses: dict[str, int] = {}
        self.opset = {o.domain: o.version for o in model.opset_import}

    # --- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def describe(index: int, node: onnx.NodeProto) -> str:
        """``ONNX node 'conv1' (Conv, #3)`` or ``ONNX node #3 (Conv)`` for an unnamed node."""
        op = node.op_type if node.domain in _STANDARD_DOMAINS else f"{node.domain}.{node.op_type}"
        return f"ONNX node {node.name!r} ({op}, #{index})" if node.name else f"ONNX node #{index} ({op})"

    def error(self, index: int, node: onnx.NodeProto, msg: str) -> OnnxImportError:
        """An import error naming the model and ``node``."""
        return OnnxImportError(f"{self.label}: {self.describe(index, node)}: {msg}")

    def unique(self, base: str) -> str:
        """``base`` (sanitised), or ``base_1``, ``base_2``... when that layer name is taken."""
        base = sanitize_name(base) or "layer"
        name, i = base, 1
        while name in self.graph:
            name, i = f"{base}_{i}", i + 1
        return name

    def layer_name(self, index: int, node: onnx.NodeProto) -> str:
        """The IR name of the layer made from ``node``: its ``jaqc.layer`` metadata, its name, or op_index."""
        return self.unique(_meta_name(node) or node.name or f"{node.op_type}_{index}")

    def value(self, index: int, node: onnx.NodeProto, position: int) -> _Value:
        """The value of input ``position`` of ``node``."""
        if position >= len(node.input) or not node.input[position]:
            raise self.error(index, node, f"input {position} is missing")
        tensor = node.input[position]
        if tensor not in self.values:
            raise self.error(index, node, f"input {tensor!r} is produced by nothing the importer knows")
        return self.values[tensor]

    def act(self, index: int, node: onnx.NodeProto, position: int = 0) -> _Act:
        """Input ``position`` as a run-time tensor in the float domain."""
        value = self.value(index, node, position)
        tensor = node.input[position]
        if isinstance(value, _Const):
            raise self.error(index, node, f"input {position} ({tensor!r}) is a constant; a tensor input is needed")
        if isinstance(value, _Shuffle):
            raise self.error(
                index,
                node,
                f"input {tensor!r} comes from the reshape {value.origin}, which starts no channel-shuffle pattern "
                "(reshape to [n,g,c/g,h,w] -> Transpose perm [0,2,1,3,4] -> reshape to [n,c,h,w])",
            )
        if value.tag is not None and value.tag.integer:
            raise self.error(
                index,
                node,
                f"input {tensor!r} is the integer output of {value.tag.origin}; "
                "only DequantizeLinear or a Clip may read it",
            )
        return value

    def const(self, index: int, node: onnx.NodeProto, position: int, what: str) -> _Const:
        """Input ``position`` as a constant (``what`` names its role in errors)."""
        value = self.value(index, node, position)
        if not isinstance(value, _Const):
            raise self.error(
                index,
                node,
                f"the {what} ({node.input[position]!r}) must be a constant (an initializer, a Constant node "
                "or an expression of constants)",
            )
        return value

    def optional_const(self, index: int, node: onnx.NodeProto, position: int, what: str) -> _Const | None:
        """Like :meth:`const`, ``None`` when the optional input is absent."""
        if position >= len(node.input) or not node.input[position]:
            return None
        return self.const(index, node, position, what)

    def shape_of(self, act: _Act) -> Shape:
        return self.graph[act.layer].output_shape

    def emit(
        self,
        index: int,
        node: onnx.NodeProto,
        kind: LayerKind,
        inputs: Sequence[str],
        template: Shape,
        params: Any = None,
        weights: dict[str, np.ndarray] | None = None,
        quant: QuantSpec | None = None,
        tag: QuantTag | None = None,
    ) -> Layer:
        """Add the layer for ``node`` and bind its first output.

        ``template`` is the output shape where the IR has no rule (flatten, reshape) and otherwise carries what
        the rule reads from the output (the channel count of conv/linear, the rank of global pooling).
        """
        name = self.layer_name(index, node)
        input_shapes = [self.graph[i].output_shape for i in inputs]
        try:
            provisional = Layer(
                name=name, kind=kind, inputs=inputs, input_shapes=input_shapes, output_shape=template, params=params
            )
            shape = infer_output_shape(provisional) or template
        except IRError as exc:
            raise self.error(index, node, str(exc)) from None
        known = self.shapes.get(node.output[0])
        if known is not None and known != shape:
            raise self.error(
                index, node, f"ONNX shape inference gives {known} but the IR's {kind.value} rule gives {shape}"
            )
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in (weights or {}).items()}
        layer = Layer(
            name=name,
            kind=kind,
            inputs=inputs,
            input_shapes=input_shapes,
            output_shape=shape,
            params=params,
            quant=quant,
            source=Source(fx_node="", module=node.name or f"{node.op_type}#{index}"),
            weights=arrays if self.with_weights else {},
        )
        self.graph.add(layer)
        self.values[node.output[0]] = _Act(layer.name, tag)
        return layer

    def alias(self, node: onnx.NodeProto, value: _Value) -> None:
        self.values[node.output[0]] = value

    def bits(self, index: int, node: onnx.NodeProto, tag: QuantTag | None, role: str) -> int | None:
        """The BitFusion width of a quantizer feeding ``node`` (``None`` when there is none)."""
        if tag is None:
            return None
        if tag.bits not in LEGAL_BITS:
            raise self.error(
                index,
                node,
                f"the {role} quantizer {tag.origin} is {tag.describe()}; BitFusion layers take 2, 4 or 8 bits",
            )
        return tag.bits

    def quant_spec(self, index: int, node: onnx.NodeProto, weight: _Const, data: _Act) -> QuantSpec | None:
        w_bits = self.bits(index, node, weight.tag, "weight")
        a_bits = self.bits(index, node, data.tag, "input activation")
        return None if w_bits is None and a_bits is None else QuantSpec(w_bits, a_bits)

    # --- driver ----------------------------------------------------------------------------------------
    def run(self) -> LayerGraph:
        """Translate the whole model."""
        graph = self.model.graph
        for init in graph.initializer:
            self.values[init.name] = _Const(numpy_helper.to_array(init))
        for vi in [*graph.input, *graph.value_info, *graph.output]:
            shape = _static_shape(vi)
            if shape is not None:
                self.shapes[vi.name] = shape
        for node in graph.node:
            for tensor in node.input:
                self.uses[tensor] = self.uses.get(tensor, 0) + 1
        for out in graph.output:
            self.uses[out.name] = self.uses.get(out.name, 0) + 1
        for vi in graph.input:
            if vi.name in self.values:
                continue  # an initializer listed as an input (IR version < 4)
            shape = _static_shape(vi)
            if shape is None:
                raise OnnxImportError(
                    f"{self.label}: graph input {vi.name!r} has no static shape; give the input shape "
                    "(--input-shape on the command line)"
                )
            name = self.unique(_meta_name(vi) or vi.name)
            self.graph.add(Layer(name=name, kind=LayerKind.INPUT, output_shape=shape, source=Source(module=vi.name)))
            self.values[vi.name] = _Act(name)
        for index, node in enumerate(graph.node):
            self.translate(index, node)
        for out in graph.output:
            self.add_output(out)
        return self.graph

    def add_output(self, out: onnx.ValueInfoProto) -> None:
        value = self.values.get(out.name)
        if not isinstance(value, _Act):
            what = "a constant" if isinstance(value, _Const) else "not a tensor the importer translated"
            raise OnnxImportError(f"{self.label}: graph output {out.name!r} is {what}")
        shape = self.graph[value.layer].output_shape
        self.graph.add(
            Layer(
                name=self.unique(_meta_name(out) or out.name),
                kind=LayerKind.OUTPUT,
                inputs=[value.layer],
                input_shapes=[shape],
                output_shape=shape,
                source=Source(module=out.name),
            )
        )

    def translate(self, index: int, node: onnx.NodeProto) -> None:
        """Translate one node: fold it, alias it, or emit a layer."""
        if node.domain in QONNX_DOMAINS and node.op_type in ("Quant", "IntQuant"):
            self.on_qonnx_quant(index, node)
            return
        if node.domain not in _STANDARD_DOMAINS:
            raise self.error(index, node, f"op {node.op_type} of domain {node.domain!r} is not supported")
        present = [t for t in node.input if t]
        if node.op_type == "Constant" or (present and all(isinstance(self.values.get(t), _Const) for t in present)):
            self.fold(index, node)
            return
        handler = getattr(self, f"on_{node.op_type}", None)
        if handler is None and node.op_type not in _ACTIVATIONS:
            raise self.error(
                index, node, f"op {node.op_type} is not supported; supported ops: {', '.join(SUPPORTED_OPS)}"
            )
        for extra in node.output[1:]:
            if extra and self.uses.get(extra, 0):
                raise self.error(index, node, f"output {extra!r} is used; only the first output is supported")
        if handler is None:
            self.activation(index, node, _ACTIVATIONS[node.op_type])
        else:
            handler(index, node)

    # --- constants -------------------------------------------------------------------------------------
    def fold(self, index: int, node: onnx.NodeProto) -> None:
        """Evaluate a node whose inputs are all constants with ``onnx.reference``; keep quantization tags."""
        from onnx.reference import ReferenceEvaluator

        inputs = list(dict.fromkeys(t for t in node.input if t))
        graph = helper.make_graph(
            [node],
            "fold",
            [helper.make_empty_tensor_value_info(t) for t in inputs],
            [helper.make_empty_tensor_value_info(t) for t in node.output if t],
        )
        feeds = {t: self.values[t].array for t in inputs}  # type: ignore[union-attr]
        try:
            try:
                tiny = helper.make_model(graph, opset_imports=self.model.opset_import, ir_version=self.model.ir_version)
                results = ReferenceEvaluator(tiny).run(None, feeds)
            except RuntimeError as exc:
                if "No implementation for operator" not in str(exc):
                    raise
                # onnx.reference keeps only recent versions of some ops (e.g. DequantizeLinear-13): their
                # newer versions compute the same on the inputs the old version accepts.
                latest = helper.make_opsetid("", onnx.defs.onnx_opset_version())
                results = ReferenceEvaluator(helper.make_model(graph, opset_imports=[latest])).run(None, feeds)
        except Exception as exc:  # the reference raises many types; all mean "cannot evaluate"
            raise self.error(index, node, f"cannot evaluate on constant inputs: {_first_line(exc)}") from exc
        tag = self.folded_tag(index, node)
        outputs = [t for t in node.output if t]
        for position, (tensor, array) in enumerate(zip(outputs, results)):
            self.values[tensor] = _Const(np.asarray(array), tag if position == 0 else None)

    def folded_tag(self, index: int, node: onnx.NodeProto) -> QuantTag | None:
        """The quantization tag of a folded node's output."""
        origin = self.describe(index, node)
        if node.op_type == "QuantizeLinear":
            return self.quantize_tag(index, node)
        if node.op_type == "DequantizeLinear":
            src = self.values[node.input[0]]
            tag = src.tag if isinstance(src, _Const) else None
            if tag is None:
                elem = _elem_type_of(src.array)  # type: ignore[union-attr]
                return _type_tag(elem, origin, integer=False) if elem is not None else None
            return QuantTag(tag.bits, tag.origin, integer=False, detail=tag.detail)
        if node.op_type == "Clip":
            src = self.values[node.input[0]]
            if isinstance(src, _Const) and _is_integer_array(src.array):
                return self.clip_tag(index, node)
            return None
        if node.op_type in _VALUE_PRESERVING_CONST_OPS:
            src = self.values[node.input[0]]
            return src.tag if isinstance(src, _Const) else None
        return None

    def on_Shape(self, index: int, node: onnx.NodeProto) -> None:
        dims = np.array(self.shape_of(self.act(index, node)).dims, dtype=np.int64)
        start, end = _attr(node, "start", 0), _attr(node, "end", None)
        self.values[node.output[0]] = _Const(dims[start:end])

    # --- quantization ----------------------------------------------------------------------------------
    def quantize_tag(self, index: int, node: onnx.NodeProto) -> QuantTag:
        """The tag of a QuantizeLinear output: its integer type from the zero point, ``output_dtype`` or uint8."""
        origin = self.describe(index, node)
        zero_point = self.optional_const(index, node, 2, "zero point")
        if zero_point is not None:
            elem = _elem_type_of(zero_point.array)
        else:
            elem = _attr(node, "output_dtype", 0) or TensorProto.UINT8
        if elem is None:
            raise self.error(index, node, f"unknown zero-point type {zero_point.array.dtype}")  # type: ignore[union-attr]
        return _type_tag(elem, origin, integer=True)

    def clip_tag(self, index: int, node: onnx.NodeProto) -> QuantTag:
        """The tag of a Clip on integer values (QCDQ): the width that holds ``max - min + 1`` levels."""
        low = self.optional_const(index, node, 1, "Clip minimum")
        high = self.optional_const(index, node, 2, "Clip maximum")
        if low is None or high is None or low.array.size != 1 or high.array.size != 1:
            raise self.error(index, node, "a Clip of quantized integers needs scalar constant min and max")
        levels = int(high.array.astype(np.int64).item()) - int(low.array.astype(np.int64).item()) + 1
        if levels < 2:
            raise self.error(index, node, f"Clip range of {levels} level(s) is not a quantizer")
        return QuantTag(math.ceil(math.log2(levels)), self.describe(index, node), integer=True)

    def on_QuantizeLinear(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        self.const(index, node, 1, "scale")
        self.alias(node, _Act(x.layer, self.quantize_tag(index, node)))

    def on_DequantizeLinear(self, index: int, node: onnx.NodeProto) -> None:
        x = self.value(index, node, 0)
        if not isinstance(x, _Act) or x.tag is None or not x.tag.integer:
            raise self.error(
                index, node, "DequantizeLinear of a run-time tensor must read a QuantizeLinear (or its Clip)"
            )
        self.const(index, node, 1, "scale")
        tag = x.tag
        self.alias(node, _Act(x.layer, QuantTag(tag.bits, tag.origin, integer=False, detail=tag.detail)))

    def on_qonnx_quant(self, index: int, node: onnx.NodeProto) -> None:
        scale = self.const(index, node, 1, "scale").array
        zeropt = self.const(index, node, 2, "zero point").array
        bitwidth = self.const(index, node, 3, "bit width").array
        if bitwidth.size != 1 or float(bitwidth.item()) != int(bitwidth.item()) or int(bitwidth.item()) < 1:
            raise self.error(index, node, f"bit width must be one positive integer, got {bitwidth.tolist()}")
        bits = int(bitwidth.item())
        tag = QuantTag(bits, self.describe(index, node))
        x = self.value(index, node, 0)
        if isinstance(x, _Const):
            try:
                array = qonnx_quant(
                    x.array.astype(np.float32),
                    scale,
                    zeropt,
                    bits,
                    bool(_attr(node, "signed", 1)),
                    bool(_attr(node, "narrow", 0)),
                    _attr(node, "rounding_mode", b"ROUND").decode(),
                )
            except ValueError as exc:
                raise self.error(index, node, str(exc)) from None
            self.values[node.output[0]] = _Const(array, tag)
            return
        self.alias(node, _Act(self.act(index, node).layer, tag))

    # --- element-wise ----------------------------------------------------------------------------------
    def activation(self, index: int, node: onnx.NodeProto, kind: LayerKind) -> None:
        x = self.act(index, node)
        self.emit(index, node, kind, [x.layer], self.shape_of(x))

    def on_HardSigmoid(self, index: int, node: onnx.NodeProto) -> None:
        alpha, beta = _attr(node, "alpha", 0.2), _attr(node, "beta", 0.5)
        if abs(alpha - 1 / 6) > 1e-6 or beta != 0.5:
            raise self.error(
                index,
                node,
                f"HardSigmoid alpha={alpha:g} beta={beta:g} is not the IR's hardsigmoid (alpha=1/6, beta=0.5)",
            )
        self.activation(index, node, LayerKind.HARDSIGMOID)

    def on_Clip(self, index: int, node: onnx.NodeProto) -> None:
        x = self.value(index, node, 0)
        if isinstance(x, _Act) and x.tag is not None and x.tag.integer:
            self.alias(node, _Act(x.layer, self.clip_tag(index, node)))
            return
        if self.opset.get("", self.opset.get("ai.onnx", 1)) < 11:
            low, high = _attr(node, "min", -math.inf), _attr(node, "max", math.inf)
        else:
            lo_c = self.optional_const(index, node, 1, "Clip minimum")
            hi_c = self.optional_const(index, node, 2, "Clip maximum")
            low = -math.inf if lo_c is None else float(lo_c.array.item())
            high = math.inf if hi_c is None else float(hi_c.array.item())
        high = math.inf if high >= _UNBOUNDED else high
        if low == 0 and high == 6:
            self.activation(index, node, LayerKind.RELU6)
        elif low == 0 and high == math.inf:
            self.activation(index, node, LayerKind.RELU)
        else:
            raise self.error(
                index, node, f"Clip to [{low:g}, {high:g}] is not supported (only relu6 [0, 6] and [0, inf))"
            )

    def on_Identity(self, index: int, node: onnx.NodeProto) -> None:
        self.alias(node, self.value(index, node, 0))

    def on_Dropout(self, index: int, node: onnx.NodeProto) -> None:
        self.alias(node, self.act(index, node))

    def binary(self, index: int, node: onnx.NodeProto, kind: LayerKind) -> None:
        a, b = self.value(index, node, 0), self.value(index, node, 1)
        if kind is LayerKind.ADD and isinstance(a, _Const) != isinstance(b, _Const):
            act_pos = 0 if isinstance(b, _Const) else 1
            self.fold_bias(index, node, self.act(index, node, act_pos), b if act_pos == 0 else a)  # type: ignore[arg-type]
            return
        x, y = self.act(index, node, 0), self.act(index, node, 1)
        self.emit(index, node, kind, [x.layer, y.layer], self.shape_of(x))

    def on_Add(self, index: int, node: onnx.NodeProto) -> None:
        self.binary(index, node, LayerKind.ADD)

    def on_Mul(self, index: int, node: onnx.NodeProto) -> None:
        self.binary(index, node, LayerKind.MUL)

    def fold_bias(self, index: int, node: onnx.NodeProto, x: _Act, constant: _Const) -> None:
        """``conv/linear + per-channel constant``: the constant becomes (or adds to) the layer's bias."""
        layer = self.graph[x.layer]
        tensors = [t for t, v in self.values.items() if isinstance(v, _Act) and v.layer == x.layer]
        sole_use = sum(self.uses.get(t, 0) for t in tensors) == 1
        if layer.kind not in (LayerKind.CONV2D, LayerKind.LINEAR) or not sole_use:
            raise self.error(
                index,
                node,
                "adding a constant is supported only as a bias of a Conv, Gemm or MatMul whose output nothing "
                "else reads",
            )
        out = layer.output_shape
        axis = 1 if layer.kind is LayerKind.CONV2D else out.rank - 1
        array = np.asarray(constant.array, dtype=np.float32)
        aligned = array.reshape((1,) * (out.rank - array.ndim) + array.shape) if array.ndim <= out.rank else None
        if aligned is None or any(d != 1 and (i != axis or d != out[axis]) for i, d in enumerate(aligned.shape)):
            raise self.error(index, node, f"constant of shape {list(array.shape)} is not a per-channel bias of {out}")
        bias = np.broadcast_to(aligned, [out[axis] if i == axis else 1 for i in range(out.rank)]).reshape(out[axis])
        params = attrs.evolve(layer.params, bias=True)
        weights = dict(layer.weights)
        if self.with_weights:
            bias = bias + weights["bias"] if "bias" in weights else bias  # Conv(x, w, b) + c: bias b + c
            weights["bias"] = np.ascontiguousarray(bias, dtype=np.float32)
        known = self.shapes.get(node.output[0])
        if known is not None and known != out:
            raise self.error(index, node, f"ONNX shape inference gives {known}, the layer gives {out}")
        self.graph.replace(layer.name, attrs.evolve(layer, params=params, weights=weights))
        self.alias(node, _Act(layer.name))

    # --- weighted layers -------------------------------------------------------------------------------
    def window(
        self, index: int, node: onnx.NodeProto, spatial: tuple[int, int], kernel: tuple[int, int]
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """(stride, padding) of a Conv or pooling node, requiring unit dilation and symmetric padding."""
        dilations = _attr(node, "dilations", [1, 1])
        if any(d != 1 for d in dilations):
            raise self.error(index, node, f"dilations {list(dilations)} are not supported (only 1)")
        strides = tuple(_attr(node, "strides", [1, 1]))
        auto_pad = _attr(node, "auto_pad", b"NOTSET").decode()
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            totals = [max((-(-size // s) - 1) * s + k - size, 0) for size, s, k in zip(spatial, strides, kernel)]
            if any(t % 2 for t in totals):
                raise self.error(
                    index, node, f"auto_pad {auto_pad} pads asymmetrically (odd totals {totals}); not supported"
                )
            pads = [t // 2 for t in totals] * 2
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        else:
            pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        if len(pads) != 4 or len(strides) != 2:
            raise self.error(index, node, "only 2-D windows are supported")
        if pads[:2] != pads[2:]:
            raise self.error(index, node, f"asymmetric pads {pads} are not supported")
        return (int(strides[0]), int(strides[1])), (int(pads[0]), int(pads[1]))

    def on_Conv(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        w = self.const(index, node, 1, "weight")
        b = self.optional_const(index, node, 2, "bias")
        xs = self.shape_of(x)
        if w.array.ndim != 4 or xs.rank != 4:
            raise self.error(
                index, node, f"only 2-D convolution is supported (weight {list(w.array.shape)}, input {xs})"
            )
        groups = int(_attr(node, "group", 1))
        oc, icg, kh, kw = w.array.shape
        kernel = tuple(_attr(node, "kernel_shape", [kh, kw]))
        if kernel != (kh, kw) or xs[1] != icg * groups or (b is not None and b.array.size != oc):
            raise self.error(
                index, node, f"weight {list(w.array.shape)} (or bias) does not fit input {xs} with group {groups}"
            )
        stride, padding = self.window(index, node, (xs[2], xs[3]), (kh, kw))
        params = Conv2dParams(kernel=(kh, kw), stride=stride, padding=padding, groups=groups, bias=b is not None)
        weights = {"weight": w.array}
        if b is not None:
            weights["bias"] = b.array.reshape(-1)
        quant = self.quant_spec(index, node, w, x)
        self.emit(index, node, LayerKind.CONV2D, [x.layer], Shape((xs[0], oc, 1, 1)), params, weights, quant)

    def linear(
        self, index: int, node: onnx.NodeProto, x: _Act, w: _Const, weight: np.ndarray, bias: np.ndarray | None
    ) -> None:
        xs = self.shape_of(x)
        if weight.ndim != 2 or weight.shape[1] != xs[-1]:
            raise self.error(index, node, f"weight of shape {list(weight.shape)} does not fit input {xs}")
        weights = {"weight": weight}
        if bias is not None:
            weights["bias"] = bias
        quant = self.quant_spec(index, node, w, x)
        template = Shape((*xs.dims[:-1], weight.shape[0]))
        self.emit(
            index, node, LayerKind.LINEAR, [x.layer], template, LinearParams(bias=bias is not None), weights, quant
        )

    def on_Gemm(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        w = self.const(index, node, 1, "weight")
        c = self.optional_const(index, node, 2, "bias")
        if _attr(node, "transA", 0) or self.shape_of(x).rank != 2:
            raise self.error(index, node, "Gemm needs a rank-2 activation input A and transA=0")
        alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
        weight = np.asarray(w.array, dtype=np.float32)
        weight = weight if _attr(node, "transB", 0) else weight.T
        if alpha != 1.0:
            weight = weight * np.float32(alpha)
        bias = None
        if c is not None:
            n = weight.shape[0]
            array = np.asarray(c.array, dtype=np.float32)
            if array.size not in (1, n) or (array.size == n and array.shape[-1] != n):
                raise self.error(index, node, f"bias C of shape {list(array.shape)} is not one value per output {n}")
            bias = np.broadcast_to(array.reshape(-1), (n,)) * np.float32(beta)
        self.linear(index, node, x, w, weight, bias)

    def on_MatMul(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        w = self.const(index, node, 1, "weight (MatMul's second input)")
        if w.array.ndim != 2 or self.shape_of(x).rank < 2:
            raise self.error(index, node, "MatMul needs an activation of rank >= 2 times a constant matrix")
        self.linear(index, node, x, w, np.asarray(w.array, dtype=np.float32).T, None)

    def on_BatchNormalization(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        if _attr(node, "training_mode", 0):
            raise self.error(index, node, "training_mode=1 is not supported")
        names = ("weight", "bias", "running_mean", "running_var")
        weights = {key: self.const(index, node, i + 1, key).array.reshape(-1) for i, key in enumerate(names)}
        channels = self.shape_of(x)[1]
        if any(array.size != channels for array in weights.values()):
            sizes = {key: array.size for key, array in weights.items()}
            raise self.error(index, node, f"statistics sizes {sizes} do not match the {channels} input channels")
        eps = float(str(np.float32(_attr(node, "epsilon", 1e-5))))  # the float32 attribute's shortest decimal
        self.emit(index, node, LayerKind.BATCHNORM, [x.layer], self.shape_of(x), BatchNormParams(eps=eps), weights)

    # --- pooling and shapes ----------------------------------------------------------------------------
    def pool(self, index: int, node: onnx.NodeProto, kind: LayerKind) -> None:
        x = self.act(index, node)
        xs = self.shape_of(x)
        kernel = tuple(_attr(node, "kernel_shape", []))
        if xs.rank != 4 or len(kernel) != 2:
            raise self.error(index, node, f"only 2-D pooling is supported (input {xs}, kernel {list(kernel)})")
        stride, padding = self.window(index, node, (xs[2], xs[3]), kernel)  # type: ignore[arg-type]
        if kind is LayerKind.AVGPOOL and padding != (0, 0) and not _attr(node, "count_include_pad", 0):
            raise self.error(
                index, node, "AveragePool with padding needs count_include_pad=1 (the IR counts padding, like PyTorch)"
            )
        params = PoolParams(kernel=kernel, stride=stride, padding=padding, ceil=bool(_attr(node, "ceil_mode", 0)))
        self.emit(index, node, kind, [x.layer], xs, params, tag=x.tag if kind is LayerKind.MAXPOOL else None)

    def on_MaxPool(self, index: int, node: onnx.NodeProto) -> None:
        self.pool(index, node, LayerKind.MAXPOOL)

    def on_AveragePool(self, index: int, node: onnx.NodeProto) -> None:
        self.pool(index, node, LayerKind.AVGPOOL)

    def on_GlobalAveragePool(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        xs = self.shape_of(x)
        self.emit(index, node, LayerKind.GLOBAL_AVGPOOL, [x.layer], Shape((xs[0], xs[1], 1, 1)))

    def on_ReduceMean(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        xs = self.shape_of(x)
        axes_const = self.optional_const(index, node, 1, "axes")
        axes = axes_const.array.tolist() if axes_const is not None else _attr(node, "axes", [])
        keep = bool(_attr(node, "keepdims", 1))
        if xs.rank != 4 or sorted(a % 4 for a in axes) != [2, 3]:
            raise self.error(index, node, f"ReduceMean over axes {axes} is not supported (only the spatial axes 2, 3)")
        template = Shape((xs[0], xs[1], 1, 1) if keep else (xs[0], xs[1]))
        self.emit(index, node, LayerKind.GLOBAL_AVGPOOL, [x.layer], template)

    def reshape_to(self, index: int, node: onnx.NodeProto, x: _Value, dims: tuple[int, ...]) -> None:
        """Reshape/Flatten of ``x`` to ``dims``: an alias, a flatten/reshape layer, or a channel-shuffle step."""
        if isinstance(x, _Shuffle):
            source = self.graph[x.source].output_shape
            if not x.transposed or dims != source.dims:
                raise self.error(index, node, "reshape/transpose sequence is not the channel-shuffle pattern")
            self.emit(index, node, LayerKind.CHANNEL_SHUFFLE, [x.source], source, ShuffleParams(groups=x.groups))
            return
        act = self.act(index, node)
        xs = self.shape_of(act)
        if math.prod(dims) != xs.numel():
            raise self.error(index, node, f"cannot reshape {xs} to {list(dims)}")
        if dims == xs.dims:
            self.alias(node, act)
            return
        if len(dims) == 5 and xs.rank == 4 and dims[0] == xs[0] and dims[1] * dims[2] == xs[1] and dims[3:] == xs[2:]:
            self.alias(node, _Shuffle(act.layer, dims[1], False, self.describe(index, node)))
            return
        if len(dims) not in (2, 3, 4):
            raise self.error(index, node, f"reshape to rank {len(dims)} is not supported outside the channel shuffle")
        kind = LayerKind.FLATTEN if len(dims) == 2 and dims[0] == xs[0] else LayerKind.RESHAPE
        self.emit(index, node, kind, [act.layer], Shape(dims), tag=act.tag)

    def on_Flatten(self, index: int, node: onnx.NodeProto) -> None:
        xs = self.shape_of(self.act(index, node))
        axis = int(_attr(node, "axis", 1)) % (xs.rank + 1)
        self.reshape_to(index, node, self.act(index, node), (math.prod(xs.dims[:axis]), math.prod(xs.dims[axis:])))

    def on_Reshape(self, index: int, node: onnx.NodeProto) -> None:
        x = self.value(index, node, 0)
        target = [int(v) for v in self.const(index, node, 1, "shape").array.reshape(-1)]
        if isinstance(x, _Shuffle):
            n, c, h, w = self.graph[x.source].output_shape.dims
            in_dims: tuple[int, ...] = (
                (n, c // x.groups, x.groups, h, w) if x.transposed else (n, x.groups, c // x.groups, h, w)
            )
        else:
            in_dims = self.shape_of(self.act(index, node)).dims
        dims = list(target)
        if not _attr(node, "allowzero", 0):
            dims = [in_dims[i] if d == 0 and i < len(in_dims) else d for i, d in enumerate(dims)]
        known = math.prod(d for d in dims if d != -1)
        if dims.count(-1) > 1 or any(d < -1 or d == 0 for d in dims) or (-1 in dims and math.prod(in_dims) % known):
            raise self.error(index, node, f"cannot reshape {list(in_dims)} to {target}")
        if -1 in dims:
            dims[dims.index(-1)] = math.prod(in_dims) // known
        self.reshape_to(index, node, x, tuple(dims))

    def axes(self, index: int, node: onnx.NodeProto, rank: int) -> list[int]:
        """The ``axes`` of Squeeze/Unsqueeze (attribute before opset 13, input after), normalised for ``rank``."""
        given = self.optional_const(index, node, 1, "axes")
        axes = given.array.reshape(-1).tolist() if given is not None else _attr(node, "axes", None)
        if axes is None:
            raise self.error(index, node, f"{node.op_type} without axes is not supported")
        return sorted(int(a) % rank for a in axes)

    def on_Squeeze(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        dims = self.shape_of(x).dims
        axes = self.axes(index, node, len(dims))
        if any(dims[a] != 1 for a in axes):
            raise self.error(index, node, f"cannot squeeze axes {axes} of {list(dims)}")
        self.reshape_to(index, node, x, tuple(d for i, d in enumerate(dims) if i not in axes))

    def on_Unsqueeze(self, index: int, node: onnx.NodeProto) -> None:
        x = self.act(index, node)
        dims = list(self.shape_of(x).dims)
        given = self.optional_const(index, node, 1, "axes")
        count = given.array.size if given is not None else len(_attr(node, "axes", []))
        for axis in self.axes(index, node, len(dims) + count):
            dims.insert(axis, 1)
        self.reshape_to(index, node, x, tuple(dims))

    def on_Transpose(self, index: int, node: onnx.NodeProto) -> None:
        x = self.value(index, node, 0)
        perm = list(_attr(node, "perm", []))
        if not isinstance(x, _Shuffle) or x.transposed or perm != [0, 2, 1, 3, 4]:
            raise self.error(
                index, node, "Transpose is supported only inside the channel-shuffle pattern (perm [0, 2, 1, 3, 4])"
            )
        self.alias(node, _Shuffle(x.source, x.groups, True, x.origin))

    def on_Slice(self, index: int, node: onnx.NodeProto) -> None:
        """A step-1 slice of the channels (axis 1) with constant bounds: the IR's slice layer."""
        x = self.act(index, node, 0)
        shape = self.shape_of(x)
        starts = self.const(index, node, 1, "starts").array.reshape(-1).tolist()
        ends = self.const(index, node, 2, "ends").array.reshape(-1).tolist()
        given = self.optional_const(index, node, 3, "axes")
        axes = given.array.reshape(-1).tolist() if given is not None else list(range(len(starts)))
        steps_c = self.optional_const(index, node, 4, "steps")
        steps = steps_c.array.reshape(-1).tolist() if steps_c is not None else [1] * len(starts)
        bounds = {}
        for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
            axis = int(axis) % shape.rank
            begin, stop, stride = slice(int(start), int(end), int(step)).indices(shape[axis])
            if (begin, stop, stride) != (0, shape[axis], 1):
                bounds[axis] = (begin, stop, stride)
        if list(bounds) != [1] or bounds[1][2] != 1 or bounds[1][0] >= bounds[1][1]:
            raise self.error(index, node, "Slice is supported only as a step-1 slice of the channels (axis 1)")
        begin, stop, _ = bounds[1]
        self.emit(index, node, LayerKind.SLICE, [x.layer], shape, SliceParams(axis=1, start=begin, end=stop))

    def on_Concat(self, index: int, node: onnx.NodeProto) -> None:
        acts = [self.act(index, node, i) for i in range(len(node.input))]
        rank = self.shape_of(acts[0]).rank
        axis = int(_attr(node, "axis", 1)) % rank
        self.emit(
            index, node, LayerKind.CONCAT, [a.layer for a in acts], self.shape_of(acts[0]), ConcatParams(axis=axis)
        )


def _load(path_or_model: str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str, str]:
    """(model, label for errors, default graph name)."""
    if isinstance(path_or_model, onnx.ModelProto):
        name = path_or_model.graph.name or "onnx_model"
        return path_or_model, f"ONNX model {name!r}", name
    path = Path(path_or_model)
    label = f"ONNX model {str(path)!r}"
    if not path.is_file():
        raise OnnxImportError(f"{label}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and others; all mean "not ONNX"
        raise OnnxImportError(f"{label}: not an ONNX file ({type(exc).__name__}: {_first_line(exc)})") from exc
    return model, label, path.stem


def _fix_input_shape(model: onnx.ModelProto, input_shape: Sequence[int], label: str) -> onnx.ModelProto:
    """A copy of ``model`` whose one graph input has the static ``input_shape``."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in initializers]
    if len(inputs) != 1:
        raise OnnxImportError(f"{label}: an input shape can be given only for a model with one input")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        raise OnnxImportError(f"{label}: input {inputs[0].name!r} has rank {len(dims)}, not {len(input_shape)}")
    for d, size in zip(dims, input_shape):
        if d.HasField("dim_value") and d.dim_value != size:
            raise OnnxImportError(
                f"{label}: input {inputs[0].name!r} has static shape {[x.dim_value for x in dims]}, "
                f"not {list(input_shape)}"
            )
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    target = next(vi for vi in copy.graph.input if vi.name == inputs[0].name)
    for d, size in zip(target.type.tensor_type.shape.dim, input_shape):
        d.dim_value = int(size)
    return copy


def import_onnx(
    path_or_model: str | Path | onnx.ModelProto,
    name: str | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    with_weights: bool = True,
) -> LayerGraph:
    """Read an ONNX CNN (a file path or a ``ModelProto``) and return its LayerGraph.

    ``name`` names the graph (default: the file's stem, or the ONNX graph name). ``input_shape`` fixes the
    symbolic dimensions of a single-input model (e.g. a dynamic batch). Weights are float32 numpy arrays
    (dequantized where the model stores them quantized) unless ``with_weights`` is false. Raises
    :class:`OnnxImportError` for a missing, unreadable or invalid file and for anything it cannot translate.
    """
    model, label, default_name = _load(path_or_model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise OnnxImportError(f"{label}: invalid ONNX model: {_first_line(exc)}") from exc
    if input_shape is not None:
        model = _fix_input_shape(model, input_shape, label)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # shape inference is a help, not a requirement: the IR rules fill in
        inferred = model
    return OnnxImporter(inferred, name or default_name, label, with_weights=with_weights).run()


__all__ = [
    "LAYER_NAME_KEY",
    "QONNX_DOMAINS",
    "SUPPORTED_OPS",
    "OnnxImportError",
    "OnnxImporter",
    "QuantTag",
    "import_onnx",
    "qonnx_quant",
    "sanitize_name",
]
