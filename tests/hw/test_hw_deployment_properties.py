"""Physical properties of the deployment model, as hypothesis tests (docs/cost_model.md, section 19.8).

Under BatchTile's optimum (the ``jaq`` space) and, stronger, for every candidate mapping of that space:
fewer bits never cost more cycles or DRAM traffic; a larger buffer never costs more cycles or DRAM traffic
(and keeps every mapping legal); more PE rows or columns never cost more compute cycles; and the total never
beats the array's peak rate or the DRAM bandwidth.
"""

from __future__ import annotations

import attrs
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaqc.ir.accelerator import AcceleratorConfig

from jaqc.hw.errors import InfeasibleMappingError
from jaqc.hw.mapping.batchtile import candidate_tiles, map_layer
from jaqc.hw.model.cost_model import CostTensors, evaluate
from jaqc.hw.model.orders import order_index_tensor
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.tensors import HardwareTensors, MappingTensors, ProblemTensors

MODEL = "deployment"
ORDERS = (0, 7, 23, 46, 71, 95, 119)  # a spread of loop orders (every order is in the exhaustive tests)


@st.composite
def layers(draw) -> ConvProblem:
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    k = draw(st.sampled_from([1, 3, 5]))
    size = draw(st.integers(max(k, 2), 8))
    if kind == "depthwise":
        groups = draw(st.integers(2, 16))
        ic, oc = groups, groups * draw(st.sampled_from([1, 2]))
    elif kind == "grouped":
        groups = draw(st.sampled_from([2, 4]))
        ic, oc = groups * draw(st.integers(1, 8)), groups * draw(st.integers(1, 8))
    else:
        groups, ic, oc = 1, draw(st.integers(1, 40)), draw(st.integers(1, 40))
    return ConvProblem(
        name=kind, batch=draw(st.sampled_from([1, 2])), in_channels=ic, out_channels=oc, in_h=size, in_w=size,
        kernel=k, stride=draw(st.sampled_from([1, 2])), pad=k // 2, groups=groups,
        w_bits=draw(st.sampled_from([2, 4, 8])), a_bits=draw(st.sampled_from([2, 4, 8])),
        out_bits=draw(st.sampled_from([2, 4, 8])), im2col=groups == 1 and draw(st.booleans()),
    )  # fmt: skip


@st.composite
def accelerators(draw) -> AcceleratorConfig:
    return AcceleratorConfig(
        pe_rows=draw(st.integers(2, 16)), pe_cols=draw(st.integers(2, 16)), wbuf_kb=draw(st.sampled_from([1, 2, 4])),
        ibuf_kb=draw(st.sampled_from([1, 2, 4])), obuf_kb=draw(st.sampled_from([1, 2, 4])),
        dataflow=draw(st.sampled_from(["WS", "OS", "RS"])), dram_bits_per_cycle=draw(st.sampled_from([16, 64])),
    )  # fmt: skip


def _every_mapping(problem: ConvProblem, accelerator: AcceleratorConfig) -> CostTensors:
    """The cost of every tiling of the jaq space under a spread of loop orders (one row each)."""
    tiles = candidate_tiles(problem, accelerator, "jaq", MODEL)
    ranks = torch.tensor(ORDERS)
    return evaluate(
        ProblemTensors.from_problems([problem]),
        HardwareTensors.from_accelerators([accelerator]),
        MappingTensors(
            tile=tiles.repeat_interleave(len(ORDERS), dim=0), order=order_index_tensor()[ranks.repeat(tiles.shape[0])]
        ),
        hw_model=MODEL,
    )


def _traffic(cost: CostTensors) -> torch.Tensor:
    return cost.dram_read_bits + cost.dram_write_bits


def _optimum(problem: ConvProblem, accelerator: AcceleratorConfig) -> float:
    try:
        return float(map_layer(problem, accelerator, "jaq", "latency", hw_model=MODEL).cost.total_cycles)
    except InfeasibleMappingError:
        return float("inf")


def _least_traffic(cost: CostTensors) -> float:
    traffic = torch.where(cost.feasible, _traffic(cost), torch.full_like(_traffic(cost), float("inf")))
    return float(traffic.min())


def _assert_never_worse(small: CostTensors, large: CostTensors, what: str) -> None:
    """Pointwise: every mapping legal under ``small`` is legal under ``large`` at no more cycles or traffic."""
    legal = small.feasible
    assert bool(large.feasible[legal].all()), f"{what}: a legal mapping became illegal"
    assert bool((large.total_cycles[legal] <= small.total_cycles[legal]).all()), f"{what}: more cycles"
    assert bool((_traffic(large)[legal] <= _traffic(small)[legal]).all()), f"{what}: more DRAM traffic"


LOWER = {8: 4, 4: 2}


@settings(max_examples=40, deadline=None)
@given(layers(), accelerators(), st.sampled_from(["w", "a", "out"]))
def test_fewer_bits_never_cost_more(problem: ConvProblem, accelerator: AcceleratorConfig, which: str) -> None:
    field = {"w": "w_bits", "a": "a_bits", "out": "out_bits"}[which]
    bits = getattr(problem, field)
    if bits not in LOWER:
        problem = attrs.evolve(problem, **{field: 8})
    lower = attrs.evolve(problem, **{field: LOWER[getattr(problem, field)]})
    wide, narrow = _every_mapping(problem, accelerator), _every_mapping(lower, accelerator)
    _assert_never_worse(wide, narrow, f"{field} {getattr(problem, field)} -> {getattr(lower, field)}")
    assert bool((narrow.compute_cycles <= wide.compute_cycles).all())
    assert _optimum(lower, accelerator) <= _optimum(problem, accelerator)
    assert _least_traffic(narrow) <= _least_traffic(wide)


@settings(max_examples=40, deadline=None)
@given(layers(), accelerators(), st.sampled_from(["wbuf_kb", "ibuf_kb", "obuf_kb"]), st.integers(1, 8))
def test_larger_buffers_never_cost_more(problem, accelerator, buffer: str, extra_kb: int) -> None:
    larger = attrs.evolve(accelerator, **{buffer: getattr(accelerator, buffer) + extra_kb})
    small, large = _every_mapping(problem, accelerator), _every_mapping(problem, larger)
    _assert_never_worse(small, large, f"{buffer} +{extra_kb} KB")
    assert _optimum(problem, larger) <= _optimum(problem, accelerator)
    assert _least_traffic(large) <= _least_traffic(small)


@settings(max_examples=40, deadline=None)
@given(layers(), accelerators(), st.sampled_from(["pe_rows", "pe_cols"]), st.integers(1, 16))
def test_more_pes_never_cost_more_compute_cycles(problem, accelerator, side: str, extra: int) -> None:
    larger = attrs.evolve(accelerator, **{side: getattr(accelerator, side) + extra})
    small, large = _every_mapping(problem, accelerator), _every_mapping(problem, larger)
    assert torch.equal(small.feasible, large.feasible)  # no stored block depends on the array
    assert bool((large.compute_cycles <= small.compute_cycles).all())
    assert bool((large.total_cycles <= small.total_cycles).all())
    assert _optimum(problem, larger) <= _optimum(problem, accelerator)


@settings(max_examples=40, deadline=None)
@given(layers(), accelerators())
def test_cycles_never_beat_peak_rate_or_bandwidth(problem: ConvProblem, accelerator: AcceleratorConfig) -> None:
    cost = _every_mapping(problem, accelerator)
    peak_macs_per_cycle = accelerator.pe_rows * accelerator.pe_cols * problem.perf_factor
    assert bool((cost.total_cycles * peak_macs_per_cycle >= problem.macs).all())
    assert bool((cost.total_cycles * accelerator.dram_bits_per_cycle >= _traffic(cost)).all())
    assert bool((cost.utilization <= 1.0).all())
