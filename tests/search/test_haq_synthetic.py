"""The synthetic HAQ environment: closed-form accuracy and costs, and its exact optimum."""

from __future__ import annotations

import itertools

import attrs
import pytest

from jaqc.core import JaqcError
from jaqc.search.haq import (
    HaqEnvironment,
    ResourceBudget,
    SyntheticEnv,
    exact_optimum,
    make_synthetic_env,
    mobilenet_like_layers,
    share_better,
)
from jaqc.search.haq.synthetic import NOISE_POWER

TINY = mobilenet_like_layers()[3:8]  # dw, pw, dw, pw, fc: 3 searched layers between the kept first and last


def _tiny_env(seed: int) -> SyntheticEnv:
    return make_synthetic_env(seed, [attrs.evolve(info, index=i) for i, info in enumerate(TINY)])


def _brute_force(env: SyntheticEnv, budget: ResourceBudget) -> tuple[float, int, int]:
    """Best reward, feasible count and count strictly better than -0.1 by a plain loop over every configuration."""
    budget_value = budget.fraction * env.cost(((8, 8),) * len(env.layers), budget.kind)
    best, feasible, better = -float("inf"), 0, 0
    pairs = list(itertools.product((2, 4, 8), repeat=2))
    for middle in itertools.product(pairs, repeat=len(env.layers) - 2):
        bits = ((8, 8), *middle, (8, 8))
        if env.cost(bits, budget.kind) <= budget_value * (1 + 1e-9):
            reward = 0.1 * (env.evaluate(bits) - env.reference_accuracy)
            best = max(best, reward)
            feasible += 1
            better += reward > -0.1 + 1e-9
    return best, feasible, better


def test_accuracy_and_costs_are_exact() -> None:
    layers = mobilenet_like_layers()[:2]
    env = SyntheticEnv(layers=layers, weight_sensitivity=[1.0, 2.0], activation_sensitivity=[3.0, 4.0])
    assert isinstance(env, HaqEnvironment)
    assert NOISE_POWER == {2: 1.0, 4: 1 / 16, 8: 1 / 4096}
    bits = ((8, 4), (2, 8))
    assert env.evaluate(bits) == 70.0 - (1.0 / 4096 + 3.0 / 16) - (2.0 + 4.0 / 4096)
    macs = [16 * 3 * 9 * 1024, 16 * 9 * 1024]
    assert env.cost(bits, "latency") == macs[0] * 32 / 64 + macs[1] * 16 / 64
    energy = env.cost(bits, "energy")
    traffic = 2.0 * (16 * 3 * 9 * 8 + 3 * 1024 * 4) / 8 + 2.0 * (16 * 9 * 2 + 16 * 1024 * 8) / 8
    assert energy == pytest.approx(env.cost(bits, "latency") + traffic, rel=1e-15)
    assert env.cost(bits, "edap") == pytest.approx(energy * env.cost(bits, "latency"), rel=1e-15)
    with pytest.raises(JaqcError, match="expected 2"):
        env.evaluate(((8, 8),))
    with pytest.raises(JaqcError, match="needs 2 values"):
        SyntheticEnv(layers=mobilenet_like_layers()[:2], weight_sensitivity=[1.0], activation_sensitivity=[3.0, 4.0])


def test_sensitivities_are_seeded() -> None:
    assert make_synthetic_env(1) == make_synthetic_env(1) != make_synthetic_env(2)
    env = make_synthetic_env(1)
    for info, w, a in zip(env.layers, env.weight_sensitivity, env.activation_sensitivity, strict=True):
        base = 8.0 if info.is_depthwise else 2.0
        assert base / 2 <= w <= base * 2 and base / 2 <= a <= base * 2


@pytest.mark.parametrize(
    ("kind", "fraction"), [("latency", 0.3), ("latency", 0.6), ("energy", 0.4), ("edap", 0.15), ("edap", 1.0)]
)
def test_exact_optimum_matches_a_plain_loop(kind: str, fraction: float) -> None:
    env = _tiny_env(4)
    budget = ResourceBudget(kind, fraction)
    optimum = exact_optimum(env, budget)
    best, feasible, better = _brute_force(env, budget)
    assert optimum.reward == pytest.approx(best, abs=1e-12)
    assert optimum.cost == env.cost(optimum.bits, kind) <= budget.fraction * env.cost(((8, 8),) * 5, kind)
    assert optimum.bits[0] == optimum.bits[-1] == (8, 8)
    assert share_better(env, budget, optimum.reward) == 0.0
    assert share_better(env, budget, -0.1) == better / feasible


def test_unconstrained_optimum_is_all_8_bits() -> None:
    env = _tiny_env(0)
    assert exact_optimum(env, ResourceBudget("latency", 1.0)).bits == ((8, 8),) * 5
