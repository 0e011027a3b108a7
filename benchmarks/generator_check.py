"""Accelerator search check: the hardware generation network vs. random search, on a fixed subnet.

For the 22-layer FBNet-like CIFAR subnet (jaqc.hw.reference.workloads), the generator is trained to minimise
log(EDAP/EDAP_ref) (E_HW with λE = λL = λA = 1, log form) and its best design is compared with the best of
N accelerators drawn uniformly from the JAQ space, each mapped by BatchTile (same jaq mapping space, every
loop order). Prints JSON: both EDAPs (nJ·s·mm²), their ratio, the designs, and wall times.
Target (issue): generator within 5% of the random search's best EDAP.

    python benchmarks/generator_check.py [--steps 150] [--random 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from jaqc.hw.errors import InfeasibleMappingError
from jaqc.hw.generator.objective import HardwareWeights, mapped_totals
from jaqc.hw.generator.space import AcceleratorSpace
from jaqc.hw.generator.training import GeneratorTraining, train_generator
from jaqc.hw.reference.workloads import fbnet_cifar_subnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--random", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problems = fbnet_cifar_subnet()
    space = AcceleratorSpace()
    weights = HardwareWeights(energy=1.0, latency=1.0, area=1.0, form="log")

    start = time.perf_counter()
    _, design = train_generator(problems, weights, GeneratorTraining(steps=args.steps, seed=args.seed))
    generator_s = time.perf_counter() - start
    # The generator's design, re-mapped over every loop order (as the random designs are), for a fair EDAP.
    generated = mapped_totals(problems, design.accelerator)

    start = time.perf_counter()
    best = None
    feasible = 0
    for point in space.sample(args.random, args.seed):
        try:
            totals = mapped_totals(problems, point.accelerator)
        except InfeasibleMappingError:
            continue
        feasible += 1
        if best is None or totals.edap < best[0].edap:
            best = (totals, point.accelerator)
    random_s = time.perf_counter() - start
    assert best is not None
    ratio = generated.edap / best[0].edap
    print(
        json.dumps(
            {
                "subnet_layers": len(problems),
                "generator_steps": args.steps,
                "generator_seconds": round(generator_s, 2),
                "generator_edap": generated.edap,
                "generator_accelerator": design.accelerator.to_json(),
                "random_samples": args.random,
                "random_feasible": feasible,
                "random_seconds": round(random_s, 2),
                "random_best_edap": best[0].edap,
                "random_best_accelerator": best[1].to_json(),
                "generator_over_random_edap": ratio,
                "within_5_percent": ratio <= 1.05,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
