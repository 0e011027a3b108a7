"""Error types shared by the IR, the passes and the torch side.

Every error jaqc raises for bad input derives from :class:`JaqcError`; the CLI prints such an error as one
line and exits with code 2 (the traceback only with ``--debug``).
"""

from __future__ import annotations


class JaqcError(Exception):
    """Base class of the errors jaqc reports to users as one line."""


class IRError(JaqcError):
    """An invalid IR construct: a bad layer, a broken graph, an unknown name."""


class VerifyError(IRError):
    """``verify(graph)`` found a broken invariant; the message names the layer and the invariant."""


class ParseError(IRError):
    """The text or JSON form of a graph could not be read; the message names the line or field."""
