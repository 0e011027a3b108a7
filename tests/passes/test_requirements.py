"""Passes declare what they require of their input graph; the manager checks a pipeline before running it and
names the pass that would provide what is missing (issue #11, item 3)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from attrs import frozen
from jaqc.ir import AcceleratorConfig, parse
from jaqc.passes import Pass, PassContext, PassError, PassManager, PassResult, parse_pipeline

PLAIN = """graph p
%x = input : [1,3,8,8]
%c = conv2d[k=3,p=1](%x) : w8a8 [1,3,8,8]->[1,8,8,8]
%out = output(%c) : [1,8,8,8]->[1,8,8,8]
"""


def _check(pipeline: str, graph_text: str = PLAIN, accelerator: bool = False) -> None:
    graph = parse(graph_text)
    if accelerator:
        graph.accelerator = AcceleratorConfig(pe_rows=4, pe_cols=4, wbuf_kb=8, ibuf_kb=8, obuf_kb=8)
    PassManager(parse_pipeline(pipeline)).check(graph)


@pytest.mark.parametrize(
    ("pipeline", "accelerator", "message"),
    [
        ("batchtile", False, "pass batchtile requires an accelerator, which the graph lacks; run "
         "design-accelerator or generate-accelerator before batchtile"),
        ("export-schedule", True, "pass export-schedule requires a mapping on every conv2d/linear layer, which the "
         "graph lacks; run batchtile before export-schedule"),
        ("annotate-quant,export-schedule", True, "which the graph (after annotate-quant) lacks; run batchtile"),
        ("csq-instrument", False, "pass csq-instrument requires choice layers (a supernet), which the graph lacks"),
    ],
)  # fmt: skip
def test_a_missing_requirement_names_both_passes(pipeline: str, accelerator: bool, message: str) -> None:
    with pytest.raises(PassError) as info:
        _check(pipeline, accelerator=accelerator)
    assert message in str(info.value)


def test_a_pass_before_provides_what_the_next_requires() -> None:
    _check("generate-accelerator{steps=1},batchtile,export-schedule")  # nothing raised
    _check("batchtile,export-schedule", accelerator=True)


def test_the_check_runs_before_any_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ran: list[str] = []

    @frozen
    class Marker(Pass):
        name: ClassVar[str] = "marker"

        def run(self, graph, ctx):  # type: ignore[no-untyped-def]
            ran.append("marker")
            return PassResult(graph, False)

    from jaqc.passes import make_pass

    pipeline = [Marker(), make_pass("batchtile", {})]
    with pytest.raises(PassError, match="pass batchtile requires an accelerator"):
        PassManager(pipeline).run(parse(PLAIN), PassContext())
    assert ran == []  # nothing ran: no half-transformed graph


def test_an_unknown_requirement_is_named() -> None:
    @frozen
    class Odd(Pass):
        name: ClassVar[str] = "odd"
        requires: ClassVar[tuple[str, ...]] = ("coffee",)

        def run(self, graph, ctx):  # type: ignore[no-untyped-def]
            return PassResult(graph, False)

    with pytest.raises(PassError, match="pass odd requires an unknown condition 'coffee'"):
        PassManager([Odd()]).check(parse(PLAIN))
