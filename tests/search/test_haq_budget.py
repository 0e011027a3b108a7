"""HAQ's resource budget: its value, the infeasibility error, and the enforcement rule (exact steps, termination)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from attrs import frozen

from jaqc.core import JaqcError
from jaqc.search.haq import (
    BitConfig,
    HaqError,
    LayerInfo,
    ResourceBudget,
    ResourceKind,
    enforce_budget,
    make_synthetic_env,
    resolve_budget,
    searched_layers,
    uniform_config,
)
from jaqc.search.haq.episodes import EpisodeRunner


@frozen
class TableEnv:
    """Cost Σ size_l · (w_l + a_l) for every kind; accuracy irrelevant here."""

    sizes: tuple[float, ...]

    @property
    def layers(self) -> list[LayerInfo]:
        return [
            LayerInfo(
                index=i,
                is_depthwise=False,
                in_channels=1,
                out_channels=1,
                stride=1,
                kernel=1,
                weight_count=1,
                in_fmap_size=1,
                out_fmap_size=1,
            )
            for i in range(len(self.sizes))
        ]

    reference_accuracy: float = 0.0

    def evaluate(self, bits: BitConfig) -> float:
        return 0.0

    def cost(self, bits: BitConfig, kind: ResourceKind) -> float:
        return float(sum(size * (w + a) for size, (w, a) in zip(self.sizes, bits, strict=True)))


def _bounds(env: TableEnv, fraction: float, keep_first_last: bool = True):
    searched = searched_layers(len(env.sizes), keep_first_last)
    return resolve_budget(env.cost, len(env.sizes), searched, ResourceBudget("latency", fraction)), searched


def test_budget_validation() -> None:
    assert ResourceBudget("edap", 1.0).kind is ResourceKind.EDAP
    with pytest.raises(JaqcError, match="fraction must lie in"):
        ResourceBudget("latency", 0.0)
    with pytest.raises(JaqcError, match="fraction must lie in"):
        ResourceBudget("latency", 1.5)
    with pytest.raises(JaqcError, match="unknown resource kind 'area'; expected one of latency, energy, edap"):
        ResourceBudget("area", 0.5)


def test_budget_value_is_a_fraction_of_the_8bit_cost() -> None:
    bounds, searched = _bounds(TableEnv((1, 1, 1, 1)), 0.75)
    assert searched == (1, 2)
    assert (bounds.reference_cost, bounds.budget_value, bounds.minimum_cost) == (64.0, 48.0, 40.0)
    assert bounds.minimum_fraction == 0.625
    assert uniform_config(4, searched, 2) == ((8, 8), (2, 2), (2, 2), (8, 8))


def test_infeasible_budget_is_rejected_up_front() -> None:
    message = (
        "infeasible latency budget: 0.6 of the 8-bit design, but the cheapest configuration "
        r"\(searched layers w2a2, the others w8a8\) needs 0.625 of it; choose a fraction >= 0.625"
    )
    with pytest.raises(HaqError, match=message):
        _bounds(TableEnv((1, 1, 1, 1)), 0.6)
    with pytest.raises(HaqError, match=r"cheapest configuration \(all layers w2a2\) needs 0.25 of it"):
        _bounds(TableEnv((1, 1, 1, 1)), 0.2, keep_first_last=False)
    _bounds(TableEnv((1, 1, 1, 1)), 0.625)  # exactly the minimum is feasible


@pytest.mark.parametrize("kind", ["latency", "energy", "edap"])
def test_the_suggested_fraction_is_feasible(kind: str) -> None:
    env = make_synthetic_env(0)
    searched = searched_layers(len(env.layers), True)
    with pytest.raises(HaqError, match=f"infeasible {kind} budget: 0.01 of the 8-bit design") as info:
        resolve_budget(env.cost, len(env.layers), searched, ResourceBudget(kind, 0.01))
    suggested = float(str(info.value).rsplit(">= ", 1)[1])
    bounds = resolve_budget(env.cost, len(env.layers), searched, ResourceBudget(kind, suggested))
    assert bounds.minimum_fraction <= suggested < bounds.minimum_fraction + 1e-6


def test_enforcement_lowers_from_the_last_layer_weights_first() -> None:
    env = TableEnv((1, 1, 1, 1))
    all8 = uniform_config(4, (), 8)
    bounds, searched = _bounds(env, 0.75)
    # 64 → layer 2 w8→4 (60), a8→4 (56) → layer 1 w8→4 (52), a8→4 (48 ≤ 48)
    assert enforce_budget(all8, lambda b: env.cost(b, "latency"), bounds, searched) == (
        ((8, 8), (4, 4), (4, 4), (8, 8)),
        48.0,
    )
    bounds, searched = _bounds(env, 0.7)  # 44.8: second sweep, layer 2 w4→2 (46), a4→2 (44)
    assert enforce_budget(all8, lambda b: env.cost(b, "latency"), bounds, searched) == (
        ((8, 8), (4, 4), (2, 2), (8, 8)),
        44.0,
    )
    bounds, searched = _bounds(env, 0.65)  # 41.6: layer 2 stays at 2, layer 1 w4→2 (42), a4→2 (40)
    assert enforce_budget(((8, 8), (4, 2), (2, 4), (8, 8)), lambda b: env.cost(b, "latency"), bounds, searched) == (
        ((8, 8), (2, 2), (2, 2), (8, 8)),
        40.0,
    )


def test_enforcement_keeps_a_feasible_configuration() -> None:
    env = TableEnv((1, 2, 3, 1))
    bounds, searched = _bounds(env, 0.8)
    proposed = ((8, 8), (8, 2), (4, 4), (8, 8))
    assert enforce_budget(proposed, lambda b: env.cost(b, "latency"), bounds, searched) == (proposed, 76.0)


@pytest.mark.parametrize("kind", ["latency", "energy", "edap"])
def test_enforcement_terminates_within_budget_and_only_lowers(kind: str) -> None:
    env = make_synthetic_env(0)
    rng = np.random.default_rng(0)
    count = len(env.layers)
    searched = searched_layers(count, True)
    minimum = resolve_budget(env.cost, count, searched, ResourceBudget(kind, 1.0)).minimum_fraction
    for fraction in (minimum, minimum + 0.01, 0.3, 0.6, 1.0):
        bounds = resolve_budget(env.cost, count, searched, ResourceBudget(kind, min(1.0, fraction)))
        for _ in range(40):
            proposed = tuple(
                (8, 8) if i not in searched else tuple(int(b) for b in rng.choice([2, 4, 8], 2)) for i in range(count)
            )
            bits, cost = enforce_budget(proposed, lambda b: env.cost(b, kind), bounds, searched)
            assert bounds.within(cost) and cost == env.cost(bits, kind)
            assert bits[0] == bits[-1] == (8, 8)
            assert all(w <= pw and a <= pa for (w, a), (pw, pa) in zip(bits, proposed, strict=True))


def test_costs_are_monotone_in_every_bitwidth() -> None:
    env = make_synthetic_env(3)
    count = len(env.layers)
    for kind in ResourceKind:
        for layer, slot in itertools.product(range(count), (0, 1)):
            bits = [(8, 8)] * count
            costs = []
            for value in (2, 4, 8):
                pair = list(bits[layer])
                pair[slot] = value
                bits[layer] = tuple(pair)
                costs.append(env.cost(tuple(bits), kind))
            assert costs[0] < costs[1] < costs[2]


def test_nothing_to_search() -> None:
    with pytest.raises(HaqError, match="nothing to search: 2 quantizable layer"):
        EpisodeRunner(TableEnv((1, 1)), ResourceBudget("latency", 1.0))
