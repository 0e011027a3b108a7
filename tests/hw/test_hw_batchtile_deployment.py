"""BatchTile under the deployment model finds exactly the brute-force optimum over every (tiling, order).

The brute force evaluates every candidate row with the plain per-row cost model (``evaluate``: no factored
traffic, no bounding, no order classes) and takes the minimum of (objective, secondary, tile tuple, order
rank), BatchTile's documented tie-breaking rule.
"""

from __future__ import annotations

import random

import pytest
import torch
from jaqc.ir.accelerator import AcceleratorConfig

from jaqc.hw.errors import InfeasibleMappingError
from jaqc.hw.mapping.batchtile import candidate_tiles, map_layer, select_mappings
from jaqc.hw.model.cost_model import evaluate
from jaqc.hw.model.orders import order_index_tensor
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.tensors import HardwareTensors, MappingTensors, ProblemTensors

MODEL = "deployment"


def _brute_force(problem: ConvProblem, accelerator: AcceleratorConfig, objective: str):
    tiles = candidate_tiles(problem, accelerator, "jaq", MODEL)
    rows = tiles.shape[0] * 120
    tile = tiles.repeat_interleave(120, dim=0)
    rank = torch.arange(120).repeat(tiles.shape[0])
    cost = evaluate(
        ProblemTensors.from_problems([problem]),
        HardwareTensors.from_accelerators([accelerator]),
        MappingTensors(tile=tile, order=order_index_tensor()[rank]),
        hw_model=MODEL,
    )
    best_key, best = None, None
    cycles, energy = cost.total_cycles.expand(rows).tolist(), cost.energy_total.expand(rows).tolist()
    feasible = cost.feasible.expand(rows).tolist()
    for i in range(rows):
        if not feasible[i]:
            continue
        if objective == "latency":
            key = (cycles[i], energy[i])
        elif objective == "energy":
            key = (energy[i], cycles[i])
        else:
            key = (energy[i] * (cycles[i] / (accelerator.freq_mhz * 1.0e6)), cycles[i])
        key = (*key, tuple(tile[i].tolist()), int(rank[i]))
        if best_key is None or key < best_key:
            best_key, best = key, (tuple(int(t) for t in tile[i].tolist()), int(rank[i]), cycles[i], energy[i])
    return best


def _cases(seed: int, count: int):
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        k = rng.choice([1, 3, 5])
        size = rng.randint(max(k, 2), 7)
        kind = rng.choice(["dense", "grouped", "depthwise"])
        if kind == "depthwise":
            groups = rng.randint(2, 12)
            ic, oc = groups, groups * rng.choice([1, 2])
        elif kind == "grouped":
            groups = rng.choice([2, 3, 4])
            ic, oc = groups * rng.randint(1, 6), groups * rng.randint(1, 6)
        else:
            groups, ic, oc = 1, rng.randint(1, 20), rng.randint(1, 24)
        problem = ConvProblem(
            name=f"{kind}{seed}", batch=rng.choice([1, 1, 2]), in_channels=ic, out_channels=oc, in_h=size,
            in_w=size, kernel=k, stride=rng.choice([1, 2]), pad=k // 2, groups=groups,
            w_bits=rng.choice([2, 4, 8]), a_bits=rng.choice([2, 4, 8]), out_bits=rng.choice([2, 4, 8, 32]),
            im2col=groups == 1 and rng.random() < 0.2,
        )  # fmt: skip
        accelerator = AcceleratorConfig(
            pe_rows=rng.randint(2, 8), pe_cols=rng.randint(2, 8), wbuf_kb=rng.choice([1, 2, 4]),
            ibuf_kb=rng.choice([1, 2, 4]), obuf_kb=rng.choice([1, 2, 4]), dataflow=rng.choice(["WS", "OS", "RS"]),
            dram_bits_per_cycle=rng.choice([16, 64]),
        )  # fmt: skip
        cases.append((problem, accelerator))
    return cases


CASES = _cases(11, 14)


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("index", range(len(CASES)))
def test_deployment_batchtile_matches_brute_force(index: int, objective: str) -> None:
    problem, accelerator = CASES[index]
    expected = _brute_force(problem, accelerator, objective)
    if expected is None:
        with pytest.raises(InfeasibleMappingError):
            map_layer(problem, accelerator, "jaq", objective, hw_model=MODEL)
        return
    got = map_layer(problem, accelerator, "jaq", objective, hw_model=MODEL)
    assert (tuple(got.mapping.tile), int(_rank(got.mapping))) == expected[:2]
    assert got.cost.total_cycles == expected[2]
    assert got.cost.energy_nj["total"] == expected[3]


def _rank(mapping) -> int:
    from jaqc.hw.model.orders import order_rank

    return order_rank(mapping.loop_order)


def test_grouped_and_dense_layers_searched_together_equal_alone() -> None:
    problems = [p for p, _ in CASES]
    accelerators = [a for _, a in CASES]
    together = select_mappings(problems, accelerators, "jaq", "latency", max_rows=400, hw_model=MODEL)
    assert bool(together.feasible.any())
    for i, (problem, accelerator) in enumerate(CASES):
        alone = select_mappings([problem], [accelerator], "jaq", "latency", hw_model=MODEL)
        assert torch.equal(together.tile[i], alone.tile[0])
        assert int(together.order_rank[i]) == int(alone.order_rank[0])
        assert float(together.total_cycles[i]) == float(alone.total_cycles[0])


def test_grouped_oc_tiles_are_group_aligned() -> None:
    problem = ConvProblem(batch=1, in_channels=48, out_channels=48, in_h=8, in_w=8, kernel=3, pad=1, groups=2)
    accelerator = AcceleratorConfig(pe_rows=8, pe_cols=8, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)
    oc_tiles = sorted({int(t) for t in candidate_tiles(problem, accelerator, "jaq", MODEL)[:, 4].tolist()})
    assert oc_tiles == [1, 2, 4, 8, 24, 48]  # divisors of the 24 channels per group, then whole groups
    simulator = {int(t) for t in candidate_tiles(problem, accelerator, "jaq", "simulator")[:, 4].tolist()}
    assert sorted(simulator) == [1, 2, 4, 8, 16, 24]  # one group of 24 channels, any power of two
