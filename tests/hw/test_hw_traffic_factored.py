"""The factored all-orders traffic rule and BatchTile's lower bound agree with the per-row walk."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jaqc.hw.mapping.batchtile_search import _lower_bound, _objective_terms, _Tilings
from jaqc.hw.mapping.mapping_space import Objective
from jaqc.hw.model.constants import LOOP_OPERAND_DEPENDENCE
from jaqc.hw.model.hw_models import HardwareModel
from jaqc.hw.model.orders import order_index_tensor
from jaqc.hw.model.tensors import UnitCostTensors
from jaqc.hw.model.traffic import GROUPED_DEPENDENCE, dram_traffic, dram_traffic_all_orders

COUNTS = st.lists(st.sampled_from([1, 1, 2, 3, 7, 16]), min_size=5, max_size=5)


@st.composite
def tilings(draw, rows: int = 6):
    num_tiles = torch.tensor([draw(COUNTS) for _ in range(rows)], dtype=torch.float64)
    tile_bits = torch.tensor([[draw(st.integers(1, 5000)) for _ in range(3)] for _ in range(rows)], dtype=torch.float64)
    # Blocks fit their buffers (BatchTile drops the others first; for an overflowing block even a loop with
    # one tile changes the walk's state).
    capacity = torch.tensor([[draw(st.integers(5000, 40000)) for _ in range(3)]], dtype=torch.float64).expand(rows, 3)
    ranks = tuple(sorted(set(draw(st.lists(st.integers(0, 119), min_size=1, max_size=12)))))
    return tile_bits, capacity, num_tiles, ranks


@settings(max_examples=150, deadline=None)
@given(tilings(), st.sampled_from([LOOP_OPERAND_DEPENDENCE, GROUPED_DEPENDENCE]))
def test_factored_traffic_equals_the_walk(case, dependence) -> None:
    tile_bits, capacity, num_tiles, ranks = case
    traffic, peak = dram_traffic_all_orders(tile_bits, capacity, num_tiles, ranks, dependence)
    orders = order_index_tensor(ranks)  # (R, 5)
    table = torch.tensor(dependence, dtype=torch.bool)
    walked, walked_peak = dram_traffic(
        tile_bits.unsqueeze(1), capacity.unsqueeze(1), num_tiles[:, orders], table[orders]
    )
    for operand in range(3):
        assert torch.equal(traffic[operand].expand(-1, len(ranks)), walked[..., operand])
        assert torch.equal(peak[operand].expand(-1, len(ranks)), walked_peak[..., operand])


@settings(max_examples=100, deadline=None)
@given(
    tilings(),
    st.sampled_from(list(Objective)),
    st.integers(1, 3),
    st.sampled_from(list(HardwareModel)),
    st.sampled_from([LOOP_OPERAND_DEPENDENCE, GROUPED_DEPENDENCE]),
    st.sampled_from([2, 4, 8, 32]),
)
def test_lower_bound_never_exceeds_any_order(
    case, objective: Objective, groups: int, model, dependence, out_bits
) -> None:
    tile_bits, capacity, num_tiles, _ = case
    if model is HardwareModel.SIMULATOR:
        dependence = LOOP_OPERAND_DEPENDENCE
    else:
        tile_bits = tile_bits.clone()
        tile_bits[:, 2] *= 32  # outputs are 32-bit partial sums
        capacity = capacity.clone()
        capacity[:, 2] *= 32
    rows = tile_bits.shape[0]
    ranks = tuple(range(120))
    generator = torch.Generator().manual_seed(rows)
    units = UnitCostTensors(
        **{
            name: torch.rand(rows, generator=generator, dtype=torch.float64) * 1e-3
            for name in (a.name for a in UnitCostTensors.__attrs_attrs__)
        }
    )
    tilings_ = _Tilings(
        local=torch.zeros(rows, dtype=torch.int64),
        tiles=torch.ones(rows, 5, dtype=torch.float64),
        groups=torch.full((rows,), float(groups), dtype=torch.float64),
        width=torch.full((rows,), 64.0, dtype=torch.float64),
        freq=torch.full((rows,), 500.0, dtype=torch.float64),
        units=units,
        compute=torch.randint(1, 100000, (rows,), generator=generator).double(),
        wgt_reads=torch.randint(1, 10**6, (rows,), generator=generator).double(),
        act_reads=torch.randint(1, 10**6, (rows,), generator=generator).double(),
        out_inner=torch.randint(1, 10**6, (rows,), generator=generator).double(),
        tile_bits=tile_bits,
        capacity_bits=capacity,
        num_tiles=num_tiles,
        out_full=tile_bits[:, 2] * num_tiles[:, [0, 1, 2, 4]].prod(dim=1),
        out_bits=torch.full((rows,), float(out_bits), dtype=torch.float64),
        first_load=tile_bits[:, 0] + tile_bits[:, 1],
        drain=tile_bits[:, 2] / 32 * out_bits,
    )
    bound = _lower_bound(tilings_, objective, model, dependence)
    traffic, peak = dram_traffic_all_orders(tile_bits, capacity, num_tiles, ranks, dependence)
    cycles_of, energy_of = _objective_terms(tilings_, traffic, peak, len(ranks), model)
    cycles, energy = cycles_of(None), energy_of(None)
    if objective is Objective.LATENCY:
        value = cycles
    elif objective is Objective.ENERGY:
        value = energy
    else:
        value = energy * (cycles / (500.0 * 1.0e6))
    assert bool((bound.unsqueeze(1) <= value).all())
