"""The accelerator search space encoding, loop-order ranks, and layer-problem validation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaqc.ir.accelerator import AcceleratorConfig, Dataflow
from jaqc.ir.mapping import LoopDim

from jaqc.core import JaqcError
from jaqc.hw.errors import HardwareError
from jaqc.hw.generator.space import AcceleratorSpace, HardwarePoint
from jaqc.hw.model.orders import ALL_ORDERS, canonical_order_ranks, order_at, order_index_tensor, order_rank
from jaqc.hw.model.problem import ConvProblem, perf_factor

SPACE = AcceleratorSpace()


def test_paper_space_dimensions() -> None:
    assert SPACE.pe_choices[0] == 3 and SPACE.pe_choices[-1] == 64
    assert len(SPACE.buffer_choices_kb) == 30
    assert SPACE.buffer_choices_kb[0] == 64 and SPACE.buffer_choices_kb[-1] == 528
    assert SPACE.radices == (62, 62, 30, 30, 30, 3, 120)
    assert SPACE.size == 62 * 62 * 30**3 * 3 * 120


@settings(max_examples=200, deadline=None)
@given(st.integers(0, SPACE.size - 1))
def test_index_round_trip(index: int) -> None:
    point = SPACE.point_at(index)
    assert SPACE.index_of(point) == index


def test_first_and_last_points() -> None:
    first, last = SPACE.point_at(0), SPACE.point_at(SPACE.size - 1)
    assert (first.accelerator.pe_rows, first.accelerator.wbuf_kb, first.accelerator.dataflow) == (3, 64, Dataflow.WS)
    assert first.loop_order == ALL_ORDERS[0]
    assert (last.accelerator.pe_cols, last.accelerator.obuf_kb, last.accelerator.dataflow) == (64, 528, Dataflow.RS)
    assert last.loop_order == ALL_ORDERS[-1]
    assert [p.loop_order for p in [next(iter(SPACE))]] == [ALL_ORDERS[0]]
    assert next(SPACE.accelerators()) == first.accelerator


def test_sampling_is_deterministic_and_in_range() -> None:
    a = SPACE.sample(50, 7)
    b = SPACE.sample(50, torch.Generator().manual_seed(7))
    assert a == b
    assert SPACE.sample(50, 8) != a
    digits = SPACE.sample_digits(500, 3)
    assert digits.shape == (500, 7)
    assert bool((digits >= 0).all()) and bool((digits < torch.tensor(SPACE.radices)).all())
    assert SPACE.sample_digits(0).shape == (0, 7)


def test_points_outside_the_space_are_rejected() -> None:
    outside = AcceleratorConfig(pe_rows=2, pe_cols=8, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)
    with pytest.raises(HardwareError, match="pe_rows=2"):
        SPACE.index_of(HardwarePoint(outside, ALL_ORDERS[0]))
    odd_buffer = AcceleratorConfig(pe_rows=8, pe_cols=8, wbuf_kb=70, ibuf_kb=64, obuf_kb=64)
    with pytest.raises(HardwareError, match="wbuf_kb=70"):
        SPACE.index_of(HardwarePoint(odd_buffer, ALL_ORDERS[0]))
    with pytest.raises(HardwareError):
        SPACE.point_at(SPACE.size)
    with pytest.raises(HardwareError, match="multiple"):
        AcceleratorSpace(buffer_min_kb=64, buffer_max_kb=100, buffer_step_kb=16)
    small = AcceleratorSpace(dataflows=["OS"])
    with pytest.raises(HardwareError, match="dataflow"):
        small.index_of(HardwarePoint(AcceleratorConfig(pe_rows=8, pe_cols=8, wbuf_kb=64, ibuf_kb=64, obuf_kb=64),
                                     ALL_ORDERS[0]))  # fmt: skip


def test_loop_order_ranks() -> None:
    assert len(ALL_ORDERS) == 120 and len(set(ALL_ORDERS)) == 120
    assert order_rank(["B", "OW", "OH", "IC", "OC"]) == 0
    assert order_rank("oc ic oh ow b".split()) == 119
    assert all(order_rank(order_at(r)) == r for r in range(120))
    assert order_index_tensor().shape == (120, 5)
    assert order_index_tensor([0])[0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(HardwareError):
        order_rank(["B", "B", "OH", "IC", "OC"])
    with pytest.raises(HardwareError):
        order_at(120)


def test_canonical_orders_are_the_smallest_of_their_class() -> None:
    assert len(canonical_order_ranks(False, False)) == 120
    assert len(canonical_order_ranks(True, False)) == 24
    assert len(canonical_order_ranks(False, True)) == 60
    reps = canonical_order_ranks(True, True)
    assert len(reps) == 12
    for rank in reps:
        order = list(ALL_ORDERS[rank])
        rest = [d for d in order if d is not LoopDim.B]
        swapped = [LoopDim.OH if d is LoopDim.OW else LoopDim.OW if d is LoopDim.OH else d for d in rest]
        members = {order_rank([*rest[:i], LoopDim.B, *rest[i:]]) for i in range(5)}
        members |= {order_rank([*swapped[:i], LoopDim.B, *swapped[i:]]) for i in range(5)}
        assert rank == min(members)


def test_perf_factor_follows_bitfusion() -> None:
    assert [perf_factor(w, a) for w, a in [(8, 8), (4, 8), (2, 8), (4, 4), (2, 4), (2, 2)]] == [1, 2, 4, 4, 8, 16]


def test_problem_geometry() -> None:
    p = ConvProblem(batch=2, in_channels=96, out_channels=96, in_h=15, in_w=16, kernel=5, stride=2, pad=2, groups=96)
    assert (p.out_h, p.out_w, p.sim_input_size) == (8, 8, 19)
    assert (p.group_in_channels, p.group_out_channels) == (1, 1)
    assert p.loop_extents == (2, 8, 8, 1, 1)
    assert p.macs == 2 * 8 * 8 * 25 * 1 * 96
    assert p.with_bits(2, 4).perf_factor == 8
    assert ConvProblem.from_reference(p.to_reference()) == p


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"batch": 0}, "batch must be >= 1"),
        ({"w_bits": 3}, "w_bits must be one of"),
        ({"a_bits": 16}, "a_bits must be one of"),
        ({"groups": 3}, "groups=3 must divide"),
        ({"kernel": 9}, "kernel=9 is larger"),
        ({"pad": -1}, "pad must be >= 0"),
        ({"stride": 1.5}, "stride must be an integer, got 1.5"),
    ],
)
def test_invalid_problems_name_the_field(fields: dict, message: str) -> None:
    base = {"batch": 1, "in_channels": 8, "out_channels": 8, "in_h": 4, "in_w": 4, "kernel": 3, "pad": 1}
    with pytest.raises(JaqcError, match=message):
        ConvProblem(**{**base, **fields})


def test_reference_record_with_missing_field() -> None:
    with pytest.raises(HardwareError, match="missing field"):
        ConvProblem.from_reference({"batch": 1})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dataflows": ["XX"]}, "dataflows must be among"),
        ({"dataflows": []}, "distinct and non-empty"),
        ({"freq_mhz": 0}, "freq_mhz must be > 0"),
        ({"pe_min": 0}, "pe_min must be > 0"),
        ({"pe_min": 9, "pe_max": 8}, "pe_max=8 < pe_min=9"),
    ],
)
def test_invalid_spaces_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(JaqcError, match=message):
        AcceleratorSpace(**fields)


def test_small_space_enumerates_every_point_once() -> None:
    space = AcceleratorSpace(pe_min=3, pe_max=4, buffer_min_kb=64, buffer_max_kb=80, dataflows=["ws", "rs"])
    assert space.radices == (2, 2, 2, 2, 2, 2, 120)
    points = list(space)
    assert len(points) == space.size == 2**6 * 120
    assert [space.index_of(p) for p in points[:300]] == list(range(300))
    assert len({(p.accelerator, p.loop_order) for p in points}) == space.size
    assert len(list(space.accelerators())) == 2**6
