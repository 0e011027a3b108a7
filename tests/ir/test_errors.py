"""Bad IR input: every error names the field, line or layer."""

from __future__ import annotations

import json

import pytest
from jaqc.ir import (
    AcceleratorConfig,
    Conv2dParams,
    IRError,
    Layer,
    LayerGraph,
    Mapping,
    ParseError,
    QuantSpec,
    graph_from_json,
    graph_to_json,
    load_graph,
    parse,
)

GOOD = """graph g
%x = input : [1,3,8,8]
%c = conv2d[k=3,p=1](%x) : w4a8 [1,3,8,8]->[1,8,8,8]
%r = relu(%c) : [1,8,8,8]->[1,8,8,8]
"""


def test_quant_spec_rejects_3_bits() -> None:
    with pytest.raises(IRError, match="w_bits must be one of 2, 4, 8"):
        QuantSpec(3, 8)
    assert str(QuantSpec(None, 4)) == "wfa4"
    assert QuantSpec.parse("w2af") == QuantSpec(2, None)


def test_mapping_validation() -> None:
    with pytest.raises(IRError, match="permutation"):
        Mapping(tile=(1, 1, 1, 1, 1), loop_order=["B", "B", "OH", "IC", "OC"])
    with pytest.raises(IRError, match="tile size of IC must be >= 1"):
        Mapping(tile=(1, 1, 1, 0, 1), loop_order=["B", "OW", "OH", "IC", "OC"])
    with pytest.raises(IRError, match="missing dimension"):
        Mapping(tile={"B": 1, "OW": 1}, loop_order=["B", "OW", "OH", "IC", "OC"])
    m = Mapping.from_json(
        {"tile": {"B": 1, "OW": 7, "OH": 7, "IC": 16, "OC": 16}, "loop_order": ["IC", "OC", "OH", "OW", "B"]}
    )
    assert m.tile_of("ic") == 16 and m.order_string() == "IC>OC>OH>OW>B"
    assert Mapping.from_json(m.to_json()) == m


def test_accelerator_validation() -> None:
    with pytest.raises(IRError, match="pe_rows must be >= 1"):
        AcceleratorConfig(pe_rows=0, pe_cols=4, wbuf_kb=1, ibuf_kb=1, obuf_kb=1)
    with pytest.raises(IRError, match="dataflow must be one of"):
        AcceleratorConfig(pe_rows=1, pe_cols=4, wbuf_kb=1, ibuf_kb=1, obuf_kb=1, dataflow="XS")
    with pytest.raises(IRError, match=r"acc: unknown field\(s\) pe_z"):
        AcceleratorConfig.from_json({"pe_z": 3}, where="acc")


def test_layer_params_must_match_kind() -> None:
    with pytest.raises(IRError, match="kind conv2d needs Conv2dParams"):
        Layer(name="c", kind="conv2d", output_shape=(1, 1, 1, 1))
    with pytest.raises(IRError, match="kind relu takes no parameters"):
        Layer(name="r", kind="relu", output_shape=(1,), params=Conv2dParams(kernel=1))
    with pytest.raises(IRError, match="unknown layer kind 'conv3d'"):
        Layer(name="r", kind="conv3d", output_shape=(1,))
    with pytest.raises(IRError, match="invalid layer name"):
        Layer(name="a b", kind="relu", output_shape=(1,))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("%r = relu(%c)", "%r = relu(%nope)"), r"<text>:4: .*unknown input\(s\) %nope"),
        (GOOD.replace("k=3,p=1", "k=3,q=1"), r"<text>:3: unknown parameter 'q' for conv2d"),
        (GOOD.replace("w4a8", "w3a8"), r"<text>:3: .*w_bits must be one of"),
        (GOOD.replace("[1,3,8,8]->", "[1,3,8,8]=>"), r"<text>:3: "),
        (GOOD + "garbage\n", r"<text>:5: expected a layer line"),
        (GOOD + "%r = relu(%c) : [1,8,8,8]->[1,8,8,8]\n", r"<text>:5: .*already has a layer %r"),
        (
            GOOD.replace(
                "%c = conv2d[k=3,p=1](%x) : w4a8 [1,3,8,8]->[1,8,8,8]",
                "%c = conv2d[k=3,p=1](%x) : w4a8 tile{b=1}",
            ),
            r"<text>:3: ",
        ),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(text)


def test_parse_unterminated_choice_block() -> None:
    text = (
        GOOD
        + "%b = choice(%r) : [1,8,8,8]->[1,8,8,8] bits={2,4,8} {\n  candidate skip {\n    %in = input : [1,8,8,8]\n"
    )
    with pytest.raises(ParseError, match=r"missing '}'|unterminated"):
        parse(text)


def test_json_errors_name_the_field(tmp_path) -> None:
    g = parse(GOOD)
    data = graph_to_json(g)
    data["layers"][1]["params"]["k"] = 0
    with pytest.raises(ParseError, match=r"graph.layers\[1\].params: k must be >= 1"):
        graph_from_json(data)
    data = graph_to_json(g)
    del data["layers"][2]["output_shape"]
    with pytest.raises(ParseError, match=r"graph.layers\[2\]: missing field 'output_shape'"):
        graph_from_json(data)
    with pytest.raises(ParseError, match="unsupported jaqc IR version 99"):
        graph_from_json({**graph_to_json(g), "version": 99})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ParseError, match=r"bad.json:1: invalid JSON"):
        load_graph(bad)
    with pytest.raises(IRError, match="no such file"):
        load_graph(tmp_path / "missing.jaqc")
    (tmp_path / "doc.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ParseError, match="not a jaqc IR document"):
        load_graph(tmp_path / "doc.json")


def test_graph_edit_errors() -> None:
    g = parse(GOOD)
    with pytest.raises(IRError, match="has no layer %zz"):
        g["zz"]
    with pytest.raises(IRError, match="already has a layer %c"):
        g.add(Layer(name="c", kind="relu", inputs=["x"], input_shapes=[(1, 3, 8, 8)], output_shape=(1, 3, 8, 8)))
    with pytest.raises(IRError, match="cannot rename %c to %r"):
        g.replace(
            "c",
            Layer(name="r", kind="relu", inputs=["x"], input_shapes=[(1, 3, 8, 8)], output_shape=(1, 3, 8, 8)),
        )
    assert isinstance(g, LayerGraph)
