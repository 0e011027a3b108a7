"""Errors of the hardware model: bad problems, accelerators, mappings and infeasible searches."""

from __future__ import annotations

from jaqc.core import JaqcError


class HardwareError(JaqcError):
    """Invalid input to the hardware model (a bad layer problem, mapping, space or option)."""


class InfeasibleMappingError(HardwareError):
    """No candidate mapping of a layer fits the accelerator's buffers (under the half-capacity rule)."""
