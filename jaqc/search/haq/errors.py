"""The error type of the HAQ search."""

from __future__ import annotations

from jaqc.core import JaqcError


class HaqError(JaqcError):
    """Invalid input to the HAQ search: a bad layer description, an infeasible budget, a bad configuration."""
