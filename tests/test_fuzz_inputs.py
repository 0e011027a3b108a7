"""Fuzzing the file formats a user hands jaqc (issue #13, item 7): IR text, IR JSON, accelerator files and cost
files, each mutated at random (any value at any depth replaced by a hostile one, fields deleted, tokens and lines
of the text form replaced). Whatever the input, reading it and using what was read either works or raises the
project's error type (``JaqcError``, printed by the CLI as one line with exit code 2): never another exception.
Bounded: a fixed number of examples per format, no deadline."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jaqc.ir import graph_to_json, load_graph, parse, print_graph, verify

from jaqc.core import JaqcError
from jaqc.hw.accelerators import load_accelerator
from jaqc.hw.reference.cost_eval import evaluate_file

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

TEXT = """graph fuzz
accelerator pe_rows=4 pe_cols=4 wbuf_kb=8 ibuf_kb=8 obuf_kb=8 dataflow=WS dram_bits_per_cycle=128 \
freq_mhz=500.0 name="a"
hw_model deployment
%x = input : [1,3,8,8] ; fx=x
%c = conv2d[k=3,p=1](%x) : w4a8 [1,3,8,8]->[1,8,8,8] tile{b=1,ow=8,oh=8,ic=3,oc=4} order=b>ow>oh>ic>oc \
cost{compute=10,stall=2,energy_nJ=1.5} csq{0,2} ; fx=c module=c
%b = batchnorm[eps=1e-05](%c) : [1,8,8,8]->[1,8,8,8]
%r = relu(%b) : [1,8,8,8]->[1,8,8,8]
%ch = choice(%r) : [1,8,8,8]->[1,8,8,8] bits={2,4,8} {
  candidate k3 alpha=0.25 beta_w={0.2,0.3,0.5} beta_a={0.2,0.3,0.5} {
    %i = input : [1,8,8,8]
    %dw = conv2d[k=3,p=1,g=8](%i) : w2a4 [1,8,8,8]->[1,8,8,8]
    %o = output(%dw) : [1,8,8,8]->[1,8,8,8]
  }
  candidate skip alpha=0.75 {
    %i = input : [1,8,8,8]
    %o = output(%i) : [1,8,8,8]->[1,8,8,8]
  }
}
%p = global_avgpool(%ch) : [1,8,8,8]->[1,8,1,1]
%f = flatten(%p) : [1,8,1,1]->[1,8]
%fc = linear(%f) : w8a8 [1,8]->[1,10] tile{b=1,ow=1,oh=1,ic=8,oc=10} order=ic>oc>b>ow>oh
%out = output(%fc) : [1,10]->[1,10]
"""

ACCEL = {"pe_rows": 4, "pe_cols": 4, "wbuf_kb": 8, "ibuf_kb": 8, "obuf_kb": 8, "dataflow": "OS", "name": "a"}
LAYER = {"name": "l", "batch": 1, "ic": 8, "oc": 8, "ih": 6, "iw": 6, "k": 3, "stride": 1, "pad": 1, "groups": 1,
         "wbits": 4, "abits": 4, "im2col": False}  # fmt: skip
MAPPING = {"tile": {"B": 1, "OW": 6, "OH": 6, "IC": 8, "OC": 4}, "loop_order": ["B", "OW", "OH", "IC", "OC"]}
REFERENCE = {
    "cycles": {"total": 10, "stall": 2, "compute": 8},
    "access_bits": {"dram_read": 8},
    "energy_nJ": {"total": 1.0},
}
COST_FILE = {"cases": [{"id": "c", "layer": LAYER, "accelerator": ACCEL, "optimized": {"mapping": MAPPING, **REFERENCE},
                        "fixed_mappings": [{"kind": "ws", "mapping": MAPPING}]}]}  # fmt: skip

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 3, 16, 2**31, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.5, 2.0, math.nan, math.inf, -math.inf, 1e23]),
    st.text(max_size=6),
    st.sampled_from(["abc", "", "WS", "B>OW>OH>IC>OC", "conv2d", "x"]),
    st.lists(st.integers(min_value=-3, max_value=9), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(min_value=-2, max_value=9), max_size=2),
    st.just([[1]]),
)
DELETE = object()


def json_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON document (keys and indexes), the root first (scripts/hostile_inputs.py uses it too)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += json_paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to three values replaced by hostile ones (or deleted, for object fields)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(json_paths(doc)))
        if not path:
            return copy.deepcopy(draw(HOSTILE))
        *parents, last = path
        holder = doc
        for key in parents:
            holder = holder[key]
        choices = HOSTILE | st.just(DELETE) if isinstance(holder, dict) else HOSTILE
        value = draw(choices)
        if value is DELETE:
            del holder[last]
        else:
            holder[last] = copy.deepcopy(value)  # (st.just values are shared between examples)
    return doc


TOKENS = ["1.5", "nan", "inf", "-1", "0", "abc", "1e23", "true", "99999999999999999999999", "[]", "{", "}", "=", "%",
          '"', "(", ")", ",", ">", "[1,-3]", "w3a8", "%x", "\u00e9", "\\"]  # fmt: skip


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """The text form with tokens replaced, lines deleted or duplicated."""
    lines = TEXT.splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = draw(st.sampled_from(["token", "token", "token", "delete", "duplicate"]))
        if action == "delete" and len(lines) > 1:
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        else:
            parts = re.split(r"(\W)", lines[i])
            j = draw(st.integers(min_value=0, max_value=len(parts) - 1))
            parts[j] = draw(st.sampled_from(TOKENS) | st.text(max_size=4))
            lines[i] = "".join(parts)
    return "\n".join(lines) + "\n"


def _use_graph(path: Path) -> None:
    """What ``jaqc dump`` and ``jaqc map`` do with a file: read, verify, print both forms, lower to the cost model."""
    from jaqc.hw.model.lowering import layer_problem

    graph = verify(load_graph(path))
    text = print_graph(graph)
    verify(parse(text, source=str(path)))  # a verified graph prints to text that reads back
    json.dumps(graph_to_json(graph), allow_nan=False)
    for layer in graph.topo_order():
        if layer.kind.value in ("conv2d", "linear") and layer.quant is not None and layer.quant.w_bits is not None:
            layer_problem(graph, layer)


def _expect_project_error(action) -> None:  # type: ignore[no-untyped-def]
    try:
        action()
    except JaqcError:
        pass  # the one-line error the CLI prints; anything else propagates and fails the test


def test_the_base_documents_are_valid(tmp_path: Path) -> None:
    """The fuzzers start from documents that load and verify (so the mutations are what is tested)."""
    (tmp_path / "g.jaqc").write_text(TEXT)
    _use_graph(tmp_path / "g.jaqc")
    (tmp_path / "g.json").write_text(json.dumps(graph_to_json(parse(TEXT))))
    _use_graph(tmp_path / "g.json")
    (tmp_path / "a.json").write_text(json.dumps(ACCEL))
    assert load_accelerator(str(tmp_path / "a.json")).name == "a"
    (tmp_path / "c.json").write_text(json.dumps(COST_FILE))
    assert len(evaluate_file(tmp_path / "c.json", False, "jaq", "latency", False)["cases"][0]["evaluations"]) == 2


@FUZZ
@given(doc=mutated(graph_to_json(parse(TEXT))))
def test_fuzz_ir_json(tmp_path_factory: pytest.TempPathFactory, doc: Any) -> None:
    path = tmp_path_factory.mktemp("ir") / "g.json"
    path.write_text(json.dumps(doc))
    _expect_project_error(lambda: _use_graph(path))


@FUZZ
@given(text=mutated_text())
def test_fuzz_ir_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("ir") / "g.jaqc"
    path.write_text(text, encoding="utf-8")
    _expect_project_error(lambda: _use_graph(path))


@FUZZ
@given(doc=mutated(ACCEL), suffix=st.sampled_from([".json", ".toml"]))
def test_fuzz_accelerator_files(tmp_path_factory: pytest.TempPathFactory, doc: Any, suffix: str) -> None:
    path = tmp_path_factory.mktemp("acc") / f"a{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(doc))
    elif isinstance(doc, dict):
        path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in doc.items()))
    else:
        path.write_text(toml_value(doc))
    _expect_project_error(lambda: load_accelerator(str(path)))


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (scripts/hostile_inputs.py uses it too)."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


@FUZZ
@given(doc=mutated(COST_FILE))
def test_fuzz_cost_files(tmp_path_factory: pytest.TempPathFactory, doc: Any) -> None:
    path = tmp_path_factory.mktemp("cost") / "c.json"
    path.write_text(json.dumps(doc))
    _expect_project_error(lambda: evaluate_file(path, False, "jaq", "latency", False))


@FUZZ
@given(data=st.binary(max_size=64), suffix=st.sampled_from([".json", ".jaqc"]))
def test_fuzz_raw_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str) -> None:
    """Arbitrary bytes (non-UTF-8 included) as an IR file or an accelerator file."""
    folder = tmp_path_factory.mktemp("raw")
    (folder / f"g{suffix}").write_bytes(data)
    (folder / "a.json").write_bytes(data)
    _expect_project_error(lambda: _use_graph(folder / f"g{suffix}"))
    _expect_project_error(lambda: load_accelerator(str(folder / "a.json")))
