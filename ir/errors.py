"""The IR's errors, all :class:`~jaqc.core.JaqcError` (printed by the CLI as one line)."""

from __future__ import annotations

from jaqc.core.errors import JaqcError


class IRError(JaqcError):
    """An invalid IR construct: a bad layer, a broken graph, an unknown name."""


class VerifyError(IRError):
    """``verify(graph)`` found a broken invariant; the message names the layer and the invariant."""


class ParseError(IRError):
    """The text or JSON form of a graph could not be read; the message names the line or field."""
