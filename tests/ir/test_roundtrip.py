"""Printer/parser and JSON round trips (hypothesis), plus the exact text of known lines."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from ir_strategies import graphs
from jaqc.ir import (
    Conv2dParams,
    Layer,
    LayerGraph,
    LayerKind,
    Mapping,
    QuantSpec,
    graph_from_json,
    graph_to_json,
    load_graph,
    parse,
    print_graph,
    save_graph,
    verify,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(graphs())
def test_strategy_graphs_verify(g: LayerGraph) -> None:
    verify(g)


@SETTINGS
@given(graphs())
def test_text_round_trip(g: LayerGraph) -> None:
    text = print_graph(g)
    again = parse(text)
    assert print_graph(again) == text
    verify(again)


@SETTINGS
@given(graphs(weights=True))
def test_json_round_trip_is_exact(g: LayerGraph) -> None:
    data = json.loads(json.dumps(graph_to_json(g)))
    again = graph_from_json(data)
    assert print_graph(again) == print_graph(g)
    for layer in g:
        for key, array in layer.weights.items():
            restored = again[layer.name].weights[key]
            assert restored.dtype == array.dtype
            assert np.array_equal(restored, array)


def test_design_example_line() -> None:
    g = LayerGraph("b3")
    g.add(Layer(name="b3.pw1", kind="input", output_shape=(1, 96, 16, 16)))
    g.add(
        Layer(
            name="b3.dw",
            kind=LayerKind.CONV2D,
            inputs=["b3.pw1"],
            input_shapes=[(1, 96, 16, 16)],
            output_shape=(1, 96, 8, 8),
            params=Conv2dParams(kernel=5, stride=2, padding=2, groups=96),
            quant=QuantSpec(4, 8),
            mapping=Mapping(tile=(1, 8, 8, 1, 16), loop_order=["OC", "OH", "OW", "IC", "B"]),
        )
    )
    assert print_graph(g).splitlines()[-1] == (
        "%b3.dw = conv2d[k=5,s=2,p=2,g=96](%b3.pw1) : w4a8 [1,96,16,16]->[1,96,8,8] "
        "tile{b=1,ow=8,oh=8,ic=1,oc=16} order=oc>oh>ow>ic>b"
    )


def test_printing_is_independent_of_insertion_order() -> None:
    def build(order: list[str]) -> LayerGraph:
        g = LayerGraph("g")
        g.add(Layer(name="x", kind="input", output_shape=(1, 4, 4, 4)))
        for name in order:
            g.add(
                Layer(
                    name=name,
                    kind="relu",
                    inputs=["x"],
                    input_shapes=[(1, 4, 4, 4)],
                    output_shape=(1, 4, 4, 4),
                )
            )
        return g

    assert print_graph(build(["b", "a", "c"])) == print_graph(build(["c", "b", "a"]))


def test_save_and_load_both_forms(tmp_path) -> None:
    g = LayerGraph("g")
    g.add(Layer(name="x", kind="input", output_shape=(1, 2, 3, 3)))
    g.add(
        Layer(
            name="c",
            kind="conv2d",
            inputs=["x"],
            input_shapes=[(1, 2, 3, 3)],
            output_shape=(1, 4, 3, 3),
            params=Conv2dParams(kernel=1),
            weights={"weight": np.arange(8, dtype=np.float32).reshape(4, 2, 1, 1)},
        )
    )
    for suffix in (".json", ".jaqc"):
        path = save_graph(g, tmp_path / f"g{suffix}")
        back = load_graph(path)
        assert print_graph(back) == print_graph(g)
    assert np.array_equal(load_graph(tmp_path / "g.json")["c"].weights["weight"], g["c"].weights["weight"])
    assert load_graph(tmp_path / "g.jaqc")["c"].weights == {}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
