"""The deployment model (docs/cost_model.md, section 19) against its loop-nest oracle (jaqc.hw.reference.oracle).

First the oracle itself on tiny layers whose costs are worked out by hand, then the tensor model equal to
the oracle (cycles and every access count exactly, energies to 1e-12) on 1500 random layers.
"""

from __future__ import annotations

import functools
import itertools
import random

import pytest
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LOOP_DIMS, Mapping

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.layer_cost import layer_costs
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.records import ACCESS_NAMES, ENERGY_NAMES
from jaqc.hw.model.unit_costs import unit_costs_for
from jaqc.hw.reference.oracle import walk_cost

ENERGY_REL = 1e-12


def _mapping(tile: tuple[int, int, int, int, int], order: str) -> Mapping:
    return Mapping(tile=tile, loop_order=order.split(">"))


def _accelerator(n: int = 16, m: int = 16, wbuf: int = 8, ibuf: int = 8, obuf: int = 8, flow: str = "WS"):
    return AcceleratorConfig(pe_rows=n, pe_cols=m, wbuf_kb=wbuf, ibuf_kb=ibuf, obuf_kb=obuf, dataflow=flow)


def _walk(problem: ConvProblem, accelerator: AcceleratorConfig, mapping: Mapping):
    return walk_cost(problem, accelerator, mapping, unit_costs_for(accelerator))


# --- the oracle by hand ---------------------------------------------------------------------------------


def _pointwise(in_channels: int, size: int, out_bits: int) -> ConvProblem:
    return ConvProblem(
        batch=1, in_channels=in_channels, out_channels=16, in_h=size, in_w=size, kernel=1, out_bits=out_bits
    )


def test_one_tile_pointwise_layer_writes_its_outputs_once_at_out_bits() -> None:
    # 1x1 conv 16 -> 16 on 4x4 at 8/8 bits, one tile; 16x16 PEs: 16 lanes (pf = 1), 16 columns.
    cost = _walk(_pointwise(16, 4, 8), _accelerator(), _mapping((1, 4, 4, 16, 16), "B>OW>OH>IC>OC"))
    assert cost.feasible
    assert cost.compute_cycles == 16  # 16 pixels, reduction 16 <= 16 lanes, 16 channels <= 16 columns
    act = wgt = 4 * 4 * 16 * 8  # = 16 * 16 * 8
    inner = 16 * 16 * 16  # pixels * oc * k^2 ic, order OS (E_OS < E_IS = E_WS)
    assert cost.access_bits == {
        "ibuf_read": inner * 8,
        "wbuf_read": inner * 8,
        "ibuf_write": act,
        "wbuf_write": wgt,
        "obuf_read": 16 * 16 * 32 + 16 * 16 * 8,  # inner accumulation + final write at 8 bits
        "obuf_write": 16 * 16 * 32,
        "dram_read": act + wgt,
        "dram_write": 16 * 16 * 8,
    }
    fill, drain = (act + wgt) // 128, 16 * 16 * 8 // 128
    assert cost.stall_cycles == fill + drain == 48  # nothing left for the steady state
    assert cost.total_cycles == 16 + 48


def test_outputs_evicted_between_ic_tiles_move_as_32_bit_partial_sums() -> None:
    # 1x1 conv 32 -> 16 on 8x8, tile (1, 4, 4, 16, 16): 8 tiles, n_IC = n_OW = n_OH = 2. The output block
    # (4*4*16 words of 32 bits = 8192 bits) exactly fills half a 2 KiB OBUF, so two never fit.
    problem = _pointwise(32, 8, 4)
    accelerator = _accelerator(obuf=2)
    act, wgt, psum, final = 4 * 4 * 16 * 8, 16 * 16 * 8, 4 * 4 * 16 * 32, 4 * 4 * 16 * 4
    inner_obuf = 8 * 16 * 16 * 32

    # IC outermost: each output block is resident twice, its first partial sum evicted and read back.
    outer = _walk(problem, accelerator, _mapping((1, 4, 4, 16, 16), "IC>OW>OH>B>OC"))
    assert outer.feasible
    assert outer.compute_cycles == 8 * 16
    partial = 4 * psum  # four output blocks, one eviction each
    assert outer.access_bits["dram_write"] == partial + 4 * final
    assert outer.access_bits["dram_read"] == 8 * act + 2 * wgt + partial  # inputs and weights held throughout
    assert outer.access_bits["obuf_read"] == inner_obuf + partial + 4 * final
    assert outer.access_bits["obuf_write"] == inner_obuf + partial
    assert (outer.access_bits["ibuf_write"], outer.access_bits["wbuf_write"]) == (8 * act, 2 * wgt)
    fill, drain = (act + wgt) // 128, final // 128
    steady = (8 * act + 2 * wgt + 2 * partial + 4 * final - act - wgt - final) // 128
    assert outer.stall_cycles == steady - 8 * 16 + fill + drain == 576

    # IC innermost: every reduction completes on chip, no partial sum leaves it.
    inner = _walk(problem, accelerator, _mapping((1, 4, 4, 16, 16), "OW>OH>B>OC>IC"))
    assert inner.access_bits["dram_write"] == 4 * final
    assert inner.access_bits["dram_read"] == 8 * act + 2 * wgt
    assert inner.access_bits["obuf_write"] == inner_obuf
    assert inner.compute_cycles == outer.compute_cycles


def test_inputs_are_held_across_oc_tiles_only_while_they_fit() -> None:
    # 1x1 conv 16 -> 32 on 8x8, tile (1, 4, 4, 16, 16): four input blocks of 4*4*16*8 = 2048 bits, two OC
    # tiles outermost. OC does not index the activations of a dense layer.
    problem = ConvProblem(batch=1, in_channels=16, out_channels=32, in_h=8, in_w=8, kernel=1)
    mapping = _mapping((1, 4, 4, 16, 16), "OC>OW>OH>B>IC")
    whole_input = 8 * 8 * 16 * 8
    # half of 2 KiB = 8192 bits holds all four blocks: the input is read once
    assert _walk(problem, _accelerator(ibuf=2), mapping).access_bits["ibuf_write"] == whole_input
    # half of 1 KiB = 4096 bits holds the two OH blocks only: OW and OC both advance outside, so the
    # input is read once per OC tile
    held_below_ow = _walk(problem, _accelerator(ibuf=1), mapping)
    assert held_below_ow.feasible
    assert held_below_ow.access_bits["ibuf_write"] == 2 * whole_input
    assert held_below_ow.access_bits["dram_read"] == 2 * whole_input + 16 * 32 * 8


def test_grouped_layer_reads_each_group_inputs_once() -> None:
    # 1x1 conv 32 -> 32 in 2 groups (q = 16) on 4x4; tile (1, 4, 4, 16, 16): one group per OC tile, and OC
    # indexes the activations: each OC tile reads its own group's 16 input channels.
    problem = ConvProblem(batch=1, in_channels=32, out_channels=32, in_h=4, in_w=4, kernel=1, groups=2)
    cost = _walk(problem, _accelerator(), _mapping((1, 4, 4, 16, 16), "OW>OH>B>IC>OC"))
    assert cost.access_bits["ibuf_write"] == 4 * 4 * 32 * 8
    assert cost.access_bits["wbuf_write"] == 16 * 32 * 8
    assert cost.compute_cycles == 2 * 16  # two tiles of 16 pixels, one pass each


def test_depthwise_layer_packs_sixteen_groups_per_pass() -> None:
    # Depthwise 3x3 on 16 channels, 6x6 -> 4x4, one tile of all 16 channels, 16x16 PEs at 8/8 bits.
    problem = ConvProblem(batch=1, in_channels=16, out_channels=16, in_h=6, in_w=6, kernel=3, groups=16)
    cost = _walk(problem, _accelerator(), _mapping((1, 4, 4, 1, 16), "B>OW>OH>IC>OC"))
    # kernel positions in time (r = 1): P = min(16, 16/1, 16/1) = 16 groups per pass, 16 px * 9 = 144
    assert cost.compute_cycles == 16 * 9
    assert problem.macs == 16 * cost.compute_cycles  # 16 MACs per cycle: utilisation 1/16 of 256 PEs
    assert cost.access_bits["ibuf_write"] == 6 * 6 * 1 * 16 * 8  # the tile spans all 16 groups
    assert cost.access_bits["wbuf_write"] == 9 * 1 * 16 * 8
    assert cost.access_bits["dram_write"] == 4 * 4 * 16 * 8


def test_depthwise_layer_on_narrow_array_takes_the_cheaper_lane_option() -> None:
    # 16x4 PEs. Kernel positions in time (r = 1): P = min(16, 16, 4) = 4 groups per pass, 4 passes x 9
    # positions x 16 px = 576. Window in the lanes (r = 9): P = min(16, 1, 4) = 1, 16 passes x 16 px = 256.
    problem = ConvProblem(batch=1, in_channels=16, out_channels=16, in_h=6, in_w=6, kernel=3, groups=16)
    cost = _walk(problem, _accelerator(n=16, m=4), _mapping((1, 4, 4, 1, 16), "B>OW>OH>IC>OC"))
    assert cost.compute_cycles == 256
    # 32 rows: r = 9 gives P = min(16, 3, 4) = 3, 6 passes x 16 px = 96 < 4 passes x 9 x 16
    cost = _walk(problem, _accelerator(n=32, m=4), _mapping((1, 4, 4, 1, 16), "B>OW>OH>IC>OC"))
    assert cost.compute_cycles == 96
    # OS and RS ignore the groups: OS 4 rows x ceil(4/16) x ceil(16/4) x 9 x 1; RS 4 x ceil(4/4) x 16 x 3 x 1
    assert (
        _walk(problem, _accelerator(m=4, flow="OS"), _mapping((1, 4, 4, 1, 16), "B>OW>OH>IC>OC")).compute_cycles
        == 4 * 1 * 4 * 9
    )
    assert (
        _walk(problem, _accelerator(m=4, flow="RS"), _mapping((1, 4, 4, 1, 16), "B>OW>OH>IC>OC")).compute_cycles
        == 4 * 1 * 16 * 3
    )


def test_grouped_oc_tile_must_be_group_aligned() -> None:
    problem = ConvProblem(batch=1, in_channels=8, out_channels=24, in_h=4, in_w=4, kernel=1, groups=4)  # q = 6
    accelerator = _accelerator()
    for oc in (1, 2, 3, 6, 12, 18, 24):
        assert _walk(problem, accelerator, _mapping((1, 4, 4, 2, oc), "B>OW>OH>IC>OC")).feasible
    for oc in (4, 5, 8, 9):
        with pytest.raises(HardwareError):
            _walk(problem, accelerator, _mapping((1, 4, 4, 2, oc), "B>OW>OH>IC>OC"))
    with pytest.raises(HardwareError):  # IC extent is C_in / g = 2
        _walk(problem, accelerator, _mapping((1, 4, 4, 3, 6), "B>OW>OH>IC>OC"))


def test_oversized_block_is_infeasible_and_still_priced() -> None:
    problem = ConvProblem(batch=1, in_channels=64, out_channels=64, in_h=8, in_w=8, kernel=3)
    cost = _walk(problem, _accelerator(wbuf=1), _mapping((1, 6, 6, 64, 64), "B>OW>OH>IC>OC"))
    assert not cost.feasible  # 9*64*64*8 weight bits > half of 1 KiB
    assert cost.access_bits["wbuf_write"] == 9 * 64 * 64 * 8


def test_oversized_block_is_held_only_inside_its_first_indexing_loop() -> None:
    # Section 5's rule for a block that alone overflows: it is kept across the non-indexing loops inside its
    # first indexing loop, even one of a single tile, and refetched by every loop outside. Input block
    # 8*8*64*8 = 32768 bits > half of a 1 KiB IBUF; IC (1 tile) indexes it, OC (2 tiles) does not.
    problem = ConvProblem(batch=1, in_channels=64, out_channels=32, in_h=8, in_w=8, kernel=1)
    act = 8 * 8 * 64 * 8
    inside = _walk(problem, _accelerator(ibuf=1), _mapping((1, 8, 8, 64, 16), "B>OW>OH>IC>OC"))
    outside = _walk(problem, _accelerator(ibuf=1), _mapping((1, 8, 8, 64, 16), "B>OW>OH>OC>IC"))
    assert not inside.feasible and not outside.feasible
    assert inside.access_bits["ibuf_write"] == act  # OC inside IC: the block is reused
    assert outside.access_bits["ibuf_write"] == 2 * act


# --- the tensor model equals the oracle --------------------------------------------------------------------

BITS = (2, 4, 8)
OUT_BITS = (2, 4, 8, 32)
KIB = (1, 1, 2, 2, 4, 8, 16, 64)
MAX_TILES = 4000
LAYERS = 1500


def _random_problem(rng: random.Random, index: int) -> ConvProblem:
    kind = rng.choice(["dense", "dense", "grouped", "depthwise", "depthwise_x2", "im2col"])
    kernel = rng.choice([1, 3, 5]) if kind != "im2col" else rng.choice([3, 5])
    stride = rng.choice([1, 2])
    groups, cin, cout = 1, rng.randint(1, 40), rng.randint(1, 40)
    if kind == "grouped":
        groups = rng.choice([2, 4])
        cin, cout = groups * rng.randint(1, 10), groups * rng.randint(1, 10)
    elif kind == "depthwise":
        groups = cin = cout = rng.randint(2, 40)
    elif kind == "depthwise_x2":
        groups = cin = rng.randint(2, 20)
        cout = 2 * cin
    elif kind == "im2col":
        cin = 3
    out_h, out_w = rng.randint(1, 8), rng.randint(1, 8)
    pad = rng.choice([0, kernel // 2])
    return ConvProblem(
        batch=rng.randint(1, 4),
        in_channels=cin,
        out_channels=cout,
        in_h=max(kernel - 2 * pad, (out_h - 1) * stride + kernel - 2 * pad),
        in_w=max(kernel - 2 * pad, (out_w - 1) * stride + kernel - 2 * pad),
        kernel=kernel,
        stride=stride,
        pad=pad,
        groups=groups,
        w_bits=rng.choice(BITS),
        a_bits=rng.choice(BITS),
        im2col=kind == "im2col",
        out_bits=rng.choice(OUT_BITS),
        name=f"{kind}_{index}",
    )


def _random_accelerator(rng: random.Random) -> AcceleratorConfig:
    return AcceleratorConfig(
        pe_rows=rng.choice([2, 3, 4, 8, 16, 32]),
        pe_cols=rng.choice([2, 3, 4, 8, 16, 32]),
        wbuf_kb=rng.choice(KIB),
        ibuf_kb=rng.choice(KIB),
        obuf_kb=rng.choice(KIB),
        dataflow=rng.choice(["WS", "OS", "RS"]),
        dram_bits_per_cycle=rng.choice([32, 64, 128, 256]),
    )


def _oc_tiles(problem: ConvProblem) -> list[int]:
    """The OC tiles a mapping may use: any for a dense layer, group-aligned ones for a grouped layer."""
    cout = problem.out_channels
    if problem.groups == 1:
        return list(range(1, cout + 1))
    q = cout // problem.groups
    return sorted({d for d in range(1, q + 1) if q % d == 0} | set(range(q, cout + 1, q)))


def _random_tile(rng: random.Random, extent: int) -> int:
    powers = [t for t in (1, 2, 4, 8, 16) if t <= extent]
    draw = rng.random()
    return extent if draw < 0.4 else rng.choice(powers) if draw < 0.7 else rng.randint(1, extent)


def _random_mapping(rng: random.Random, problem: ConvProblem) -> Mapping:
    extents = problem.loop_extents_for("deployment")
    while True:
        tile = [_random_tile(rng, e) for e in extents[:4]] + [rng.choice(_oc_tiles(problem))]
        tiles = 1
        for e, t in zip(extents, tile, strict=True):
            tiles *= -(-e // t)
        if tiles <= MAX_TILES:
            order = list(LOOP_DIMS)
            rng.shuffle(order)
            return Mapping(tile=tuple(tile), loop_order=order)


@functools.cache
def _unit_costs(accelerator: AcceleratorConfig):
    return unit_costs_for(accelerator)


def _rows() -> list[tuple[ConvProblem, AcceleratorConfig, Mapping]]:
    rng = random.Random(20240519)
    rows = []
    for i in range(LAYERS):
        problem = _random_problem(rng, i)
        rows.append((problem, _random_accelerator(rng), _random_mapping(rng, problem)))
    return rows


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a)


def _mismatches(oracle, record) -> list[str]:
    found = []
    for name in ("feasible", "compute_cycles", "stall_cycles", "total_cycles"):
        if getattr(oracle, name) != getattr(record, name):
            found.append(f"{name}: oracle {getattr(oracle, name)} tensor {getattr(record, name)}")
    for name in ACCESS_NAMES:
        if oracle.access_bits[name] != record.access_bits[name]:
            found.append(f"{name} bits: oracle {oracle.access_bits[name]} tensor {record.access_bits[name]}")
    for name in ENERGY_NAMES:
        if _rel(record.energy_nj[name], oracle.energy_nj[name]) > ENERGY_REL:
            found.append(f"energy {name}: oracle {oracle.energy_nj[name]!r} tensor {record.energy_nj[name]!r}")
    return found


@functools.cache
def _compared() -> tuple[list, list, list]:
    rows = _rows()
    problems = [p for p, _, _ in rows]
    accelerators = [a for _, a, _ in rows]
    mappings = [m for _, _, m in rows]
    units = [_unit_costs(a) for a in accelerators]
    records = layer_costs(problems, accelerators, mappings, units, hw_model="deployment")
    oracles = [walk_cost(p, a, m, u) for p, a, m, u in zip(problems, accelerators, mappings, units, strict=True)]
    return rows, oracles, records


def test_random_layers_cover_every_case() -> None:
    rows, oracles, _ = _compared()
    kinds = {p.name.rsplit("_", 1)[0] for p, _, _ in rows}
    assert kinds == {"dense", "grouped", "depthwise", "depthwise_x2", "im2col"}
    assert {a.dataflow.value for _, a, _ in rows} == {"WS", "OS", "RS"}
    assert {p.groups for p, _, _ in rows if p.name.startswith("grouped")} == {2, 4}
    assert {(p.w_bits, p.a_bits) for p, _, _ in rows} == set(itertools.product(BITS, BITS))
    assert {p.out_bits for p, _, _ in rows} == set(OUT_BITS)
    assert {p.stride for p, _, _ in rows} == {1, 2} and {p.kernel for p, _, _ in rows} == {1, 3, 5}
    assert {p.batch for p, _, _ in rows} == {1, 2, 3, 4}
    feasible = [o.feasible for o in oracles]
    assert 0.2 * len(rows) < sum(feasible) < 0.9 * len(rows)

    def final_bits(problem: ConvProblem, mapping: Mapping) -> int:
        blocks, size = 1, problem.out_bits
        for e, t, d in zip(problem.loop_extents_for("deployment"), mapping.tile, LOOP_DIMS, strict=True):
            if d.value != "IC":
                blocks, size = blocks * -(-e // t), size * t
        return blocks * size

    partial = [o.access_bits["dram_write"] > final_bits(p, m) for (p, _, m), o in zip(rows, oracles, strict=True)]
    assert sum(p and f for p, f in zip(partial, feasible, strict=True)) >= 5  # feasible rows with partial sums
    assert sum(not p and f for p, f in zip(partial, feasible, strict=True)) >= 20


def test_tensor_model_equals_the_loop_nest_oracle() -> None:
    rows, oracles, records = _compared()
    assert len(rows) >= 200
    for (problem, accelerator, mapping), oracle, record in zip(rows, oracles, records, strict=True):
        found = _mismatches(oracle, record)
        assert not found, (
            f"{problem.name}: {'; '.join(found)}\n  layer {problem}\n  accelerator {accelerator}\n"
            f"  mapping tile {mapping.tile_dict()} order {mapping.order_string()}"
        )


def test_infeasible_rows_are_infeasible_in_both() -> None:
    _, oracles, records = _compared()
    infeasible = [i for i, o in enumerate(oracles) if not o.feasible]
    assert len(infeasible) >= 20
    assert all(not records[i].feasible for i in infeasible)
    assert all(records[i].feasible for i, o in enumerate(oracles) if o.feasible)
