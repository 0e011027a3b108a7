"""The HAQ episode loop (DDPG agent) and the random-search baseline under the same rules."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
from attrs import field, frozen

from .agent import DdpgAgent, DdpgConfig
from .budget import BudgetBounds, ResourceBudget
from .environment import HaqEnvironment
from .episodes import EpisodeRunner
from .errors import HaqError
from .results import EpisodeRecord, HaqResult
from .state import STATE_SIZE

#: Called after every episode with its record (progress reporting; the library never prints).
ProgressCallback = Callable[[EpisodeRecord], None]


def _at_least(minimum: int):  # type: ignore[no-untyped-def]
    def check(_inst: object, attribute: Any, value: int) -> None:
        if value < minimum:
            raise HaqError(f"HaqConfig.{attribute.name} must be >= {minimum}, got {value!r}")

    return check


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise HaqError(f"HaqConfig.{attribute.name} must be > 0, got {value!r}")


@frozen(kw_only=True)
class HaqConfig:
    """The search's settings: episodes (HAQ's code: 600), warm-up episodes of uniform random actions (20),
    whether the first and last layers stay at w8a8, the reward scale (0.1 × accuracy difference), the seed,
    and the agent's hyper-parameters."""

    episodes: int = field(default=600, converter=int, validator=_at_least(1))
    warmup_episodes: int = field(default=20, converter=int, validator=_at_least(0))
    keep_first_last: bool = field(default=True, converter=bool)
    reward_scale: float = field(default=0.1, converter=float, validator=_positive)
    seed: int = field(default=0, converter=int, validator=_at_least(0))
    ddpg: DdpgConfig = field(factory=DdpgConfig)


def _best(history: list[EpisodeRecord]) -> EpisodeRecord:
    return max(history, key=lambda record: (record.reward, -record.episode))


class HaqSearch:
    """HAQ's search of per-layer (weight, activation) bits on ``env`` under ``budget``.

    Each episode the policy picks every searched layer's weight then activation bits, the budget is enforced
    (``jaqc.search.haq.budget``), the environment measures the accuracy, and every step of the episode is stored
    with the episode's reward. The agent is updated ``updates_per_step`` times per step from the last warm-up
    episode on, so the first policy episode already uses a trained actor. An infeasible budget raises
    :class:`HaqError` here, before any episode.

    :meth:`run` runs every episode; :meth:`run_episode` runs the next one, and :meth:`state_dict` /
    :meth:`load_state_dict` save and restore the search between episodes (agent, replay buffer, its RNG and the
    history), so that a search resumed from a saved state continues exactly.
    """

    def __init__(
        self,
        env: HaqEnvironment,
        budget: ResourceBudget,
        config: HaqConfig | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.config = config if config is not None else HaqConfig()
        self.progress = progress
        self.runner = EpisodeRunner(env, budget, self.config.keep_first_last, self.config.reward_scale)
        self.agent = DdpgAgent(STATE_SIZE, self.runner.steps_per_episode, self.config.ddpg, self.config.seed)
        self.history: list[EpisodeRecord] = []
        self._done = False

    @property
    def bounds(self) -> BudgetBounds:
        """The budget resolved on the environment."""
        return self.runner.bounds

    @property
    def finished(self) -> bool:
        """Whether all ``config.episodes`` episodes have run."""
        return len(self.history) >= self.config.episodes

    def run_episode(self) -> EpisodeRecord:
        """Run the next episode (its rollout, budget enforcement, reward, replay and agent updates)."""
        if self.finished:
            raise HaqError(f"the search has run all its {self.config.episodes} episodes")
        config, agent = self.config, self.agent
        episode = len(self.history)
        if episode < config.warmup_episodes:
            sigma = None
            rollout = self.runner.rollout(lambda _state: agent.random_action())
        else:
            sigma = config.ddpg.sigma(episode - config.warmup_episodes)
            rollout = self.runner.rollout(lambda state, s=sigma: agent.explore(state, s))
        record = self.runner.finish(episode, rollout.proposed_bits, sigma)
        last = len(rollout.states) - 1
        for step, (state, action) in enumerate(zip(rollout.states, rollout.actions, strict=True)):
            next_state = rollout.states[min(step + 1, last)]
            agent.observe(state, action, record.reward, next_state, step == last)
        if episode >= config.warmup_episodes - 1:
            stats = [agent.update() for _ in range(config.ddpg.updates_per_step * len(rollout.states))]
            record = attrs.evolve(
                record,
                critic_loss=statistics.fmean(s.critic_loss for s in stats),
                actor_loss=statistics.fmean(s.actor_loss for s in stats),
            )
        self.history.append(record)
        if self.progress is not None:
            self.progress(record)
        return record

    def result(self) -> HaqResult:
        """The history so far and its best episode (highest reward, earliest on ties)."""
        if not self.history:
            raise HaqError("no episode has run yet")
        return HaqResult(method="haq-ddpg", best=_best(self.history), history=tuple(self.history), bounds=self.bounds)

    def run(self) -> HaqResult:
        """Run the remaining episodes of ``config.episodes`` and return the history and the best configuration
        (once per search)."""
        if self._done:
            raise HaqError("HaqSearch.run() runs once; create a new HaqSearch for another search")
        self._done = True
        while not self.finished:
            self.run_episode()
        return self.result()

    def state_dict(self) -> dict[str, Any]:
        """The agent's state and the episode history (plain data and tensors, for a checkpoint)."""
        return {"agent": self.agent.state_dict(), "history": [record.to_json() for record in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output: the next episode is the one after the restored history."""
        history = [EpisodeRecord.from_json(record) for record in state["history"]]
        if len(history) > self.config.episodes:
            raise HaqError(f"the saved search ran {len(history)} episodes, more than the {self.config.episodes} asked")
        self.agent.load_state_dict(state["agent"])
        self.history = history


def random_search(
    env: HaqEnvironment,
    budget: ResourceBudget,
    episodes: int,
    seed: int,
    keep_first_last: bool = True,
    reward_scale: float = 0.1,
    progress: ProgressCallback | None = None,
) -> HaqResult:
    """The baseline: every episode draws each step's action uniformly in [0, 1], under HAQ's budget rule.

    With the same seed its episodes coincide with the agent's warm-up episodes (the same stream of draws).
    """
    if episodes < 1:
        raise HaqError(f"episodes must be >= 1, got {episodes}")
    runner = EpisodeRunner(env, budget, keep_first_last, reward_scale)
    rng = np.random.default_rng(seed)
    history: list[EpisodeRecord] = []
    for episode in range(episodes):
        rollout = runner.rollout(lambda _state: float(rng.random()))
        record = runner.finish(episode, rollout.proposed_bits, None)
        history.append(record)
        if progress is not None:
            progress(record)
    return HaqResult(method="random", best=_best(history), history=tuple(history), bounds=runner.bounds)
