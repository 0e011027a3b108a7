"""The BitFusion-style cost model, written once as tensor code over a batch of (layer, accelerator, mapping).

The equations are documented in docs/cost_model.md (section numbers in comments refer to it). The same
code serves BatchTile (no gradients, huge batches) and the hardware generation network: with
``relaxed=True`` every ceil() of an expression in the accelerator parameters is straight-through, so
gradients flow to relaxed PE counts, buffer sizes and DRAM width; comparisons (the buffer fit rule, the
dataflow choice) are hard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from attrs import frozen

from jaqc.hw.model.constants import (
    BUFFER_FIT_FRACTION,
    DATAFLOW_CODES,
    OUTPUT_BITS,
    PMAX_BITS,
    PMIN_BITS,
)
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.ste import ceil_div, floor_div
from jaqc.hw.model.tensors import (
    AreaTensors,
    HardwareTensors,
    MappingTensors,
    ProblemTensors,
    UnitCostTensors,
)
from jaqc.hw.model.traffic import GROUPED_DEPENDENCE, dram_traffic, loop_dependence
from jaqc.hw.model.unit_costs import area_tensors, unit_cost_tensors

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
    #: The deployment model's extras (section 19): whether OC indexes the activations (grouped layers), the
    #: bits of one finished output tile at ``out_bits`` (the exposed drain), and each layer's output bits.
    act_on_oc: torch.Tensor | None = None
    drain_bits: torch.Tensor | None = None
    out_bits: torch.Tensor | None = None


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


def _ws_passes(
    reduce: torch.Tensor, spans: torch.Tensor, cols: torch.Tensor, lanes: torch.Tensor, m: torch.Tensor, relaxed: bool
) -> torch.Tensor:
    """WS passes of the array for one tile (section 19.3): ``spans`` groups, each reducing ``reduce`` values in
    the lanes into ``cols`` columns, packed block-diagonally when one group fits the array."""
    fits = (reduce <= lanes) & (cols <= m)
    packed = torch.minimum(spans, torch.minimum(floor_div(lanes, reduce, relaxed), floor_div(m, cols, relaxed)))
    packed = torch.clamp(packed, min=1)  # only used where a group fits, i.e. where it is >= 1
    one_at_a_time = spans * ceil_div(reduce, lanes, relaxed) * ceil_div(cols, m, relaxed)
    return torch.where(fits, ceil_div(spans, packed, relaxed), one_at_a_time)


def group_spans(problem: ProblemTensors, oc: torch.Tensor) -> torch.Tensor:
    """How many groups an (aligned) OC tile of the deployment model spans (1 for a dense layer; section 19.1)."""
    return torch.clamp(oc / problem.out_channels, min=1)  # ``out_channels`` is one group's


def _deployment_spatial(
    code: int, problem: ProblemTensors, hardware: HardwareTensors, tile: torch.Tensor, relaxed: bool
) -> _Spatial:
    """Section 19.3: the deployment model's spatial unrolling of a tile (OC over every group's channels)."""
    b, ow, oh, ic, oc = tile.unbind(-1)
    k, im2col = problem.kernel, problem.im2col
    n, m = hardware.pe_rows, hardware.pe_cols
    pf = perf_factor_tensor(problem.w_bits, problem.a_bits)
    q = problem.out_channels  # output channels per group
    spans = group_spans(problem, oc)
    kk_ic = k * k * ic
    lanes = n * pf
    if code == _WS:
        cols = torch.minimum(oc, q)
        window_in_lanes = _ws_passes(kk_ic, spans, cols, lanes, m, relaxed)
        kernel_in_time = k * k * _ws_passes(ic, spans, cols, lanes, m, relaxed)
        cycles = torch.where(im2col, window_in_lanes, torch.minimum(kernel_in_time, window_in_lanes))
        tile_cycles = b * ow * oh * cycles
    elif code == _OS:
        reduce = torch.where(im2col, ceil_div(kk_ic, pf, False), k * k * ceil_div(ic, pf, False))
        tile_cycles = b * oh * ceil_div(ow, n, relaxed) * ceil_div(oc, m, relaxed) * reduce
    else:
        reduce = torch.where(im2col, ceil_div(kk_ic, lanes, relaxed), k * ceil_div(k * ic, lanes, relaxed))
        tile_cycles = b * ow * ceil_div(oh, m, relaxed) * oc * reduce
    return _Spatial(
        tile_cycles=tile_cycles,
        wgt_bits=kk_ic * oc * problem.w_bits,
        out_bits=ow * oh * oc * b * OUTPUT_BITS,
        reduce_extent=kk_ic,
        oc_extent=oc,
        pixel_extent=b * oh * ow,
    )


def _select_spatial(
    problem: ProblemTensors,
    hardware: HardwareTensors,
    tile: torch.Tensor,
    relaxed: bool,
    model: HardwareModel = HardwareModel.SIMULATOR,
):
    """The spatial terms of each row's dataflow; only the dataflows present in the batch are computed."""
    dataflow = hardware.dataflow
    codes = sorted({int(c) for c in dataflow.reshape(-1).unique().tolist()})
    spatial = _deployment_spatial if model is HardwareModel.DEPLOYMENT else _spatial
    parts = {code: spatial(code, problem, hardware, tile, relaxed) for code in codes}
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
    problem: ProblemTensors,
    hardware: HardwareTensors,
    tile: torch.Tensor,
    relaxed: bool = False,
    hw_model: HardwareModel | str | None = None,
) -> TileTerms:
    """Tile counts, per-tile buffer footprints, the fit rule, compute cycles and inner SRAM accesses.

    ``hw_model``: the deployment model's (section 19; the default) or the simulator's (sections 3-4, one
    group)."""
    model = parse_hw_model(hw_model)
    deployment = model is HardwareModel.DEPLOYMENT
    extents = problem.loop_extents(whole_layer=deployment)
    num_tiles = ceil_div(extents, tile, False)
    b, ow, oh, ic, oc = tile.unbind(-1)
    k, s = problem.kernel, problem.stride
    w_bits, a_bits = problem.w_bits, problem.a_bits
    spatial = _select_spatial(problem, hardware, tile, relaxed, model)  # 4.1 / 19.3 and the blocks of 3 / 19.2

    # 3. per-tile buffer footprints (bits) and the half-capacity fit rule.
    spans = group_spans(problem, oc) if deployment else None
    in_channels = ic * spans if spans is not None else ic  # 19.1: an OC tile reads its s groups' channels
    act_bits = torch.where(
        problem.im2col,
        ow * oh * (k * k * in_channels) * b * a_bits,
        (k + (ow - 1) * s) * (k + (oh - 1) * s) * in_channels * b * a_bits,
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
    if spans is not None:  # an OC tile spanning s groups reads s groups' inputs (section 19.6)
        act_once = act_once * spans
    act_per_oc = tile_count * (oc * pixels) * reduction * a_bits
    wgt_per_pixel = tile_count * (oc * pixels) * reduction * w_bits
    wgt_once = tile_count * (reduction * oc) * w_bits
    out_once = tile_count * (oc * pixels) * OUTPUT_BITS
    out_per_reduction = tile_count * (reduction * pixels) * oc * OUTPUT_BITS
    act_reads = torch.where(inner_order == 0, act_once, act_per_oc)
    wgt_reads = torch.where(inner_order == 2, wgt_once, wgt_per_pixel)
    out_inner = torch.where(inner_order == 1, out_once, out_per_reduction)

    extras = {}
    if deployment:
        extras = {
            "act_on_oc": torch.broadcast_tensors(problem.groups > 1, tile_count)[0],
            "drain_bits": ow * oh * oc * b * problem.out_bits,
            "out_bits": problem.out_bits,
        }
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
        **extras,
    )


@frozen(eq=False)
class DeploymentTraffic:
    """Section 19.4: DRAM and OBUF transfers of the deployment model from the promoted traffic (bits)."""

    dram_read: torch.Tensor
    dram_write: torch.Tensor
    partial: torch.Tensor  # 32-bit partial sums written (and read back)
    obuf_read: torch.Tensor  # leaving the OBUF for DRAM (excluding the inner accesses)
    obuf_write: torch.Tensor  # returning to the OBUF from DRAM (excluding the inner accesses)


def deployment_traffic(
    act_t: torch.Tensor,
    wgt_t: torch.Tensor,
    out_t: torch.Tensor,
    out_full: torch.Tensor,
    out_bits: torch.Tensor,
) -> DeploymentTraffic:
    """Transfers of the deployment model: ``out_t`` is the output traffic of the promotion rule (32-bit
    words), ``out_full`` the same with every output block moved once (``out_t`` is ``out_full`` or
    ``n_IC·out_full``); finished outputs leave once at ``out_bits``."""
    partial = out_t - out_full
    final = out_full / OUTPUT_BITS * out_bits
    dram_write = partial + final
    return DeploymentTraffic(
        dram_read=act_t + wgt_t + partial,
        dram_write=dram_write,
        partial=partial,
        obuf_read=dram_write,
        obuf_write=partial,
    )


def output_full_traffic(tile_bits_out: torch.Tensor, num_tiles: torch.Tensor) -> torch.Tensor:
    """The output traffic when every output block moves once: the block times the tile counts of the
    loops that index outputs (B, OW, OH, OC)."""
    b, ow, oh, _ic, oc = num_tiles.unbind(-1)
    return tile_bits_out * (b * ow * oh * oc)


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


#: A layer's energy terms in the order they are summed (the simulator's: core, buffers, DRAM), each with the unit
#: cost it is charged at (per cycle for the core, per bit for the rest).
ENERGY_TERMS: tuple[tuple[str, str], ...] = (
    ("core", "core_nj_per_cycle"),
    ("wbuf_read", "wbuf_read_nj_per_bit"),
    ("wbuf_write", "wbuf_write_nj_per_bit"),
    ("ibuf_read", "ibuf_read_nj_per_bit"),
    ("ibuf_write", "ibuf_write_nj_per_bit"),
    ("obuf_read", "obuf_read_nj_per_bit"),
    ("obuf_write", "obuf_write_nj_per_bit"),
    ("dram_read", "dram_nj_per_bit"),
    ("dram_write", "dram_nj_per_bit"),
)


def energy_terms(
    counts: Mapping[str, torch.Tensor], unit_cost: Callable[[str], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Each term's energy (nJ): its count (``counts[term]``: cycles for the core, bits for the rest) times its
    unit cost (``unit_cost(name)``, the names of :data:`ENERGY_TERMS`)."""
    return {term: counts[term] * unit_cost(name) for term, name in ENERGY_TERMS}


def energy_sum(terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The total of :func:`energy_terms`, added in :data:`ENERGY_TERMS` order: the one floating-point expression
    of a layer's energy, shared by :func:`evaluate` and BatchTile's search (so they agree bit for bit)."""
    total = terms["core"]
    for term, _ in ENERGY_TERMS[1:]:
        total = total + terms[term]
    return total


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
    hw_model: HardwareModel | str | None = None,
) -> CostTensors:
    """Cycles, access counts, energy, area, latency, EDP and EDAP of every row of a batch.

    ``unit_costs`` defaults to the CACTI/synthesis unit costs of ``hardware``. With ``relaxed=True`` the
    accelerator fields may be non-integer tensors requiring gradients (see the module docstring).
    ``hw_model`` (default: the deployment model) selects the equations (docs/cost_model.md, section 19).
    """
    model = parse_hw_model(hw_model)
    if model is HardwareModel.DEPLOYMENT:
        return _evaluate_deployment(problem, hardware, mapping, unit_costs, relaxed)
    terms = tile_terms(problem, hardware, mapping.tile, relaxed, HardwareModel.SIMULATOR)
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
    return _finish(problem, hardware, unit_costs, relaxed, terms, compute, stall, counts)


def _evaluate_deployment(
    problem: ProblemTensors,
    hardware: HardwareTensors,
    mapping: MappingTensors,
    unit_costs: UnitCostTensors | None,
    relaxed: bool,
) -> CostTensors:
    """Section 19: the deployment model of every row."""
    terms = tile_terms(problem, hardware, mapping.tile, relaxed, HardwareModel.DEPLOYMENT)
    order = mapping.order
    num_tiles_by_level = terms.num_tiles.gather(-1, order.expand(terms.num_tiles.shape))
    dependence = deployment_dependence(terms.act_on_oc)  # (..., 5, 3), LOOP_DIMS order
    level_index = order.expand(*dependence.shape[:-2], 5).unsqueeze(-1).expand_as(dependence)
    dependence_by_level = dependence.gather(-2, level_index)
    traffic, _peak = dram_traffic(terms.tile_bits, terms.capacity_bits, num_tiles_by_level, dependence_by_level)
    act_t, wgt_t, out_t = traffic.unbind(-1)
    act_b, wgt_b, out_b = terms.tile_bits.unbind(-1)
    moved = deployment_traffic(act_t, wgt_t, out_t, output_full_traffic(out_b, terms.num_tiles), terms.out_bits)
    stall = stall_cycles(
        terms.compute_cycles, moved.dram_read, moved.dram_write, act_b + wgt_b, terms.drain_bits,
        hardware.dram_bits_per_cycle, relaxed,
    )  # fmt: skip
    compute = terms.compute_cycles
    counts = {
        "wbuf_read": terms.wgt_reads,
        "wbuf_write": wgt_t,
        "ibuf_read": terms.act_reads,
        "ibuf_write": act_t,
        "obuf_read": terms.out_inner_accesses + moved.obuf_read,
        "obuf_write": terms.out_inner_accesses + moved.obuf_write,
        "dram_read": moved.dram_read,
        "dram_write": moved.dram_write,
    }
    return _finish(problem, hardware, unit_costs, relaxed, terms, compute, stall, counts)


def deployment_dependence(act_on_oc: torch.Tensor) -> torch.Tensor:
    """(..., 5, 3) bool: which loop indexes which operand in the deployment model, per row (section 19.1:
    OC also indexes the activations of a grouped layer)."""
    grouped = torch.tensor(GROUPED_DEPENDENCE, dtype=torch.bool, device=act_on_oc.device)
    return torch.where(act_on_oc[..., None, None], grouped, loop_dependence(act_on_oc.device))


def _finish(
    problem: ProblemTensors,
    hardware: HardwareTensors,
    unit_costs: UnitCostTensors | None,
    relaxed: bool,
    terms: TileTerms,
    compute: torch.Tensor,
    stall: torch.Tensor,
    counts: dict[str, torch.Tensor],
) -> CostTensors:
    """Energy, area, latency and the record of one batch from its cycles and access counts (sections 8-10)."""
    total = compute + stall
    g = problem.groups
    if unit_costs is None:
        unit_costs = unit_cost_tensors(hardware, relaxed)
    units = unit_costs
    energy = energy_terms({"core": compute, **counts}, lambda name: getattr(units, name))
    sram = (
        energy["wbuf_read"]
        + energy["wbuf_write"]
        + energy["ibuf_read"]
        + energy["ibuf_write"]
        + energy["obuf_read"]
        + energy["obuf_write"]
    )
    total_energy = energy_sum(energy)
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
