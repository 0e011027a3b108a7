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


@pytest.mark.parametrize("clipping", ["mse", "pact"])
def test_subnet_clipping_survives_the_ir(clipping: str) -> None:
    """A subnet whose quantizers clip by MSE (or PACT) is rebuilt from its IR with the same clipping, whatever
    quantizer config build_subnet is given, and computes the same outputs."""
    import attrs

    from jaqc.nn.config import QuantizerConfig

    config = attrs.evolve(
        CONFIG, quant=attrs.evolve(CONFIG.quant, quantizer=QuantizerConfig(activation_clipping=clipping))
    )
    model = _calibrated(DerivedSubnet(config, OPS, BITS), (8, 1, 16, 16))
    graph = trace_model(model, (2, 1, 16, 16))
    key = "act_quant.clip_factor" if clipping == "mse" else "act_quant.clip_hi"
    assert key in graph["blocks.1.expand"].weights
    rebuilt = build_subnet(graph)
    assert rebuilt.get_submodule("blocks.1.expand").act_quant.config.activation_clipping.value == clipping
    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)
    plain = build_subnet(trace_model(_calibrated(DerivedSubnet(CONFIG, OPS, BITS), (8, 1, 16, 16)), (2, 1, 16, 16)))
    assert plain.get_submodule("blocks.1.expand").act_quant.config.activation_clipping.value == "minmax"


def test_quantization_disabled_computes_the_float_network() -> None:
    from jaqc.nn.subnet import quantization_disabled

    torch.manual_seed(0)
    quantized = DerivedSubnet(CONFIG, OPS, BITS)
    float_net = DerivedSubnet(CONFIG, OPS, [None] * len(OPS))
    float_net.load_state_dict(quantized.state_dict(), strict=False)  # the same weights, no quantizers
    x = torch.randn(8, 1, 16, 16)
    quantizers = [m for m in quantized.modules() if m.__class__.__name__ == "ActivationQuantizer"]
    with quantization_disabled(quantized):
        out = quantized.train()(x)
    torch.testing.assert_close(out, float_net.train()(x), rtol=0, atol=0)
    assert quantizers and not any(bool(q.initialized) for q in quantizers)  # nothing observed in float
    assert not torch.equal(quantized(x), out)  # quantized again afterwards
    assert all(bool(q.initialized) for q in quantizers)


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
