"""BatchTile finds exactly the brute-force optimum, and the simulator's optimum on the reference cases."""

from __future__ import annotations

import functools
import itertools
import random

import pytest
import torch
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping

from jaqc.hw.errors import HardwareError, InfeasibleMappingError
from jaqc.hw.mapping.batchtile import (
    MappingSpace,
    Objective,
    candidate_order_ranks,
    candidate_tiles,
    map_layer,
    map_layers,
    select_mappings,
    tile_options,
)
from jaqc.hw.model.orders import ALL_ORDERS, order_rank
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.unit_costs import unit_costs_for
from jaqc.hw.reference.scalar_model import scalar_cost


def _all_tilings(problem: ConvProblem, accelerator: AcceleratorConfig, space: str) -> list[tuple[int, ...]]:
    b, ow, oh, ic, oc = tile_options(problem, accelerator, space, hw_model="simulator")
    if space == "jaq":
        return sorted(itertools.product(b, ow, oh, ic, oc))
    return sorted({(x, w, h, i, o) for x in b for (w, h) in zip(ow, oh, strict=True) for i in ic for o in oc})


@functools.cache
def _all_costs(problem: ConvProblem, accelerator: AcceleratorConfig, space: str):
    """Every feasible (tile, order) of the space with the scalar model, in a plain loop."""
    units = unit_costs_for(accelerator)
    rows = []
    for tile in _all_tilings(problem, accelerator, space):
        for order in ALL_ORDERS:
            mapping = Mapping(tile=tile, loop_order=order)
            cost = scalar_cost(problem, accelerator, mapping, units)
            if cost.feasible:
                rows.append((tile, order_rank(order), mapping, cost))
    return rows


def _brute_force(problem, accelerator, space, objective):
    """The minimum of (objective, secondary, tile tuple, order rank) over every candidate."""
    best_key, best = None, None
    for tile, rank, mapping, cost in _all_costs(problem, accelerator, space):
        cycles, energy = float(cost.total_cycles), cost.energy_total
        if objective == "latency":
            key = (cycles, energy)
        elif objective == "energy":
            key = (energy, cycles)
        else:
            key = (energy * (cycles / (accelerator.freq_mhz * 1.0e6)), cycles)
        key = (*key, tile, rank)
        if best_key is None or key < best_key:
            best_key, best = key, (mapping, cost)
    return best


def _random_cases(seed: int, count: int, largest: int = 9):
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        k = rng.choice([1, 3, 5])
        size = rng.randint(max(k, 2), largest)
        groups = rng.choice([1, 1, 2])
        ic = groups * rng.randint(1, 2 * largest)
        oc = groups * rng.randint(1, 3 * largest)
        im2col = groups == 1 and rng.random() < 0.2
        problem = ConvProblem(
            name="rand", batch=rng.choice([1, 1, 2]), in_channels=ic, out_channels=oc, in_h=size,
            in_w=size if rng.random() < 0.8 else rng.randint(k, largest), kernel=k, stride=rng.choice([1, 2]),
            pad=k // 2, groups=groups, w_bits=rng.choice([2, 4, 8]), a_bits=rng.choice([2, 4, 8]), im2col=im2col,
        )  # fmt: skip
        accelerator = AcceleratorConfig(
            pe_rows=rng.randint(2, 8), pe_cols=rng.randint(2, 8), wbuf_kb=rng.choice([1, 2, 4]),
            ibuf_kb=rng.choice([1, 2, 4]), obuf_kb=rng.choice([1, 2, 4]), dataflow=rng.choice(["WS", "OS", "RS"]),
            dram_bits_per_cycle=rng.choice([16, 64]), freq_mhz=500,
        )  # fmt: skip
        cases.append((problem, accelerator))
    return cases


BITFUSION_CASES = _random_cases(1, 8) + _random_cases(3, 6, largest=12)
JAQ_CASES = _random_cases(2, 4, largest=5)


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("index", range(len(BITFUSION_CASES)))
def test_bitfusion_space_matches_brute_force(index: int, objective: str) -> None:
    problem, accelerator = BITFUSION_CASES[index]
    expected = _brute_force(problem, accelerator, "bitfusion", objective)
    if expected is None:
        with pytest.raises(InfeasibleMappingError):
            map_layer(problem, accelerator, "bitfusion", objective, hw_model="simulator")
        return
    got = map_layer(problem, accelerator, "bitfusion", objective, hw_model="simulator")
    assert got.mapping == expected[0]
    assert got.cost.total_cycles == expected[1].total_cycles
    assert got.cost.energy_nj["total"] == expected[1].energy_total


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("index", range(len(JAQ_CASES)))
def test_jaq_space_matches_brute_force(index: int, objective: str) -> None:
    problem, accelerator = JAQ_CASES[index]
    expected = _brute_force(problem, accelerator, "jaq", objective)
    assert expected is not None
    got = map_layer(problem, accelerator, "jaq", objective, hw_model="simulator")
    assert got.mapping == expected[0]
    assert got.cost.total_cycles == expected[1].total_cycles
    assert got.cost.energy_nj["total"] == expected[1].energy_total


def test_many_layers_in_chunks_equal_one_layer_at_a_time() -> None:
    cases = BITFUSION_CASES + JAQ_CASES
    problems = [p for p, _ in cases]
    accelerators = [a for _, a in cases]
    together = select_mappings(problems, accelerators, "jaq", "latency", max_rows=500, hw_model="simulator")
    assert bool(together.feasible.any())
    for i, (problem, accelerator) in enumerate(cases):
        alone = select_mappings([problem], [accelerator], "jaq", "latency", hw_model="simulator")
        assert torch.equal(together.tile[i], alone.tile[0])
        assert int(together.order_rank[i]) == int(alone.order_rank[0])
        assert float(together.total_cycles[i]) == float(alone.total_cycles[0])
        assert bool(together.feasible[i]) == bool(alone.feasible[0])


def test_candidate_counts_and_grid() -> None:
    problem = ConvProblem(batch=1, in_channels=37, out_channels=75, in_h=9, in_w=9, kernel=3, pad=1)
    accelerator = AcceleratorConfig(pe_rows=16, pe_cols=32, wbuf_kb=64, ibuf_kb=32, obuf_kb=16)
    assert tile_options(problem, accelerator, "bitfusion", hw_model="simulator") == [
        [1], [1, 2, 4, 8, 9], [1, 2, 4, 8, 9], [1, 2, 4, 8, 16, 32, 37], [32, 64, 75],
    ]  # fmt: skip
    assert tile_options(problem, accelerator, "jaq", hw_model="simulator")[4] == [1, 2, 4, 8, 16, 32, 64, 75]
    assert candidate_tiles(problem, accelerator, "bitfusion", hw_model="simulator").shape == (5 * 7 * 3, 5)
    assert len(candidate_order_ranks(problem, "bitfusion")) == 12
    assert len(candidate_order_ranks(problem, "jaq")) == 24
    big = ConvProblem(batch=4, in_channels=2048, out_channels=8, in_h=1, in_w=1, kernel=1)
    assert tile_options(big, accelerator, "jaq", hw_model="simulator")[3][-1] == 1024  # 2^10 is the largest jaq tile
    assert len(candidate_order_ranks(big, "jaq")) == 120


def test_bad_space_and_objective_are_reported() -> None:
    problem = ConvProblem(batch=1, in_channels=4, out_channels=4, in_h=4, in_w=4, kernel=1)
    accelerator = AcceleratorConfig(pe_rows=4, pe_cols=4, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)
    with pytest.raises(HardwareError, match="mapping space"):
        map_layer(problem, accelerator, "nope", hw_model="simulator")
    with pytest.raises(HardwareError, match="objective"):
        map_layer(problem, accelerator, "jaq", "speed", hw_model="simulator")


def test_infeasible_layer_names_the_layer() -> None:
    problem = ConvProblem(name="huge", batch=1, in_channels=64, out_channels=64, in_h=4, in_w=4, kernel=5, pad=2)
    accelerator = AcceleratorConfig(pe_rows=64, pe_cols=64, wbuf_kb=1, ibuf_kb=1, obuf_kb=1)
    with pytest.raises(InfeasibleMappingError, match="huge"):
        map_layer(problem, accelerator, "bitfusion", hw_model="simulator")
    selection = select_mappings([problem], [accelerator], "bitfusion", hw_model="simulator")
    assert not bool(selection.feasible[0])
    assert torch.isinf(selection.total_cycles[0])


def test_bitfusion_space_reaches_the_simulator_optimum(reference_cases) -> None:
    problems = [c.problem for c in reference_cases]
    accelerators = [c.accelerator for c in reference_cases]
    units = [c.unit_costs for c in reference_cases]
    results = map_layers(problems, accelerators, MappingSpace.BITFUSION, Objective.LATENCY, units, hw_model="simulator")
    for case, result in zip(reference_cases, results, strict=True):
        optimum = case.optimized
        assert result.cost.total_cycles == optimum.cycles["total"], case.case_id
        rel = abs(result.cost.energy_nj["total"] - optimum.energy_nj["total"]) / optimum.energy_nj["total"]
        assert rel <= 1e-12, case.case_id
        assert result.cost.feasible


def test_jaq_space_is_never_worse_than_the_simulator(reference_cases) -> None:
    problems = [c.problem for c in reference_cases]
    accelerators = [c.accelerator for c in reference_cases]
    units = [c.unit_costs for c in reference_cases]
    results = map_layers(problems, accelerators, "jaq", "latency", units, hw_model="simulator")
    for case, result in zip(reference_cases, results, strict=True):
        assert result.cost.total_cycles <= case.optimized.cycles["total"], case.case_id


@pytest.mark.parametrize("rank", [0, 57, 119])
def test_fixed_loop_order_matches_brute_force_over_tilings(rank: int) -> None:
    problem, accelerator = JAQ_CASES[0]
    order = ALL_ORDERS[rank]
    rows = [row for row in _all_costs(problem, accelerator, "jaq") if row[1] == rank]
    expected = min(rows, key=lambda row: (float(row[3].total_cycles), row[3].energy_total, row[0]))
    got = select_mappings([problem], [accelerator], "jaq", "latency", loop_orders=[order], hw_model="simulator")
    assert int(got.order_rank[0]) == rank
    assert tuple(int(t) for t in got.tile[0]) == expected[0]
    assert float(got.total_cycles[0]) == expected[3].total_cycles
    with pytest.raises(HardwareError, match="empty"):
        select_mappings([problem], [accelerator], "jaq", loop_orders=[], hw_model="simulator")
