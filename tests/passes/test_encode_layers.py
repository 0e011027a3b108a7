"""encode-layers: the seven fields, normalisation, and unchanged re-runs."""

from __future__ import annotations

import math

import pytest
from jaqc.ir import IRError, OperatorVector, graph_from_json, graph_to_json, parse, print_graph
from jaqc.passes import PassContext
from jaqc.passes.encode_layers import EncodeLayers, encoded_layers

TEXT = """%x = input : [1,3,32,32]
%stem = conv2d[k=3,p=1](%x) : [1,3,32,32]->[1,16,32,32]
%dw = conv2d[k=5,s=2,p=2,g=16](%stem) : w2a8 [1,16,32,32]->[1,16,16,16]
%gap = global_avgpool(%dw) : [1,16,16,16]->[1,16]
%fc = linear(%gap) : w4af [1,16]->[1,10]
"""


def test_vectors_and_round_trips() -> None:
    g = parse(TEXT)
    assert EncodeLayers().run(g, PassContext()).changed
    assert [x.name for x in encoded_layers(g)] == ["stem", "dw", "fc"]
    assert g["stem"].op_vector.raw() == (3, 1, 32, 3, 16, 8, 8)
    assert g["dw"].op_vector.raw() == (5, 2, 16, 1, 16, 8, 2)
    assert g["fc"].op_vector.raw() == (1, 1, 1, 16, 10, 8, 4)
    assert g["dw"].op_vector.normalized() == pytest.approx((5 / 7, 1.0, 0.5, 0.0, 4 / 11, 1.0, 0.25))
    text = print_graph(g)
    assert "enc{k=5,s=2,oh=16,ic=1,oc=16,a=8,w=2}" in text
    assert print_graph(parse(text)) == text
    assert print_graph(graph_from_json(graph_to_json(g))) == text
    assert not EncodeLayers().run(g, PassContext()).changed


def test_vector_validation() -> None:
    with pytest.raises(IRError, match="operator vector field out_rows must be >= 1"):
        OperatorVector(kernel=1, stride=1, out_rows=0, in_channels=1, out_channels=1, a_bits=8, w_bits=8)
    v = OperatorVector(kernel=7, stride=2, out_rows=224, in_channels=2048, out_channels=1984, a_bits=8, w_bits=8)
    assert all(0 <= x <= 1.01 for x in v.normalized()) and math.isclose(v.normalized()[3], 1.0)
