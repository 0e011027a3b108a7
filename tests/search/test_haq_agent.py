"""HAQ's DDPG agent: HAQ's hyper-parameters, seeded determinism, exploration, replay, the episode loop's rules."""

from __future__ import annotations

import json
from statistics import NormalDist

import numpy as np
import pytest
import torch

from jaqc.core import JaqcError
from jaqc.search.haq import (
    STATE_SIZE,
    DdpgAgent,
    DdpgConfig,
    HaqConfig,
    HaqSearch,
    ReplayBuffer,
    ResourceBudget,
    make_synthetic_env,
    random_search,
    truncated_normal,
)
from jaqc.search.haq.networks import Actor, soft_update

SMALL = DdpgConfig(hidden=(16, 16), batch_size=8)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_defaults_are_haqs_hyper_parameters() -> None:
    config = DdpgConfig()
    assert (config.hidden, config.actor_lr, config.critic_lr, config.tau, config.discount) == (
        (300, 300),
        1e-4,
        1e-3,
        0.01,
        1.0,
    )
    assert (config.batch_size, config.replay_per_step, config.sigma_initial, config.sigma_decay) == (64, 128, 0.5, 0.99)
    assert (config.baseline_rate, config.updates_per_step) == (0.5, 1)
    assert [config.sigma(k) for k in (0, 1, 10)] == [0.5, 0.5 * 0.99, 0.5 * 0.99**10]
    search = HaqConfig()
    assert (search.episodes, search.warmup_episodes) == (600, 20)
    assert (search.keep_first_last, search.reward_scale) == (True, 0.1)
    agent = DdpgAgent(STATE_SIZE, 12, config, seed=0)
    assert agent.memory.capacity == 128 * 12
    assert [p.shape for p in agent.actor.parameters()] == [(300, 10), (300,), (300, 300), (300,), (1, 300), (1,)]


def test_config_validation() -> None:
    with pytest.raises(JaqcError, match=r"DdpgConfig\.tau must lie in"):
        DdpgConfig(tau=1.5)
    with pytest.raises(JaqcError, match=r"DdpgConfig\.hidden must be two sizes"):
        DdpgConfig(hidden=(300,))
    with pytest.raises(JaqcError, match=r"HaqConfig\.episodes must be >= 1"):
        HaqConfig(episodes=0)


def _filled_agent(seed: int) -> DdpgAgent:
    agent = DdpgAgent(STATE_SIZE, 4, SMALL, seed=seed)
    data = np.random.default_rng(99)
    for step in range(20):
        state = data.random(STATE_SIZE).astype(np.float32)
        agent.observe(state, agent.random_action(), float(data.normal()), state, step % 4 == 3)
    return agent


def test_agent_is_deterministic_under_a_seed() -> None:
    global_state = torch.get_rng_state()
    first, second, other = _filled_agent(5), _filled_agent(5), _filled_agent(6)
    state = np.linspace(0, 1, STATE_SIZE, dtype=np.float32)
    stats_first = [first.update() for _ in range(3)]
    assert stats_first == [second.update() for _ in range(3)]
    assert first.explore(state, 0.3) == second.explore(state, 0.3)
    assert first.policy_action(state) != other.policy_action(state)
    assert torch.equal(torch.get_rng_state(), global_state)  # no global RNG touched


def test_truncated_normal() -> None:
    rng = np.random.default_rng(0)
    draws = [truncated_normal(0.9, 0.5, rng) for _ in range(2000)]
    assert min(draws) >= 0.0 and max(draws) <= 1.0
    normal = NormalDist()
    alpha, beta = (0.0 - 0.9) / 0.5, (1.0 - 0.9) / 0.5
    mean = 0.9 + 0.5 * (normal.pdf(alpha) - normal.pdf(beta)) / (normal.cdf(beta) - normal.cdf(alpha))
    assert abs(np.mean(draws) - mean) < 0.02  # the truncated normal's mean, 0.6128
    assert truncated_normal(0.25, 0.0, rng) == 0.25
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert [truncated_normal(0.5, 0.2, a) for _ in range(5)] == [truncated_normal(0.5, 0.2, b) for _ in range(5)]


def test_replay_buffer_overwrites_the_oldest() -> None:
    buffer = ReplayBuffer(3, 2)
    for i in range(5):
        buffer.add(np.full(2, i, np.float32), i / 10, float(i), np.full(2, i + 1, np.float32), i == 4)
    assert len(buffer) == 3
    batch = buffer.sample(3, np.random.default_rng(0))
    assert sorted(batch.rewards[:, 0].tolist()) == [2.0, 3.0, 4.0]  # without replacement: each once
    assert sorted(batch.dones[:, 0].tolist()) == [0.0, 0.0, 1.0]
    assert len(buffer.sample(10, np.random.default_rng(0)).rewards) == 10  # with replacement when short


def test_soft_update() -> None:
    target = Actor(2, (3, 3), torch.Generator().manual_seed(0))
    source = Actor(2, (3, 3), torch.Generator().manual_seed(1))
    expected = [0.99 * t + 0.01 * s for t, s in zip(target.parameters(), source.parameters(), strict=True)]
    soft_update(target, source, 0.01)
    for param, want in zip(target.parameters(), expected, strict=True):
        torch.testing.assert_close(param.detach(), want.detach(), rtol=0, atol=1e-7)


def _search(seed: int, episodes: int = 24, progress=None) -> HaqSearch:
    config = HaqConfig(episodes=episodes, warmup_episodes=20, seed=seed, ddpg=SMALL)
    return HaqSearch(make_synthetic_env(0), ResourceBudget("latency", 0.4), config, progress)


def test_search_is_deterministic_and_follows_the_schedule() -> None:
    seen = []
    search = _search(3, progress=seen.append)
    result = search.run()
    with pytest.raises(JaqcError, match="runs once"):
        search.run()
    again = _search(3).run()
    assert result.to_json() == again.to_json()
    assert json.loads(json.dumps(result.to_json()))["best"]["bits"] == [list(pair) for pair in result.best.bits]
    assert len(result.best_reward_curve()) == 24 and result.best_reward_curve()[-1] == result.best.reward
    assert [r.episode for r in seen] == list(range(24)) and tuple(seen) == result.history
    assert [r.sigma for r in result.history] == [None] * 20 + [0.5, 0.5 * 0.99, 0.5 * 0.99**2, 0.5 * 0.99**3]
    assert result.best == max(result.history, key=lambda r: r.reward)
    assert [r.critic_loss is None for r in result.history] == [True] * 19 + [False] * 5
    assert all(r.critic_loss >= 0.0 and r.actor_loss is not None for r in result.history[19:])
    for record in result.history:
        assert record.bits[0] == record.bits[-1] == (8, 8)
        assert record.cost <= result.bounds.budget_value
        assert record.reward == pytest.approx(0.1 * (record.accuracy - 70.0), abs=1e-12)
    # the warm-up draws the same stream as random search with the same seed
    baseline = random_search(make_synthetic_env(0), ResourceBudget("latency", 0.4), 20, seed=3)
    assert [r.proposed_bits for r in baseline.history] == [r.proposed_bits for r in result.history[:20]]
    assert _search(4).run().to_json() != result.to_json()


def test_infeasible_budget_fails_before_any_episode() -> None:
    with pytest.raises(JaqcError, match=r"infeasible edap budget: 0\.001 of the 8-bit design"):
        HaqSearch(make_synthetic_env(0), ResourceBudget("edap", 0.001), HaqConfig(episodes=1))
