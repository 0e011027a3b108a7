"""HAQ on the synthetic environment: the DDPG agent against random search at equal episodes, and the optimum.

Prints one JSON object: per seed, the best reward of the agent and of random search after the same number of
episodes (the agent's include its warm-up), the exact optimum under the budget (exhaustive enumeration), and
``share_better`` (the share of the configurations within the budget that beat a result; 0 is the optimum);
then the means over the seeds. Deterministic for given arguments (seeded; ``torch.set_num_threads(--threads)``,
default 1: the MLPs are tiny). The agent uses HAQ's hyper-parameters unless ``--hidden`` is given.

    python benchmarks/haq_synthetic.py [--episodes 120] [--seeds 0,1,2] [--kind latency] [--fraction 0.4]
"""

from __future__ import annotations

import argparse
import json
import statistics

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


def _bits_text(bits) -> str:
    return " ".join(f"w{w}a{a}" for w, a in bits)


def run_seed(seed: int, budget: ResourceBudget, episodes: int, ddpg: DdpgConfig) -> dict:
    """One seed: the environment drawn with that seed, the agent and random search with that seed."""
    env = make_synthetic_env(seed)
    optimum = exact_optimum(env, budget)
    agent = HaqSearch(env, budget, HaqConfig(episodes=episodes, seed=seed, ddpg=ddpg)).run()
    baseline = random_search(env, budget, episodes, seed)
    return {
        "seed": seed,
        "optimum_reward": optimum.reward,
        "optimum_bits": _bits_text(optimum.bits),
        "agent_best_reward": agent.best.reward,
        "agent_best_bits": _bits_text(agent.best.bits),
        "agent_share_better": share_better(env, budget, agent.best.reward),
        "random_best_reward": baseline.best.reward,
        "random_best_bits": _bits_text(baseline.best.bits),
        "random_share_better": share_better(env, budget, baseline.best.reward),
        "agent_beats_random": agent.best.reward > baseline.best.reward,
    }


def main() -> None:
    """Parse the arguments, run every seed, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=120)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kind", default="latency", choices=["latency", "energy", "edap"])
    parser.add_argument("--fraction", type=float, default=0.4)
    parser.add_argument("--hidden", type=int, default=None, help="hidden size of both MLP layers (HAQ: 300)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budget = ResourceBudget(args.kind, args.fraction)
    ddpg = DdpgConfig() if args.hidden is None else DdpgConfig(hidden=(args.hidden, args.hidden))
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [run_seed(seed, budget, args.episodes, ddpg) for seed in seeds]
    keys = ("optimum_reward", "agent_best_reward", "random_best_reward", "agent_share_better", "random_share_better")
    report = {
        "benchmark": "haq_synthetic",
        "episodes": args.episodes,
        "warmup_episodes": HaqConfig().warmup_episodes,
        "budget": {"kind": args.kind, "fraction": args.fraction},
        "hidden": f"{ddpg.hidden[0]}-{ddpg.hidden[1]}",
        "per_seed": rows,
        "mean": {key: statistics.fmean(row[key] for row in rows) for key in keys},
        "agent_beats_random_in": sum(row["agent_beats_random"] for row in rows),
        "seeds": len(rows),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
