"""A tile-by-tile walk of the mapped loop nest: the plain-Python oracle of the deployment model.

docs/cost_model.md, section 19, defines the ``deployment`` hardware model by closed forms (tile blocks, the
inner-to-outer promotion rule, partial sums and requantized outputs). This module computes the same
quantities the slow and obvious way, so that the tensor model can be checked against it
(tests/hw/test_hw_oracle.py):

* the loop nest is enumerated in the mapping's order, outer to inner, one tile at a time; every tile is
  charged at the full tile sizes (a partial last tile is padded, as in the closed forms);
* each buffer keeps the set of blocks it holds; a block of an operand is named by the tile indices of the
  loops that index that operand (section 19.1; for a grouped layer OC also indexes the activations);
* a buffer holds its operand through an innermost suffix of the loop order (its *holding level*): the
  largest suffix whose distinct blocks all fit half the buffer. Whenever a loop outside that suffix
  advances, the buffer is flushed;
* activations and weights are read from DRAM into their buffer when a tile needs a block that is not
  resident;
* an output block that is not resident starts from zero, or from its 32-bit partial sum read back from
  DRAM; a flush writes every unfinished resident output block back as a 32-bit partial sum; a block that
  has received all ``n_IC`` reductions is written once, at ``problem.out_bits``, right after its last tile;
* compute cycles and inner SRAM accesses are summed tile by tile from the per-tile formulas.

Nothing here uses the tensor code or the simulator model's traffic rule. It is meant for small layers
(up to some ten thousand tiles).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

from attrs import frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.records import ACCESS_NAMES
from jaqc.hw.model.unit_costs import UnitCosts
from jaqc.hw.reference.scalar_model import ScalarCost
from jaqc.ir.accelerator import AcceleratorConfig, Dataflow
from jaqc.ir.mapping import LOOP_DIMS, LoopDim, Mapping

#: Width of a partial sum (bits) in the OBUF and when evicted to DRAM.
PARTIAL_SUM_BITS = 32

ACTIVATIONS, WEIGHTS, OUTPUTS = "activations", "weights", "outputs"
OPERANDS: tuple[str, ...] = (ACTIVATIONS, WEIGHTS, OUTPUTS)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@frozen(kw_only=True)
class Tiling:
    """The tiled layer: tile sizes, tile counts, group packing and the three tile blocks (bits)."""

    b: int
    ow: int
    oh: int
    ic: int
    oc: int
    counts: dict[LoopDim, int]
    groups_per_tile: int  # s: groups an OC tile spans
    oc_per_group_in_tile: int  # q_t = min(oc, q): output channels of one group inside the tile
    activation_bits: int  # A_t
    weight_bits: int  # W_t
    psum_bits: int  # O_t = b*ow*oh*oc*32, the output block in the OBUF
    final_bits: int  # b*ow*oh*oc*out_bits, the output block leaving the chip


def indexing_loops(problem: ConvProblem) -> dict[str, frozenset[LoopDim]]:
    """Which loops index which operand (section 19.1): B, OW, OH index activations and outputs, IC
    activations and weights, OC weights and outputs, and also activations for a grouped layer."""
    act = {LoopDim.B, LoopDim.OW, LoopDim.OH, LoopDim.IC}
    if problem.groups > 1:
        act.add(LoopDim.OC)
    return {
        ACTIVATIONS: frozenset(act),
        WEIGHTS: frozenset({LoopDim.IC, LoopDim.OC}),
        OUTPUTS: frozenset({LoopDim.B, LoopDim.OW, LoopDim.OH, LoopDim.OC}),
    }


def tiling(problem: ConvProblem, mapping: Mapping) -> Tiling:
    """Check the mapping against the layer (spec 19.1) and size its tiles and blocks (spec 19.2)."""
    extents = dict(zip(LOOP_DIMS, problem.loop_extents_for("deployment"), strict=True))
    sizes = dict(zip(LOOP_DIMS, mapping.tile, strict=True))
    for dim in LOOP_DIMS:
        if sizes[dim] > extents[dim]:
            raise HardwareError(f"tile {sizes[dim]} of loop {dim} exceeds its extent {extents[dim]}")
    b, ow, oh, ic, oc = (sizes[d] for d in LOOP_DIMS)
    q = problem.out_channels // problem.groups
    if problem.groups > 1 and q % oc and oc % q and oc != problem.out_channels:
        raise HardwareError(
            f"OC tile {oc} of a layer with {problem.groups} groups of {q} output channels is not group-aligned"
        )
    s = max(1, oc // q)
    k, stride = problem.kernel, problem.stride
    if problem.im2col:
        act = ow * oh * k * k * ic * s * b * problem.a_bits
    else:
        act = (k + (ow - 1) * stride) * (k + (oh - 1) * stride) * ic * s * b * problem.a_bits
    return Tiling(
        b=b,
        ow=ow,
        oh=oh,
        ic=ic,
        oc=oc,
        counts={d: _cdiv(extents[d], sizes[d]) for d in LOOP_DIMS},
        groups_per_tile=s,
        oc_per_group_in_tile=min(oc, q),
        activation_bits=act,
        weight_bits=k * k * ic * oc * problem.w_bits,
        psum_bits=b * ow * oh * oc * PARTIAL_SUM_BITS,
        final_bits=b * ow * oh * oc * problem.out_bits,
    )


def tile_compute_cycles(problem: ConvProblem, accelerator: AcceleratorConfig, t: Tiling) -> int:
    """Cycles of one tile on the array (spec 19.3)."""
    n, m, pf = accelerator.pe_rows, accelerator.pe_cols, problem.perf_factor
    lanes = n * pf
    k, ic, oc = problem.kernel, t.ic, t.oc
    pixels = t.b * t.ow * t.oh
    if accelerator.dataflow is Dataflow.WS:
        # (reduction in the lanes, kernel positions in time); im2col only unrolls the whole window.
        options = [(k * k * ic, 1)]
        if not problem.im2col:
            options.append((ic, k * k))
        best = None
        for r, in_time in options:
            s, qt = t.groups_per_tile, t.oc_per_group_in_tile
            if r <= lanes and qt <= m:
                per_pass = min(s, lanes // r, m // qt)  # groups packed block-diagonally
                passes = _cdiv(s, per_pass)
            else:
                passes = s * _cdiv(r, lanes) * _cdiv(qt, m)
            cycles = pixels * in_time * passes
            best = cycles if best is None else min(best, cycles)
        assert best is not None
        return best
    if accelerator.dataflow is Dataflow.OS:
        reduce = _cdiv(k * k * ic, pf) if problem.im2col else k * k * _cdiv(ic, pf)
        return t.b * t.oh * _cdiv(t.ow, n) * _cdiv(oc, m) * reduce
    reduce = _cdiv(k * k * ic, lanes) if problem.im2col else k * _cdiv(k * ic, lanes)
    return t.b * t.ow * _cdiv(t.oh, m) * oc * reduce


def tile_inner_accesses(problem: ConvProblem, t: Tiling) -> tuple[str, dict[str, int]]:
    """The SRAM access order inside one tile and its (ibuf_read, wbuf_read, obuf inner) bits (spec 19.6 and
    section 4.2 on unpadded extents; ties go IS, then OS, then WS)."""
    a, w, o = problem.a_bits, problem.w_bits, PARTIAL_SUM_BITS
    reduction = problem.kernel * problem.kernel * t.ic
    pixels = t.b * t.oh * t.ow
    oc = t.oc
    os_, is_, ws_ = reduction, oc, pixels
    energy = {
        "IS": os_ * ws_ * (a + is_ * (w + o)),
        "OS": is_ * ws_ * (o + os_ * (a + w)),
        "WS": os_ * is_ * (w + ws_ * (a + o)),
    }
    order = min(("IS", "OS", "WS"), key=lambda name: energy[name])  # min keeps the first of equals
    if order == "IS":  # every input of the tile once: s groups' channels
        bits = {
            "ibuf": t.groups_per_tile * pixels * reduction * a,
            "wbuf": oc * pixels * reduction * w,
            "obuf": reduction * pixels * oc * o,
        }
    elif order == "OS":
        bits = {"ibuf": oc * pixels * reduction * a, "wbuf": oc * pixels * reduction * w, "obuf": oc * pixels * o}
    else:
        bits = {"ibuf": oc * pixels * reduction * a, "wbuf": reduction * oc * w, "obuf": reduction * pixels * oc * o}
    return order, bits


def holding_level(
    order: Sequence[LoopDim], counts: dict[LoopDim, int], indexing: frozenset[LoopDim], block_bits: int, capacity: float
) -> int:
    """Position (in ``order``, outer to inner) of the outermost loop of the operand's holding suffix.

    The suffix ``order[level:]`` is the largest one whose distinct blocks (one per combination of the tile
    indices of its indexing loops) fit ``capacity`` together. A suffix with no indexing loop touches only
    the current block, which stays resident while it is reused even when it alone overflows (the mapping is
    then infeasible anyway); this is section 5's rule for such a block. Returns 5 for the empty suffix.
    """
    level = len(order)
    for start in range(len(order) - 1, -1, -1):
        suffix = order[start:]
        keyed = [p for p, d in enumerate(suffix) if d in indexing]
        if keyed:
            # enumerate one iteration of the suffix and name the block each of its tiles touches
            touched = {
                tuple(index[p] for p in keyed) for index in itertools.product(*(range(counts[d]) for d in suffix))
            }
            if len(touched) * block_bits > capacity:
                break
        level = start
    return level


def _tiles(order: Sequence[LoopDim], counts: dict[LoopDim, int]) -> Iterator[tuple[int, dict[LoopDim, int]]]:
    """Yield (outermost loop position that changed since the previous tile, tile indices by loop) in loop
    order; the first tile reports position 0."""
    previous: tuple[int, ...] | None = None
    for index in itertools.product(*(range(counts[d]) for d in order)):
        if previous is None:
            changed = 0
        else:
            changed = next(p for p in range(len(order)) if index[p] != previous[p])
        previous = index
        yield changed, dict(zip(order, index, strict=True))


def walk_cost(
    problem: ConvProblem, accelerator: AcceleratorConfig, mapping: Mapping, unit_costs: UnitCosts
) -> ScalarCost:
    """The deployment model's cost of one layer at one mapping, by walking its loop nest tile by tile.

    Raises HardwareError for a tile larger than its loop's extent or a grouped layer's OC tile that is not
    group-aligned.
    """
    t = tiling(problem, mapping)
    capacity = {
        ACTIVATIONS: accelerator.ibuf_kb * 1024 * 8 / 2,
        WEIGHTS: accelerator.wbuf_kb * 1024 * 8 / 2,
        OUTPUTS: accelerator.obuf_kb * 1024 * 8 / 2,
    }
    block_bits = {ACTIVATIONS: t.activation_bits, WEIGHTS: t.weight_bits, OUTPUTS: t.psum_bits}
    feasible = all(block_bits[x] <= capacity[x] for x in OPERANDS)

    order = mapping.loop_order
    indexing = indexing_loops(problem)
    level = {x: holding_level(order, t.counts, indexing[x], block_bits[x], capacity[x]) for x in OPERANDS}
    keyed = {x: [d for d in LOOP_DIMS if d in indexing[x]] for x in OPERANDS}
    n_ic = t.counts[LoopDim.IC]

    access = dict.fromkeys(ACCESS_NAMES, 0)
    resident: dict[str, set[tuple[int, ...]]] = {x: set() for x in OPERANDS}
    reductions_done: dict[tuple[int, ...], int] = {}  # IC tiles accumulated into each output block
    finished: set[tuple[int, ...]] = set()
    cycles_per_tile = tile_compute_cycles(problem, accelerator, t)
    _, inner = tile_inner_accesses(problem, t)
    compute = 0
    tiles = 0

    def flush_outputs() -> None:
        for _block in resident[OUTPUTS]:
            # every resident block is unfinished: finished blocks leave the buffer when written
            access["dram_write"] += t.psum_bits
            access["obuf_read"] += t.psum_bits
        resident[OUTPUTS].clear()

    for changed, index in _tiles(order, t.counts):
        # flush the buffers whose holding suffix this step left
        for x in OPERANDS:
            if changed < level[x]:
                if x == OUTPUTS:
                    flush_outputs()
                else:
                    resident[x].clear()
        blocks = {x: tuple(index[d] for d in keyed[x]) for x in OPERANDS}

        for x, buffer in ((ACTIVATIONS, "ibuf_write"), (WEIGHTS, "wbuf_write")):
            if blocks[x] not in resident[x]:
                access["dram_read"] += block_bits[x]
                access[buffer] += block_bits[x]
                resident[x].add(blocks[x])

        out = blocks[OUTPUTS]
        assert out not in finished, "an output block was touched after its reduction completed"
        if out not in resident[OUTPUTS]:
            if reductions_done.get(out, 0):  # a partial sum waits in DRAM
                access["dram_read"] += t.psum_bits
                access["obuf_write"] += t.psum_bits
            resident[OUTPUTS].add(out)

        # compute the tile
        compute += cycles_per_tile
        tiles += 1
        access["ibuf_read"] += inner["ibuf"]
        access["wbuf_read"] += inner["wbuf"]
        access["obuf_read"] += inner["obuf"]
        access["obuf_write"] += inner["obuf"]
        reductions_done[out] = reductions_done.get(out, 0) + 1
        if reductions_done[out] == n_ic:  # requantize and write once
            access["dram_write"] += t.final_bits
            access["obuf_read"] += t.final_bits
            resident[OUTPUTS].discard(out)
            finished.add(out)

    assert not resident[OUTPUTS], "the walk ended with unfinished output blocks"
    assert tiles == math.prod(t.counts.values())
    assert len(finished) == math.prod(t.counts[d] for d in keyed[OUTPUTS])

    width = accelerator.dram_bits_per_cycle
    fill = _cdiv(t.activation_bits + t.weight_bits, width)
    drain = _cdiv(t.final_bits, width)
    steady = _cdiv(access["dram_read"] + access["dram_write"] - t.activation_bits - t.weight_bits - t.final_bits, width)
    stall = max(0, steady - compute) + fill + drain
    return ScalarCost(
        feasible=feasible,
        compute_cycles=compute,
        stall_cycles=stall,
        total_cycles=compute + stall,
        access_bits=access,
        energy_nj=energy_breakdown(compute, access, unit_costs),
    )


def energy_breakdown(compute: int, access: dict[str, int], unit_costs: UnitCosts) -> dict[str, float]:
    """Energy (nJ) by component (section 8): each count times its unit cost; ``total`` summed left to right
    in the order core, wbuf r/w, ibuf r/w, obuf r/w, dram r/w."""
    u = unit_costs
    per_bit = {
        "wbuf_read": u.wbuf_read_nj_per_bit,
        "wbuf_write": u.wbuf_write_nj_per_bit,
        "ibuf_read": u.ibuf_read_nj_per_bit,
        "ibuf_write": u.ibuf_write_nj_per_bit,
        "obuf_read": u.obuf_read_nj_per_bit,
        "obuf_write": u.obuf_write_nj_per_bit,
        "dram_read": u.dram_nj_per_bit,
        "dram_write": u.dram_nj_per_bit,
    }
    energy = {"core": float(compute) * u.core_nj_per_cycle}
    for name in ACCESS_NAMES:
        energy[name] = float(access[name]) * per_bit[name]
    total = energy["core"]
    for name in ACCESS_NAMES:
        total += energy[name]
    sram = energy["wbuf_read"]
    for name in ACCESS_NAMES[1:6]:
        sram += energy[name]
    energy["sram"] = sram
    energy["dram"] = energy["dram_read"] + energy["dram_write"]
    energy["total"] = total
    return energy
