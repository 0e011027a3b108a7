"""The agent's continuous action in [0, 1] and the bitwidths {2, 4, 8} it stands for.

The unit interval is cut into equal thirds, each closed on the left: ``[0, 1/3) → 2``, ``[1/3, 2/3) → 4``,
``[2/3, 1] → 8``, where 1/3 and 2/3 are the float64 values ``1 / 3`` and ``2 / 3``. An action exactly on a
boundary takes the higher bitwidth. The mapping is a pure function (no randomness, no rounding of the action).
"""

from __future__ import annotations

import math

from .errors import HaqError

#: The bitwidths an action selects, lowest first (BitFusion's widths).
ACTION_BITS: tuple[int, ...] = (2, 4, 8)

#: The lower edges of the slices of 4 and 8 bits.
SLICE_BOUNDARIES: tuple[float, ...] = (1 / 3, 2 / 3)


def action_to_bits(action: float) -> int:
    """The bitwidth of an action in [0, 1]: 2 below 1/3, 4 below 2/3, else 8 (boundaries go up)."""
    value = float(action)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise HaqError(f"an action must lie in [0, 1], got {action!r}")
    return ACTION_BITS[sum(value >= edge for edge in SLICE_BOUNDARIES)]


def bits_to_action(bits: int) -> float:
    """The centre of a bitwidth's slice (1/6, 1/2 or 5/6): the action that stands for ``bits``."""
    if bits not in ACTION_BITS:
        raise HaqError(f"bits must be one of {', '.join(map(str, ACTION_BITS))}, got {bits!r}")
    return (2 * ACTION_BITS.index(bits) + 1) / 6


def lower_bits(bits: int) -> int:
    """The next lower bitwidth (8 → 4 → 2); 2 stays 2."""
    position = ACTION_BITS.index(bits)
    return ACTION_BITS[max(0, position - 1)]
