"""Values are checked where they enter the IR: no truncation, no coercion of bools or strings, no NaN or
infinity, wrong JSON types at every level named by their field path (issue #13, item 1)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from jaqc.ir import (
    AcceleratorConfig,
    Conv2dParams,
    IRError,
    LayerCost,
    Mapping,
    ParseError,
    QuantSpec,
    Shape,
    Source,
    graph_from_json,
    graph_to_json,
    load_graph,
    parse,
)
from jaqc.ir.values import to_flag, to_int, to_real

GOOD = """graph g
accelerator pe_rows=4 pe_cols=4 wbuf_kb=8 ibuf_kb=8 obuf_kb=8 dataflow=WS dram_bits_per_cycle=128 freq_mhz=500.0 name=""
%x = input : [1,3,8,8] ; fx=x
%c = conv2d[k=3,p=1](%x) : w4a8 [1,3,8,8]->[1,8,8,8] tile{b=1,ow=8,oh=8,ic=3,oc=4} order=b>ow>oh>ic>oc \
cost{compute=10,stall=2,energy_nJ=1.5} ; fx=c module=c
%r = relu(%c) : [1,8,8,8]->[1,8,8,8]
"""

ACC = {"pe_rows": 4, "pe_cols": 4, "wbuf_kb": 8, "ibuf_kb": 8, "obuf_kb": 8}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3), (np.int64(7), 7), (16.0, 16), (np.float32(2.0), 2)],
)
def test_integers_accept_integral_values(value: object, expected: int) -> None:
    assert to_int(value, "n") == expected and type(to_int(value, "n")) is int


@pytest.mark.parametrize("value", [1.5, True, False, np.bool_(True), "16", None, math.nan, math.inf, -math.inf, [1]])
def test_integers_refuse_everything_else(value: object) -> None:
    with pytest.raises(IRError, match=r"^n must be an integer, got "):
        to_int(value, "n")


def test_integer_ranges() -> None:
    with pytest.raises(IRError, match=r"n must be >= 1, got 0"):
        to_int(0, "n", 1)
    with pytest.raises(IRError, match=r"n must be <= 2147483647, got 10000000000"):
        to_int(10**10, "n")
    assert to_int(10**10, "n", maximum=None) == 10**10


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1.0", None])
def test_reals_refuse_non_finite_bools_and_strings(value: object) -> None:
    with pytest.raises(IRError, match=r"^x must be a (finite )?number, got "):
        to_real(value, "x")


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_flags_are_bools_only(value: object) -> None:
    with pytest.raises(IRError, match=r"^bias must be true or false, got "):
        to_flag(value, "bias")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pe_cols", 1.5, "accelerator field pe_cols must be an integer, got 1.5"),
        ("ibuf_kb", True, "accelerator field ibuf_kb must be an integer, got True"),
        ("pe_rows", math.nan, "accelerator field pe_rows must be an integer, got nan"),
        ("obuf_kb", math.inf, "accelerator field obuf_kb must be an integer, got inf"),
        ("wbuf_kb", "abc", "accelerator field wbuf_kb must be an integer, got 'abc'"),
        ("freq_mhz", math.nan, "accelerator field freq_mhz must be a finite number, got nan"),
        ("freq_mhz", "fast", "accelerator field freq_mhz must be a number, got 'fast'"),
        ("dataflow", 3, "accelerator field dataflow must be one of WS, OS, RS, got 3"),
        ("name", 7, "accelerator field name must be a string, got 7"),
    ],
)
def test_accelerator_fields_are_not_truncated_or_coerced(field: str, value: object, message: str) -> None:
    with pytest.raises(IRError) as info:
        AcceleratorConfig.from_json({**ACC, field: value}, where="acc.json")
    assert str(info.value) == f"acc.json: {message}"


def test_accelerator_that_is_not_an_object() -> None:
    with pytest.raises(IRError, match=r"^acc: must be an object of accelerator fields, got int 3$"):
        AcceleratorConfig.from_json(3, where="acc")  # type: ignore[arg-type]


def test_ir_value_types_refuse_bad_values() -> None:
    with pytest.raises(IRError, match=re.escape("shape dimension must be an integer, got 2.5")):
        Shape((1, 2.5))
    with pytest.raises(IRError, match=r"shape dimensions must be in 1\.\.2147483647"):
        Shape((10**23, 64, 8, 8))
    with pytest.raises(IRError, match="w_bits must be an integer, got inf"):
        QuantSpec(math.inf, 8)
    with pytest.raises(IRError, match="bias must be true or false, got 'yes'"):
        Conv2dParams(kernel=3, bias="yes")  # type: ignore[arg-type]
    with pytest.raises(IRError, match=re.escape("k must be an integer, got 1.5")):
        Conv2dParams(kernel=1.5)  # type: ignore[arg-type]
    with pytest.raises(IRError, match="energy_nJ must be a finite number, got inf"):
        LayerCost(compute_cycles=1, stall_cycles=0, energy_nJ=math.inf)
    with pytest.raises(IRError, match="mapping tile size of OC must be an integer, got -inf"):
        Mapping.from_json({"tile": {"B": 1, "OW": 1, "OH": 1, "IC": 1, "OC": -math.inf}, "loop_order": "B>OW>OH>IC>OC"})
    with pytest.raises(IRError, match=re.escape("source module must be a string, got 2.0")):
        Source(fx_node="x", module=2.0)  # type: ignore[arg-type]
    assert Conv2dParams(kernel=np.int64(3)).kernel == (3, 3)  # numpy integers (from torch/onnx) are integers


def _doc() -> dict:
    return graph_to_json(parse(GOOD))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(accelerator=3), "graph.accelerator: must be an object of accelerator fields, got int 3"),
        (lambda d: d.update(layers=5), "graph.layers must be a list, got int 5"),
        (lambda d: d.update(name=["g"]), "graph.name must be a string"),
        (lambda d: d["layers"].__setitem__(1, "conv"), "graph.layers[1] must be an object, got str 'conv'"),
        (lambda d: d["layers"][1].update(kind=4), "graph.layers[1]: kind must be a string, got 4"),
        (lambda d: d["layers"][1].update(params=""), "graph.layers[1].params must be an object, got str ''"),
        (lambda d: d["layers"][1].update(quant=[4, 8]), "graph.layers[1].quant must be an object"),
        (lambda d: d["layers"][1]["quant"].update(a_bits=math.nan), "a_bits must be an integer, got nan"),
        (lambda d: d["layers"][1].update(inputs=[["x"]]), "layer inputs must be layer names (strings), got ['x']"),
        (lambda d: d["layers"][1].update(input_shapes=5), "layer input_shapes must be a list, got int 5"),
        (lambda d: d["layers"][1]["output_shape"].__setitem__(0, math.inf), "shape dimension must be an integer"),
        (lambda d: d["layers"][1]["params"].update(s=[math.inf, 1]), "s must be an integer, got inf"),
        (lambda d: d["layers"][1]["params"].update(bias=1), "bias must be true or false, got 1"),
        (lambda d: d["layers"][1]["mapping"]["tile"].update(B=-math.inf), "tile size of B must be an integer"),
        (lambda d: d["layers"][1]["mapping"].update(loop_order=5), "mapping loop_order must be a list"),
        (lambda d: d["layers"][1]["cost"].update(energy_nJ=math.inf), "energy_nJ must be a finite number"),
        (lambda d: d["layers"][1]["cost"].update(extra=1), "unexpected keyword argument 'extra'"),
        (lambda d: d["layers"][1]["source"].update(module=2.0), "source module must be a string, got 2.0"),
        (lambda d: d["layers"][1].update(source="c"), "graph.layers[1].source must be an object"),
        (lambda d: d["layers"][1].update(csq_channels=[0.5]), "csq channel index must be an integer, got 0.5"),
        (lambda d: d["layers"][1].update(weights={"weight": 3}), "graph.layers[1].weights.weight must be an object"),
        (
            lambda d: d["layers"][1].update(weights={"weight": {"dtype": "<f4", "shape": [2], "data": "AAAA"}}),
            "3 bytes of data for shape [2] of <f4 (8)",
        ),
        (
            lambda d: d["layers"][1].update(weights={"weight": {"dtype": "|O", "shape": [1], "data": ""}}),
            "unsupported dtype '|O'",
        ),
    ],
)
def test_json_ir_wrong_types_at_every_level(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = _doc()
    edit(doc)
    with pytest.raises(ParseError) as info:
        graph_from_json(json.loads(json.dumps(doc)))
    assert message in str(info.value)


def test_choice_candidates_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = """graph s
%x = input : [1,4,4,4]
%b = choice(%x) : [1,4,4,4]->[1,4,4,4] bits={2,4,8} {
  candidate a alpha=1.0 {
    %i = input : [1,4,4,4]
    %o = output(%i) : [1,4,4,4]->[1,4,4,4]
  }
}
"""
    doc = graph_to_json(parse(text))
    doc["layers"][1]["choice"]["candidates"][0]["alpha"] = math.nan
    with pytest.raises(ParseError, match=r"candidate alpha must be a finite number, got nan"):
        graph_from_json(doc)
    doc["layers"][1]["choice"]["candidates"] = [None]
    with pytest.raises(ParseError, match=r"graph.layers\[1\].choice.candidates\[0\] must be an object, got NoneType"):
        graph_from_json(doc)
    doc["layers"][1]["choice"]["candidates"] = [{"op": 3, "graph": graph_to_json(parse(text))}]
    with pytest.raises(ParseError, match=r"candidate op must be a string, got 3"):
        graph_from_json(doc)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("pe_cols=4", "pe_cols=1.5", "field pe_cols must be an integer, got '1.5'"),
        ("freq_mhz=500.0", "freq_mhz=nan", "accelerator field freq_mhz must be a finite number, got nan"),
        ("energy_nJ=1.5", "energy_nJ=inf", "energy_nJ must be a finite number, got inf"),
        ("k=3,p=1", "k=3,p=1,g=1.5", "invalid literal for int()"),
    ],
)
def test_text_ir_values(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ParseError) as info:
        parse(GOOD.replace(old, new), source="net.jaqc")
    assert str(info.value).startswith("net.jaqc:") and message in str(info.value)


def test_an_empty_ir_file_is_an_error_not_an_empty_graph(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name, text in (("empty.jaqc", ""), ("blank.jaqc", "\n  \n"), ("empty.json", "")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ParseError, match=rf"{name}"):
            load_graph(tmp_path / name)


def test_deeply_nested_json_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParseError, match=re.escape("deep.json: JSON nested too deeply")):
        load_graph(tmp_path / "deep.json")
