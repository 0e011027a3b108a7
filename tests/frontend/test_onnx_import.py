"""ONNX importer: numerics against onnx.reference (and torch), quantization folding, names, errors, loading."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import zoo_models
from jaqc.ir import (
    Conv2dParams,
    LayerKind,
    LinearParams,
    PoolParams,
    QuantSpec,
    Shape,
    Source,
    graph_from_json,
    graph_to_json,
    layer_macs,
    parse,
    print_graph,
    verify,
)
from onnx import TensorProto, helper
from onnx_builders import conv_bn, model, node, randn, rng, run_reference, scalar

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.frontend import GraphExecutor, import_model
from jaqc.frontend.loader import load_graph_spec
from jaqc.frontend.onnx_import import OnnxImportError, import_onnx

MODULE_FILE = Path(__file__).parents[2] / "jaqc" / "frontend" / "onnx_import.py"


def run_ir(graph, *inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return GraphExecutor(graph)(*(torch.from_numpy(x) for x in inputs)).numpy()


def check(m: onnx.ModelProto, *inputs: np.ndarray):
    """Import ``m``, verify it, compare the IR run with onnx.reference, check the text and JSON round trips."""
    graph = import_onnx(m)
    verify(graph)
    (expected,) = run_reference(m, *inputs)
    np.testing.assert_allclose(run_ir(graph, *inputs), expected, rtol=1e-5, atol=1e-5)
    text = print_graph(graph)
    assert print_graph(parse(text)) == text
    again = graph_from_json(graph_to_json(graph, weights=True))
    assert print_graph(again) == text
    for layer in graph:
        assert again[layer.name].weights.keys() == layer.weights.keys()
        for key, array in layer.weights.items():
            np.testing.assert_array_equal(again[layer.name].weights[key], array)
    return graph


def kinds(graph) -> list[str]:
    return [layer.kind.value for layer in graph]


# --- float models: structure and numerics -------------------------------------------------------------------
def test_resnet_block_conv_bn_relu_add() -> None:
    gen = rng(1)
    a_nodes, a_init, a = conv_bn(gen, "a", "x", 8, 8)
    b_nodes, b_init, b = conv_bn(gen, "b", a, 8, 8, relu=False)
    nodes = [*a_nodes, *b_nodes, node("Add", [b, "x"], ["sum"]), node("Relu", ["sum"], ["y"], name="out_relu")]
    m = model(nodes, {"x": [1, 8, 6, 6]}, ["y"], {**a_init, **b_init})
    graph = check(m, randn(gen, 1, 8, 6, 6))
    assert kinds(graph) == [
        "input",
        "conv2d",
        "batchnorm",
        "relu",
        "conv2d",
        "batchnorm",
        "add",
        "relu",
        "output",
    ]
    conv = graph["a.conv"]
    assert conv.params == Conv2dParams(kernel=(3, 3), padding=(1, 1))
    assert conv.source == Source(fx_node="", module="a.conv")
    assert conv.quant is None
    np.testing.assert_array_equal(conv.weights["weight"], a_init["a.w"])
    bn = graph["a.bn"]
    assert bn.params.eps == 1e-5  # the float32 attribute read back as its shortest decimal
    np.testing.assert_array_equal(bn.weights["running_var"], a_init["a.v"])
    assert graph["sum"].inputs == ("b.bn", "x")
    assert graph["y"].inputs == ("out_relu",) and graph["y"].kind is LayerKind.OUTPUT


def test_depthwise_and_grouped_conv() -> None:
    gen = rng(2)
    dw_nodes, dw_init, dw = conv_bn(gen, "dw", "x", 8, 8, k=3, stride=2, group=8)
    gw_nodes, gw_init, gw = conv_bn(gen, "gw", dw, 8, 4, k=1, group=2)
    m = model([*dw_nodes, *gw_nodes], {"x": [1, 8, 9, 9]}, [gw], {**dw_init, **gw_init})
    graph = check(m, randn(gen, 1, 8, 9, 9))
    assert graph["dw.conv"].params == Conv2dParams(kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=8)
    assert graph["dw.conv"].output_shape == Shape((1, 8, 5, 5))
    assert graph["gw.conv"].params == Conv2dParams(kernel=(1, 1), groups=2)
    assert graph["gw.conv"].weights["weight"].shape == (4, 4, 1, 1)


def test_gemm_trans_b_alpha_beta() -> None:
    gen = rng(3)
    w1, c1, w2, c2 = randn(gen, 4, 6), randn(gen, 4), randn(gen, 4, 3), randn(gen, 1, 3)
    nodes = [
        node("Gemm", ["x", "w1", "c1"], ["h"], name="fc1", transB=1),
        node("Relu", ["h"], ["r"]),
        node("Gemm", ["r", "w2", "c2"], ["y"], name="fc2", alpha=0.5, beta=2.0),
    ]
    m = model(nodes, {"x": [2, 6]}, ["y"], {"w1": w1, "c1": c1, "w2": w2, "c2": c2})
    graph = check(m, randn(gen, 2, 6))
    assert kinds(graph) == ["input", "linear", "relu", "linear", "output"]
    assert graph["fc1"].params == LinearParams(bias=True)
    np.testing.assert_array_equal(graph["fc1"].weights["weight"], w1)
    np.testing.assert_array_equal(graph["fc2"].weights["weight"], w2.T * np.float32(0.5))
    np.testing.assert_array_equal(graph["fc2"].weights["bias"], c2.reshape(3) * np.float32(2.0))
    assert graph["fc2"].output_shape == Shape((2, 3))


def test_matmul_add_becomes_one_linear_with_bias() -> None:
    gen = rng(4)
    w, bias = randn(gen, 6, 5), randn(gen, 5)
    nodes = [node("MatMul", ["x", "w"], ["mm"], name="proj"), node("Add", ["mm", "bias"], ["y"], name="proj_bias")]
    m = model(nodes, {"x": [1, 3, 6]}, ["y"], {"w": w, "bias": bias})
    graph = check(m, randn(gen, 1, 3, 6))
    assert kinds(graph) == ["input", "linear", "output"]
    proj = graph["proj"]
    assert proj.params == LinearParams(bias=True) and proj.output_shape == Shape((1, 3, 5))
    np.testing.assert_array_equal(proj.weights["weight"], w.T)
    np.testing.assert_array_equal(proj.weights["bias"], bias)
    assert proj.source.module == "proj"


def test_conv_plus_per_channel_constant_is_its_bias() -> None:
    gen = rng(5)
    w, b, w2, b2, c2 = (
        randn(gen, 4, 3, 1, 1),
        randn(gen, 1, 4, 1, 1),
        randn(gen, 4, 4, 1, 1),
        randn(gen, 4),
        randn(gen, 4, 1, 1),
    )
    nodes = [
        node("Conv", ["x", "w"], ["c"], name="conv"),
        node("Add", ["b", "c"], ["y1"]),
        node("Conv", ["y1", "w2", "b2"], ["c2"], name="conv2"),
        node("Add", ["c2", "c2const"], ["y"]),
    ]
    inits = {"w": w, "b": b, "w2": w2, "b2": b2, "c2const": c2}
    graph = check(model(nodes, {"x": [1, 3, 4, 4]}, ["y"], inits), randn(gen, 1, 3, 4, 4))
    assert kinds(graph) == ["input", "conv2d", "conv2d", "output"]
    np.testing.assert_array_equal(graph["conv"].weights["bias"], b.reshape(4))
    np.testing.assert_array_equal(graph["conv2"].weights["bias"], b2 + c2.reshape(4))
    assert graph["conv2"].params.bias


def test_pools_concat_and_activations() -> None:
    gen = rng(6)
    nodes = [
        node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("AveragePool", ["x"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
        node("Concat", ["mp", "ap"], ["cat"], axis=-3),
        node("HardSwish", ["cat"], ["hs"]),
        node("Clip", ["hs", "zero", "six"], ["r6"]),
        node("AveragePool", ["r6"], ["ceil"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        node("GlobalAveragePool", ["ceil"], ["gap"]),
        node("Flatten", ["gap"], ["flat"]),
        node("HardSigmoid", ["flat"], ["y"], alpha=1 / 6, beta=0.5),
    ]
    inits = {"zero": np.array(0, np.float32), "six": np.array(6, np.float32)}
    graph = check(model(nodes, {"x": [1, 4, 9, 9]}, ["y"], inits), randn(gen, 1, 4, 9, 9, scale=4.0))
    assert kinds(graph) == [
        "input",
        "avgpool",
        "maxpool",
        "concat",
        "hardswish",
        "relu6",
        "avgpool",
        "global_avgpool",
        "flatten",
        "hardsigmoid",
        "output",
    ]
    assert graph["mp"].params == PoolParams(kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    assert graph["ceil"].params == PoolParams(kernel=(2, 2), stride=(2, 2), ceil=True)
    assert graph["ceil"].output_shape == Shape((1, 8, 3, 3))
    assert graph["cat"].params.axis == 1
    assert graph["gap"].output_shape == Shape((1, 8, 1, 1)) and graph["flat"].output_shape == Shape((1, 8))


def test_se_block_mul_broadcasts() -> None:
    gen = rng(7)
    body, inits, feat = conv_bn(gen, "body", "x", 8, 8)
    inits.update(w1=randn(gen, 2, 8, 1, 1), b1=randn(gen, 2), w2=randn(gen, 8, 2, 1, 1), b2=randn(gen, 8))
    nodes = [
        *body,
        node("GlobalAveragePool", [feat], ["squeeze"]),
        node("Conv", ["squeeze", "w1", "b1"], ["fc1"]),
        node("Relu", ["fc1"], ["fc1r"]),
        node("Conv", ["fc1r", "w2", "b2"], ["fc2"]),
        node("HardSigmoid", ["fc2"], ["gate"], alpha=1 / 6, beta=0.5),
        node("Mul", [feat, "gate"], ["y"], name="excite"),
    ]
    graph = check(model(nodes, {"x": [1, 8, 6, 6]}, ["y"], inits), randn(gen, 1, 8, 6, 6))
    excite = graph["excite"]
    assert excite.kind is LayerKind.MUL
    assert excite.input_shapes == (Shape((1, 8, 6, 6)), Shape((1, 8, 1, 1)))
    assert excite.output_shape == Shape((1, 8, 6, 6))


def test_reshape_from_shape_arithmetic_and_channel_shuffle() -> None:
    gen = rng(8)
    nodes = [
        node("Reshape", ["x", "split"], ["v5"]),
        node("Transpose", ["v5"], ["t5"], perm=[0, 2, 1, 3, 4]),
        node("Reshape", ["t5", "back"], ["shuffled"], name="shuffle"),
        node("Relu", ["shuffled"], ["r"]),
        node("Shape", ["r"], ["shape"]),
        node("Gather", ["shape", "zero"], ["batch"], axis=0),
        node("Unsqueeze", ["batch", "axes"], ["batch1"]),
        node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        node("Reshape", ["r", "target"], ["y"], name="view"),
    ]
    inits = {
        "split": np.array([1, 2, 4, 3, 3], np.int64),
        "back": np.array([0, -1, 3, 3], np.int64),
        "zero": np.array(0, np.int64),
        "axes": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
    }
    graph = check(model(nodes, {"x": [1, 8, 3, 3]}, ["y"], inits), randn(gen, 1, 8, 3, 3))
    assert kinds(graph) == ["input", "channel_shuffle", "relu", "flatten", "output"]
    assert graph["shuffle"].params.groups == 2
    assert graph["view"].output_shape == Shape((1, 72))


def test_identity_dropout_and_constant_nodes() -> None:
    gen = rng(9)
    w = randn(gen, 4, 3, 1, 1)
    nodes = [
        helper.make_node("Constant", [], ["w"], name="wconst", value=onnx.numpy_helper.from_array(w)),
        node("Identity", ["x"], ["xi"]),
        node("Dropout", ["xi"], ["xd"]),
        node("Conv", ["xd", "w"], ["y"], name="conv"),
    ]
    graph = check(model(nodes, {"x": [1, 3, 4, 4]}, ["y"]), randn(gen, 1, 3, 4, 4))
    assert kinds(graph) == ["input", "conv2d", "output"]
    assert graph["conv"].inputs == ("x",)
    np.testing.assert_array_equal(graph["conv"].weights["weight"], w)


class _TorchNet(nn.Module):
    """A small CNN with the block types the ONNX importer meets in torch exports."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.ReLU6())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 1))
        self.gate = nn.Hardsigmoid()
        self.act = nn.Hardswish()
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(self.body(x) + x)
        x = self.dw(x)
        x = x * self.gate(self.se(x))
        x = self.pool(self.act(x))
        return self.head(x.view(x.size(0), -1))


def test_torch_exported_model_matches_torch_and_reference() -> None:
    torch.manual_seed(0)
    net = _TorchNet().eval()
    for bn in (net.stem[1], net.body[1]):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 8, 8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated; it needs no onnxscript
        torch.onnx.export(net, (x,), buffer, dynamo=False, input_names=["image"], output_names=["logits"])
    m = onnx.load_from_string(buffer.getvalue())
    graph = check(m, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(run_ir(graph, x.numpy()), net(x).numpy(), rtol=1e-5, atol=1e-5)
    counts = {k: kinds(graph).count(k) for k in ("conv2d", "linear", "mul", "add", "flatten")}
    assert counts == {"conv2d": 5, "linear": 1, "mul": 1, "add": 1, "flatten": 1}
    assert graph.inputs()[0].name == "image" and graph.outputs()[0].name == "logits"


def test_torch_exported_shufflenet_matches_fx_import() -> None:
    """Channel shuffle (view/transpose/view), concat, mean over (2, 3): the same layers as the fx import."""
    factory, shape = zoo_models.ZOO["shufflenet_like"]
    torch.manual_seed(0)
    net = factory().eval()
    x = torch.randn(*shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buffer, dynamo=False)  # folds BatchNorm into Conv
    graph = import_onnx(onnx.load_from_string(buffer.getvalue()))
    verify(graph)
    with torch.no_grad():
        np.testing.assert_allclose(run_ir(graph, x.numpy()), net(x).numpy(), rtol=1e-5, atol=1e-5)
    traced = import_model(net, shape)
    weighted = (LayerKind.CONV2D, LayerKind.LINEAR)

    def summary(g):
        return sorted(
            (layer.kind.value, layer.output_shape.dims, layer_macs(layer)) for layer in g.layers_of(*weighted)
        )

    assert summary(graph) == summary(traced)
    for kind in (LayerKind.CHANNEL_SHUFFLE, LayerKind.CONCAT, LayerKind.ADD, LayerKind.GLOBAL_AVGPOOL):
        assert len(graph.layers_of(kind)) == len(traced.layers_of(kind)), kind


# --- quantized models -------------------------------------------------------------------------------------
def _on_grid(gen: np.random.Generator, shape: tuple[int, ...], scale: float, lo: int, hi: int, zp: int = 0):
    """Inputs a quantizer maps to themselves: (k - zp) * scale with integer k in [lo, hi]."""
    k = gen.integers(lo, hi + 1, size=shape)
    return ((k - zp) * np.float32(scale)).astype(np.float32)


@pytest.mark.parametrize("opset", [13, 19])
def test_qdq_int8_weights_and_activations(opset: int) -> None:
    gen = rng(10)
    wq = gen.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    w_scale = (gen.random(4) * 0.01 + 0.005).astype(np.float32)
    bias_q = gen.integers(-1000, 1000, size=4).astype(np.int32)
    nodes = [
        node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="x_q"),
        node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"], name="x_dq"),
        node("DequantizeLinear", ["wq", "w_scale", "w_zp"], ["w"], name="w_dq", axis=0),
        node("DequantizeLinear", ["bias_q", "bias_scale"], ["bias"], name="bias_dq", axis=0),  # int32: fine
        node("Conv", ["xdq", "w", "bias"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        node("Relu", ["c"], ["y"]),
    ]
    inits = {
        "x_scale": np.array(0.05, np.float32),
        "x_zp": np.array(128, np.uint8),
        "wq": wq,
        "w_scale": w_scale,
        "w_zp": np.zeros(4, np.int8),
        "bias_q": bias_q,
        "bias_scale": np.float32(0.05) * w_scale,
    }
    m = model(nodes, {"x": [1, 3, 5, 5]}, ["y"], inits, opset=opset)
    graph = import_onnx(m)
    verify(graph)
    x = _on_grid(gen, (1, 3, 5, 5), 0.05, 0, 255, zp=128)
    # onnx.reference runs DequantizeLinear from opset 19 on; opset 13 means the same here
    (expected,) = run_reference(model(nodes, {"x": [1, 3, 5, 5]}, ["y"], inits, opset=19), x)
    np.testing.assert_allclose(run_ir(graph, x), expected, rtol=1e-5, atol=1e-5)
    assert kinds(graph) == ["input", "conv2d", "relu", "output"]
    conv = graph["conv"]
    assert conv.quant == QuantSpec(8, 8) and conv.inputs == ("x",)
    np.testing.assert_array_equal(conv.weights["weight"], wq.astype(np.float32) * w_scale.reshape(4, 1, 1, 1))
    np.testing.assert_array_equal(conv.weights["bias"], bias_q.astype(np.float32) * (np.float32(0.05) * w_scale))
    assert "w8a8" in print_graph(graph)


@pytest.mark.parametrize(
    ("bits", "signed_type", "unsigned_type", "opset"),
    [(4, TensorProto.INT4, TensorProto.UINT4, 21), (2, TensorProto.INT2, TensorProto.UINT2, 25)],
)
def test_qdq_sub_byte_types(bits: int, signed_type: int, unsigned_type: int, opset: int) -> None:
    gen = rng(11)
    w = randn(gen, 6, 8, scale=0.5)
    nodes = [
        node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"]),
        node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"]),
        node("QuantizeLinear", ["w", "w_scale", "w_zp"], ["wq"]),
        node("DequantizeLinear", ["wq", "w_scale", "w_zp"], ["wdq"]),
        node("Gemm", ["xdq", "wdq"], ["y"], name="fc", transB=1),
    ]
    inits = {
        "x_scale": np.array(0.25, np.float32),
        "x_zp": scalar(unsigned_type, 0),
        "w": w,
        "w_scale": np.array(0.125, np.float32),
        "w_zp": scalar(signed_type, 0),
    }
    m = model(nodes, {"x": [2, 8]}, ["y"], inits, opset=opset)
    graph = check(m, _on_grid(gen, (2, 8), 0.25, 0, 2**bits - 1))
    fc = graph["fc"]
    assert kinds(graph) == ["input", "linear", "output"]
    assert fc.quant == QuantSpec(bits, bits)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    expected = np.clip(np.round(w / np.float32(0.125)), lo, hi) * np.float32(0.125)
    np.testing.assert_array_equal(fc.weights["weight"], expected.astype(np.float32))
    assert set(np.unique(fc.weights["weight"] / np.float32(0.125)).tolist()) <= set(range(lo, hi + 1))


def test_qcdq_two_bit_from_clip_range() -> None:
    gen = rng(12)
    w = randn(gen, 4, 2, 3, 3, scale=0.4)
    nodes = [
        node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"]),
        node("Clip", ["xq", "a_lo", "a_hi"], ["xc"], name="x_clip"),
        node("DequantizeLinear", ["xc", "x_scale", "x_zp"], ["xdq"]),
        node("QuantizeLinear", ["w", "w_scale", "w_zp"], ["wq"]),
        node("Clip", ["wq", "w_lo", "w_hi"], ["wc"], name="w_clip"),
        node("DequantizeLinear", ["wc", "w_scale", "w_zp"], ["wdq"]),
        node("Conv", ["xdq", "wdq"], ["y"], name="conv"),
    ]
    inits = {
        "x_scale": np.array(0.5, np.float32),
        "x_zp": np.array(0, np.uint8),
        "a_lo": np.array(0, np.uint8),
        "a_hi": np.array(3, np.uint8),
        "w": w,
        "w_scale": np.array(0.2, np.float32),
        "w_zp": np.array(0, np.int8),
        "w_lo": np.array(-1, np.int8),
        "w_hi": np.array(1, np.int8),
    }
    m = model(nodes, {"x": [1, 2, 4, 4]}, ["y"], inits, opset=19)
    graph = check(m, _on_grid(gen, (1, 2, 4, 4), 0.5, 0, 3))
    conv = graph["conv"]
    assert conv.quant == QuantSpec(2, 2)
    expected = np.clip(np.round(w / np.float32(0.2)), -1, 1) * np.float32(0.2)
    np.testing.assert_array_equal(conv.weights["weight"], expected.astype(np.float32))


def _qonnx_dequant(x, scale, bits: int, signed: bool, narrow: bool) -> np.ndarray:
    """The QONNX Quant definition with zero point 0 and ROUND (half to even), written out for the test."""
    lo = -(2 ** (bits - 1)) + narrow if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - narrow
    return (np.round(np.clip(x / scale, lo, hi)) * scale).astype(np.float32)


def test_qonnx_quant_nodes() -> None:
    gen = rng(13)
    w, bias, fc_w = randn(gen, 4, 3, 3, 3, scale=0.3), randn(gen, 4), randn(gen, 3, 16, scale=0.3)
    w_scale = (gen.random((4, 1, 1, 1)) * 0.05 + 0.02).astype(np.float32)
    q = {"signed": 1, "narrow": 1, "rounding_mode": "ROUND"}
    nodes = [
        node("Quant", ["x", "a_scale", "zero", "bits8"], ["xq"], name="in_quant", signed=0, narrow=0),
        node("Quant", ["w", "w_scale", "zero", "bits4"], ["wq"], name="w_quant", **q),
        node("Quant", ["bias", "b_scale", "zero", "bits32"], ["bq"], name="b_quant", **q),
        node("Conv", ["xq", "wq", "bq"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        node("Relu", ["c"], ["r"]),
        node("Quant", ["r", "a_scale", "zero", "bits8"], ["rq"], name="relu_quant", signed=0, narrow=0),
        node("MaxPool", ["rq"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["p"], ["f"]),
        node("Quant", ["fc_w", "fc_scale", "zero", "bits2"], ["fq"], name="fc_quant", signed=1, narrow=0),
        node("Gemm", ["f", "fq"], ["y"], name="fc", transB=1),
    ]
    inits = {
        "a_scale": np.array(0.1, np.float32),
        "zero": np.array(0.0, np.float32),
        "bits8": np.array(8.0, np.float32),
        "bits4": np.array(4.0, np.float32),
        "bits32": np.array(32.0, np.float32),
        "bits2": np.array(2.0, np.float32),
        "w": w,
        "w_scale": w_scale,
        "bias": bias,
        "b_scale": np.array(1e-4, np.float32),
        "fc_w": fc_w,
        "fc_scale": np.array(0.25, np.float32),
    }
    m = model(nodes, {"x": [1, 3, 4, 4]}, {"y": [1, 3]}, inits, opset=13, qonnx=True)
    graph = import_onnx(m)
    verify(graph)
    assert kinds(graph) == ["input", "conv2d", "relu", "maxpool", "flatten", "linear", "output"]
    conv, fc = graph["conv"], graph["fc"]
    assert conv.quant == QuantSpec(4, 8)
    assert fc.quant == QuantSpec(2, 8)  # the activation quantizer reaches fc through MaxPool and Flatten
    np.testing.assert_array_equal(conv.weights["weight"], _qonnx_dequant(w, w_scale, 4, True, True))
    np.testing.assert_array_equal(conv.weights["bias"], _qonnx_dequant(bias, np.float32(1e-4), 32, True, True))
    np.testing.assert_array_equal(fc.weights["weight"], _qonnx_dequant(fc_w, np.float32(0.25), 2, True, False))
    assert set(np.unique(fc.weights["weight"] / np.float32(0.25))) <= {-2.0, -1.0, 0.0, 1.0}
    assert fc.output_shape == Shape((1, 3))  # shape inference stops at Quant: the IR rules fill in
    run_ir(graph, randn(gen, 1, 3, 4, 4))  # the executor runs the imported graph


# --- names and metadata -----------------------------------------------------------------------------------
def test_names_sanitised_uniquified_and_jaqc_layer_metadata() -> None:
    gen = rng(14)
    nodes = [
        node("Relu", ["x"], ["a"], name="my relu"),
        node("Relu", ["a"], ["b"], name="my relu"),
        node("Relu", ["b"], ["c"], name=""),
        node("Relu", ["c"], ["d"], name="renamed"),
    ]
    nodes[3].metadata_props.add(key="jaqc.layer", value="stage1.act")
    m = model(nodes, {"x": [1, 2]}, ["d"])
    m.graph.input[0].metadata_props.add(key="jaqc.layer", value="image")
    graph = check(m, randn(gen, 1, 2))
    assert [layer.name for layer in graph] == ["image", "my_relu", "my_relu_1", "Relu_2", "stage1.act", "d"]
    assert graph["my_relu_1"].source == Source(fx_node="", module="my relu")
    assert graph["Relu_2"].source.module == "Relu#2"
    assert graph["stage1.act"].source.module == "renamed"


# --- errors -----------------------------------------------------------------------------------------------
def _error(m: onnx.ModelProto) -> str:
    with pytest.raises(OnnxImportError) as info:
        import_onnx(m)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_clip_attributes_before_opset_11() -> None:
    nodes = [node("Clip", ["x"], ["r6"], min=0.0, max=6.0), node("Clip", ["r6"], ["y"], min=0.0)]
    graph = import_onnx(model(nodes, {"x": [1, 4]}, ["y"], opset=10))
    assert kinds(graph) == ["input", "relu6", "relu", "output"]


def test_integer_values_only_feed_dequantize_or_clip() -> None:
    inits = {"s": np.array(0.1, np.float32), "z": np.array(0, np.uint8)}
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"), node("Relu", ["q"], ["y"], name="bad")]
    m = model(nodes, {"x": [1, 4]}, {"y": [1, 4]}, inits, opset=19)
    assert (
        "ONNX node 'bad' (Relu, #1): input 'q' is the integer output of ONNX node 'q' (QuantizeLinear, #0)" in _error(m)
    )


def test_sixteen_bit_activation_quantizer_is_an_error() -> None:
    inits = {"s": np.array(0.1, np.float32), "z": np.array(0, np.int16), "w": np.ones((2, 4), np.float32)}
    nodes = [
        node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q16"),
        node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        node("Gemm", ["dq", "w"], ["y"], name="fc", transB=1),
    ]
    message = _error(model(nodes, {"x": [1, 4]}, ["y"], inits, opset=21))
    assert "ONNX node 'fc' (Gemm, #2): the input activation quantizer ONNX node 'q16' (QuantizeLinear, #0)" in message
    assert "is 16-bit" in message


def test_reshape_that_starts_no_channel_shuffle_is_an_error() -> None:
    inits = {"split": np.array([1, 2, 2, 2, 2], np.int64)}
    nodes = [node("Reshape", ["x", "split"], ["v5"], name="split"), node("Relu", ["v5"], ["y"], name="act")]
    message = _error(model(nodes, {"x": [1, 4, 2, 2]}, ["y"], inits))
    assert "ONNX node 'act' (Relu, #1): input 'v5' comes from the reshape ONNX node 'split' (Reshape, #0)" in message


def test_unsupported_op_names_node_op_and_index() -> None:
    m = model([node("Relu", ["x"], ["r"]), node("Tanh", ["r"], ["y"], name="squash")], {"x": [1, 4]}, ["y"])
    message = _error(m)
    assert message.startswith("ONNX model 'test_graph': ONNX node 'squash' (Tanh, #1): op Tanh is not supported")
    assert "Conv" in message  # the supported ops are listed
    unnamed = model([node("Erf", ["x"], ["y"], name="")], {"x": [1, 4]}, ["y"])
    assert "ONNX node #0 (Erf): op Erf is not supported" in _error(unnamed)


def test_clip_that_is_not_relu6_is_an_error() -> None:
    inits = {"lo": np.array(0, np.float32), "hi": np.array(4, np.float32)}
    m = model([node("Clip", ["x", "lo", "hi"], ["y"], name="clip4")], {"x": [1, 4]}, ["y"], inits)
    assert "ONNX node 'clip4' (Clip, #0): Clip to [0, 4] is not supported" in _error(m)


def test_three_bit_quant_is_an_error_naming_both_nodes() -> None:
    inits = {"w": np.ones((2, 3, 1, 1), np.float32), "s": np.array(0.5, np.float32), "z": np.array(0, np.float32)}
    inits["b"] = np.array(3.0, np.float32)
    nodes = [
        node("Quant", ["w", "s", "z", "b"], ["wq"], name="w3", signed=1, narrow=0),
        node("Conv", ["x", "wq"], ["y"], name="conv"),
    ]
    m = model(nodes, {"x": [1, 3, 2, 2]}, {"y": [1, 2, 2, 2]}, inits, opset=13, qonnx=True)
    message = _error(m)
    assert "ONNX node 'conv' (Conv, #1): the weight quantizer ONNX node 'w3'" in message
    assert "is 3-bit; BitFusion layers take 2, 4 or 8 bits" in message


@pytest.mark.parametrize(
    ("nodes", "inits", "expected"),
    [
        (
            [node("HardSigmoid", ["x"], ["y"], name="hs")],
            {},
            "HardSigmoid alpha=0.2 beta=0.5 is not the IR's hardsigmoid",
        ),
        (
            [node("Conv", ["x", "x"], ["y"], name="conv")],
            {},
            "the weight ('x') must be a constant",
        ),
        (
            [node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], pads=[0, 0, 1, 1])],
            {},
            "asymmetric pads [0, 0, 1, 1] are not supported",
        ),
        (
            [node("Add", ["x", "c"], ["y"], name="shift")],
            {"c": np.ones((1, 1, 2, 2), np.float32)},
            "adding a constant is supported only as a bias of a Conv",
        ),
        (
            [node("Mul", ["x", "c"], ["y"], name="scale")],
            {"c": np.ones((1,), np.float32)},
            "input 1 ('c') is a constant",
        ),
    ],
)
def test_unsupported_forms_are_errors(nodes, inits, expected: str) -> None:
    message = _error(model(nodes, {"x": [1, 1, 2, 2]}, ["y"], inits))
    assert f"ONNX node '{nodes[0].name}' ({nodes[0].op_type}, #0): {expected}" in message


def test_symbolic_input_needs_an_input_shape() -> None:
    m = model([node("Relu", ["x"], ["y"])], {"x": ["N", 3, 2, 2]}, ["y"])
    assert "graph input 'x' has no static shape" in _error(m)
    graph = import_onnx(m, input_shape=(2, 3, 2, 2))
    assert graph["x"].output_shape == Shape((2, 3, 2, 2)) and graph["y_1"].output_shape == Shape((2, 3, 2, 2))
    with pytest.raises(OnnxImportError, match="has rank 4, not 2"):
        import_onnx(m, input_shape=(2, 3))


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(OnnxImportError, match=r"ONNX model '.*missing.onnx': no such file"):
        import_onnx(missing)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe this is not a protobuf \x00\x01")
    with pytest.raises(OnnxImportError, match=r"garbage.onnx': not an ONNX file"):
        import_onnx(garbage)
    broken = model([node("Relu", ["x"], ["y"])], {"x": [1, 2]}, ["y"])
    broken.graph.node[0].input[0] = "nowhere"
    onnx.save(broken, tmp_path / "broken.onnx")
    with pytest.raises(OnnxImportError, match=r"broken.onnx': invalid ONNX model: "):
        import_onnx(tmp_path / "broken.onnx")


# --- loading through MODEL and the CLI --------------------------------------------------------------------
def test_model_argument_and_cli_dump(tmp_path: Path, capsys) -> None:
    gen = rng(15)
    nodes, inits, out = conv_bn(gen, "stem", "x", 3, 4)
    path = tmp_path / "net.onnx"
    onnx.save(model(nodes, {"x": [1, 3, 4, 4]}, [out], inits), path)
    graph = load_graph_spec(str(path))
    assert graph.name == "net" and kinds(graph) == ["input", "conv2d", "batchnorm", "relu", "output"]
    assert load_graph_spec(str(path), with_weights=False)["stem.conv"].weights == {}
    assert main(["dump", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("graph net\n%x = input : [1,3,4,4] ; module=x\n")
    assert "%stem.conv = conv2d[k=3,p=1](%x) : [1,3,4,4]->[1,4,4,4] ; module=stem.conv\n" in text
    assert main(["dump", str(tmp_path / "nope.onnx")]) == 2
    assert "nope.onnx': no such file" in capsys.readouterr().err
    with pytest.raises(JaqcError, match="no such file"):
        load_graph_spec(str(tmp_path / "nope.onnx"))


TORCH_FREE = """
import importlib.util, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
spec = importlib.util.spec_from_file_location("onnx_import_alone", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
graph = module.import_onnx(sys.argv[2])
print(len(graph), graph["stem.conv"].quant)
"""


def test_importer_needs_no_torch(tmp_path: Path) -> None:
    gen = rng(16)
    nodes, inits, out = conv_bn(gen, "stem", "x", 3, 4)
    path = tmp_path / "net.onnx"
    onnx.save(model(nodes, {"x": [1, 3, 4, 4]}, [out], inits), path)
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(MODULE_FILE), str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5 None"


def test_docs_example_runs() -> None:
    text = (Path(__file__).parents[2] / "docs" / "onnx_import.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "onnx_import.md", "exec"), {})
