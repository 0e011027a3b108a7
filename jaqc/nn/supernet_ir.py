"""The supernet in the IR: each searchable block becomes a *choice* layer holding its candidates.

:func:`trace_supernet` traces a view of the supernet with torch.fx (stem, blocks as leaf modules, head,
pool, classifier); each block's leaf becomes a ``choice`` layer whose candidates are their own traced
sub-graphs (``in`` → layers → ``out``, layer names relative to the op: ``expand``, ``bn1``, ``dw``, ...)
with the live α probability and β_w/β_a vectors, and the block's CSQ channel set Ω when the search uses
CSQ. ``extract-subnet`` turns such a graph into a plain network whose layer names
(``blocks.3.expand``) are the module paths of :class:`~jaqc.nn.subnet.DerivedSubnet`.
"""

from __future__ import annotations

import attrs
import torch
import torch.fx as fx
from torch import Tensor, nn

from jaqc.core import JaqcError
from jaqc.frontend.importer import FxImporter, import_model, register_module_handler
from jaqc.ir import Candidate, Choice, Layer, LayerGraph, LayerKind

from .search_conv import SPARSE_MODES
from .supernet import SearchBlock, Supernet
from .tracing import JaqcTracer


class _CandidateView(nn.Module):
    """One candidate op called with fixed β probabilities (buffers), traceable from a single input."""

    def __init__(self, op: nn.Module, w_probs: Tensor | None, a_probs: Tensor | None) -> None:
        super().__init__()
        self.op = op
        self.register_buffer("w_probs", w_probs)
        self.register_buffer("a_probs", a_probs)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x, self.w_probs, self.a_probs)


class _BlockLeaf(nn.Module):
    """A searchable block called with fixed α/β probabilities: a leaf of the supernet trace."""

    def __init__(
        self, block: SearchBlock, alpha: Tensor, beta_w: Tensor, beta_a: Tensor, omega: list[int] | None
    ) -> None:
        super().__init__()
        self.block = block
        self.register_buffer("alpha", alpha)
        self.register_buffer("beta_w", beta_w)
        self.register_buffer("beta_a", beta_a)
        self.omega = omega

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x, self.alpha, self.beta_w, self.beta_a)


class _SupernetView(nn.Module):
    def __init__(self, supernet: Supernet) -> None:
        super().__init__()
        arch = supernet.arch
        with torch.no_grad():
            alpha, beta_w, beta_a = arch.alpha_probs(), arch.beta_w_probs(), arch.beta_a_probs()
        sparse = supernet.mode in SPARSE_MODES
        self.stem = supernet.stem
        self.blocks = nn.ModuleList(
            _BlockLeaf(b, alpha[i], beta_w[i], beta_a[i], supernet.csq_channels(i) if sparse else None)
            for i, b in enumerate(supernet.search_blocks())
        )
        self.head = supernet.head
        self.pool = supernet.pool
        self.classifier = supernet.classifier

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        for block in self.blocks:
            out = block(out)
        return self.classifier(torch.flatten(self.pool(self.head(out)), 1))


def _relative(graph: LayerGraph, prefix: str) -> LayerGraph:
    """A copy with ``prefix`` stripped from layer names, the input named ``in`` and the output ``out``."""
    rename = {}
    for layer in graph.topo_order():
        if layer.kind is LayerKind.INPUT:
            rename[layer.name] = "in"
        elif layer.kind is LayerKind.OUTPUT:
            rename[layer.name] = "out"
        else:
            rename[layer.name] = layer.name.removeprefix(prefix)
    out = LayerGraph(graph.name)
    for layer in graph.topo_order():
        out.add(attrs.evolve(layer, name=rename[layer.name], inputs=[rename[i] for i in layer.inputs]))
    return out


def _choice_handler(imp: FxImporter, node: fx.Node, mod: nn.Module, inputs: list[str]) -> Layer:
    assert isinstance(mod, _BlockLeaf)
    block = mod.block
    in_shape = imp.graph[inputs[0]].output_shape
    candidates = []
    for index, (name, op) in enumerate(zip(block.op_names, block.ops(), strict=True)):
        view = _CandidateView(op, mod.beta_w[index], mod.beta_a[index])
        sub = import_model(view, in_shape.dims, name=name, with_weights=imp.with_weights, tracer=JaqcTracer())
        candidates.append(
            Candidate(
                op=name,
                graph=_relative(sub, "op."),
                alpha=float(mod.alpha[index]),
                beta_w=mod.beta_w[index].tolist(),
                beta_a=mod.beta_a[index].tolist(),
            )
        )
    conv = next(c for c in block.modules() if hasattr(c, "weight_bits"))
    if tuple(conv.weight_bits) != tuple(conv.activation_bits):
        raise JaqcError("trace_supernet: weight and activation bit candidates must be the same set for the IR")
    shape = imp.shape(node)
    layer = Layer(
        name=imp.layer_name(node),
        kind=LayerKind.CHOICE,
        inputs=inputs[:1],
        input_shapes=[in_shape],
        output_shape=shape,
        choice=Choice(candidates=candidates, bits=tuple(conv.weight_bits)),
        csq_channels=None if mod.omega is None else sorted(mod.omega),
    )
    imp.graph.add(layer)
    return layer


register_module_handler(_BlockLeaf, _choice_handler)


def trace_supernet(supernet: Supernet, batch: int = 1, with_weights: bool = True) -> LayerGraph:
    """The supernet's IR with choice layers, live α/β and Ω (the supernet is left unchanged)."""
    config = supernet.config
    view = _SupernetView(supernet)
    shape = (batch, config.in_channels, config.input_size, config.input_size)
    tracer = JaqcTracer(extra_leaves=(_BlockLeaf,))
    return import_model(view, shape, name=f"{config.name}-supernet", with_weights=with_weights, tracer=tracer)
