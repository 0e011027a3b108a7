"""Supernet and derived subnets in the IR: trace -> extract-subnet -> build -> trace round trips."""

from __future__ import annotations

import re

import pytest
import torch
from jaqc.ir import LayerKind, QuantSpec, parse, print_graph, verify
from jaqc.passes import PassContext, PassManager, parse_pipeline

from jaqc.core import JaqcError
from jaqc.nn.config import supernet_preset
from jaqc.nn.subnet import DerivedSubnet, build_subnet
from jaqc.nn.supernet import Supernet
from jaqc.nn.supernet_ir import trace_supernet
from jaqc.nn.tracing import trace_model

CONFIG = supernet_preset("tiny")
OPS = ("k3_e1", "k3_e1_g2", "skip", "k5_e6", "skip")
BITS = ((4, 4), (2, 8), (8, 8), (4, 2), (2, 2))


def _strip_source(text: str) -> str:
    return re.sub(r" ; .*", "", text)


def _calibrated(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.nn.Module:
    with torch.no_grad():
        model.train()(torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
    return model.eval()


def test_derived_subnet_trace_build_trace() -> None:
    model = _calibrated(DerivedSubnet(CONFIG, OPS, BITS), (8, 1, 16, 16))
    graph = trace_model(model, (2, 1, 16, 16))
    verify(graph)
    convs = {x.name: x for x in graph.layers_of(LayerKind.CONV2D)}
    assert convs["blocks.1.expand"].quant == QuantSpec(2, 8) and convs["blocks.1.expand"].params.groups == 2
    assert convs["blocks.3.dw"].params.kernel == (5, 5) and convs["blocks.3.dw"].quant == QuantSpec(4, 2)
    assert convs["stem.0"].quant is None  # stem stays in floating point by default
    assert not [n for n in convs if n.startswith("blocks.2.")]  # skip at 16->16, stride 1: identity
    assert convs["blocks.4.proj"].params.kernel == (1, 1)  # skip at 24->32: a 1x1 projection
    rebuilt = build_subnet(graph)
    again = trace_model(rebuilt, (2, 1, 16, 16))
    assert _strip_source(print_graph(again)) == _strip_source(print_graph(graph))
    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_supernet_trace_extract_build_trace() -> None:
    supernet = Supernet(CONFIG).eval()
    with torch.no_grad():
        supernet.arch.alpha.copy_(torch.randn(supernet.arch.alpha.shape, generator=torch.Generator().manual_seed(1)))
        supernet.arch.beta_w.copy_(torch.randn(supernet.arch.beta_w.shape, generator=torch.Generator().manual_seed(2)))
    graph = trace_supernet(supernet)
    verify(graph)
    choices = graph.layers_of(LayerKind.CHOICE)
    assert len(choices) == CONFIG.num_blocks
    probs = supernet.arch.alpha_probs().detach()
    for i, layer in enumerate(choices):
        assert [c.op for c in layer.choice.candidates] == list(CONFIG.candidates)
        assert [c.alpha for c in layer.choice.candidates] == pytest.approx(probs[i].tolist())
        assert layer.csq_channels is not None  # the default search mode is CSQ
    text = print_graph(graph)
    assert print_graph(parse(text)) == text
    derived = PassManager(parse_pipeline("extract-subnet"), verify_each=True).run(graph.clone(), PassContext()).graph
    expected_ops = [CONFIG.candidates[int(i)] for i in probs.argmax(-1)]
    for i, op in enumerate(expected_ops):
        names = [n for n in derived.names() if n.startswith(f"blocks.{i}.")]
        assert bool(names) == (op != "skip" or CONFIG.block_specs()[i][:2][0] != CONFIG.block_specs()[i][1])
    model = build_subnet(derived)
    again = trace_model(model, (1, 1, 16, 16))
    assert _strip_source(print_graph(again)) == _strip_source(print_graph(derived))


def test_build_subnet_refuses_choice_layers() -> None:
    graph = trace_supernet(Supernet(CONFIG).eval())
    with pytest.raises(JaqcError, match="run the extract-subnet pass first"):
        build_subnet(graph)
