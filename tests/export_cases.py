"""Small calibrated subnets for the export tests (tests/export/).

``case_graph(name)`` gives the IR (with weights and calibrated activation ranges) of:

- ``w8a8``, ``w4a4``, ``w2a2``: a small CNN (conv-bn-relu, depthwise conv-bn-relu, 1x1 conv, global pool,
  linear) with every conv and the linear layer quantized at those bits;
- ``mixed``: a derived subnet of the ``tiny`` supernet preset with 2-, 4- and 8-bit weights and activations
  (grouped convs, channel shuffle, a residual add, 1x1 projections); ``mixed_mse`` the same with MSE-clipped
  activation ranges.

Activation ranges are calibrated by forward passes in train mode; the graphs come mapped on
``bitfusion-eyeriss``.
"""

from __future__ import annotations

import functools

import attrs
import numpy as np
import torch
from jaqc.ir import LayerGraph, LayerKind, QuantSpec
from jaqc.passes import PassManager, parse_pipeline
from torch import nn

from jaqc.frontend import import_model
from jaqc.hw.accelerators import PRESETS
from jaqc.nn.config import QuantizerConfig, supernet_preset
from jaqc.nn.subnet import DerivedSubnet, build_subnet
from jaqc.nn.tracing import trace_model

UNIFORM_CASES = ("w8a8", "w4a4", "w2a2")
MIXED_OPS = ("k3_e1_g2", "skip", "skip", "k3_e1", "skip")
MIXED_BITS = ((2, 8), (4, 2), (8, 8), (8, 4), (2, 2))


class SmallNet(nn.Module):
    """Stem conv-bn-relu, depthwise conv-bn-relu, pointwise conv, global pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.dw_bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = torch.relu(self.dw_bn(self.dw(x)))
        x = self.pw(x).mean((2, 3))
        return self.fc(x)


def _calibrate(model: nn.Module, shape: tuple[int, ...], seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(3):
            model.train()(torch.randn(shape, generator=gen))
    return model.eval()


@functools.cache
def _case_graph(name: str, mapped: bool) -> LayerGraph:
    if mapped:  # mapped by BatchTile on bitfusion-eyeriss, so exports need not map it again
        graph = _case_graph(name, False).clone()
        graph.accelerator = PRESETS["bitfusion-eyeriss"]
        return PassManager(parse_pipeline("batchtile")).run(graph).graph
    if name in ("mixed", "mixed_mse"):
        torch.manual_seed(0)
        config = supernet_preset("tiny")
        if name == "mixed_mse":  # activation ranges clipped by MSE (a running factor per quantizer)
            quantizer = QuantizerConfig(activation_clipping="mse")
            config = attrs.evolve(config, quant=attrs.evolve(config.quant, quantizer=quantizer))
        subnet = _calibrate(DerivedSubnet(config, MIXED_OPS, MIXED_BITS), (16, 1, 16, 16), 1)
        return trace_model(subnet, (1, 1, 16, 16), name=name)
    bits = {"w8a8": (8, 8), "w4a4": (4, 4), "w2a2": (2, 2)}[name]
    torch.manual_seed(1)
    plain = import_model(SmallNet().eval(), (1, 3, 8, 8), name=name)
    for layer in plain.layers_of(LayerKind.CONV2D, LayerKind.LINEAR):
        layer.quant = QuantSpec(*bits)
    model = _calibrate(build_subnet(plain), (16, 3, 8, 8), 2)
    return trace_model(model, (1, 3, 8, 8), name=name)


def case_graph(name: str, mapped: bool = True) -> LayerGraph:
    """A fresh copy of the named case's IR (mapped on ``bitfusion-eyeriss`` unless ``mapped`` is false)."""
    return _case_graph(name, mapped).clone()


def inputs_for(graph: LayerGraph, count: int = 8) -> list[np.ndarray]:
    """``count`` random inputs of the graph's input shape (fixed seeds)."""
    shape = graph.inputs()[0].output_shape.dims
    return [np.random.default_rng(i).standard_normal(shape).astype(np.float32) for i in range(count)]


def torch_outputs(graph: LayerGraph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The eval-mode PyTorch model of ``graph`` on ``inputs``."""
    model = build_subnet(graph).eval()
    with torch.no_grad():
        return [model(torch.from_numpy(x)).numpy() for x in inputs]
