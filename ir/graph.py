"""The :class:`LayerGraph`: layers keyed by name over a private networkx DiGraph."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs
import networkx as nx

from .accelerator import AcceleratorConfig, check_hw_model
from .choice import Candidate, Choice
from .errors import IRError
from .layer import Layer
from .types import LayerKind

_KEY = "layer"


class LayerGraph:
    """A DAG of :class:`Layer` objects keyed by their names.

    A layer's ``inputs`` tuple is the source of truth for its operands and their order; the graph keeps
    the edges in step with it. Iteration and :meth:`topo_order` are deterministic: topological, ties
    broken by layer name. Pass authors use these methods and never touch networkx.
    """

    def __init__(
        self, name: str = "graph", accelerator: AcceleratorConfig | None = None, hw_model: str | None = None
    ) -> None:
        self.name = name
        self.accelerator = accelerator
        #: The hardware model the layers' mappings and costs were computed with ("simulator" or
        #: "deployment"); None while nothing is mapped. It fixes what a mapping's OC tile means for a
        #: grouped layer (one group's channels, or all of them).
        self.hw_model = check_hw_model(hw_model)
        self._g = nx.DiGraph()

    # --- queries ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __contains__(self, name: object) -> bool:
        return name in self._g

    def __getitem__(self, name: str) -> Layer:
        try:
            return self._g.nodes[name][_KEY]
        except KeyError:
            raise IRError(f"graph {self.name!r} has no layer %{name}") from None

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.topo_order())

    def __repr__(self) -> str:
        return f"<LayerGraph {self.name!r}: {len(self)} layers>"

    def names(self) -> list[str]:
        """Layer names in topological order."""
        return list(nx.lexicographical_topological_sort(self._g, key=str))

    def topo_order(self) -> list[Layer]:
        """Layers in a stable topological order (ties broken by name)."""
        return [self._g.nodes[n][_KEY] for n in self.names()]

    def producers(self, name: str) -> list[Layer]:
        """The layers feeding ``name``, in operand order (repeated if an operand is used twice)."""
        return [self[i] for i in self[name].inputs]

    def consumers(self, name: str) -> list[Layer]:
        """The layers reading the output of ``name``, sorted by name."""
        self[name]
        return [self[n] for n in sorted(self._g.successors(name))]

    def inputs(self) -> list[Layer]:
        """The graph's ``input`` layers, sorted by name."""
        return sorted((x for x in self.topo_order() if x.kind is LayerKind.INPUT), key=lambda x: x.name)

    def outputs(self) -> list[Layer]:
        """The graph's ``output`` layers, sorted by name."""
        return sorted((x for x in self.topo_order() if x.kind is LayerKind.OUTPUT), key=lambda x: x.name)

    def layers_of(self, *kinds: LayerKind) -> list[Layer]:
        """Layers of the given kinds, in topological order."""
        return [x for x in self.topo_order() if x.kind in kinds]

    # --- edits -----------------------------------------------------------------------------------------
    def add(self, layer: Layer) -> Layer:
        """Add a layer whose inputs are already in the graph; returns it."""
        if layer.name in self._g:
            raise IRError(f"graph {self.name!r} already has a layer %{layer.name}")
        missing = [i for i in layer.inputs if i not in self._g]
        if missing:
            raise IRError(f"layer %{layer.name}: unknown input(s) {', '.join('%' + m for m in missing)}")
        self._g.add_node(layer.name, **{_KEY: layer})
        self._g.add_edges_from((i, layer.name) for i in layer.inputs)
        return layer

    def replace(self, name: str, layer: Layer) -> Layer:
        """Put ``layer`` in the place of layer ``name``; consumers follow a rename. Returns ``layer``."""
        self[name]
        if layer.name != name and layer.name in self._g:
            raise IRError(f"cannot rename %{name} to %{layer.name}: that name is taken")
        missing = [i for i in layer.inputs if i not in self._g or i == name]
        if missing:
            raise IRError(f"layer %{layer.name}: unknown input(s) {', '.join('%' + m for m in missing)}")
        consumers = list(self._g.successors(name))
        self._g.remove_node(name)
        self._g.add_node(layer.name, **{_KEY: layer})
        self._g.add_edges_from((i, layer.name) for i in layer.inputs)
        for c in consumers:
            self._retarget(c, name, layer.name)
        self._check_acyclic(layer.name)
        return layer

    def remove(self, name: str, forward_to: str | None = None) -> None:
        """Remove layer ``name``; its consumers read ``forward_to`` instead (default: its only input)."""
        layer = self[name]
        consumers = list(self._g.successors(name))
        if consumers:
            if forward_to is None:
                if len(layer.inputs) != 1:
                    raise IRError(
                        f"cannot remove %{name}: it has {len(layer.inputs)} inputs and consumers; "
                        "name the layer its consumers should read"
                    )
                forward_to = layer.inputs[0]
            if forward_to not in self._g or forward_to == name:
                raise IRError(f"cannot forward consumers of %{name} to unknown layer %{forward_to}")
        self._g.remove_node(name)
        for c in consumers:
            self._retarget(c, name, forward_to)  # type: ignore[arg-type]
        if consumers:
            self._check_acyclic(forward_to)  # type: ignore[arg-type]

    def _retarget(self, consumer: str, old: str, new: str) -> None:
        layer = self[consumer]
        layer.inputs = tuple(new if i == old else i for i in layer.inputs)
        self._g.add_edge(new, consumer)

    def _check_acyclic(self, name: str) -> None:
        if not nx.is_directed_acyclic_graph(self._g):
            raise IRError(f"editing %{name} made graph {self.name!r} cyclic")

    # --- copies ----------------------------------------------------------------------------------------
    def clone(self) -> LayerGraph:
        """A structural copy: new Layer objects (weight arrays shared, they are immutable by convention)."""
        out = LayerGraph(self.name, self.accelerator, self.hw_model)
        for layer in self.topo_order():
            out.add(clone_layer(layer))
        return out

    def subgraph(self, names: Iterable[str], name: str | None = None) -> LayerGraph:
        """A self-contained copy of the named layers; operands from outside become ``input`` layers."""
        wanted = set(names)
        for n in wanted:
            self[n]
        out = LayerGraph(name or f"{self.name}.sub", self.accelerator, self.hw_model)
        for layer in self.topo_order():
            if layer.name not in wanted:
                continue
            for operand, shape in zip(layer.inputs, layer.input_shapes):
                if operand not in wanted and operand not in out:
                    out.add(Layer(name=operand, kind=LayerKind.INPUT, output_shape=shape))
            out.add(clone_layer(layer))
        return out


def clone_layer(layer: Layer) -> Layer:
    """A copy of one layer with fresh ``weights``/``meta`` dicts and cloned candidate sub-graphs."""
    choice = layer.choice
    if choice is not None:
        choice = Choice(
            candidates=[attrs.evolve(c, graph=c.graph.clone()) for c in choice.candidates], bits=choice.bits
        )
    return attrs.evolve(layer, weights=dict(layer.weights), meta=dict(layer.meta), choice=choice)


__all__ = ["Candidate", "LayerGraph", "clone_layer"]
