"""PassManager, PassResult, registry and pipeline strings."""

from __future__ import annotations

from typing import ClassVar

import pytest
from attrs import frozen
from jaqc.ir import Layer, LayerGraph, parse, print_graph
from jaqc.passes import (
    Pass,
    PassContext,
    PassError,
    PassManager,
    PassResult,
    available_passes,
    make_pass,
    parse_pipeline,
    register,
    registry,
)

TEXT = """graph g
%x = input : [1,3,8,8]
%c1 = conv2d[k=3,p=1](%x) : [1,3,8,8]->[1,8,8,8]
%b1 = batchnorm(%c1) : [1,8,8,8]->[1,8,8,8]
%c2 = conv2d[k=1](%b1) : [1,8,8,8]->[1,8,8,8]
%c3 = conv2d[k=1](%c2) : [1,8,8,8]->[1,4,8,8]
"""


@frozen
class BreakShapes(Pass):
    """Test pass: corrupts an output shape so verification fails."""

    name: ClassVar[str] = "break-shapes"

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        layer = graph["c3"]
        graph.replace(
            "c3",
            Layer(
                name="c3",
                kind="relu",
                inputs=layer.inputs,
                input_shapes=layer.input_shapes,
                output_shape=(1, 1, 1, 1),
            ),
        )
        return PassResult(graph, True)


@frozen
class Countdown(Pass):
    """Test pass: changes the graph `n` times (through meta), then reports no change."""

    name: ClassVar[str] = "countdown"
    n: int = 3

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        left = graph["x"].meta.setdefault("left", self.n)
        graph["x"].meta["left"] = max(0, left - 1)
        return PassResult(graph, left > 0)


@frozen
class Sneaky(Pass):
    """Test pass: claims to be functional but edits its input."""

    name: ClassVar[str] = "sneaky"
    in_place: ClassVar[bool] = False

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        graph.remove("b1")
        return PassResult(graph, True)


def test_pipeline_string_and_options() -> None:
    passes = parse_pipeline(" fold-batchnorm , annotate-quant{w_bits=4, a_bits=none,keep_first_last=false},shape-check")
    assert [p.spec() for p in passes] == [
        "fold-batchnorm",
        "annotate-quant{w_bits=4,a_bits=none,keep_first_last=false}",
        "shape-check",
    ]
    assert passes[1].options() == {"w_bits": 4, "a_bits": None, "keep_first_last": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", r"unknown pass 'nope'; available: .*annotate-quant"),
        (
            "annotate-quant{bits=4}",
            r"pass annotate-quant: unknown option 'bits'; options are w_bits, a_bits, keep_first_last",
        ),
        ("annotate-quant{w_bits=four}", r"option w_bits expects int"),
        ("annotate-quant{w_bits=3}", r"pass annotate-quant: w_bits must be one of 2, 4, 8"),
        ("annotate-quant{keep_first_last=maybe}", r"expects true/false"),
        ("annotate-quant{w_bits=4", r"unmatched '\{'"),
        ("annotate-quant{w_bits}", r"expected option=value"),
    ],
)
def test_pipeline_errors(text: str, message: str) -> None:
    with pytest.raises(PassError, match=message):
        parse_pipeline(text)


def test_manager_runs_verifies_prints_and_times() -> None:
    printed: list[str] = []
    log: list[str] = []
    pm = PassManager(
        parse_pipeline("fold-batchnorm,shape-check"),
        verify_each=True,
        print_after=["fold-batchnorm"],
        time_passes=True,
        printer=printed.append,
    )
    result = pm.run(parse(TEXT), PassContext(log=log.append))
    assert result.changed
    assert "b1" not in result.graph
    assert [t.name for t in pm.timings] == ["fold-batchnorm", "shape-check"]
    assert [t.changed for t in pm.timings] == [True, False]
    assert len(printed) == 1 and printed[0].startswith("// after fold-batchnorm\ngraph g\n")
    assert any(m.startswith("fold-batchnorm: changed") for m in log)


def test_verification_error_names_pass_and_predecessors() -> None:
    pm = PassManager([make_pass("fold-batchnorm"), BreakShapes()], verify_each=True)
    with pytest.raises(PassError, match=r"verification failed after pass break-shapes \(after fold-batchnorm\)"):
        pm.run(parse(TEXT))


def test_fixed_point_is_bounded() -> None:
    result = PassManager([Countdown(n=3)], fixed_point=True).run(parse(TEXT))
    assert result.changed
    with pytest.raises(PassError, match="did not reach a fixed point in 2 iterations"):
        PassManager([Countdown(n=5)], fixed_point=True, max_iterations=2).run(parse(TEXT))


def test_functional_contract_is_checked() -> None:
    with pytest.raises(PassError, match="declared functional but modified its input"):
        PassManager([Sneaky()], check_functional=True).run(parse(TEXT))


def test_register_in_process(monkeypatch) -> None:
    monkeypatch.setattr(registry, "_extra", {})  # keep the registration local to this test
    register(Countdown)
    assert "countdown" in available_passes()
    assert parse_pipeline("countdown{n=7}")[0] == Countdown(n=7)


def test_unchanged_pipeline_reports_unchanged() -> None:
    g = parse(TEXT)
    before = print_graph(g)
    result = PassManager(parse_pipeline("shape-check")).run(g)
    assert not result.changed and print_graph(result.graph) == before
