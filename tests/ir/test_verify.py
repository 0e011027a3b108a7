"""verify() reports each broken invariant with the layer's name."""

from __future__ import annotations

import numpy as np
import pytest
from jaqc.ir import Candidate, Choice, LayerGraph, Mapping, VerifyError, parse, verify
from jaqc.ir.layer import Layer

BASE = """graph g
%x = input : [1,4,8,8]
%c = conv2d[k=3,p=1,g=2](%x) : w4a8 [1,4,8,8]->[1,8,8,8]
%r = relu(%c) : [1,8,8,8]->[1,8,8,8]
%gap = global_avgpool(%r) : [1,8,8,8]->[1,8]
%fc = linear(%gap) : [1,8]->[1,10]
"""


def test_valid_graph_passes() -> None:
    assert verify(parse(BASE)) is not None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "[1,4,8,8]->[1,8,8,8]",
            "[1,4,8,8]->[1,8,4,4]",
            r"%c: output shape \[1,8,4,4\] does not match conv2d rule \[1,8,8,8\]",
        ),
        (
            "%r = relu(%c) : [1,8,8,8]",
            "%r = relu(%c) : [1,8,8,9]",
            r"%r: input %c has shape \[1,8,8,8\] but the layer expects \[1,8,8,9\]",
        ),
        ("g=2", "g=3", r"%c: input channels 4 are not divisible by groups 3"),
        ("[1,8]->[1,10]", "[1,8]->[2,10]", r"%fc: output shape"),
    ],
)
def test_shape_violations(old: str, new: str, message: str) -> None:
    with pytest.raises(VerifyError, match=message):
        verify(parse(BASE.replace(old, new)))


def test_mapping_tile_larger_than_dimension() -> None:
    g = parse(BASE)
    g["c"].mapping = Mapping(tile=(1, 8, 8, 4, 4), loop_order=["B", "OW", "OH", "IC", "OC"])
    with pytest.raises(VerifyError, match=r"%c: tile IC=4 is larger than its dimension 2"):
        verify(g)


def test_mapping_extents_follow_the_graphs_hardware_model() -> None:
    """%c has 2 groups of 4 output channels: OC spans one group under the simulator, all 8 under deployment."""
    g = parse(BASE)
    g["c"].mapping = Mapping(tile=(1, 8, 8, 2, 8), loop_order=["B", "OW", "OH", "IC", "OC"])
    for model in (None, "simulator"):
        g.hw_model = model
        with pytest.raises(VerifyError, match=r"%c: tile OC=8 is larger than its dimension 4"):
            verify(g)
    g.hw_model = "deployment"
    assert verify(g) is not None
    g["c"].mapping = Mapping(tile=(1, 8, 8, 2, 2), loop_order=["B", "OW", "OH", "IC", "OC"])
    assert verify(g) is not None  # 2 divides the 4 channels of a group
    g2 = parse(BASE.replace("[1,4,8,8]->[1,8,8,8]", "[1,4,8,8]->[1,12,8,8]").replace("[1,8,8,8]", "[1,12,8,8]")
               .replace("[1,8]->[1,10]", "[1,12]->[1,10]").replace("->[1,8]", "->[1,12]"))  # fmt: skip
    g2.hw_model = "deployment"
    g2["c"].mapping = Mapping(tile=(1, 8, 8, 2, 4), loop_order=["B", "OW", "OH", "IC", "OC"])
    with pytest.raises(VerifyError, match=r"%c: tile OC=4 is not group-aligned .* 6 output channels per group"):
        verify(g2)


def test_hw_model_round_trips_and_is_validated() -> None:
    from jaqc.ir import graph_from_json, graph_to_json, print_graph
    from jaqc.ir.errors import IRError, ParseError

    g = parse(BASE)
    assert g.hw_model is None and "hw_model" not in graph_to_json(g) and "hw_model" not in print_graph(g)
    g.hw_model = "deployment"
    text = print_graph(g)
    assert "\nhw_model deployment\n" in text
    assert parse(text).hw_model == "deployment" and parse(text).clone().hw_model == "deployment"
    assert graph_from_json(graph_to_json(g)).hw_model == "deployment"
    with pytest.raises(ParseError, match="hw_model: unknown hardware model 'exact'"):
        graph_from_json({**graph_to_json(g), "hw_model": "exact"})
    with pytest.raises(ParseError, match="unknown hardware model 'exact'"):
        parse(text.replace("hw_model deployment", "hw_model exact"))
    with pytest.raises(IRError, match="unknown hardware model"):
        LayerGraph("g", hw_model="exact")


def test_weight_shape_and_csq_channels() -> None:
    g = parse(BASE)
    g["c"].weights["weight"] = np.zeros((8, 4, 3, 3), np.float32)
    g["r"].csq_channels = (1, 9)
    with pytest.raises(VerifyError) as info:
        verify(g)
    text = str(info.value)
    assert "%c: weight 'weight' has shape [8, 4, 3, 3], expected [8, 2, 3, 3]" in text
    assert "%r: csq channels must be sorted, unique and in [0, 8), got [1, 9]" in text


def _skip_graph(shape: tuple[int, ...]) -> LayerGraph:
    return parse(
        f"%in = input : [{','.join(map(str, shape))}]\n%out = output(%in) : [{','.join(map(str, shape))}]->[{','.join(map(str, shape))}]\n"  # noqa: E501
    )


def test_choice_probabilities_and_candidate_shapes() -> None:
    g = parse(BASE)
    cands = [
        Candidate("skip", _skip_graph((1, 8, 8, 8)), alpha=0.7, beta_w=(0.5, 0.5, 0.0), beta_a=(1.0, 0.0)),
        Candidate("bad", _skip_graph((1, 8, 4, 4)), alpha=0.7),
    ]
    g.add(
        Layer(
            name="b",
            kind="choice",
            inputs=["r"],
            input_shapes=[(1, 8, 8, 8)],
            output_shape=(1, 8, 8, 8),
            choice=Choice(cands),
        )
    )
    with pytest.raises(VerifyError) as info:
        verify(g)
    text = str(info.value)
    assert "alpha over candidates is not a probability vector" in text
    assert "candidate skip beta_a has 2 entries, expected 3" in text
    assert "candidate bad input shape [1,8,4,4] differs from [1,8,8,8]" in text


def test_operand_count() -> None:
    with pytest.raises(VerifyError, match="add takes 2 input"):
        verify(parse(BASE + "%s = add(%fc) : [1,10]->[1,10]\n"))


def test_slice_layers_verify_round_trip_and_reject_bad_bounds() -> None:
    from jaqc.ir import SliceParams, print_graph
    from jaqc.ir.errors import IRError

    text = """graph g
%x = input : [1,8,4,4]
%a = slice[end=3](%x) : [1,8,4,4]->[1,3,4,4]
%b = slice[start=3,end=8](%x) : [1,8,4,4]->[1,5,4,4]
"""
    g = parse(text)
    assert verify(g) is not None and print_graph(g) == text
    assert g["b"].params == SliceParams(axis=1, start=3, end=8)
    with pytest.raises(VerifyError, match=r"%b: .*slice 3:9 of axis 1 is outside the input \[1,8,4,4\]"):
        verify(parse(text.replace("end=8](%x) : [1,8,4,4]->[1,5,4,4]", "end=9](%x) : [1,8,4,4]->[1,6,4,4]")))
    with pytest.raises(IRError, match="slice end 2 must be greater than its start 3"):
        SliceParams(start=3, end=2)
