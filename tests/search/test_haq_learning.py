"""The headline: on the synthetic environment (known optimum), HAQ's agent beats random search at equal episodes.

Always on: a cheaper agent (hidden 64-64, otherwise HAQ's hyper-parameters) over 60 episodes (20 warm-up),
latency budget 0.5. Slow (``--run-slow``): HAQ's 300-300 agent over 120 episodes, latency budget 0.4. Both run
three seeds and require, in every seed: the agent's best reward above random search's best reward, and the
agent's best configuration in the top 0.1 % of all configurations within the budget (random search's best was
at 0.19 %-1.3 % in the cheap setting when this was written; see docs/haq.md for the measured values).
"""

from __future__ import annotations

import statistics

import pytest
import torch

from jaqc.search.haq import (
    DdpgConfig,
    HaqConfig,
    HaqSearch,
    ResourceBudget,
    exact_optimum,
    make_synthetic_env,
    random_search,
    share_better,
)

TOP_SHARE = 0.001


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _compare(seed: int, episodes: int, fraction: float, ddpg: DdpgConfig) -> None:
    env = make_synthetic_env(seed)
    budget = ResourceBudget("latency", fraction)
    agent = HaqSearch(env, budget, HaqConfig(episodes=episodes, seed=seed, ddpg=ddpg)).run()
    baseline = random_search(env, budget, episodes, seed)
    optimum = exact_optimum(env, budget)
    assert len(agent.history) == len(baseline.history) == episodes
    assert baseline.best.reward < agent.best.reward <= optimum.reward + 1e-12
    assert share_better(env, budget, agent.best.reward) < TOP_SHARE
    # the policy itself improved: the last 20 episodes beat the random warm-up on average
    warmup = statistics.fmean(r.reward for r in agent.history[:20])
    assert statistics.fmean(r.reward for r in agent.history[-20:]) > warmup


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agent_beats_random_search_cheap(seed: int) -> None:
    _compare(seed, episodes=60, fraction=0.5, ddpg=DdpgConfig(hidden=(64, 64)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agent_with_haq_hyper_parameters_beats_random_search(seed: int) -> None:
    _compare(seed, episodes=120, fraction=0.4, ddpg=DdpgConfig())
