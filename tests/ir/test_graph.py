"""LayerGraph edits, order, copies and subgraphs."""

from __future__ import annotations

import numpy as np
import pytest
from jaqc.ir import IRError, Layer, LayerKind, parse, print_graph, verify

TEXT = """graph g
%x = input : [1,4,8,8]
%a = relu(%x) : [1,4,8,8]->[1,4,8,8]
%b = sigmoid(%x) : [1,4,8,8]->[1,4,8,8]
%m = add(%a, %b) : [1,4,8,8],[1,4,8,8]->[1,4,8,8]
%out = output(%m) : [1,4,8,8]->[1,4,8,8]
"""


def test_topo_order_breaks_ties_by_name() -> None:
    g = parse(TEXT)
    assert g.names() == ["x", "a", "b", "m", "out"]
    assert [x.name for x in g.producers("m")] == ["a", "b"]
    assert [x.name for x in g.consumers("x")] == ["a", "b"]
    assert [x.name for x in g.inputs()] == ["x"] and [x.name for x in g.outputs()] == ["out"]


def test_replace_with_rename_rewires_consumers() -> None:
    g = parse(TEXT)
    g.replace(
        "a",
        Layer(name="a2", kind="relu6", inputs=["x"], input_shapes=[(1, 4, 8, 8)], output_shape=(1, 4, 8, 8)),
    )
    assert g["m"].inputs == ("a2", "b")
    assert "a" not in g
    verify(g)


def test_replace_rejects_cycles() -> None:
    g = parse(TEXT)
    with pytest.raises(IRError, match="cyclic"):
        g.replace(
            "a",
            Layer(
                name="a",
                kind="add",
                inputs=["x", "m"],
                input_shapes=[(1, 4, 8, 8)] * 2,
                output_shape=(1, 4, 8, 8),
            ),
        )


def test_remove_forwards_consumers() -> None:
    g = parse(TEXT)
    g.remove("a")
    assert g["m"].inputs == ("x", "b")
    verify(g)
    with pytest.raises(IRError, match="has 2 inputs and consumers"):
        g.remove("m")
    g.remove("m", forward_to="b")
    assert g["out"].inputs == ("b",)


def test_clone_is_independent() -> None:
    g = parse(TEXT)
    g["a"].weights["w"] = np.zeros(3)
    c = g.clone()
    c["a"].meta["x"] = 1
    c.remove("a", forward_to="x")
    assert "a" in g and g["a"].meta == {} and print_graph(g) == TEXT


def test_subgraph_turns_outside_operands_into_inputs() -> None:
    g = parse(TEXT)
    sub = g.subgraph(["m", "out"])
    assert sorted(sub.names()) == ["a", "b", "m", "out"]
    assert sub["a"].kind is LayerKind.INPUT and sub["a"].output_shape == g["a"].output_shape
    verify(sub)
