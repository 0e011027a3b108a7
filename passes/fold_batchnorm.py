"""``fold-batchnorm``: fold each batchnorm into the conv2d that feeds it.

Reads: conv2d layers whose only consumer is a batchnorm, and both layers' ``weights`` when present.
Writes: the conv2d gets ``bias=True`` and, when weights are known, ``W' = W * g/sqrt(v+eps)`` per output
channel and ``b' = beta + (b - mean) * g/sqrt(v+eps)``; the batchnorm is removed and its consumers read
the conv2d. When either layer carries no weights, the fold is structural only (shapes and costs).
The conv2d keeps its name, so mappings and provenance stay attached. Options: none. In place.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
from attrs import frozen
from jaqc.ir.graph import LayerGraph
from jaqc.ir.layer import Layer
from jaqc.ir.types import LayerKind

from .base import Pass, PassContext, PassResult


def fold_weights(conv: Layer, bn: Layer) -> dict[str, np.ndarray]:
    """The folded ``weight`` and ``bias`` of ``conv`` followed by ``bn`` (float64 maths, conv's dtype)."""
    w = conv.weights["weight"]
    dtype = w.dtype
    gamma = bn.weights["weight"].astype(np.float64)
    beta = bn.weights["bias"].astype(np.float64)
    mean = bn.weights["running_mean"].astype(np.float64)
    var = bn.weights["running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + bn.params.eps)
    bias = conv.weights.get("bias", np.zeros(w.shape[0], dtype=dtype)).astype(np.float64)
    new_w = w.astype(np.float64) * scale.reshape(-1, *([1] * (w.ndim - 1)))
    new_b = beta + (bias - mean) * scale
    return {"weight": new_w.astype(dtype), "bias": new_b.astype(dtype)}


@frozen
class FoldBatchNorm(Pass):
    """Fold batchnorm layers into their producing conv2d layers."""

    name: ClassVar[str] = "fold-batchnorm"

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        folded = 0
        for bn in graph.layers_of(LayerKind.BATCHNORM):
            conv = graph[bn.inputs[0]]
            if conv.kind is not LayerKind.CONV2D or [c.name for c in graph.consumers(conv.name)] != [bn.name]:
                continue
            has_weights = "weight" in conv.weights and "running_var" in bn.weights
            weights = fold_weights(conv, bn) if has_weights else {}
            graph.replace(
                conv.name,
                attrs.evolve(conv, params=attrs.evolve(conv.params, bias=True), weights=weights),
            )
            graph.remove(bn.name, forward_to=conv.name)
            folded += 1
        ctx.log(f"fold-batchnorm: folded {folded} batchnorm layer(s)")
        return PassResult(graph, folded > 0)
