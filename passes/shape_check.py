"""``shape-check``: verify the graph's shape invariants and fail with every broken one.

Reads: every layer's input/output shapes and parameters. Writes: nothing (never changes the graph).
Options: none. Use it at the head of a pipeline on hand-written or imported IR.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen
from jaqc.ir.graph import LayerGraph
from jaqc.ir.verify import verify

from .base import Pass, PassContext, PassResult


@frozen
class ShapeCheck(Pass):
    """Run :func:`jaqc.ir.verify` and report the graph's size."""

    name: ClassVar[str] = "shape-check"
    in_place: ClassVar[bool] = False

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        verify(graph)
        ctx.log(f"shape-check: {len(graph)} layers ok")
        return PassResult(graph, False)
