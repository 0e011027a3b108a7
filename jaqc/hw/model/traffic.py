"""DRAM traffic of the tiled loop nest: the simulator's inner-to-outer rule, per row or for all orders.

Rule (docs/cost_model.md, section 5): walking from the innermost loop outwards, an operand's block grows
by a loop's tile count when the loop indexes the operand, while the block still fits half its buffer;
once it outgrows it, every further loop (indexing it or not) multiplies its transfer. The peak is the
largest block that still fit. Operands are (activations, weights, outputs).
"""

from __future__ import annotations

import functools

import torch

from jaqc.hw.model.constants import LOOP_OPERAND_DEPENDENCE
from jaqc.hw.model.orders import ALL_ORDERS
from jaqc.ir.mapping import LOOP_DIMS


def loop_dependence(device: torch.device | str | None = None) -> torch.Tensor:
    """(5, 3) bool: whether loop d (LOOP_DIMS order) indexes the (activation, weight, output) operand."""
    return torch.tensor(LOOP_OPERAND_DEPENDENCE, dtype=torch.bool, device=device)


def dram_traffic(
    tile_bits: torch.Tensor,
    capacity_bits: torch.Tensor,
    num_tiles_by_level: torch.Tensor,
    dependence_by_level: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(traffic, peak), each (..., 3) bits, of one loop order per row.

    ``num_tiles_by_level`` is (..., L) and ``dependence_by_level`` (..., L, 3), both outer to inner.
    """
    traffic = tile_bits
    peak = tile_bits
    promoted = torch.ones_like(tile_bits, dtype=torch.bool)
    for level in range(num_tiles_by_level.shape[-1] - 1, -1, -1):
        count = num_tiles_by_level[..., level : level + 1]
        depends = dependence_by_level[..., level, :]
        traffic = traffic * torch.where(depends | ~promoted, count, torch.ones_like(count))
        fits = traffic <= capacity_bits
        peak = torch.where(promoted & depends & fits, traffic, peak)
        promoted = promoted & (~depends | fits)
    return traffic, peak


#: The deployment model's dependence for grouped layers: OC also indexes the activations (section 19.1).
GROUPED_DEPENDENCE = tuple((True, *row[1:]) if d == 4 else row for d, row in enumerate(LOOP_OPERAND_DEPENDENCE))


@functools.cache
def _operand_tables(
    order_ranks: tuple[int, ...],
    operand: int,
    active: tuple[bool, ...],
    dependence: tuple[tuple[bool, bool, bool], ...] = LOOP_OPERAND_DEPENDENCE,
):
    """For one operand, a list of orders and the loops with more than one tile: the permutations of its
    active indexing loops (listed inner to outer) that the orders use, each order's permutation index, and
    for each active non-indexing loop how many active indexing loops sit inside it."""
    dep = [d for d in range(5) if active[d] and dependence[d][operand]]
    free = [d for d in range(5) if active[d] and not dependence[d][operand]]
    perms: list[tuple[int, ...]] = []  # only the permutations the given orders use
    perm_index, inside = [], []
    for rank in order_ranks:
        inner_to_outer = [LOOP_DIMS.index(d) for d in reversed(ALL_ORDERS[rank])]
        perm = tuple(d for d in inner_to_outer if d in dep)
        if perm not in perms:
            perms.append(perm)
        perm_index.append(perms.index(perm))
        inside.append([sum(1 for d in inner_to_outer[: inner_to_outer.index(f)] if d in dep) for f in free])
    return (
        torch.tensor(perms, dtype=torch.int64).reshape(len(perms), len(dep)),
        torch.tensor(perm_index, dtype=torch.int64),
        free,
        torch.tensor(inside, dtype=torch.float64).reshape(len(order_ranks), len(free)),
    )


def dram_traffic_all_orders(
    tile_bits: torch.Tensor,
    capacity_bits: torch.Tensor,
    num_tiles: torch.Tensor,
    order_ranks: tuple[int, ...],
    dependence: tuple[tuple[bool, bool, bool], ...] = LOOP_OPERAND_DEPENDENCE,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per operand, traffic and peak of T tilings under each of R loop orders: (T, R) tensors, or (T, 1)
    where the value is the same for every order.

    Same rule as :func:`dram_traffic`, factored: an operand's growth stops at the first of its indexing
    loops (inside out) whose block overflows, which depends only on the relative order of its indexing
    loops (at most 24 permutations, computed per tiling); a non-indexing loop multiplies the traffic iff
    more than that many indexing loops sit inside it. ``tile_bits``/``capacity_bits`` are (T, 3),
    ``num_tiles`` (T, 5) in LOOP_DIMS order. Every block must fit its capacity (a feasible tiling): only then
    do loops with one tile never change the result, which lets this function leave them out. ``dependence``
    is the (5, 3) loop -> operand table of every row (LOOP_OPERAND_DEPENDENCE, or GROUPED_DEPENDENCE).
    """
    traffic, peak = [], []
    rows = num_tiles.shape[0]
    # A loop with one tile in every tiling changes nothing (its count is 1); leave it out.
    active = tuple(bool(x) for x in (num_tiles > 1).any(dim=0).tolist())
    for operand in range(3):
        perms, perm_index, free, inside = _operand_tables(tuple(order_ranks), operand, active, dependence)
        base = tile_bits[:, operand : operand + 1]
        cap = capacity_bits[:, operand : operand + 1]
        counts = num_tiles[:, perms]  # (T, P, D) inner to outer
        product = torch.ones_like(base).expand(-1, perms.shape[0])
        fitting = torch.zeros_like(product)
        peak_product = torch.ones_like(product)
        for level in range(perms.shape[1]):
            product = product * counts[:, :, level]
            fits = base * product <= cap
            fitting = fitting + fits  # fits is monotone, so this counts the leading fitting loops
            peak_product = torch.where(fits, product, peak_product)
        full = base * product[:, :1]  # the same product for every permutation
        per_perm_peak = base * peak_product
        if perms.shape[0] == 1:  # every order sees the same permutation: keep (T, 1), broadcast later
            grown, operand_peak = fitting, per_perm_peak
        else:
            index = perm_index.to(num_tiles.device).expand(rows, -1)
            grown = torch.gather(fitting, 1, index)  # (T, R)
            operand_peak = torch.gather(per_perm_peak, 1, index)
        total = full
        for column, loop in enumerate(free):
            count = num_tiles[:, loop : loop + 1]
            outside = inside[:, column].to(num_tiles.device) > grown
            total = torch.where(outside, total * count, total)
        traffic.append(total)
        peak.append(operand_peak)
    return traffic, peak
