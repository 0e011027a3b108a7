"""The vectorised core of BatchTile: every (tiling, loop order) candidate of a chunk of layers, bounded, argmin.

Steps (docs/cost_model.md, section 14): order-independent tile terms of every tiling; drop tilings that
overflow a buffer; bound (an upper bound from two orders per tiling, a lower bound over all orders per
tiling, drop tilings whose lower bound exceeds the upper bound); evaluate the survivors under every order
with the factored traffic rule; segmented argmin with the tie-breaking rule.
"""

from __future__ import annotations

import math

import torch
from attrs import frozen

from jaqc.hw.mapping.mapping_space import Objective
from jaqc.hw.model.constants import LOOP_OPERAND_DEPENDENCE
from jaqc.hw.model.cost_model import (
    deployment_traffic,
    energy_sum,
    energy_terms,
    output_full_traffic,
    stall_cycles,
    tile_terms,
)
from jaqc.hw.model.hw_models import HardwareModel
from jaqc.hw.model.ste import ceil_div
from jaqc.hw.model.tensors import HardwareTensors, ProblemTensors, UnitCostTensors
from jaqc.hw.model.traffic import dram_traffic_all_orders

UNIT_KEYS: list[str] = [a.name for a in UnitCostTensors.__attrs_attrs__]  # type: ignore[attr-defined]


def _rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return tensor[index] if tensor.dim() > 0 else tensor


@frozen(eq=False)
class _Tilings:
    """Order-independent terms of the feasible tilings of a chunk, one row per tiling."""

    local: torch.Tensor  # index of the layer within the chunk
    tiles: torch.Tensor
    groups: torch.Tensor
    width: torch.Tensor
    freq: torch.Tensor
    units: UnitCostTensors
    compute: torch.Tensor
    wgt_reads: torch.Tensor
    act_reads: torch.Tensor
    out_inner: torch.Tensor
    tile_bits: torch.Tensor
    capacity_bits: torch.Tensor
    num_tiles: torch.Tensor
    #: Deployment model only (zeros otherwise): the output traffic with every block moved once, the width of
    #: finished outputs, the bits of the first load (activation + weight tile) and of the last store.
    out_full: torch.Tensor
    out_bits: torch.Tensor
    first_load: torch.Tensor
    drain: torch.Tensor

    def select(self, rows: torch.Tensor) -> _Tilings:
        """The given rows."""
        fields = {k: getattr(self, k)[rows] for k in _TILING_KEYS if k != "units"}
        return _Tilings(units=self.units.index(rows), **fields)


_TILING_KEYS = [a.name for a in _Tilings.__attrs_attrs__]  # type: ignore[attr-defined]


def _objective_terms(
    tilings: _Tilings,
    traffic: list[torch.Tensor],
    peak: list[torch.Tensor],
    n_orders: int,
    model: HardwareModel = HardwareModel.SIMULATOR,
):
    """(cycles_of, energy_of): the cost of all (tiling, order) rows as (T, R) tensors (argument None), or of a
    flat subset of rows. ``traffic``/``peak`` are per operand (activations, weights, outputs), (T, R) or
    (T, 1)."""
    if model is HardwareModel.DEPLOYMENT:
        return _deployment_terms(tilings, traffic, n_orders)

    def cycles_of(flat: torch.Tensor | None) -> torch.Tensor:
        t, o = _rows_view(n_orders, flat)
        g, compute = t(tilings.groups), t(tilings.compute)
        act, wgt, out = (o(x) for x in traffic)
        act_p, wgt_p, out_p = (o(x) for x in peak)
        stall = stall_cycles(compute, wgt + act + out, out, wgt_p + act_p + out_p, out_p, t(tilings.width))
        return compute * g + stall * g

    def energy_of(flat: torch.Tensor | None) -> torch.Tensor:
        t, o = _rows_view(n_orders, flat)
        g = t(tilings.groups)
        act, wgt, out = (o(x) for x in traffic)

        def cost(name: str) -> torch.Tensor:
            return t(getattr(tilings.units, name))

        obuf = (out + t(tilings.out_inner)) * g
        counts = {
            "core": t(tilings.compute) * g, "wbuf_read": t(tilings.wgt_reads) * g, "wbuf_write": wgt * g,
            "ibuf_read": t(tilings.act_reads) * g, "ibuf_write": act * g, "obuf_read": obuf, "obuf_write": obuf,
            "dram_read": (wgt + act + out) * g, "dram_write": out * g,
        }  # fmt: skip
        return energy_sum(energy_terms(counts, cost))

    return cycles_of, energy_of


def _rows_view(n_orders: int, flat: torch.Tensor | None):
    """Accessors of per-tiling (T,) and per-row (T, R) or (T, 1) tensors for all rows (None) or flat rows."""
    if flat is None:
        return (lambda x: x.unsqueeze(1)), (lambda y: y)
    tile_row = flat // n_orders
    return (lambda x: x[tile_row]), (lambda y: y[:, 0][tile_row] if y.shape[1] == 1 else y.reshape(-1)[flat])


def _deployment_terms(tilings: _Tilings, traffic: list[torch.Tensor], n_orders: int):
    """(cycles_of, energy_of) of the deployment model (docs/cost_model.md, section 19), the same
    floating-point expressions as cost_model.evaluate."""

    def moved(t, o):
        act, wgt, out = (o(x) for x in traffic)
        return act, wgt, deployment_traffic(act, wgt, out, t(tilings.out_full), t(tilings.out_bits))

    def cycles_of(flat: torch.Tensor | None) -> torch.Tensor:
        t, o = _rows_view(n_orders, flat)
        _act, _wgt, m = moved(t, o)
        compute = t(tilings.compute)
        stall = stall_cycles(
            compute, m.dram_read, m.dram_write, t(tilings.first_load), t(tilings.drain), t(tilings.width)
        )
        return compute + stall

    def energy_of(flat: torch.Tensor | None) -> torch.Tensor:
        t, o = _rows_view(n_orders, flat)
        act, wgt, m = moved(t, o)

        def cost(name: str) -> torch.Tensor:
            return t(getattr(tilings.units, name))

        inner = t(tilings.out_inner)
        counts = {
            "core": t(tilings.compute), "wbuf_read": t(tilings.wgt_reads), "wbuf_write": wgt,
            "ibuf_read": t(tilings.act_reads), "ibuf_write": act, "obuf_read": inner + m.obuf_read,
            "obuf_write": inner + m.obuf_write, "dram_read": m.dram_read, "dram_write": m.dram_write,
        }  # fmt: skip
        return energy_sum(energy_terms(counts, cost))

    return cycles_of, energy_of


def _primary(objective: Objective, cycles: torch.Tensor, energy: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    if objective is Objective.LATENCY:
        return cycles
    if objective is Objective.ENERGY:
        return energy
    return energy * (cycles / (freq * 1.0e6))


def _lower_bound(
    tilings: _Tilings,
    objective: Objective,
    model: HardwareModel = HardwareModel.SIMULATOR,
    dependence: tuple = LOOP_OPERAND_DEPENDENCE,
) -> torch.Tensor:
    """A lower bound of the primary objective over all loop orders of each tiling.

    Every operand's traffic is at least its block times the tile counts of the loops indexing it, and every
    peak at least its block; compute cycles do not depend on the order. So cycles >= compute + first-load
    and last-store cycles of the blocks, and cycles >= all DRAM traffic / width. The bound is evaluated with the same
    floating-point expressions as the objective on operands that are never larger, and IEEE rounding is
    monotone, so it never exceeds the computed objective of any order.
    """
    table = torch.tensor(dependence, dtype=torch.bool, device=tilings.num_tiles.device)
    full = [
        tilings.tile_bits[:, x : x + 1] * tilings.num_tiles[:, table[:, x]].prod(dim=1, keepdim=True) for x in range(3)
    ]
    if model is HardwareModel.DEPLOYMENT:
        # Fill and drain do not depend on the order, and cycles and energy grow with every transfer, so the
        # exact expressions at the least traffic bound every order from below.
        cycles_of, energy_of = _objective_terms(tilings, full, full, 1, model)
        return _primary(objective, cycles_of(None)[:, 0], energy_of(None)[:, 0], tilings.freq)
    _, energy_of = _objective_terms(tilings, full, full, 1)
    energy = energy_of(None)[:, 0]
    blocks = tilings.tile_bits
    fill = ceil_div(blocks.sum(dim=1), tilings.width, False) + ceil_div(blocks[:, 2], tilings.width, False)
    # steady + fill >= ceil(all DRAM traffic / W) because ceil(x) + ceil(y) >= ceil(x + y).
    transfer = ceil_div(full[0][:, 0] + full[1][:, 0] + 2 * full[2][:, 0], tilings.width, False)
    cycles = torch.maximum(tilings.compute + fill, transfer) * tilings.groups
    return _primary(objective, cycles, energy, tilings.freq)


def search_chunk(
    tiles_per_layer: list[torch.Tensor],
    layer_ids: torch.Tensor,
    problem: ProblemTensors,
    hardware: HardwareTensors,
    units: UnitCostTensors,
    ranks: list[int],
    objective: Objective,
    model: HardwareModel = HardwareModel.SIMULATOR,
    dependence: tuple = LOOP_OPERAND_DEPENDENCE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The best (tile, order rank, cycles, energy) of each layer of a chunk that shares one order set (and,
    in the deployment model, one loop -> operand ``dependence`` table).

    ``tiles_per_layer[i]`` are the candidate tilings of layer ``layer_ids[i]`` (rows of ``problem``,
    ``hardware`` and ``units``); a layer with no feasible tiling gets inf cycles and energy.
    """
    sizes = torch.tensor([t.shape[0] for t in tiles_per_layer])
    local = torch.repeat_interleave(torch.arange(len(tiles_per_layer)), sizes)
    owner = layer_ids[local]
    tiles = torch.cat(tiles_per_layer)
    terms = tile_terms(problem.index(owner), hardware.index(owner), tiles, hw_model=model)

    n_layers = len(tiles_per_layer)
    out_tile = torch.zeros(n_layers, 5, dtype=torch.float64)
    out_rank = torch.zeros(n_layers, dtype=torch.int64)
    out_cycles = torch.full((n_layers,), math.inf, dtype=torch.float64)
    out_energy = torch.full((n_layers,), math.inf, dtype=torch.float64)
    keep = terms.fits.nonzero().squeeze(1)  # 1. drop tilings that overflow a buffer
    if keep.numel() == 0:
        return out_tile, out_rank, out_cycles, out_energy
    owner = owner[keep]
    if model is HardwareModel.DEPLOYMENT:
        blocks = terms.tile_bits[keep]
        extras = {
            "out_full": output_full_traffic(blocks[:, 2], terms.num_tiles[keep]),
            "out_bits": terms.out_bits.expand(terms.fits.shape)[keep],
            "first_load": blocks[:, 0] + blocks[:, 1],
            "drain": terms.drain_bits[keep],
        }
    else:
        zeros = torch.zeros(keep.shape[0], dtype=torch.float64)
        extras = {"out_full": zeros, "out_bits": zeros, "first_load": zeros, "drain": zeros}
    tilings = _Tilings(
        local=local[keep],
        tiles=tiles[keep],
        groups=_rows(problem.groups, owner).expand(keep.shape[0]),
        width=_rows(hardware.dram_bits_per_cycle, owner).expand(keep.shape[0]),
        freq=_rows(hardware.freq_mhz, owner).expand(keep.shape[0]),
        units=UnitCostTensors(**{k: getattr(units, k)[owner] for k in UNIT_KEYS}),
        compute=terms.compute_cycles[keep],
        wgt_reads=terms.wgt_reads[keep],
        act_reads=terms.act_reads[keep],
        out_inner=terms.out_inner_accesses[keep],
        tile_bits=terms.tile_bits[keep],
        capacity_bits=terms.capacity_bits[keep],
        num_tiles=terms.num_tiles[keep],
        **extras,
    )

    # 2. Bound: a tiling whose lower bound (over all orders) exceeds the objective some candidate reaches
    # (each tiling under the first and the last order) cannot hold the optimum, nor a tie with it.
    probe = (ranks[0], ranks[-1]) if len(ranks) > 1 else (ranks[0],)
    traffic, peak = dram_traffic_all_orders(
        tilings.tile_bits, tilings.capacity_bits, tilings.num_tiles, probe, dependence
    )
    cycles_of, energy_of = _objective_terms(tilings, traffic, peak, len(probe), model)
    reached = _primary(objective, cycles_of(None), energy_of(None), tilings.freq.unsqueeze(1)).amin(dim=1)
    bound = torch.full((n_layers,), math.inf, dtype=torch.float64).scatter_reduce(
        0, tilings.local, reached, "amin", include_self=True
    )
    survivors = (_lower_bound(tilings, objective, model, dependence) <= bound[tilings.local]).nonzero().squeeze(1)
    tilings = tilings.select(survivors)

    # 3. Every surviving tiling under every order: the primary objective on all rows, the secondary only
    # on the rows tied at the optimum, then the first row (smallest tile tuple, then order rank).
    n_orders = len(ranks)
    traffic, peak = dram_traffic_all_orders(
        tilings.tile_bits, tilings.capacity_bits, tilings.num_tiles, tuple(ranks), dependence
    )
    cycles_of, energy_of = _objective_terms(tilings, traffic, peak, n_orders, model)

    def every_row(values: torch.Tensor) -> torch.Tensor:
        return values.expand(values.shape[0], n_orders).reshape(-1)

    freq = tilings.freq.unsqueeze(1)
    if objective is Objective.LATENCY:
        primary, secondary_of = every_row(cycles_of(None)), energy_of
    elif objective is Objective.ENERGY:
        primary, secondary_of = every_row(energy_of(None)), cycles_of
    else:
        primary, secondary_of = every_row(_primary(objective, cycles_of(None), energy_of(None), freq)), cycles_of
    flat_owner = tilings.local.repeat_interleave(n_orders)
    best = torch.full((n_layers,), math.inf, dtype=torch.float64).scatter_reduce(
        0, flat_owner, primary, "amin", include_self=True
    )
    tied = (primary == best[flat_owner]).nonzero().squeeze(1)
    secondary = secondary_of(tied)
    tied_owner = flat_owner[tied]
    best2 = torch.full((n_layers,), math.inf, dtype=torch.float64).scatter_reduce(
        0, tied_owner, secondary, "amin", include_self=True
    )
    winners = tied[secondary == best2[tied_owner]]
    sentinel = primary.numel()
    first = torch.full((n_layers,), sentinel, dtype=torch.int64).scatter_reduce(
        0, flat_owner[winners], winners, "amin", include_self=True
    )
    found = first < sentinel
    pick = first[found]
    out_tile[found] = tilings.tiles[pick // n_orders]
    out_rank[found] = torch.tensor(ranks, dtype=torch.int64)[pick % n_orders]
    out_cycles[found] = cycles_of(pick)
    out_energy[found] = energy_of(pick)
    return out_tile, out_rank, out_cycles, out_energy
