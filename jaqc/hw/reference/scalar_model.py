"""A plain-Python, one-mapping-at-a-time form of the cost model (exact integer arithmetic).

It restates docs/cost_model.md independently of the tensor code: tests use it as the brute-force oracle
of BatchTile, and the benchmark as the "straightforward reference search". It covers the same dataflows.
"""

from __future__ import annotations

from attrs import frozen

from jaqc.hw.model.constants import BUFFER_FIT_FRACTION, LOOP_OPERAND_DEPENDENCE, OUTPUT_BITS
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.unit_costs import UnitCosts
from jaqc.ir.accelerator import AcceleratorConfig, Dataflow
from jaqc.ir.mapping import LOOP_DIMS, Mapping


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@frozen(kw_only=True)
class ScalarCost:
    """Cycles, accesses (bits) and energy (nJ) of one layer at one mapping; ``feasible`` as in CostTensors."""

    feasible: bool
    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    access_bits: dict[str, int]
    energy_nj: dict[str, float]

    @property
    def energy_total(self) -> float:
        """Total energy (nJ)."""
        return self.energy_nj["total"]


def scalar_cost(
    problem: ConvProblem, accelerator: AcceleratorConfig, mapping: Mapping, unit_costs: UnitCosts
) -> ScalarCost:
    """The cost of one layer on one accelerator at one mapping."""
    b, ow, oh, ic, oc = mapping.tile
    extents = problem.loop_extents
    counts = [_cdiv(e, t) for e, t in zip(extents, mapping.tile, strict=True)]
    k, s = problem.kernel, problem.stride
    wb, ab = problem.w_bits, problem.a_bits
    n, m = accelerator.pe_rows, accelerator.pe_cols
    pf = problem.perf_factor
    lanes = n * pf
    flow = accelerator.dataflow
    kk_ic = k * k * ic

    if flow is Dataflow.WS:
        reduce = _cdiv(kk_ic, lanes) if problem.im2col else k * k * _cdiv(ic, lanes)
        tile_cycles = b * _cdiv(oc, m) * ow * oh * reduce
        reduce_extent = _cdiv(kk_ic, lanes) * lanes if problem.im2col else _cdiv(ic, lanes) * lanes * k * k
        oc_extent, pixel_extent = _cdiv(oc, m) * m, b * oh * ow
        wgt_bits = _cdiv(kk_ic, lanes) * lanes * oc * wb
        out_bits = ow * oh * _cdiv(oc, m) * m * b * OUTPUT_BITS
    elif flow is Dataflow.OS:
        reduce = _cdiv(kk_ic, pf) if problem.im2col else k * k * _cdiv(ic, pf)
        tile_cycles = b * oh * _cdiv(ow, n) * _cdiv(oc, m) * reduce
        reduce_extent = _cdiv(kk_ic, pf) * pf if problem.im2col else _cdiv(ic, pf) * pf * k * k
        oc_extent, pixel_extent = _cdiv(oc, m) * m, b * oh * _cdiv(ow, n) * n
        wgt_bits = _cdiv(kk_ic, pf) * pf * oc * wb
        out_bits = _cdiv(ow, n) * n * oh * _cdiv(oc, m) * m * b * OUTPUT_BITS
    else:
        reduce = _cdiv(kk_ic, lanes) if problem.im2col else k * _cdiv(k * ic, lanes)
        tile_cycles = b * ow * _cdiv(oh, m) * oc * reduce
        reduce_extent = _cdiv(kk_ic, lanes) * lanes if problem.im2col else _cdiv(k * ic, lanes) * lanes * k
        oc_extent, pixel_extent = oc, b * ow * _cdiv(oh, m) * m
        wgt_bits = _cdiv(kk_ic, lanes) * lanes * oc * wb
        out_bits = ow * _cdiv(oh, m) * m * oc * b * OUTPUT_BITS
    if problem.im2col:
        act_bits = ow * oh * kk_ic * b * ab
    else:
        act_bits = (k + (ow - 1) * s) * (k + (oh - 1) * s) * ic * b * ab

    capacity = [
        accelerator.ibuf_kb * 1024 * 8 * BUFFER_FIT_FRACTION,
        accelerator.wbuf_kb * 1024 * 8 * BUFFER_FIT_FRACTION,
        accelerator.obuf_kb * 1024 * 8 * BUFFER_FIT_FRACTION,
    ]
    block = [act_bits, wgt_bits, out_bits]
    feasible = all(x <= c for x, c in zip(block, capacity, strict=True))

    # DRAM traffic: walk the loops from the innermost outwards.
    peak = list(block)
    growing = [True, True, True]
    for dim in reversed(mapping.loop_order):
        d = LOOP_DIMS.index(dim)
        for operand in range(3):
            depends = LOOP_OPERAND_DEPENDENCE[d][operand]
            if growing[operand] and not depends:
                continue
            block[operand] *= counts[d]
            if growing[operand]:
                if block[operand] > capacity[operand]:
                    growing[operand] = False
                else:
                    peak[operand] = block[operand]
    act_t, wgt_t, out_t = block

    # SRAM access order inside a tile (the simulator's IS/OS/WS choice).
    e_is = reduce_extent * pixel_extent * (ab + oc_extent * (wb + OUTPUT_BITS))
    e_os = oc_extent * pixel_extent * (OUTPUT_BITS + reduce_extent * (ab + wb))
    e_ws = reduce_extent * oc_extent * (wb + pixel_extent * (ab + OUTPUT_BITS))
    tiles = 1
    for c in counts:
        tiles *= c
    pixels, reduction = oh * ow * b, k * k * ic
    lowest = min(e_is, e_os, e_ws)
    if e_is == lowest:
        act_r, wgt_r, out_inner = (
            tiles * pixels * reduction * ab,
            tiles * oc * pixels * reduction * wb,
            tiles * reduction * pixels * oc * OUTPUT_BITS,
        )
    elif e_os == lowest:
        act_r, wgt_r, out_inner = (
            tiles * oc * pixels * reduction * ab,
            tiles * oc * pixels * reduction * wb,
            tiles * oc * pixels * OUTPUT_BITS,
        )
    else:
        act_r, wgt_r, out_inner = (
            tiles * oc * pixels * reduction * ab,
            tiles * reduction * oc * wb,
            tiles * reduction * pixels * oc * OUTPUT_BITS,
        )

    compute = tiles * tile_cycles
    width = accelerator.dram_bits_per_cycle
    dram_read, dram_write = wgt_t + act_t + out_t, out_t
    first_last = sum(peak) + peak[2]
    fill_drain = _cdiv(sum(peak), width) + _cdiv(peak[2], width)
    stall = max(0, _cdiv(dram_read + dram_write - first_last, width) - compute) + fill_drain

    g = problem.groups
    access = {
        "wbuf_read": wgt_r * g,
        "wbuf_write": wgt_t * g,
        "ibuf_read": act_r * g,
        "ibuf_write": act_t * g,
        "obuf_read": (out_t + out_inner) * g,
        "obuf_write": (out_t + out_inner) * g,
        "dram_read": dram_read * g,
        "dram_write": dram_write * g,
    }
    u = unit_costs
    energy = {
        "core": float(compute * g) * u.core_nj_per_cycle,
        "wbuf_read": float(access["wbuf_read"]) * u.wbuf_read_nj_per_bit,
        "wbuf_write": float(access["wbuf_write"]) * u.wbuf_write_nj_per_bit,
        "ibuf_read": float(access["ibuf_read"]) * u.ibuf_read_nj_per_bit,
        "ibuf_write": float(access["ibuf_write"]) * u.ibuf_write_nj_per_bit,
        "obuf_read": float(access["obuf_read"]) * u.obuf_read_nj_per_bit,
        "obuf_write": float(access["obuf_write"]) * u.obuf_write_nj_per_bit,
        "dram_read": float(access["dram_read"]) * u.dram_nj_per_bit,
        "dram_write": float(access["dram_write"]) * u.dram_nj_per_bit,
    }
    total = 0.0
    for value in energy.values():
        total = total + value if total else value
    energy["sram"] = sum(energy[k] for k in list(energy)[1:7])
    energy["dram"] = energy["dram_read"] + energy["dram_write"]
    energy["total"] = total
    return ScalarCost(
        feasible=feasible,
        compute_cycles=compute * g,
        stall_cycles=stall * g,
        total_cycles=(compute + stall) * g,
        access_bits=access,
        energy_nj=energy,
    )
