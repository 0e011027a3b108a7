"""Errors raised by the torch side of the search (supernet, quantizers, CSQ)."""

from __future__ import annotations

from jaqc.core import JaqcError


class NNConfigError(JaqcError, ValueError):
    """An invalid supernet, quantizer or search setting; the message names the field and allowed values."""


class NNStateError(JaqcError, RuntimeError):
    """A supernet operation that does not fit its current state (wrong mode, bad channel set, bad block)."""
