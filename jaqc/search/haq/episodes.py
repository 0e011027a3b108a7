"""One HAQ episode on an environment: the per-step states and actions, budget enforcement, the reward.

Shared by the DDPG search and the random-search baseline so that both see exactly the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from attrs import frozen

from .actions import action_to_bits
from .budget import BudgetBounds, ResourceBudget, enforce_budget, resolve_budget, searched_layers
from .environment import BitConfig, HaqEnvironment, ResourceKind
from .errors import HaqError
from .results import EpisodeRecord
from .state import StateEncoder

#: A policy for one step: state vector → action in [0, 1].
StepPolicy = Callable[[np.ndarray], float]


@frozen(eq=False)
class Rollout:
    """The steps of one episode: their states and actions (two per searched layer), and the proposed bits."""

    states: tuple[np.ndarray, ...]
    actions: tuple[float, ...]
    proposed_bits: BitConfig


class EpisodeRunner:
    """Runs episodes of HAQ on ``env`` under ``budget``; resolving the budget rejects an infeasible one."""

    def __init__(
        self, env: HaqEnvironment, budget: ResourceBudget, keep_first_last: bool = True, reward_scale: float = 0.1
    ) -> None:
        self.env = env
        self.layers = tuple(env.layers)
        self.searched = searched_layers(len(self.layers), keep_first_last)
        if not self.searched:
            raise HaqError(
                f"nothing to search: {len(self.layers)} quantizable layer(s) and the first and last are kept at 8 bits"
            )
        self.encoder = StateEncoder(self.layers)
        self.reward_scale = float(reward_scale)
        self.reference_accuracy = float(env.reference_accuracy)
        self._costs: dict[tuple[BitConfig, ResourceKind], float] = {}
        self.bounds: BudgetBounds = resolve_budget(self.cost, len(self.layers), self.searched, budget)

    @property
    def steps_per_episode(self) -> int:
        """Two agent steps (weight, then activation bits) per searched layer."""
        return 2 * len(self.searched)

    def cost(self, bits: BitConfig, kind: ResourceKind) -> float:
        """The environment's cost, memoised per configuration and kind."""
        key = (bits, kind)
        if key not in self._costs:
            self._costs[key] = float(self.env.cost(bits, kind))
        return self._costs[key]

    def rollout(self, policy: StepPolicy) -> Rollout:
        """Ask ``policy`` for each step's action, in network order, weight before activation."""
        bits = [(8, 8)] * len(self.layers)
        states: list[np.ndarray] = []
        actions: list[float] = []
        previous_bits = 8
        for layer in self.searched:
            chosen = []
            for is_weight in (True, False):
                state = self.encoder.state(layer, previous_bits, is_weight)
                action = float(policy(state))
                previous_bits = action_to_bits(action)
                chosen.append(previous_bits)
                states.append(state)
                actions.append(action)
            bits[layer] = (chosen[0], chosen[1])
        return Rollout(states=tuple(states), actions=tuple(actions), proposed_bits=tuple(bits))

    def finish(self, episode: int, proposed_bits: BitConfig, sigma: float | None) -> EpisodeRecord:
        """Enforce the budget on ``proposed_bits``, measure the accuracy and the reward."""
        kind = self.bounds.kind
        bits, cost = enforce_budget(proposed_bits, lambda b: self.cost(b, kind), self.bounds, self.searched)
        accuracy = float(self.env.evaluate(bits))
        if math.isnan(accuracy):
            raise HaqError(f"episode {episode}: the environment returned a NaN accuracy for {bits}")
        return EpisodeRecord(
            episode=episode,
            proposed_bits=proposed_bits,
            bits=bits,
            accuracy=accuracy,
            cost=cost,
            cost_fraction=cost / self.bounds.reference_cost,
            reward=self.reward_scale * (accuracy - self.reference_accuracy),
            sigma=sigma,
        )
