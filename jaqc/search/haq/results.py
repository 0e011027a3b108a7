"""What a HAQ search returns: one record per episode and the best feasible configuration."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from .budget import BudgetBounds
from .environment import BitConfig


def _bits_json(bits: BitConfig) -> list[list[int]]:
    return [[w, a] for w, a in bits]


def _bits_from_json(bits: list[list[int]]) -> BitConfig:
    return tuple((int(w), int(a)) for w, a in bits)


@frozen(kw_only=True)
class EpisodeRecord:
    """One episode: the bits the policy proposed, the bits after budget enforcement, and their outcome.

    ``sigma`` is the exploration scale of a policy episode, ``None`` for a uniformly random one (warm-up or
    random search). ``cost_fraction`` is ``cost`` over the all-8-bit cost. ``critic_loss`` and ``actor_loss``
    are the means over the agent updates made after the episode (``None`` when there were none).
    """

    episode: int
    proposed_bits: BitConfig
    bits: BitConfig
    accuracy: float
    cost: float
    cost_fraction: float
    reward: float
    sigma: float | None
    critic_loss: float | None = None
    actor_loss: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "episode": self.episode,
            "proposed_bits": _bits_json(self.proposed_bits),
            "bits": _bits_json(self.bits),
            "accuracy": self.accuracy,
            "cost": self.cost,
            "cost_fraction": self.cost_fraction,
            "reward": self.reward,
            "sigma": self.sigma,
            "critic_loss": self.critic_loss,
            "actor_loss": self.actor_loss,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpisodeRecord:
        """The record :meth:`to_json` wrote (bits back to tuples)."""
        return cls(
            episode=int(data["episode"]),
            proposed_bits=_bits_from_json(data["proposed_bits"]),
            bits=_bits_from_json(data["bits"]),
            accuracy=float(data["accuracy"]),
            cost=float(data["cost"]),
            cost_fraction=float(data["cost_fraction"]),
            reward=float(data["reward"]),
            sigma=None if data["sigma"] is None else float(data["sigma"]),
            critic_loss=None if data.get("critic_loss") is None else float(data["critic_loss"]),
            actor_loss=None if data.get("actor_loss") is None else float(data["actor_loss"]),
        )


@frozen(kw_only=True)
class HaqResult:
    """A finished search: ``best`` (highest reward, earliest on ties; always within the budget) and the history."""

    method: str
    best: EpisodeRecord
    history: tuple[EpisodeRecord, ...]
    bounds: BudgetBounds

    def best_reward_curve(self) -> list[float]:
        """The best reward seen up to and including each episode."""
        curve: list[float] = []
        for record in self.history:
            curve.append(record.reward if not curve else max(curve[-1], record.reward))
        return curve

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the budget, the best record and every episode)."""
        return {
            "method": self.method,
            "budget": {
                "kind": self.bounds.kind.value,
                "reference_cost": self.bounds.reference_cost,
                "budget_value": self.bounds.budget_value,
                "minimum_cost": self.bounds.minimum_cost,
            },
            "best": self.best.to_json(),
            "history": [record.to_json() for record in self.history],
        }
