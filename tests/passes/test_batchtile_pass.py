"""The batchtile pass over an imported network: annotations, consistency with the cost model, errors."""

from __future__ import annotations

import pytest
import zoo_models
from jaqc.ir import LayerKind, parse, print_graph, verify
from jaqc.passes import PassContext, PassError, PassManager, make_pass, parse_pipeline
from jaqc.passes.batchtile import BatchTile

from jaqc.frontend import import_model
from jaqc.hw.accelerators import PRESETS
from jaqc.hw.mapping.batchtile import map_layer
from jaqc.hw.model.lowering import layer_problem


@pytest.fixture(scope="module")
def quantized_net():
    graph = import_model(zoo_models.fbnet_like(), (1, 3, 32, 32), with_weights=False)
    graph = PassManager(parse_pipeline("fold-batchnorm,annotate-quant{w_bits=4,a_bits=2}")).run(graph).graph
    graph.accelerator = PRESETS["jaq-table2"]
    return graph


@pytest.mark.parametrize("space", ["bitfusion", "jaq"])
def test_every_weighted_layer_gets_its_best_mapping(quantized_net, space: str) -> None:
    graph = quantized_net.clone()
    result = BatchTile(space=space).run(graph, PassContext())
    assert result.changed
    verify(graph)
    weighted = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    assert all(x.mapping is not None and x.cost is not None for x in weighted)
    for layer in weighted[:4] + weighted[-1:]:
        alone = map_layer(layer_problem(graph, layer), graph.accelerator, space, "latency")
        assert alone.mapping == layer.mapping
        assert alone.cost.total_cycles == layer.cost.total_cycles
    again = BatchTile(space=space).run(graph, PassContext())
    assert not again.changed
    text = print_graph(graph)
    assert "tile{" in text and "cost{" in text and print_graph(parse(text)) == text


def test_problem_conversion(quantized_net) -> None:
    stem = quantized_net["stem"]
    p = layer_problem(quantized_net, stem)
    assert (p.batch, p.in_channels, p.out_channels, p.in_h, p.kernel, p.pad, p.im2col) == (1, 3, 16, 32, 3, 1, True)
    assert (p.w_bits, p.a_bits) == (8, 8)
    dw = quantized_net["blocks.1.dw"]
    p = layer_problem(quantized_net, dw)
    assert (p.groups, p.stride, p.w_bits, p.a_bits, p.im2col) == (48, 2, 4, 2, False)
    fc = layer_problem(quantized_net, quantized_net["fc"])
    assert (fc.in_channels, fc.out_channels, fc.in_h, fc.kernel) == (64, 10, 1, 1)


def test_errors() -> None:
    g = parse("%x = input : [1,3,8,8]\n%c = conv2d[k=3x1,p=1x0](%x) : [1,3,8,8]->[1,4,8,8]\n")
    with pytest.raises(PassError, match="batchtile: the graph has no accelerator"):
        BatchTile().run(g, PassContext())
    g.accelerator = PRESETS["bitfusion-eyeriss"]
    with pytest.raises(PassError, match=r"layer %c has a non-square kernel"):
        BatchTile().run(g, PassContext())
    with pytest.raises(PassError, match="objective must be one of latency, energy, edp"):
        make_pass("batchtile", {"objective": "speed"})
