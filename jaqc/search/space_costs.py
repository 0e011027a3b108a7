"""The hardware side of a search space, read from its IR: what the expected-cost model and the derivation price.

A search traces its supernet once (:func:`~jaqc.nn.supernet_ir.trace_supernet`: every searchable block is a
``choice`` layer whose candidates are sub-graphs) and :meth:`SpaceCosts.from_graph` lowers it with the one
IR → cost-model lowering (:func:`jaqc.hw.model.lowering.layer_problem`):

- every candidate's conv2d/linear layers, as cost-model problems at a given (w, a) pair: the layers whose
  outputs reach the candidate's output (through adds, activations, shuffles) write them at the block output's
  consumers' bits ``out_bits``, the others at the op's own activation bits;
- whether a block passes its input on to its output (the residual add of its ops, the identity skip) and which
  ops are identities (no layers);
- the layers outside the search: before the first block (the stem; the last of them writes block 0's input at
  its consumers' bits) and after the last block (head, classifier), each at its own bits.

The space must be a chain: choice layers one after another, conv/linear layers only before the first and after
the last. (The FBNet presets are; a space that is not gets an error naming the layer.)
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import attrs
from attrs import frozen

from jaqc.core import JaqcError
from jaqc.hw.model.lowering import PRICED_KINDS, layer_problem
from jaqc.hw.model.problem import ConvProblem
from jaqc.ir import Choice, Layer, LayerGraph, LayerKind
from jaqc.ir.metrics import target_bits, weighted_consumers


class SpaceError(JaqcError):
    """A traced search space the search's cost model cannot price; names the layer."""


@frozen
class CandidateLayers:
    """One candidate op of one block: its layers at 8/8 bits and which of them write the block's output."""

    op: str
    problems: tuple[ConvProblem, ...]
    writes_output: tuple[bool, ...]

    @property
    def identity(self) -> bool:
        """No layers: the op passes its input on unchanged (the identity skip)."""
        return not self.problems

    def at(self, bits: tuple[int, int] = (8, 8), out_bits: int = 8) -> list[ConvProblem]:
        """The op's problems at weight/activation ``bits``, the block output written at ``out_bits``."""
        w, a = bits
        return [
            attrs.evolve(p, w_bits=w, a_bits=a, out_bits=out_bits if writes else a)
            for p, writes in zip(self.problems, self.writes_output, strict=True)
        ]


@frozen
class SpaceCosts:
    """Everything hardware-related a search reads from its space's IR (see the module docstring)."""

    name: str
    blocks: tuple[tuple[CandidateLayers, ...], ...]
    residual: tuple[bool, ...]
    prefix: tuple[ConvProblem, ...]
    suffix: tuple[ConvProblem, ...]
    head_bits: int
    #: The traced space itself: what :meth:`derive` annotates with probabilities and selects from.
    graph: LayerGraph | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ops(self) -> tuple[str, ...]:
        """The candidate op names (the same in every block)."""
        return tuple(c.op for c in self.blocks[0])

    def candidate(self, block: int, op: str | int) -> CandidateLayers:
        """Candidate ``op`` (a name or an index) of block ``block``."""
        ops = self.blocks[block]
        if isinstance(op, int):
            return ops[op]
        for candidate in ops:
            if candidate.op == op:
                return candidate
        raise SpaceError(f"block {block} has no candidate {op!r}; it has {', '.join(c.op for c in ops)}")

    def candidate_problems(
        self, block: int, op: str | int, bits: tuple[int, int] = (8, 8), out_bits: int = 8
    ) -> list[ConvProblem]:
        """The conv layers of ``op`` in ``block`` at ``bits``, the block output written at ``out_bits``."""
        return self.candidate(block, op).at(bits, out_bits)

    def fixed_problems(self, stem_out_bits: int = 8) -> list[ConvProblem]:
        """The layers outside the search, in order: before the blocks (the last writing block 0's input at
        ``stem_out_bits``), then after them."""
        prefix = list(self.prefix)
        if prefix:
            prefix[-1] = attrs.evolve(prefix[-1], out_bits=stem_out_bits)
        return [*prefix, *self.suffix]

    def identity_blocks(self, ops: Sequence[str]) -> list[bool]:
        """Which blocks of a derived subnet are identities (no layers: their bits mean nothing)."""
        return [self.candidate(b, op).identity for b, op in enumerate(ops)]

    def derived_consumer_bits(self, ops: Sequence[str], bits: Sequence[tuple[int, int]]) -> list[int]:
        """The bits each block's input is requantized to, the stem's output first (``len(ops) + 1`` values,
        the last the head's): the largest ``a_bits`` of the layers reading it, through residual adds and
        identity skips (the IR's :func:`~jaqc.ir.metrics.consumer_a_bits` on the derived subnet)."""
        consumer = [0] * (len(ops) + 1)
        consumer[len(ops)] = self.head_bits
        for n in range(len(ops) - 1, -1, -1):  # block n reads the output of block n - 1 (the stem for n = 0)
            if self.candidate(n, ops[n]).identity:
                consumer[n] = consumer[n + 1]
            elif self.residual[n]:
                consumer[n] = max(bits[n][1], consumer[n + 1])
            else:
                consumer[n] = bits[n][1]
        return consumer

    def derived_problems(self, ops: Sequence[str], bits: Sequence[tuple[int, int]]) -> list[ConvProblem]:
        """Every conv layer of a derived subnet, each writing its outputs at its consumers' bits."""
        consumer = self.derived_consumer_bits(ops, bits)
        fixed = self.fixed_problems(stem_out_bits=consumer[0])
        layers = fixed[: len(self.prefix)]
        for block, (op, pair) in enumerate(zip(ops, bits, strict=True)):
            layers += self.candidate_problems(block, op, pair, out_bits=consumer[block + 1])
        return [*layers, *fixed[len(self.prefix) :]]

    def annotated(self, alpha: Any, beta_w: Any, beta_a: Any) -> LayerGraph:
        """A copy of the traced space whose choice layers carry probabilities α ``[blocks, ops]`` and β
        ``[blocks, ops, bits]`` (candidate sub-graphs are shared, not copied: passes replace, never edit, them)."""
        if self.graph is None:
            raise SpaceError(f"space {self.name!r} was built without its graph")
        out = LayerGraph(self.graph.name, self.graph.accelerator, self.graph.hw_model)
        block = 0
        for layer in self.graph.topo_order():
            if layer.kind is LayerKind.CHOICE:
                candidates = [
                    attrs.evolve(
                        c,
                        alpha=float(alpha[block, o]),
                        beta_w=beta_w[block, o].tolist(),
                        beta_a=beta_a[block, o].tolist(),
                    )
                    for o, c in enumerate(layer.choice.candidates)
                ]
                layer = attrs.evolve(layer, choice=Choice(candidates=candidates, bits=layer.choice.bits))
                block += 1
            out.add(attrs.evolve(layer, meta={}))
        return out

    def derive(self, alpha: Any, beta_w: Any, beta_a: Any) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
        """The subnet ``extract-subnet`` selects from the space annotated with probabilities α, β: per choice
        layer the candidate with the highest α and its argmax β_w, β_a (the first on ties), as
        ``(ops, (w, a) bits)``. One selection rule for the search and the pass."""
        from jaqc.passes.extract_subnet import chosen_candidate, chosen_quant

        ops, bits = [], []
        for layer in self.annotated(alpha, beta_w, beta_a).layers_of(LayerKind.CHOICE):
            chosen = chosen_candidate(layer)
            quant = chosen_quant(layer.choice.bits, chosen)
            assert quant is not None  # (both β vectors were just set)
            ops.append(chosen.op)
            bits.append((int(quant.w_bits), int(quant.a_bits)))
        return tuple(ops), tuple(bits)

    def derived_subnet(self, alpha: Any, beta_w: Any, beta_a: Any) -> LayerGraph:
        """The derived subnet's IR: the ``extract-subnet`` pass run on the space annotated with α and β."""
        from jaqc.passes import PassContext
        from jaqc.passes.extract_subnet import ExtractSubnet

        return ExtractSubnet().run(self.annotated(alpha, beta_w, beta_a), PassContext()).graph

    @classmethod
    def from_supernet(cls, supernet: Any) -> SpaceCosts:
        """Trace ``supernet`` (a :class:`~jaqc.nn.supernet.Supernet`, left unchanged) and lower its IR."""
        from jaqc.nn.supernet_ir import trace_supernet

        return cls.from_graph(trace_supernet(supernet, with_weights=False))

    @classmethod
    def from_config(cls, config: Any) -> SpaceCosts:
        """The space of a fresh supernet of ``config`` (a :class:`~jaqc.nn.config.SupernetConfig`): the same
        layers as any supernet of that config (weights and α, β do not change shapes). Cached per config."""
        return _space_of_config(config)

    @classmethod
    def from_graph(cls, graph: LayerGraph) -> SpaceCosts:
        """Lower a traced supernet (see the module docstring); errors name the layer that breaks the chain."""
        order = graph.topo_order()
        choices = [x for x in order if x.kind is LayerKind.CHOICE]
        if not choices:
            raise SpaceError(f"graph {graph.name!r} has no choice layers: it is not a search space")
        first, last = order.index(choices[0]), order.index(choices[-1])
        for layer in order[first : last + 1]:
            if layer.kind in PRICED_KINDS:
                raise SpaceError(
                    f"layer %{layer.name}: a {layer.kind.value} layer between choice layers; the search's cost model "
                    "takes a chain of choice layers with fixed layers before the first and after the last"
                )
        for before, after in itertools.pairwise(choices):
            if not _feeds(graph, before, after):
                raise SpaceError(f"choice layer %{after.name} does not read the output of %{before.name}")
        names = [c.op for c in choices[0].choice.candidates]
        blocks = []
        residual = []
        for layer in choices:
            ops = [c.op for c in layer.choice.candidates]
            if ops != names:
                raise SpaceError(f"choice layer %{layer.name} has candidates {ops}, the first block {names}")
            candidates = tuple(_candidate_layers(layer.name, c.op, c.graph) for c in layer.choice.candidates)
            blocks.append(candidates)
            passes = {
                _passes_input(c.graph) for c, lowered in zip(layer.choice.candidates, candidates) if lowered.problems
            }
            if len(passes) > 1:
                raise SpaceError(
                    f"choice layer %{layer.name}: some candidates add their input to their output and some do not; "
                    "the expected-cost model needs one rule per block"
                )
            residual.append(passes.pop() if passes else True)
        prefix = tuple(layer_problem(graph, x) for x in order[:first] if x.kind in PRICED_KINDS)
        suffix = tuple(layer_problem(graph, x) for x in order[last + 1 :] if x.kind in PRICED_KINDS)
        consumers, _ = weighted_consumers(graph, choices[-1])
        head_bits = max((target_bits(c)[1] for c in consumers), default=8)
        return cls(graph.name, tuple(blocks), tuple(residual), prefix, suffix, head_bits, graph=graph)


def _feeds(graph: LayerGraph, before: Layer, after: Layer) -> bool:
    consumers, _ = weighted_consumers(graph, before)
    return any(c.name == after.name for c in consumers)


def _candidate_layers(block: str, op: str, graph: LayerGraph) -> CandidateLayers:
    layers = [x for x in graph.topo_order() if x.kind in PRICED_KINDS]
    problems, writes = [], []
    for layer in layers:
        consumers, reaches_output = weighted_consumers(graph, layer)
        if reaches_output and consumers:
            raise SpaceError(
                f"choice layer %{block}, candidate {op}: layer %{layer.name} writes both the block output and "
                "another layer's input"
            )
        problem = layer_problem(graph, layer, im2col_first=False, name=f"{block}.{op}.{layer.name}")
        problems.append(attrs.evolve(problem, w_bits=8, a_bits=8, out_bits=8))
        writes.append(reaches_output)
    return CandidateLayers(op=op, problems=tuple(problems), writes_output=tuple(writes))


def _passes_input(graph: LayerGraph) -> bool:
    """Whether the candidate's input reaches its output through layers without MACs (a residual add)."""
    inputs = graph.inputs()
    return bool(inputs) and weighted_consumers(graph, inputs[0])[1]


@functools.lru_cache(maxsize=16)
def _space_of_config(config: Any) -> SpaceCosts:
    import torch

    from jaqc.nn.supernet import Supernet

    with torch.random.fork_rng():  # building a supernet draws its initial weights: leave the caller's RNG alone
        return SpaceCosts.from_supernet(Supernet(config))


# --- search passes: the user's pipeline shapes what each block may choose ------------------------------------------


@frozen
class SearchChoices:
    """What each block may choose after the search passes ran: op names and widths (the IR's ``choice.bits``,
    one set for weights and activations)."""

    ops: tuple[tuple[str, ...], ...]
    bits: tuple[tuple[int, ...], ...]

    def masks(self, all_ops: Sequence[str], w_bits: Sequence[int], a_bits: Sequence[int]) -> tuple[Any, Any, Any]:
        """Boolean masks ``[blocks, ops]``, ``[blocks, ops, len(w_bits)]``, ``[blocks, ops, len(a_bits)]`` for
        :meth:`jaqc.nn.arch.ArchParameters.restrict`."""
        import torch

        op_mask = torch.tensor([[op in allowed for op in all_ops] for allowed in self.ops])
        w_mask = torch.tensor([[[w in bits for w in w_bits] for _ in all_ops] for bits in self.bits])
        a_mask = torch.tensor([[[a in bits for a in a_bits] for _ in all_ops] for bits in self.bits])
        return op_mask, w_mask, a_mask

    def describe(self, all_ops: Sequence[str], all_bits: Sequence[int]) -> list[str]:
        """One line per block whose choices the passes narrowed, e.g. ``block 0: bits 8`` (for logs, summaries)."""
        lines = []
        for b, (ops, bits) in enumerate(zip(self.ops, self.bits, strict=True)):
            parts = []
            if tuple(ops) != tuple(all_ops):
                parts.append("ops " + ",".join(ops))
            if tuple(bits) != tuple(all_bits):
                parts.append("bits " + ",".join(map(str, bits)))
            if parts:
                lines.append(f"block {b}: " + "; ".join(parts))
        return lines


def shape_space(graph: LayerGraph, pipeline: str, quant_bits: Sequence[int]) -> SearchChoices:
    """Run the user's search passes (a pipeline string) on a copy of the traced space and read which ops and
    bits each choice layer still offers. A pass may remove candidates of a choice layer and narrow its ``bits``;
    any other change (a layer added or altered, a candidate's layers edited) is an error naming the layer, since
    the supernet that trains could not follow it."""
    from jaqc.ir.printer import format_layer, print_graph
    from jaqc.passes import PassContext, PassManager, parse_pipeline

    shaped = PassManager(parse_pipeline(pipeline), verify_each=True).run(graph.clone(), PassContext()).graph
    where = f"search passes {pipeline!r}"
    before = {x.name: x for x in graph.topo_order()}
    after = {x.name: x for x in shaped.topo_order()}
    for name in sorted(set(before) ^ set(after)):
        change = "added" if name in after else "removed"
        raise SpaceError(f"{where}: layer %{name} was {change}; a search pass may only narrow choice layers")
    ops: list[tuple[str, ...]] = []
    bits: list[tuple[int, ...]] = []
    for layer in graph.topo_order():
        new = after[layer.name]
        if layer.kind is not LayerKind.CHOICE:
            if format_layer(new) != format_layer(layer):
                raise SpaceError(
                    f"{where}: layer %{layer.name} changed ({format_layer(layer)!r} -> {format_layer(new)!r}); "
                    "a search pass may only narrow choice layers (their candidates and bits)"
                )
            continue
        if new.kind is not LayerKind.CHOICE or (new.inputs, new.input_shapes, new.output_shape) != (
            layer.inputs, layer.input_shapes, layer.output_shape,
        ):  # fmt: skip
            raise SpaceError(f"{where}: choice layer %{layer.name} changed its kind, inputs or shapes")
        offered = {c.op: c for c in layer.choice.candidates}
        kept = []
        for candidate in new.choice.candidates:
            if candidate.op not in offered:
                raise SpaceError(
                    f"{where}: choice layer %{layer.name} has a new candidate {candidate.op!r}; the supernet offers "
                    f"{', '.join(offered)}"
                )
            if print_graph(candidate.graph) != print_graph(offered[candidate.op].graph):
                raise SpaceError(f"{where}: choice layer %{layer.name}: the layers of candidate {candidate.op} changed")
            kept.append(candidate.op)
        widths = tuple(new.choice.bits)
        if not set(widths) <= set(quant_bits):
            raise SpaceError(
                f"{where}: choice layer %{layer.name} offers bits {list(widths)}; the supernet searches "
                f"{list(quant_bits)}"
            )
        ops.append(tuple(op for op in offered if op in kept))
        bits.append(widths)
    return SearchChoices(ops=tuple(ops), bits=tuple(bits))
