"""Invariants of the cost model (hypothesis): utilisation, monotonicity, tensor == scalar model."""

from __future__ import annotations

import attrs
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LOOP_DIMS, Mapping

from jaqc.hw.model.cost_model import evaluate
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.tensors import HardwareTensors, MappingTensors, ProblemTensors
from jaqc.hw.model.unit_costs import unit_costs_for
from jaqc.hw.reference.scalar_model import scalar_cost

BITS = st.sampled_from([2, 4, 8])


@st.composite
def problems(draw) -> ConvProblem:
    kernel = draw(st.sampled_from([1, 3, 5]))
    groups = draw(st.sampled_from([1, 1, 2, 4]))
    return ConvProblem(
        batch=draw(st.integers(1, 3)),
        in_channels=groups * draw(st.integers(1, 40)),
        out_channels=groups * draw(st.integers(1, 40)),
        in_h=draw(st.integers(kernel, 20)),
        in_w=draw(st.integers(kernel, 20)),
        kernel=kernel,
        stride=draw(st.sampled_from([1, 2])),
        pad=kernel // 2,
        groups=groups,
        w_bits=draw(BITS),
        a_bits=draw(BITS),
        im2col=draw(st.booleans()) if groups == 1 else False,
    )


@st.composite
def accelerators(draw) -> AcceleratorConfig:
    return AcceleratorConfig(
        pe_rows=draw(st.integers(3, 64)),
        pe_cols=draw(st.integers(3, 64)),
        wbuf_kb=draw(st.integers(4, 33)) * 16,
        ibuf_kb=draw(st.integers(4, 33)) * 16,
        obuf_kb=draw(st.integers(4, 33)) * 16,
        dataflow=draw(st.sampled_from(["WS", "OS", "RS"])),
        dram_bits_per_cycle=draw(st.sampled_from([64, 128, 256])),
    )


@st.composite
def mappings_for(draw, problem: ConvProblem) -> Mapping:
    tile = [draw(st.integers(1, extent)) for extent in problem.loop_extents]
    order = draw(st.permutations(LOOP_DIMS))
    return Mapping(tile=tile, loop_order=order)


@st.composite
def cases(draw):
    problem = draw(problems())
    return problem, draw(accelerators()), draw(mappings_for(problem))


def _cost(problem: ConvProblem, accelerator: AcceleratorConfig, mapping: Mapping):
    return evaluate(
        ProblemTensors.from_problems([problem]),
        HardwareTensors.from_accelerators([accelerator]),
        MappingTensors.from_mappings([mapping]),
        hw_model="simulator",
    )


@settings(max_examples=60, deadline=None)
@given(cases())
def test_tensor_model_equals_scalar_model(case) -> None:
    problem, accelerator, mapping = case
    tensor = _cost(problem, accelerator, mapping)
    scalar = scalar_cost(problem, accelerator, mapping, unit_costs_for(accelerator))
    assert bool(tensor.feasible[0]) == scalar.feasible
    assert float(tensor.total_cycles[0]) == scalar.total_cycles
    assert float(tensor.stall_cycles[0]) == scalar.stall_cycles
    for name, value in scalar.access_bits.items():
        assert float(getattr(tensor, f"{name}_bits")[0]) == value, name
    assert float(tensor.energy_total[0]) == scalar.energy_total


@settings(max_examples=60, deadline=None)
@given(cases())
def test_utilization_is_at_most_one(case) -> None:
    cost = _cost(*case)
    assert 0.0 < float(cost.utilization[0]) <= 1.0


@settings(max_examples=60, deadline=None)
@given(cases(), st.sampled_from(["wbuf_kb", "ibuf_kb", "obuf_kb"]), st.integers(1, 16))
def test_larger_buffer_never_increases_dram_traffic(case, buffer: str, extra_steps: int) -> None:
    problem, accelerator, mapping = case
    bigger = attrs.evolve(accelerator, **{buffer: getattr(accelerator, buffer) + 16 * extra_steps})
    small, large = _cost(problem, accelerator, mapping), _cost(problem, bigger, mapping)
    for name in ("dram_read_bits", "dram_write_bits"):
        assert float(getattr(large, name)[0]) <= float(getattr(small, name)[0])


@settings(max_examples=60, deadline=None)
@given(cases(), st.sampled_from(["pe_rows", "pe_cols"]), st.integers(1, 20))
def test_more_pes_never_increase_compute_cycles(case, side: str, extra: int) -> None:
    problem, accelerator, mapping = case
    bigger = attrs.evolve(accelerator, **{side: getattr(accelerator, side) + extra})
    assert float(_cost(problem, bigger, mapping).compute_cycles[0]) <= float(
        _cost(problem, accelerator, mapping).compute_cycles[0]
    )


@settings(max_examples=60, deadline=None)
@given(cases(), st.sampled_from(["w_bits", "a_bits"]))
def test_lower_bitwidth_never_increases_compute_cycles(case, which: str) -> None:
    problem, accelerator, mapping = case
    current = getattr(problem, which)
    for lower in (b for b in (2, 4, 8) if b < current):
        narrower = attrs.evolve(problem, **{which: lower})
        assert float(_cost(narrower, accelerator, mapping).compute_cycles[0]) <= float(
            _cost(problem, accelerator, mapping).compute_cycles[0]
        )


@settings(max_examples=40, deadline=None)
@given(cases())
def test_energy_parts_add_up_and_are_non_negative(case) -> None:
    cost = _cost(*case)
    parts = [
        "core", "wbuf_read", "wbuf_write", "ibuf_read", "ibuf_write", "obuf_read", "obuf_write",
        "dram_read", "dram_write",
    ]  # fmt: skip
    values = torch.stack([getattr(cost, f"energy_{p}")[0] for p in parts])
    assert bool((values >= 0).all())
    assert torch.isclose(values.sum(), cost.energy_total[0], rtol=1e-12)
    assert float(cost.total_cycles[0]) == float(cost.compute_cycles[0] + cost.stall_cycles[0])
    assert float(cost.edap[0]) > 0


def test_lower_bitwidth_can_cost_more_total_cycles_through_weight_padding() -> None:
    """The simulator pads a weight block to a multiple of N*perf_factor input channels and loads the padding
    from DRAM; at 2 bits (perf_factor 16) on 37 rows that is 592 lanes for 51 channels, so a DRAM-bound
    1x1 layer gets slower at lower precision even at its best mapping (docs/cost_model.md, section 3)."""
    from jaqc.hw.mapping.batchtile import map_layer

    problem = ConvProblem(batch=1, in_channels=51, out_channels=12, in_h=4, in_w=4, kernel=1)
    accelerator = AcceleratorConfig(pe_rows=37, pe_cols=28, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)
    wide = map_layer(problem, accelerator, "jaq", hw_model="simulator")
    narrow = map_layer(problem.with_bits(2, 2), accelerator, "jaq", hw_model="simulator")
    assert narrow.cost.compute_cycles <= wide.cost.compute_cycles
    assert narrow.cost.total_cycles > wide.cost.total_cycles
    assert narrow.cost.access_bits["dram_read"] > wide.cost.access_bits["dram_read"]


@settings(max_examples=25, deadline=None)
@given(st.lists(cases(), min_size=2, max_size=6))
def test_mixed_batch_equals_rows_evaluated_alone(rows) -> None:
    """Rows with different layers, accelerators (dataflows) and mappings do not influence each other."""
    batch = evaluate(
        ProblemTensors.from_problems([p for p, _, _ in rows]),
        HardwareTensors.from_accelerators([a for _, a, _ in rows]),
        MappingTensors.from_mappings([m for _, _, m in rows]),
        hw_model="simulator",
    )
    for i, row in enumerate(rows):
        alone = _cost(*row)
        for name in ("total_cycles", "stall_cycles", "dram_read_bits", "obuf_read_bits", "energy_total", "edap"):
            assert float(getattr(batch, name)[i]) == float(getattr(alone, name)[0]), name
        assert bool(batch.feasible[i]) == bool(alone.feasible[0])
