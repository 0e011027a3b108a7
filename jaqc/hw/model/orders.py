"""The 120 loop orders of the five tiled loops, with a stable rank <-> order encoding.

Rank r is the r-th permutation of LOOP_DIMS (B, OW, OH, IC, OC) in lexicographic order of the dimensions'
positions in LOOP_DIMS; rank 0 is B>OW>OH>IC>OC. Orders are written outer to inner.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from itertools import permutations

import torch

from jaqc.hw.errors import HardwareError
from jaqc.ir.mapping import LOOP_DIMS, LoopDim

#: All 120 loop orders, outer to inner, in rank order.
ALL_ORDERS: tuple[tuple[LoopDim, ...], ...] = tuple(permutations(LOOP_DIMS))
_RANK = {order: rank for rank, order in enumerate(ALL_ORDERS)}


def order_rank(order: Iterable[LoopDim | str]) -> int:
    """The rank (0..119) of a loop order given outer to inner."""
    try:
        key = tuple(LoopDim(d.upper() if isinstance(d, str) else d) for d in order)
        return _RANK[key]
    except (KeyError, ValueError):
        raise HardwareError(f"{list(order)!r} is not a permutation of B, OW, OH, IC, OC") from None


def order_at(rank: int) -> tuple[LoopDim, ...]:
    """The loop order (outer to inner) of a rank in 0..119."""
    if not 0 <= rank < len(ALL_ORDERS):
        raise HardwareError(f"loop-order rank must be in 0..{len(ALL_ORDERS) - 1}, got {rank}")
    return ALL_ORDERS[rank]


def order_index_tensor(ranks: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """A (len(ranks), 5) int64 tensor of loop-dimension indices (into LOOP_DIMS), outer to inner."""
    table = torch.tensor([[LOOP_DIMS.index(d) for d in order] for order in ALL_ORDERS], dtype=torch.int64)
    if ranks is None:
        return table
    return table[torch.as_tensor(ranks, dtype=torch.int64)]


def canonical_order_ranks(batch_is_one: bool, square_output_tiles: bool) -> list[int]:
    """The ranks of the lexicographically smallest member of each cost-equivalence class of loop orders.

    In a feasible mapping (every tile block fits half its buffer) a loop whose tile count is 1 never changes
    the cost, wherever it sits; when the batch is 1 the B loop is such a loop, so only orders with B
    outermost are kept. When every candidate has equal OW and OH tile counts (square output tiles of a
    square output), OW and OH are interchangeable (same operands, same counts), so only orders with OW
    outer of OH are kept. Both representatives are the smallest rank
    of their class, so the tie-breaking rule "smallest rank" picks the same order as a full search.
    """
    return list(_canonical_order_ranks(bool(batch_is_one), bool(square_output_tiles)))


@functools.cache
def _canonical_order_ranks(batch_is_one: bool, square_output_tiles: bool) -> tuple[int, ...]:
    ranks = []
    for rank, order in enumerate(ALL_ORDERS):
        if batch_is_one and order[0] is not LoopDim.B:
            continue
        if square_output_tiles and order.index(LoopDim.OW) > order.index(LoopDim.OH):
            continue
        ranks.append(rank)
    return tuple(ranks)
