"""``annotate-quant{w_bits=8,a_bits=8,keep_first_last=true}``: give conv2d and linear layers a QuantSpec.

Reads: the conv2d and linear layers in topological order. Writes: ``quant = QuantSpec(w_bits, a_bits)``
on each; with ``keep_first_last`` the first and the last of them keep the quant they had (floating point
by default, as in JAQ, where the stem and the classifier are not quantized). ``w_bits``/``a_bits`` are 2,
4, 8 or ``none`` (floating point). Changed when any layer's quant changed. In place.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen
from jaqc.ir.graph import LayerGraph
from jaqc.ir.types import WEIGHTED_KINDS, QuantSpec

from .base import Pass, PassContext, PassResult


@frozen
class AnnotateQuant(Pass):
    """Annotate weighted layers with uniform weight and activation bitwidths."""

    name: ClassVar[str] = "annotate-quant"
    w_bits: int | None = 8
    a_bits: int | None = 8
    keep_first_last: bool = True

    def __attrs_post_init__(self) -> None:
        self.quant_spec()  # an illegal width fails when the pass is made, not when it runs

    def quant_spec(self) -> QuantSpec:
        """The QuantSpec this pass writes."""
        return QuantSpec(self.w_bits, self.a_bits)

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        weighted = [x for x in graph.topo_order() if x.kind in WEIGHTED_KINDS]
        if self.keep_first_last and len(weighted) > 2:
            weighted = weighted[1:-1]
        elif self.keep_first_last:
            weighted = []
        spec = self.quant_spec()
        changed = 0
        for layer in weighted:
            if layer.quant != spec:
                layer.quant = spec
                changed += 1
        ctx.log(f"annotate-quant: set {spec} on {changed} layer(s)")
        return PassResult(graph, changed > 0)
