"""The plot of a HAQ search (matplotlib, Agg): accuracy, reward and cost per episode."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jaqc.search.plots import _figure, _save

from .budget import BudgetBounds
from .results import EpisodeRecord


def plot_episodes(history: Sequence[EpisodeRecord], bounds: BudgetBounds, path: Path, title: str) -> Path:
    """Per episode: the accuracy after the fine-tune, the reward (and the best so far), the cost as a fraction
    of the all-8-bit design against the budget; warm-up episodes are drawn hollow."""
    plt = _figure()
    fig, (ax_acc, ax_reward, ax_cost) = plt.subplots(1, 3, figsize=(14, 3.4))
    episodes = [r.episode for r in history]
    warm = [r.sigma is None for r in history]
    for ax, values, label in (
        (ax_acc, [r.accuracy for r in history], "accuracy (%)"),
        (ax_reward, [r.reward for r in history], "reward"),
        (ax_cost, [r.cost_fraction for r in history], f"{bounds.kind.value} / 8-bit"),
    ):
        ax.scatter(
            episodes, values, s=14, facecolors=["none" if w else "C0" for w in warm], edgecolors="C0", linewidths=0.8
        )
        ax.set(xlabel="episode", title=label)
        ax.grid(alpha=0.3)
    best, curve = None, []
    for record in history:
        best = record.reward if best is None else max(best, record.reward)
        curve.append(best)
    ax_reward.plot(episodes, curve, color="C1", linewidth=1, label="best so far")
    ax_reward.legend(fontsize=8)
    ax_cost.axhline(bounds.budget_value / bounds.reference_cost, color="C3", linewidth=1, label="budget")
    ax_cost.legend(fontsize=8)
    fig.suptitle(title, y=1.04)
    return _save(fig, path)
