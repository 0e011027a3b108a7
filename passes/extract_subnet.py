"""``extract-subnet``: derive the plain network from a supernet IR by argmax of α and β.

Reads: choice layers, their candidates' ``alpha`` and ``beta_w``/``beta_a`` over ``Choice.bits``.
Writes: each choice layer is replaced by the layers of its most probable candidate, inlined and named
``<choice name>.<candidate layer name>`` (the candidate's ``input`` reads the choice layer's operand; its
``output`` is dropped and consumers read what fed it). Weighted layers of the chosen candidate get
``QuantSpec(bits[argmax beta_w], bits[argmax beta_a])`` when the βs are set, otherwise they keep their own
quant. Ties go to the earlier candidate / the smaller bitwidth (first maximum). A candidate without α
(no search yet) counts as probability 0; if no candidate has α the first one is taken. The chosen op is
recorded in the inlined layers' ``meta["choice"]``. Options: none. In place; changed when a choice existed.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from attrs import frozen
from jaqc.ir.choice import Candidate
from jaqc.ir.graph import LayerGraph
from jaqc.ir.layer import Layer
from jaqc.ir.types import WEIGHTED_KINDS, LayerKind, QuantSpec

from .base import Pass, PassContext, PassError, PassResult


def argmax_first(values: tuple[float, ...]) -> int:
    """Index of the first maximum."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def chosen_candidate(layer: Layer) -> Candidate:
    """The candidate of a choice layer with the highest α (first on ties)."""
    cands = layer.choice.candidates
    return cands[argmax_first(tuple(-1.0 if c.alpha is None else c.alpha for c in cands))]


def chosen_quant(bits: tuple[int, ...], cand: Candidate) -> QuantSpec | None:
    """The QuantSpec that argmax β gives, or ``None`` when the βs are not set."""
    if cand.beta_w is None or cand.beta_a is None:
        return None
    return QuantSpec(bits[argmax_first(cand.beta_w)], bits[argmax_first(cand.beta_a)])


def inline_candidate(graph: LayerGraph, choice: Layer, cand: Candidate, quant: QuantSpec | None) -> None:
    """Replace ``choice`` in ``graph`` by the layers of ``cand`` (see the module docstring)."""
    sub = cand.graph
    (sub_in,) = sub.inputs()
    (sub_out,) = sub.outputs()
    rename = {sub_in.name: choice.inputs[0]}
    for layer in sub.topo_order():
        if layer.kind in (LayerKind.INPUT, LayerKind.OUTPUT):
            continue
        rename[layer.name] = f"{choice.name}.{layer.name}"
    result = rename[sub_out.inputs[0]]
    for layer in sub.topo_order():
        if layer.kind in (LayerKind.INPUT, LayerKind.OUTPUT):
            continue
        new = attrs.evolve(
            layer,
            name=rename[layer.name],
            inputs=[rename[i] for i in layer.inputs],
            weights=dict(layer.weights),
            meta={**layer.meta, "choice": cand.op},
        )
        if quant is not None and new.kind in WEIGHTED_KINDS:
            new.quant = quant
        if new.name in graph and new.name != choice.name:
            raise PassError(f"extract-subnet: inlining %{choice.name} would overwrite existing layer %{new.name}")
        graph.add(new)
    graph.remove(choice.name, forward_to=result)  # consumers now read the candidate's result


@frozen
class ExtractSubnet(Pass):
    """Replace every choice layer by its most probable candidate with its most probable bits."""

    name: ClassVar[str] = "extract-subnet"
    provides: ClassVar[tuple[str, ...]] = ("plain",)

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        choices = graph.layers_of(LayerKind.CHOICE)
        for layer in choices:
            cand = chosen_candidate(layer)
            inline_candidate(graph, layer, cand, chosen_quant(layer.choice.bits, cand))
        ctx.log(f"extract-subnet: derived {len(choices)} choice layer(s)")
        return PassResult(graph, bool(choices))
