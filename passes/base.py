"""The pass interface: frozen pass classes whose fields are their options, and what a run returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from attrs import define, field, fields, frozen
from jaqc.ir.graph import LayerGraph
from jaqc.ir.types import LayerKind

from jaqc.core import JaqcError

#: The conditions passes require and provide: name -> (its description, the test on a graph).
CONDITIONS: dict[str, tuple[str, Callable[[LayerGraph], bool]]] = {
    "accelerator": ("an accelerator", lambda g: g.accelerator is not None),
    "plain": ("a plain network (no choice layers)", lambda g: not g.layers_of(LayerKind.CHOICE)),
    "supernet": ("choice layers (a supernet)", lambda g: bool(g.layers_of(LayerKind.CHOICE))),
    "mappings": (
        "a mapping on every conv2d/linear layer",
        lambda g: all(x.mapping is not None for x in g.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)),
    ),
}


class PassError(JaqcError):
    """A pass failed; the message names the pass (and, from the manager, the passes before it)."""


@frozen
class PassResult:
    """What a pass returns: the resulting graph and whether the pass changed anything."""

    graph: LayerGraph
    changed: bool


@define
class PassContext:
    """State shared along a pipeline: options every pass may read, and a log of messages.

    ``accelerator`` is the target for hardware passes; ``log`` receives one-line progress messages.
    ``data`` is a typed-by-convention bag for pipeline-level products (e.g. a reference torch model);
    passes document the keys they read and write.
    """

    log: Callable[[str], None] = field(default=lambda _msg: None)
    data: dict[str, Any] = field(factory=dict)


class Pass:
    """Base class of passes. Subclasses are ``attrs`` frozen classes with a kebab-case ``name``.

    ``run(graph, ctx)`` returns a :class:`PassResult`. A pass is *in place* (``in_place = True``, the
    default): it may edit ``graph`` and return it; or *functional*: it must leave ``graph`` untouched and
    return a new graph. The manager checks the functional contract when asked to (``check_functional``).
    """

    name: ClassVar[str] = ""
    in_place: ClassVar[bool] = True
    #: What the pass needs of its input graph (see :data:`CONDITIONS`); the manager checks it before running
    #: anything, naming the pass that could provide what is missing.
    requires: ClassVar[tuple[str, ...]] = ()
    #: What the pass's output graph has, whatever its input had.
    provides: ClassVar[tuple[str, ...]] = ()

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:  # pragma: no cover - interface
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The pass's options (its attrs fields) by name."""
        return {f.name: getattr(self, f.name) for f in fields(type(self))}

    def spec(self) -> str:
        """The pipeline-string form, e.g. ``annotate-quant{w_bits=4,a_bits=4}`` (non-default options only)."""
        parts = []
        for f in fields(type(self)):
            value = getattr(self, f.name)
            if f.init and value != f.default:
                parts.append(f"{f.name}={_format_option(value)}")
        return self.name + ("{" + ",".join(parts) + "}" if parts else "")


def _format_option(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)
