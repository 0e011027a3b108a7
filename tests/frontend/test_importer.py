"""torch.fx importer on realistic model code: structure, shapes, MACs vs forward hooks, numerics, errors."""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import zoo_models
from jaqc.ir import LayerKind, layer_macs, parse, print_graph, verify

from jaqc.frontend import GraphExecutor, ImportErrorIR, import_model


def hook_counts(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], int]]:
    """module path -> (output shape, MACs) for every Conv2d and Linear, from forward hooks."""
    found: dict[str, tuple[tuple[int, ...], int]] = {}
    handles = []
    for path, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):

            def hook(m, inp, out, path=path):
                macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                found[path] = (tuple(out.shape), macs)
        elif isinstance(mod, nn.Linear):

            def hook(m, inp, out, path=path):
                found[path] = (tuple(out.shape), out.numel() * m.in_features)
        else:
            continue
        handles.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        model.eval()(torch.randn(*shape))
    for h in handles:
        h.remove()
    return found


@pytest.mark.parametrize("name", sorted(zoo_models.ZOO))
def test_zoo_model_structure_macs_and_numerics(name: str) -> None:
    factory, shape = zoo_models.ZOO[name]
    model = factory()
    graph = import_model(model, shape)
    verify(graph)
    expected = hook_counts(model, shape)
    weighted = {x.source.module: x for x in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)}
    assert sorted(weighted) == sorted(expected)
    for path, (out_shape, macs) in expected.items():
        assert weighted[path].output_shape.dims == out_shape, path
        assert layer_macs(weighted[path]) == macs, path
    kinds = collections.Counter(type(m) for m in model.modules())
    assert len(graph.layers_of(LayerKind.BATCHNORM)) == kinds[nn.BatchNorm2d]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    # Hand-written activations (fbnet_like's `torch.sigmoid(x) * x`) import as one layer (silu), which the
    # torch function rounds differently from the spelled-out arithmetic; other models are reproduced bit for bit.
    tol = 1e-6 if name in zoo_models.FUSED_ACTIVATIONS else 0.0
    with torch.no_grad():
        torch.testing.assert_close(GraphExecutor(graph)(x), model(x), rtol=tol, atol=tol)
    text = print_graph(graph)
    assert print_graph(parse(text)) == text


def test_zoo_layer_kinds() -> None:
    counts = collections.Counter(x.kind for x in import_model(zoo_models.shufflenet_like(), (1, 3, 32, 32)))
    assert counts[LayerKind.CHANNEL_SHUFFLE] == 4
    assert counts[LayerKind.CONCAT] == 4
    assert counts[LayerKind.GLOBAL_AVGPOOL] == 1
    counts = collections.Counter(x.kind for x in import_model(zoo_models.mobilenet_v2_se_hswish(), (1, 3, 32, 32)))
    assert counts[LayerKind.MUL] == 16 and counts[LayerKind.HARDSIGMOID] == 16
    assert counts[LayerKind.HARDSWISH] == 35
    assert counts[LayerKind.ADD] == 10


class Functional(nn.Module):
    """Every functional spelling the importer accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding="same")
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.shuffle = nn.ChannelShuffle(2)
        self.ident = nn.Identity()
        self.fc = nn.Linear(16 * 2 * 2 + 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        y = F.hardswish(y) + self.ident(y)
        z = torch.add(self.conv2(y).relu(), y)
        z = self.shuffle(z) * torch.sigmoid(z.mean((2, 3), keepdim=True))
        z = F.dropout(F.max_pool2d(z, 2), 0.5, training=self.training)
        w = torch.cat([F.avg_pool2d(z, kernel_size=2), F.adaptive_avg_pool2d(z, 2)], dim=1)
        g = torch.mean(z, dim=(-2, -1))
        flat = torch.cat([w.view(w.size(0), -1), F.silu(g)], 1)
        return F.relu6(self.fc(flat))


def test_functional_spellings() -> None:
    model = Functional().eval()
    graph = import_model(model, (2, 3, 8, 8))
    verify(graph)
    kinds = collections.Counter(x.kind.value for x in graph)
    assert kinds["global_avgpool"] == 2 and kinds["avgpool"] == 2 and kinds["maxpool"] == 1
    assert kinds["channel_shuffle"] == 1 and kinds["concat"] == 2 and kinds["flatten"] == 1
    assert kinds["add"] == 2 and kinds["mul"] == 1 and "identity" not in kinds
    assert graph["conv"].params.padding == (1, 1)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(GraphExecutor(graph)(x), model(x))


class Dilated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Tanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


class Scalar(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


def test_dilation_error_names_node_module_and_line() -> None:
    with pytest.raises(ImportErrorIR) as info:
        import_model(Dilated(), (1, 3, 16, 16))
    msg = str(info.value)
    assert "fx node 'body_0' (call_module body.0, module 'body.0'" in msg
    assert "test_importer.py:" in msg and "dilation (2, 2) is not supported" in msg


def test_unsupported_function_is_named() -> None:
    with pytest.raises(
        ImportErrorIR,
        match=r"fx node 'tanh' \(call_function tanh, .*test_importer.py:\d+\): function is not supported",
    ):
        import_model(Tanh(), (1, 3, 4, 4))


def test_scalar_operand_is_rejected() -> None:
    with pytest.raises(ImportErrorIR, match=r"fx node 'mul'.*operand 0.5 is a Python constant"):
        import_model(Scalar(), (1, 3, 4, 4))


def test_untraceable_model() -> None:
    with pytest.raises(ImportErrorIR, match=r"torch\.fx could not trace Branchy"):
        import_model(Branchy(), (1, 3, 4, 4))


def test_import_leaves_training_mode_and_stats_alone() -> None:
    model = zoo_models.resnet_tiny().train()
    stats = model.bn1.running_mean.clone()
    import_model(model, (2, 3, 32, 32))
    assert model.training and model.layer1[0].training
    assert torch.equal(stats, model.bn1.running_mean)
