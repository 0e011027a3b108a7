"""Small ONNX model builders for the ONNX importer tests (onnx.helper only), and the reference runner."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

QONNX = "qonnx.custom_op.general"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(gen: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (gen.standard_normal(shape) * scale).astype(np.float32)


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None, **attrs) -> onnx.NodeProto:
    """A node named ``name`` (default: its first output), in the QONNX domain when ``op`` is Quant."""
    domain = QONNX if op == "Quant" else ""
    return helper.make_node(
        op, list(inputs), list(outputs), name=outputs[0] if name is None else name, domain=domain, **attrs
    )


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int | str]],
    outputs: Sequence[str] | dict[str, Sequence[int | str]],
    initializers: dict[str, np.ndarray | onnx.TensorProto] | None = None,
    opset: int = 17,
    qonnx: bool = False,
) -> onnx.ModelProto:
    """A checked float model: ``inputs`` name -> shape, ``initializers`` arrays; ``outputs`` names (their types
    from shape inference) or name -> shape."""
    shaped = dict(outputs) if isinstance(outputs, dict) else {}
    graph = helper.make_graph(
        list(nodes),
        "test_graph",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shaped[n]))
            if n in shaped
            else helper.make_empty_tensor_value_info(n)
            for n in outputs
        ],
        [_tensor(n, a) for n, a in (initializers or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    if qonnx:
        opsets.append(helper.make_opsetid(QONNX, 1))
    m = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(m).graph.output}
    for vi in m.graph.output:
        if not vi.HasField("type"):
            if not inferred[vi.name].type.tensor_type.HasField("shape"):
                raise ValueError(f"give the shape of output {vi.name!r}: shape inference cannot")
            vi.type.CopyFrom(inferred[vi.name].type)
    onnx.checker.check_model(m)
    return m


def _tensor(name: str, value: np.ndarray | onnx.TensorProto) -> onnx.TensorProto:
    if isinstance(value, onnx.TensorProto):
        value = onnx.TensorProto.FromString(value.SerializeToString())
        value.name = name
        return value
    return numpy_helper.from_array(np.asarray(value), name)


def scalar(elem_type: int, value: float | int) -> onnx.TensorProto:
    """A 0-d initializer of ONNX type ``elem_type`` (e.g. an INT4 zero point)."""
    return helper.make_tensor("scalar", elem_type, [], [value])


def run_reference(m: onnx.ModelProto, *feeds: np.ndarray) -> list[np.ndarray]:
    """The model's outputs computed by ``onnx.reference`` (graph inputs in order)."""
    names = [i.name for i in m.graph.input]
    return ReferenceEvaluator(m).run(None, dict(zip(names, feeds)))


def conv_bn(
    gen: np.random.Generator,
    prefix: str,
    x: str,
    cin: int,
    cout: int,
    k: int = 3,
    stride: int = 1,
    group: int = 1,
    relu: bool = True,
) -> tuple[list[onnx.NodeProto], dict[str, np.ndarray], str]:
    """Conv (no bias) -> BatchNormalization -> [Relu]: (nodes, initializers, output name)."""
    inits = {
        f"{prefix}.w": randn(gen, cout, cin // group, k, k, scale=0.3),
        f"{prefix}.g": (gen.random(cout) + 0.5).astype(np.float32),
        f"{prefix}.b": randn(gen, cout, scale=0.1),
        f"{prefix}.m": randn(gen, cout, scale=0.1),
        f"{prefix}.v": (gen.random(cout) + 0.5).astype(np.float32),
    }
    nodes = [
        node(
            "Conv",
            [x, f"{prefix}.w"],
            [f"{prefix}.c"],
            name=f"{prefix}.conv",
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=group,
        ),
        node(
            "BatchNormalization",
            [f"{prefix}.c", f"{prefix}.g", f"{prefix}.b", f"{prefix}.m", f"{prefix}.v"],
            [f"{prefix}.bn"],
            name=f"{prefix}.bn",
        ),
    ]
    out = f"{prefix}.bn"
    if relu:
        nodes.append(node("Relu", [out], [f"{prefix}.relu"], name=f"{prefix}.relu"))
        out = f"{prefix}.relu"
    return nodes, inits, out
