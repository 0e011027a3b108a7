"""``csq-instrument{k_percent=3}``: choose each choice layer's CSQ channel set Ω from the IR.

Channel-wise sparse quantization (JAQ, Eqs. 6-8) quantizes only the top-K% most important channels of
each searchable layer's input activation. The importance of channel j of the activation that feeds choice
layer l is ``Γ_j = Σ_i α_i · |γ_ij|`` over the candidates i of the layer that produced it, where ``γ_i`` is
the scale of candidate i's output batchnorm (the last batchnorm in the candidate whose channel count is
the output's). A candidate without such a batchnorm (skip) contributes 0. When the producer is a plain
layer (e.g. the stem: conv → batchnorm → relu), Γ = |γ| of that batchnorm. Element-wise layers (activations,
identity) between the producer and the choice layer are looked through.

Ω holds ``max(1, ceil(K/100 · C))`` channels: the largest Γ, ties to the lower channel index, stored
sorted ascending in the choice layer's ``csq_channels``. The selection is :mod:`jaqc.nn.csq_select` (numpy
only), the one the torch supernet uses, so the pass and the search choose the same Ω.
Reads: choice layers, α, batchnorm ``weights["weight"]``. Writes: ``csq_channels``. A choice layer whose
producer has no batchnorm scales is left unannotated (logged). In place.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from attrs import field, frozen
from jaqc.ir.graph import LayerGraph
from jaqc.ir.layer import Layer
from jaqc.ir.types import ACTIVATION_KINDS, LayerKind

from jaqc.nn.csq_select import channel_importance, top_k_channels  # numpy only: the torch side's own rule

from .base import Pass, PassContext, PassError, PassResult

_LOOK_THROUGH = ACTIVATION_KINDS | {LayerKind.IDENTITY}


def _importance(alphas: list[float], gammas: list[np.ndarray | None], channels: int) -> np.ndarray:
    """Γ (Eq. 8) with :func:`jaqc.nn.csq_select.channel_importance`, the torch supernet's own rule: a candidate
    without an output batchnorm (``None``) has a zero row."""
    rows = np.stack([np.zeros(channels) if g is None else g.astype(np.float64) for g in gammas])
    return channel_importance(alphas, rows)


def output_bn_scale(graph: LayerGraph, channels: int) -> np.ndarray | None:
    """γ of the last batchnorm in ``graph`` with ``channels`` channels and known weights, if any."""
    for layer in reversed(graph.topo_order()):
        if layer.kind is LayerKind.BATCHNORM and layer.output_shape[1] == channels and "weight" in layer.weights:
            return layer.weights["weight"]
    return None


def producer_importance(graph: LayerGraph, layer: Layer) -> np.ndarray | None:
    """Γ for the input activation of ``layer``, or ``None`` when no batchnorm scales are known."""
    channels = layer.input_shape[1]
    cur = graph[layer.inputs[0]]
    while cur.kind in _LOOK_THROUGH:
        cur = graph[cur.inputs[0]]
    if cur.kind is LayerKind.CHOICE:
        cands = cur.choice.candidates
        alphas = [1.0 / len(cands) if c.alpha is None else c.alpha for c in cands]
        gammas = [output_bn_scale(c.graph, channels) for c in cands]
        if all(g is None for g in gammas):
            return None
        return _importance(alphas, gammas, channels)
    if cur.kind is LayerKind.BATCHNORM and "weight" in cur.weights:
        return np.abs(cur.weights["weight"].astype(np.float64))
    return None


def _check_percent(_inst: object, _attr: object, value: float) -> None:
    if not 0 < value <= 100:
        raise PassError(f"csq-instrument: k_percent must be in (0, 100], got {value}")


@frozen
class CsqInstrument(Pass):
    """Write each choice layer's CSQ channel set Ω (top ``k_percent`` % of input channels by Γ)."""

    name: ClassVar[str] = "csq-instrument"
    requires: ClassVar[tuple[str, ...]] = ("supernet",)
    k_percent: float = field(default=3.0, converter=float, validator=_check_percent)

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        changed = 0
        skipped = []
        for layer in graph.layers_of(LayerKind.CHOICE):
            importance = producer_importance(graph, layer)
            if importance is None:
                skipped.append(layer.name)
                continue
            omega = tuple(int(i) for i in top_k_channels(importance, self.k_percent))
            if layer.csq_channels != omega:
                layer.csq_channels = omega
                changed += 1
        if skipped:
            ctx.log(f"csq-instrument: no batchnorm scales before {', '.join('%' + s for s in skipped)}; left as is")
        ctx.log(f"csq-instrument: set Ω on {changed} choice layer(s) (K={self.k_percent:g}%)")
        return PassResult(graph, changed > 0)
