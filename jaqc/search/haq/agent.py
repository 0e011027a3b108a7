"""HAQ's DDPG agent: one continuous action per step, actor and critic with target networks, a replay buffer,
truncated-normal exploration and a moving-average reward baseline.

All randomness comes from the seed given to the agent (a ``numpy.random.Generator`` for actions and replay
sampling, a ``torch.Generator`` for the initial weights); no global random state is read or changed.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import torch
from attrs import field, frozen

from .errors import HaqError
from .networks import Actor, Critic, hard_update, soft_update
from .replay import ReplayBuffer


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise HaqError(f"DdpgConfig.{attribute.name} must be > 0, got {value!r}")


def _unit(_inst: object, attribute: Any, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise HaqError(f"DdpgConfig.{attribute.name} must lie in [0, 1], got {value!r}")


def _hidden(_inst: object, _attr: Any, value: tuple[int, int]) -> None:
    if len(value) != 2 or min(value) < 1:
        raise HaqError(f"DdpgConfig.hidden must be two sizes >= 1, got {value!r}")


@frozen(kw_only=True)
class DdpgConfig:
    """The agent's hyper-parameters; the defaults are HAQ's (paper and code).

    ``replay_per_step`` × (steps per episode) is the replay capacity, i.e. the buffer holds the last
    ``replay_per_step`` episodes. ``baseline_rate`` is the moving-average baseline's update rate: before each
    update ``baseline += rate × (batch mean reward − baseline)`` and the baseline is subtracted from the batch's
    rewards (HAQ's code: 0.5). The exploration scale at policy episode ``k`` (0 for the first episode after the
    warm-up) is ``sigma_initial × sigma_decay**k``.
    """

    hidden: tuple[int, int] = field(default=(300, 300), converter=tuple, validator=_hidden)
    actor_lr: float = field(default=1e-4, converter=float, validator=_positive)
    critic_lr: float = field(default=1e-3, converter=float, validator=_positive)
    tau: float = field(default=0.01, converter=float, validator=_unit)
    discount: float = field(default=1.0, converter=float, validator=_unit)
    batch_size: int = field(default=64, converter=int, validator=_positive)
    replay_per_step: int = field(default=128, converter=int, validator=_positive)
    sigma_initial: float = field(default=0.5, converter=float, validator=_positive)
    sigma_decay: float = field(default=0.99, converter=float, validator=_unit)
    baseline_rate: float = field(default=0.5, converter=float, validator=_unit)
    updates_per_step: int = field(default=1, converter=int, validator=_positive)

    def sigma(self, policy_episode: int) -> float:
        """The exploration scale of the ``policy_episode``-th episode after the warm-up (0-based)."""
        return self.sigma_initial * self.sigma_decay ** max(0, policy_episode)


@frozen
class UpdateStats:
    """The losses of one agent update and the reward baseline it used."""

    critic_loss: float
    actor_loss: float
    baseline: float


def truncated_normal(mean: float, sigma: float, rng: np.random.Generator, low: float = 0.0, high: float = 1.0) -> float:
    """One draw from the normal ``(mean, sigma)`` truncated to ``[low, high]`` (inverse-CDF, one uniform draw)."""
    uniform = float(rng.random())
    if sigma <= 0.0:
        return min(max(mean, low), high)
    normal = NormalDist(mean, sigma)
    cdf_low, cdf_high = normal.cdf(low), normal.cdf(high)
    probability = cdf_low + uniform * (cdf_high - cdf_low)
    probability = min(max(probability, 1e-12), 1.0 - 1e-12)
    return min(max(normal.inv_cdf(probability), low), high)


class DdpgAgent:
    """A DDPG agent over ``state_size``-long states with a scalar action in [0, 1]."""

    def __init__(self, state_size: int, steps_per_episode: int, config: DdpgConfig, seed: int) -> None:
        if state_size < 1 or steps_per_episode < 1:
            raise HaqError(f"bad agent sizes: state_size={state_size}, steps_per_episode={steps_per_episode}")
        self.config = config
        self._rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        self.actor = Actor(state_size, config.hidden, generator)
        self.actor_target = Actor(state_size, config.hidden, generator)
        self.critic = Critic(state_size, config.hidden, generator)
        self.critic_target = Critic(state_size, config.hidden, generator)
        hard_update(self.actor_target, self.actor)
        hard_update(self.critic_target, self.critic)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.memory = ReplayBuffer(config.replay_per_step * steps_per_episode, state_size)
        self.baseline: float | None = None

    def state_dict(self) -> dict[str, Any]:
        """Everything that continues the agent exactly: networks, optimisers, replay buffer, baseline, RNG."""
        return {
            "actor": self.actor.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "memory": self.memory.state_dict(),
            "baseline": self.baseline,
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (of an agent with the same sizes and configuration)."""
        for name in ("actor", "actor_target", "critic", "critic_target", "actor_optim", "critic_optim"):
            getattr(self, name).load_state_dict(state[name])
        self.memory.load_state_dict(state["memory"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self._rng.bit_generator.state = state["rng"]

    def random_action(self) -> float:
        """A uniform action in [0, 1) (the warm-up policy)."""
        return float(self._rng.random())

    def policy_action(self, state: np.ndarray) -> float:
        """The actor's action for ``state``, without exploration noise."""
        with torch.no_grad():
            return float(self.actor(torch.as_tensor(state, dtype=torch.float32).reshape(1, -1))[0, 0])

    def explore(self, state: np.ndarray, sigma: float) -> float:
        """The actor's action perturbed by a normal of scale ``sigma`` truncated to [0, 1]."""
        return truncated_normal(self.policy_action(state), sigma, self._rng)

    def observe(self, state: np.ndarray, action: float, reward: float, next_state: np.ndarray, done: bool) -> None:
        """Store one transition in the replay buffer."""
        self.memory.add(state, action, reward, next_state, done)

    def update(self) -> UpdateStats:
        """One critic and one actor step on a replay batch, then the soft target updates."""
        config = self.config
        batch = self.memory.sample(config.batch_size, self._rng)
        mean_reward = float(batch.rewards.mean())
        if self.baseline is None:
            self.baseline = mean_reward
        else:
            self.baseline += config.baseline_rate * (mean_reward - self.baseline)
        states = torch.from_numpy(batch.states)
        next_states = torch.from_numpy(batch.next_states)
        actions = torch.from_numpy(batch.actions)
        rewards = torch.from_numpy(batch.rewards) - self.baseline
        not_done = 1.0 - torch.from_numpy(batch.dones)
        with torch.no_grad():
            next_q = self.critic_target(next_states, self.actor_target(next_states))
            target_q = rewards + config.discount * not_done * next_q

        self.critic_optim.zero_grad()
        critic_loss = torch.nn.functional.mse_loss(self.critic(states, actions), target_q)
        critic_loss.backward()
        self.critic_optim.step()

        self.actor_optim.zero_grad()
        actor_loss = -self.critic(states, self.actor(states)).mean()
        actor_loss.backward()
        self.actor_optim.step()

        soft_update(self.actor_target, self.actor, config.tau)
        soft_update(self.critic_target, self.critic, config.tau)
        return UpdateStats(critic_loss.item(), actor_loss.item(), self.baseline)
