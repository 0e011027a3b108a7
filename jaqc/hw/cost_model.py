"""The BitFusion-style cost model, written once as tensor code over a batch of (layer, accelerator, mapping).

The equations are documented in docs/cost_model.md (section numbers in comments refer to it). The same
code serves BatchTile (no gradients, huge batches) and the hardware generation network: with
``relaxed=True`` every ceil() of an expression in the accelerator parameters is straight-through, so
gradients flow to relaxed PE counts, buffer sizes and DRAM width; comparisons (the buffer fit rule, the
dataflow choice) are hard.
"""

from __future__ import annotations

import torch
from attrs import frozen

from .constants import (
    BUFFER_FIT_FRACTION,
    DATAFLOW_CODES,
    OUTPUT_BITS,
    PMAX_BITS,
    PMIN_BITS,
)
from .ste import ceil_div
from .tensors import (
    AreaTensors,
    HardwareTensors,
    MappingTensors,
    ProblemTensors,
    UnitCostTensors,
)
from .traffic import dram_traffic, loop_dependence
from .unit_costs import area_tensors, unit_cost_tensors

#: Codes of the SRAM access order inside a tile (the simulator's IS / OS / WS choice).
INNER_ORDER_NAMES: tuple[str, ...] = ("IS", "OS", "WS")

_WS, _OS, _RS = DATAFLOW_CODES["WS"], DATAFLOW_CODES["OS"], DATAFLOW_CODES["RS"]


def perf_factor_tensor(w_bits: torch.Tensor, a_bits: torch.Tensor) -> torch.Tensor:
    """MACs per fusion unit per cycle: floor(8/max(a,2)) * floor(8/max(w,2))."""
    a = torch.floor(PMAX_BITS / torch.clamp(a_bits, min=PMIN_BITS))
    w = torch.floor(PMAX_BITS / torch.clamp(w_bits, min=PMIN_BITS))
    return a * w


@frozen(eq=False)
class TileTerms:
    """Order-independent terms of a tiling (section 3-5 of docs/cost_model.md), for one group.

    ``tile_bits`` and ``capacity_bits`` are (..., 3) over (activations, weights, outputs).
    """

    num_tiles: torch.Tensor  # (..., 5)
    tile_count: torch.Tensor
    tile_bits: torch.Tensor  # (..., 3)
    capacity_bits: torch.Tensor  # (..., 3)
    fits: torch.Tensor  # bool
    compute_cycles: torch.Tensor
    act_reads: torch.Tensor
    wgt_reads: torch.Tensor
    out_inner_accesses: torch.Tensor  # inner OBUF reads == inner OBUF writes
    inner_order: torch.Tensor  # int64 index into INNER_ORDER_NAMES


@frozen(eq=False)
class _Spatial:
    """What a dataflow's spatial unrolling decides for one tile (docs/cost_model.md, sections 3, 4, 12)."""

    tile_cycles: torch.Tensor
    wgt_bits: torch.Tensor
    out_bits: torch.Tensor
    reduce_extent: torch.Tensor  # padded reduction extent ("os" loop of the inner-order choice)
    oc_extent: torch.Tensor  # padded output-channel extent ("is" loop)
    pixel_extent: torch.Tensor  # padded pixel extent ("ws" loop)


def _spatial(code: int, problem: ProblemTensors, hardware: HardwareTensors, tile: torch.Tensor, relaxed: bool):
    b, ow, oh, ic, oc = tile.unbind(-1)
    k, w_bits, im2col = problem.kernel, problem.w_bits, problem.im2col
    n, m = hardware.pe_rows, hardware.pe_cols
    pf = perf_factor_tensor(w_bits, problem.a_bits)
    kk_ic = k * k * ic
    lanes = n * pf  # MACs per cycle along one column (rows x fused bricks)
    oc_folds = ceil_div(oc, m, relaxed)
    if code == _WS:  # BitFusion: rows reduce IC x pf (im2col: k*k*IC x pf), columns hold OC
        reduce = torch.where(im2col, ceil_div(kk_ic, lanes, relaxed), k * k * ceil_div(ic, lanes, relaxed))
        extent = torch.where(
            im2col, ceil_div(kk_ic, lanes, relaxed) * lanes, ceil_div(ic, lanes, relaxed) * lanes * k * k
        )
        return _Spatial(
            tile_cycles=b * oc_folds * ow * oh * reduce,
            wgt_bits=ceil_div(kk_ic, lanes, relaxed) * lanes * oc * w_bits,
            out_bits=ow * oh * (oc_folds * m) * b * OUTPUT_BITS,
            reduce_extent=extent,
            oc_extent=oc_folds * m,
            pixel_extent=b * oh * ow,
        )
    if code == _OS:  # extension: rows hold output columns, columns OC; each PE reduces in time
        ow_folds = ceil_div(ow, n, relaxed)
        reduce = torch.where(im2col, ceil_div(kk_ic, pf, False), k * k * ceil_div(ic, pf, False))
        extent = torch.where(im2col, ceil_div(kk_ic, pf, False) * pf, ceil_div(ic, pf, False) * pf * k * k)
        return _Spatial(
            tile_cycles=b * oh * ow_folds * oc_folds * reduce,
            wgt_bits=ceil_div(kk_ic, pf, False) * pf * oc * w_bits,
            out_bits=ow_folds * n * oh * (oc_folds * m) * b * OUTPUT_BITS,
            reduce_extent=extent,
            oc_extent=oc_folds * m,
            pixel_extent=b * oh * ow_folds * n,
        )
    # RS, extension: rows reduce kernel rows x IC (im2col: k*k*IC), columns hold output rows
    oh_folds = ceil_div(oh, m, relaxed)
    reduce = torch.where(im2col, ceil_div(kk_ic, lanes, relaxed), k * ceil_div(k * ic, lanes, relaxed))
    extent = torch.where(im2col, ceil_div(kk_ic, lanes, relaxed) * lanes, ceil_div(k * ic, lanes, relaxed) * lanes * k)
    return _Spatial(
        tile_cycles=b * ow * oh_folds * oc * reduce,
        wgt_bits=ceil_div(kk_ic, lanes, relaxed) * lanes * oc * w_bits,
        out_bits=ow * oh_folds * m * oc * b * OUTPUT_BITS,
        reduce_extent=extent,
        oc_extent=oc,
        pixel_extent=b * ow * oh_folds * m,
    )


def _select_spatial(problem: ProblemTensors, hardware: HardwareTensors, tile: torch.Tensor, relaxed: bool):
    """The spatial terms of each row's dataflow; only the dataflows present in the batch are computed."""
    dataflow = hardware.dataflow
    codes = sorted({int(c) for c in dataflow.reshape(-1).unique().tolist()})
    parts = {code: _spatial(code, problem, hardware, tile, relaxed) for code in codes}
    if len(parts) == 1:
        return parts[codes[0]]
    names = [a.name for a in _Spatial.__attrs_attrs__]  # type: ignore[attr-defined]
    merged = {}
    for name in names:
        value = getattr(parts[codes[-1]], name)
        for code in reversed(codes[:-1]):
            value = torch.where(dataflow == code, getattr(parts[code], name), value)
        merged[name] = value
    return _Spatial(**merged)


def tile_terms(
    problem: ProblemTensors, hardware: HardwareTensors, tile: torch.Tensor, relaxed: bool = False
) -> TileTerms:
    """Tile counts, per-tile buffer footprints, the fit rule, compute cycles and inner SRAM accesses."""
    extents = problem.loop_extents()
    num_tiles = ceil_div(extents, tile, False)
    b, ow, oh, ic, oc = tile.unbind(-1)
    k, s = problem.kernel, problem.stride
    w_bits, a_bits = problem.w_bits, problem.a_bits
    spatial = _select_spatial(problem, hardware, tile, relaxed)  # 4.1 and the padded blocks of section 3

    # 3. per-tile buffer footprints (bits) and the half-capacity fit rule.
    act_bits = torch.where(
        problem.im2col,
        ow * oh * (k * k * ic) * b * a_bits,
        (k + (ow - 1) * s) * (k + (oh - 1) * s) * ic * b * a_bits,
    )
    tile_bits = torch.stack(torch.broadcast_tensors(act_bits, spatial.wgt_bits, spatial.out_bits), dim=-1)
    capacity_bits = torch.stack(
        torch.broadcast_tensors(hardware.ibuf_bytes, hardware.wbuf_bytes, hardware.obuf_bytes), dim=-1
    ) * (8 * BUFFER_FIT_FRACTION)
    fits = (tile_bits <= capacity_bits).all(dim=-1)

    # 4.2 SRAM access order inside a tile: the simulator's IS/OS/WS choice on padded extents.
    os_loop, is_loop, ws_loop = spatial.reduce_extent, spatial.oc_extent, spatial.pixel_extent
    energy_is = (os_loop * ws_loop) * (a_bits + is_loop * (w_bits + OUTPUT_BITS))
    energy_os = (is_loop * ws_loop) * (OUTPUT_BITS + os_loop * (a_bits + w_bits))
    energy_ws = (os_loop * is_loop) * (w_bits + ws_loop * (a_bits + OUTPUT_BITS))
    lowest = torch.minimum(energy_is, torch.minimum(energy_os, energy_ws))
    inner_order = torch.where(energy_is == lowest, 0, torch.where(energy_os == lowest, 1, 2))
    tile_cycles = spatial.tile_cycles

    tile_count = num_tiles.prod(dim=-1)
    pixels = oh * ow * b
    reduction = k * k * ic
    act_once = tile_count * pixels * reduction * a_bits  # every (pixel, reduction) input once
    act_per_oc = tile_count * (oc * pixels) * reduction * a_bits
    wgt_per_pixel = tile_count * (oc * pixels) * reduction * w_bits
    wgt_once = tile_count * (reduction * oc) * w_bits
    out_once = tile_count * (oc * pixels) * OUTPUT_BITS
    out_per_reduction = tile_count * (reduction * pixels) * oc * OUTPUT_BITS
    act_reads = torch.where(inner_order == 0, act_once, act_per_oc)
    wgt_reads = torch.where(inner_order == 2, wgt_once, wgt_per_pixel)
    out_inner = torch.where(inner_order == 1, out_once, out_per_reduction)

    return TileTerms(
        num_tiles=num_tiles,
        tile_count=tile_count,
        tile_bits=tile_bits,
        capacity_bits=capacity_bits,
        fits=fits,
        compute_cycles=tile_count * tile_cycles,
        act_reads=act_reads,
        wgt_reads=wgt_reads,
        out_inner_accesses=out_inner,
        inner_order=inner_order,
    )


@frozen(eq=False)
class CostTensors:
    """The cost model's outputs for a batch; counts in cycles and bits, energy in nJ, area in mm^2.

    Every count already includes the group multiplier. ``feasible`` is False where a tile does not fit
    half of its buffer (the simulator rejects such a mapping); the other fields are still computed.
    """

    feasible: torch.Tensor
    compute_cycles: torch.Tensor
    stall_cycles: torch.Tensor
    total_cycles: torch.Tensor
    wbuf_read_bits: torch.Tensor
    wbuf_write_bits: torch.Tensor
    ibuf_read_bits: torch.Tensor
    ibuf_write_bits: torch.Tensor
    obuf_read_bits: torch.Tensor
    obuf_write_bits: torch.Tensor
    dram_read_bits: torch.Tensor
    dram_write_bits: torch.Tensor
    energy_core: torch.Tensor
    energy_wbuf_read: torch.Tensor
    energy_wbuf_write: torch.Tensor
    energy_ibuf_read: torch.Tensor
    energy_ibuf_write: torch.Tensor
    energy_obuf_read: torch.Tensor
    energy_obuf_write: torch.Tensor
    energy_dram_read: torch.Tensor
    energy_dram_write: torch.Tensor
    energy_sram: torch.Tensor
    energy_dram: torch.Tensor
    energy_total: torch.Tensor
    area: AreaTensors
    latency_s: torch.Tensor
    edp: torch.Tensor  # nJ * s
    edap: torch.Tensor  # nJ * s * mm^2
    utilization: torch.Tensor
    inner_order: torch.Tensor


def stall_cycles(
    compute_cycles: torch.Tensor,
    dram_read: torch.Tensor,
    dram_write: torch.Tensor,
    peak_sum: torch.Tensor,
    peak_out: torch.Tensor,
    dram_bits_per_cycle: torch.Tensor,
    relaxed: bool = False,
) -> torch.Tensor:
    """Section 6: exposed DRAM cycles = max(0, steady-state transfer - compute) + first load + last store."""
    fill_drain = ceil_div(peak_sum, dram_bits_per_cycle, relaxed) + ceil_div(peak_out, dram_bits_per_cycle, relaxed)
    steady = dram_read + dram_write - peak_sum - peak_out
    steady_cycles = ceil_div(steady, dram_bits_per_cycle, relaxed)
    return torch.clamp(steady_cycles - compute_cycles, min=0) + fill_drain


def evaluate(
    problem: ProblemTensors,
    hardware: HardwareTensors,
    mapping: MappingTensors,
    unit_costs: UnitCostTensors | None = None,
    *,
    relaxed: bool = False,
) -> CostTensors:
    """Cycles, access counts, energy, area, latency, EDP and EDAP of every row of a batch.

    ``unit_costs`` defaults to the CACTI/synthesis unit costs of ``hardware``. With ``relaxed=True`` the
    accelerator fields may be non-integer tensors requiring gradients (see the module docstring).
    """
    terms = tile_terms(problem, hardware, mapping.tile, relaxed)
    order = mapping.order
    num_tiles_by_level = terms.num_tiles.gather(-1, order.expand(terms.num_tiles.shape))
    dependence_by_level = loop_dependence(order.device)[order]
    traffic, peak = dram_traffic(terms.tile_bits, terms.capacity_bits, num_tiles_by_level, dependence_by_level)
    act_t, wgt_t, out_t = traffic.unbind(-1)
    act_p, wgt_p, out_p = peak.unbind(-1)

    dram_read = wgt_t + act_t + out_t
    dram_write = out_t
    stall = stall_cycles(
        terms.compute_cycles, dram_read, dram_write, wgt_p + act_p + out_p, out_p,
        hardware.dram_bits_per_cycle, relaxed,
    )  # fmt: skip
    g = problem.groups
    compute = terms.compute_cycles * g
    stall = stall * g
    total = compute + stall
    counts = {
        "wbuf_read": terms.wgt_reads * g,
        "wbuf_write": wgt_t * g,
        "ibuf_read": terms.act_reads * g,
        "ibuf_write": act_t * g,
        "obuf_read": (out_t + terms.out_inner_accesses) * g,
        "obuf_write": (out_t + terms.out_inner_accesses) * g,
        "dram_read": dram_read * g,
        "dram_write": dram_write * g,
    }
    if unit_costs is None:
        unit_costs = unit_cost_tensors(hardware, relaxed)
    energy = {
        "core": compute * unit_costs.core_nj_per_cycle,
        "wbuf_read": counts["wbuf_read"] * unit_costs.wbuf_read_nj_per_bit,
        "wbuf_write": counts["wbuf_write"] * unit_costs.wbuf_write_nj_per_bit,
        "ibuf_read": counts["ibuf_read"] * unit_costs.ibuf_read_nj_per_bit,
        "ibuf_write": counts["ibuf_write"] * unit_costs.ibuf_write_nj_per_bit,
        "obuf_read": counts["obuf_read"] * unit_costs.obuf_read_nj_per_bit,
        "obuf_write": counts["obuf_write"] * unit_costs.obuf_write_nj_per_bit,
        "dram_read": counts["dram_read"] * unit_costs.dram_nj_per_bit,
        "dram_write": counts["dram_write"] * unit_costs.dram_nj_per_bit,
    }
    sram = (
        energy["wbuf_read"]
        + energy["wbuf_write"]
        + energy["ibuf_read"]
        + energy["ibuf_write"]
        + energy["obuf_read"]
        + energy["obuf_write"]
    )
    total_energy = energy["core"]
    for name in list(energy)[1:]:
        total_energy = total_energy + energy[name]
    area = area_tensors(hardware, relaxed)
    latency = total / (hardware.freq_mhz * 1.0e6)
    pf = perf_factor_tensor(problem.w_bits, problem.a_bits)
    macs = problem.loop_extents().prod(dim=-1) * problem.kernel * problem.kernel * g
    peak_rate = compute * hardware.pe_rows * hardware.pe_cols * pf
    return CostTensors(
        feasible=terms.fits,
        compute_cycles=compute,
        stall_cycles=stall,
        total_cycles=total,
        **{f"{name}_bits": value for name, value in counts.items()},
        **{f"energy_{name}": value for name, value in energy.items()},
        energy_sram=sram,
        energy_dram=energy["dram_read"] + energy["dram_write"],
        energy_total=total_energy,
        area=area,
        latency_s=latency,
        edp=total_energy * latency,
        edap=total_energy * latency * area.total,
        utilization=macs / peak_rate,
        inner_order=terms.inner_order,
    )
