"""Model-zoo styles (issue #14): MobileNetV3, GhostNet, ShuffleNetV2, EfficientNet and RegNet written the way
their reference code writes them import into verified IR with the expected layer kinds, the torch model built
from the IR computes what the original computes, and what stays unsupported fails with a message naming the
fx node, the construct and the spelling that works."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import zoo_models
from jaqc.ir import LayerKind, parse, print_graph, verify

from jaqc.cli import main
from jaqc.frontend import GraphExecutor, ImportErrorIR, import_model
from jaqc.nn.subnet import build_subnet

ZOO = str(Path(__file__).parents[1] / "zoo_models.py")
K = LayerKind


def kinds(graph) -> collections.Counter:  # type: ignore[no-untyped-def]
    return collections.Counter(x.kind for x in graph)


def assert_same_outputs(model: nn.Module, graph, shape: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(5)) * 3
    with torch.no_grad():
        expected = model.eval()(x)
        torch.testing.assert_close(build_subnet(graph)(x), expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(GraphExecutor(graph)(x), expected, rtol=0, atol=1e-5)


def count_modules(model: nn.Module, *types: type) -> int:
    return sum(isinstance(m, types) for m in model.modules())


@pytest.mark.parametrize("name", sorted(zoo_models.ZOO_STYLES))
def test_zoo_style_imports_verifies_and_matches_torch(name: str) -> None:
    factory, shape = zoo_models.ZOO_STYLES[name]
    model = factory()
    graph = import_model(model, shape)
    verify(graph)
    assert_same_outputs(model, graph, shape)
    text = print_graph(graph)
    assert print_graph(parse(text)) == text
    convs = count_modules(model, nn.Conv2d)
    assert len(graph.layers_of(K.CONV2D)) == convs and len(graph.layers_of(K.LINEAR)) == count_modules(model, nn.Linear)
    assert len(graph.layers_of(K.BATCHNORM)) == count_modules(model, nn.BatchNorm2d)


def test_mobilenet_v3_hand_written_hswish_and_hsigmoid() -> None:
    model = zoo_models.mobilenet_v3_like()
    graph = import_model(model, (1, 3, 64, 64))
    counts = kinds(graph)
    hswish = count_modules(model, zoo_models.HSwish, zoo_models.HSwishInline, zoo_models.HSwishScaled)
    se = count_modules(model, zoo_models.SELinear, zoo_models.SEConv)
    assert counts[K.HARDSWISH] == hswish == 9
    assert counts[K.HARDSIGMOID] == se == 4  # the SE gates; the h-sigmoids inside h-swish are fused away
    assert counts[K.MUL] == se and counts[K.RELU6] == 0
    # an activation module whose forward is the whole expression names the layer, like nn.Hardswish would
    assert graph["features.0.2"].kind is K.HARDSWISH and graph["conv.2"].kind is K.HARDSWISH
    assert graph["features.0.2"].source.module == "features.0.2"
    assert graph["classifier.1"].kind is K.HARDSWISH  # x * relu6(x + 3.) * (1. / 6.) on the classifier's rank 2
    assert graph["features.1.conv.2.fc.3"].kind is K.HARDSIGMOID  # relu6 module (x + 3) / 6


def test_ghostnet_gates_clamp_relu_and_full_slices() -> None:
    model = zoo_models.ghostnet_like()
    graph = import_model(model, (1, 3, 32, 32))
    counts = kinds(graph)
    assert counts[K.HARDSIGMOID] == counts[K.MUL] == count_modules(model, zoo_models.GhostSqueezeExcite) == 3
    assert counts[K.RELU] == count_modules(model, nn.ReLU, zoo_models.ClampReLU)
    assert counts[K.CONCAT] == count_modules(model, zoo_models.GhostModule)
    assert counts[K.RESHAPE] == 0 and counts[K.IDENTITY] == 0  # out[:, :oup] keeps every channel: dropped
    # the three spellings of hard_sigmoid: relu6(x + 3.) / 6., x.add_(3.).clamp_(0., 6.).div_(6.), torch.clamp
    gates = sorted(x.source.fx_node for x in graph.layers_of(K.HARDSIGMOID))
    assert [g.rstrip("_0123456789") for g in gates] == ["div", "truediv", "truediv"]


def test_shufflenet_v2_shuffle_spellings() -> None:
    graph = import_model(zoo_models.shufflenet_v2_like(), (1, 3, 32, 32))
    counts = kinds(graph)
    assert counts[K.CHANNEL_SHUFFLE] == 4 and counts[K.CONCAT] == 4
    assert counts[K.RESHAPE] == 0 and counts[K.FLATTEN] == 0
    assert all(x.params.groups == 2 for x in graph.layers_of(K.CHANNEL_SHUFFLE))


def test_efficientnet_swish_becomes_silu() -> None:
    model = zoo_models.efficientnet_like()
    graph = import_model(model, (1, 3, 32, 32))
    counts = kinds(graph)
    blocks = count_modules(model, zoo_models.MBConvBlock)
    expanded = sum(b.expand_ratio != 1 for b in model.modules() if isinstance(b, zoo_models.MBConvBlock))
    assert counts[K.SILU] == 1 + blocks * 2 + expanded + 1  # stem, depthwise + SE (+ expand), head
    assert counts[K.SIGMOID] == counts[K.MUL] == blocks  # the SE gates: sigmoid(s) * x
    assert graph["_swish"].kind is K.SILU  # the stem's Swish module, called once


def test_regnet_group_convs_se_and_residuals() -> None:
    model = zoo_models.regnet_like()
    graph = import_model(model, (1, 3, 32, 32))
    counts = kinds(graph)
    blocks = count_modules(model, zoo_models.ResBottleneckBlock)
    assert counts[K.ADD] == blocks and counts[K.SIGMOID] == counts[K.MUL] == blocks
    grouped = [x for x in graph.layers_of(K.CONV2D) if 1 < x.params.groups < x.in_channels]
    assert len(grouped) == blocks


# --- every spelling of the hand-written activations --------------------------------------------------------
SPELLINGS = {
    "x * F.relu6(x + 3) / 6": (lambda x: x * F.relu6(x + 3) / 6, K.HARDSWISH),
    "x * F.relu6(x + 3.) * (1 / 6)": (lambda x: x * F.relu6(x + 3.0) * (1 / 6), K.HARDSWISH),
    "x * (F.relu6(x + 3) / 6)": (lambda x: x * (F.relu6(x + 3) / 6), K.HARDSWISH),
    "x / 6 * F.hardtanh(3 + x, 0, 6)": (lambda x: x / 6 * F.hardtanh(3 + x, 0, 6), K.HARDSWISH),
    "x * torch.clamp(x + 3, 0, 6).div(6)": (lambda x: x * torch.clamp(x + 3, 0, 6).div(6), K.HARDSWISH),
    "x.mul(x.add(3).clamp(min=0, max=6)).div(6)": (lambda x: x.mul(x.add(3).clamp(min=0, max=6)).div(6), K.HARDSWISH),
    "x * F.hardsigmoid(x)": (lambda x: x * F.hardsigmoid(x), K.HARDSWISH),
    "x.mul_(F.relu6(x + 3.).div_(6.)) (timm)": (lambda x: x.mul_(F.relu6(x + 3.0).div_(6.0)), K.HARDSWISH),
    "x.mul_(x.sigmoid()) (timm)": (lambda x: x.mul_(x.sigmoid()), K.SILU),
    "F.relu6(x + 3) / 6": (lambda x: F.relu6(x + 3) / 6, K.HARDSIGMOID),
    "(x + 3.).clamp_(0., 6.).div_(6.)": (lambda x: (x + 3.0).clamp_(0.0, 6.0).div_(6.0), K.HARDSIGMOID),
    "(x.clamp(-3, 3) + 3) / 6": (lambda x: (x.clamp(-3, 3) + 3) / 6, K.HARDSIGMOID),
    "F.relu6(x + 3) * 0.16666667": (lambda x: F.relu6(x + 3) * 0.16666667, K.HARDSIGMOID),
    "x * torch.sigmoid(x)": (lambda x: x * torch.sigmoid(x), K.SILU),
    "x.sigmoid() * x": (lambda x: x.sigmoid() * x, K.SILU),
    "torch.mul(x, F.sigmoid(x))": (lambda x: torch.mul(x, F.sigmoid(x)), K.SILU),
    "torch.clamp(x, 0, 6)": (lambda x: torch.clamp(x, 0, 6), K.RELU6),
    "x.clamp(0, 6)": (lambda x: x.clamp(0, 6), K.RELU6),
    "torch.clip(x, min=0, max=6)": (lambda x: torch.clip(x, min=0, max=6), K.RELU6),
    "F.hardtanh(x, 0., 6.)": (lambda x: F.hardtanh(x, 0.0, 6.0), K.RELU6),
    "nn.Hardtanh(0, 6)": (nn.Hardtanh(0, 6), K.RELU6),
    "torch.clamp(x, min=0)": (lambda x: torch.clamp(x, min=0), K.RELU),
    "torch.clamp_min(x, 0)": (lambda x: torch.clamp_min(x, 0), K.RELU),
    "x.clamp_min(0.)": (lambda x: x.clamp_min(0.0), K.RELU),
    "F.relu(x * 1.0 + 0)": (lambda x: F.relu(x * 1.0 + 0), K.RELU),
    "F.hardswish(x)": (F.hardswish, K.HARDSWISH),
    "F.hardsigmoid(x, inplace=True)": (lambda x: F.hardsigmoid(x, inplace=True), K.HARDSIGMOID),
    "F.silu(x)": (F.silu, K.SILU),
}


class Wrap(nn.Module):
    """conv -> the activation under test -> conv."""

    def __init__(self, act) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = act if isinstance(act, nn.Module) else None
        self.fn = act
        self.conv2 = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = self.act(y) if self.act is not None else self.fn(y)
        return self.conv2(y)


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_activation_spellings(spelling: str) -> None:
    act, kind = SPELLINGS[spelling]
    model = Wrap(act).eval()
    graph = import_model(model, (2, 3, 8, 8))
    verify(graph)
    between = [x.kind for x in graph if x.kind not in (K.INPUT, K.OUTPUT, K.CONV2D)]
    assert between == [kind]
    assert graph["conv2"].inputs[0] != "conv"
    assert_same_outputs(model, graph, (2, 3, 8, 8))


class GateUsedTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        s = torch.sigmoid(y)
        return y * s + s  # the sigmoid is read twice: no silu, the gate and the product stay


def test_gate_read_elsewhere_stays_sigmoid_and_mul() -> None:
    model = GateUsedTwice()
    graph = import_model(model, (1, 3, 4, 4))
    assert [x.kind for x in graph][2:-1] == [K.SIGMOID, K.MUL, K.ADD]
    assert_same_outputs(model, graph, (1, 3, 4, 4))


# --- what stays unsupported: the message names the node, the construct and the supported spelling -----------
class Act(nn.Module):
    def __init__(self, fn) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.conv(x))


HINT = r"x \* F\.relu6\(x \+ 3\) / 6 \(hardswish\), F\.relu6\(x \+ 3\) / 6 \(hardsigmoid\)"


@pytest.mark.parametrize(
    ("fn", "pattern"),
    [
        (lambda x: x * 0.5, r"fx node 'mul' \(call_function mul, .*test_zoo_styles.py:\d+\): operand 0\.5 is a "
         r"Python constant: x \* 0\.5 \(x is fx node 'conv'\) is not an element-wise function the IR has\. "
         r"Arithmetic with Python constants .*fold any other scale or offset into the weights"),
        (lambda x: x * F.relu6(x + 3) * 0.1667, r"fx node 'mul_1' .*x \* relu6\(x \+ 3\) \* 0\.1667 .*close to "
         r"hardswish but not equal: write F\.hardswish\(x\) or x \* F\.relu6\(x \+ 3\) / 6\. .*" + HINT),
        (lambda x: torch.clamp(x, -1, 1), r"fx node 'clamp' .*clamp bounds other than \[0, 6\] \(relu6\) and "
         r"\[0, inf\) \(relu\) .*torch\.clamp\(x, min=-1, max=1\).*torch\.clamp\(x, 0, 6\) / F\.hardtanh\(x, 0, "
         r"6\) \(relu6\), torch\.clamp\(x, min=0\) \(relu\)"),
        (lambda x: x.clamp_max(6), r"fx node 'clamp_max' \(call_method clamp_max.*clamp_max\(x, max=6\)"),
        (lambda x: x * F.relu6(x + 3) / 6 + 1, r"fx node 'add_1' .*operand 1 is a Python constant: "
         r"x \* relu6\(x \+ 3\) / 6 \+ 1 "),
        (lambda x: x - F.relu(x), r"fx node 'sub' .*subtracting two tensors is not supported \(the IR has add and "
         r"mul only\)"),
        (lambda x: x * x.add_(3).clamp_(0, 6).div_(6), r"fx node 'add_' .*in-place x\.add_\(\) overwrites 'conv', "
         r"which fx node 'mul' reads afterwards.*use the out-of-place form"),
        (lambda x: x.transpose(2, 3), r"fx node 'transpose' .*transpose\(2, 3\) is supported only inside a channel "
         r"shuffle: a channel shuffle is recognised as .*torch\.transpose\(x, 1, 2\) or x\.permute\(0, 2, 1, 3, 4\)"),
        (lambda x: x.view(1, 2, 4, 4, 4).permute(0, 2, 1, 4, 3).reshape(1, 8, 4, 4),
         r"fx node 'view' .*reshape to rank 5 \(\[1, 2, 4, 4, 4\]\) starts no channel shuffle: its user fx node "
         r"'permute' \(permute\(0, 2, 1, 4, 3\)\) orders the dims \(0, 2, 1, 4, 3\), not transpose\(1, 2\) / "
         r"permute\(0, 2, 1, 3, 4\)\. .*nn\.ChannelShuffle\(g\)"),
        (lambda x: F.pad(x, (0, 1, 0, 1)), r"fx node 'pad' .*give the padding to the Conv2d"),
        (lambda x: torch.tanh(x), r"fx node 'tanh' .*function is not supported"),
    ],
    ids=["scale", "near-hswish", "clamp", "clamp_max", "offset", "sub", "inplace", "transpose", "permute", "pad",
         "tanh"],
)  # fmt: skip
def test_unsupported_constructs_name_node_and_spelling(fn, pattern: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImportErrorIR, match=pattern):
        import_model(Act(fn), (1, 3, 4, 4))


def test_shufflenet_v2_channel_split_becomes_slice_layers() -> None:
    model = zoo_models.shufflenet_v2_split().eval()
    graph = import_model(model, (1, 3, 32, 32))
    verify(graph)
    slices = graph.layers_of(K.SLICE)
    splits = sum(isinstance(m, zoo_models.ShuffleV2Block) and m.split for m in model.modules())
    assert splits > 0 and len(slices) == 2 * splits  # x1, x2 = x.chunk(2, dim=1) in each stride-1 unit
    half = slices[0].params.end
    assert [(x.params.start, x.params.end) for x in slices[:2]] == [(0, half), (half, 2 * half)]
    assert_same_outputs(model, graph, (1, 3, 32, 32))


def test_channel_slices_and_the_rest_of_indexing() -> None:
    model = nn.Sequential(zoo_models.GhostModule(8, 15), nn.Conv2d(15, 4, 1)).eval()
    graph = import_model(model, (1, 8, 8, 8))  # GhostNet's cat(...)[:, :oup] dropping a channel: a slice
    (cut,) = graph.layers_of(K.SLICE)
    assert (cut.params.axis, cut.params.start, cut.params.end) == (1, 0, 15)
    assert_same_outputs(model, graph, (1, 8, 8, 8))
    with pytest.raises(ImportErrorIR) as info:
        import_model(Act(lambda x: x[:, :, :2]), (1, 3, 4, 4))
    msg = str(info.value)
    assert "[:, :, :2]" in msg and "the IR slices channels only" in msg
    with pytest.raises(ImportErrorIR, match=r"splitting a tensor \(chunk\(2, dim=2\)\) is not supported"):
        import_model(Act(lambda x: x.chunk(2, dim=2)[0]), (1, 3, 4, 4))


# --- jaqc map -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mobilenet_v3_like", "ghostnet_like", "shufflenet_v2_like"])
def test_map_zoo_styles(name: str, capsys) -> None:  # type: ignore[no-untyped-def]
    shape = ",".join(str(d) for d in zoo_models.ZOO_STYLES[name][1])
    args = ["map", f"{ZOO}:{name}", "--accel", "jaq-table2", "--input-shape", shape, "--format", "json"]
    assert main([*args, "--passes", "fold-batchnorm,annotate-quant{w_bits=4,a_bits=4}"]) == 0
    data = json.loads(capsys.readouterr().out)
    model = zoo_models.ZOO_STYLES[name][0]()
    weighted = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert data["totals"]["layers"] == len(data["layers"]) == weighted
    assert data["totals"]["latency_ms"] > 0
