"""BatchTile benchmark: map a 22-layer FBNet-like CIFAR subnet and build a supernet candidate table.

Prints one JSON object. Times are medians of several runs after a warm-up, on CPU, with
``torch.set_num_threads(--threads)`` (default 1: the batches are small and a second thread mostly adds
synchronisation). ``reference_ms`` is a straightforward search over the same ``bitfusion`` space: a plain
Python loop over every (tiling, loop order) calling the scalar cost model (jaqc.hw.reference.scalar_model).
``*_cpu_*`` keys give the process CPU time of the same runs, which is less disturbed than the wall-clock time
when other processes share the machine (the load average is printed at start and end). Both hardware models are
timed in the same run: keys without a suffix are the deployment model (the default), ``*_simulator`` the
simulator's, and ``deployment_over_simulator_*`` their ratios; the plain-loop reference is the simulator's
scalar model, so ``speedup_vs_reference`` and ``reference_agrees`` compare like with like.

    python benchmarks/batchtile.py [--runs 7] [--threads 1] [--reference-runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping

from jaqc.hw.mapping.batchtile import candidate_order_ranks, candidate_tiles, select_mappings
from jaqc.hw.mapping.candidate_table import candidate_cost_table
from jaqc.hw.model.orders import order_at
from jaqc.hw.model.unit_costs import unit_costs_for
from jaqc.hw.reference.scalar_model import scalar_cost
from jaqc.hw.reference.workloads import fbnet_cifar_subnet, fbnet_cifar_supernet

ACCELERATOR = AcceleratorConfig(
    name="bench_16x16", pe_rows=16, pe_cols=16, wbuf_kb=256, ibuf_kb=256, obuf_kb=256, dram_bits_per_cycle=128
)


def _median_ms(fn, runs: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU time (ms) of ``runs`` calls after one warm-up call."""
    fn()  # warm-up (caches, allocator)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def _reference_search(layers) -> list[int]:
    """Plain loop: every tiling of the bitfusion space x all 120 orders, scalar cost, keep the best cycles."""
    units = unit_costs_for(ACCELERATOR)
    best_cycles = []
    for problem in layers:
        best = None
        for tile in candidate_tiles(problem, ACCELERATOR, "bitfusion").tolist():
            for rank in range(120):
                mapping = Mapping(tile=[int(t) for t in tile], loop_order=order_at(rank))
                cost = scalar_cost(problem, ACCELERATOR, mapping, units)
                if cost.feasible and (best is None or (cost.total_cycles, cost.energy_total) < best):
                    best = (cost.total_cycles, cost.energy_total)
        best_cycles.append(best[0])
    return best_cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference-runs", type=int, default=1)
    parser.add_argument("--table-runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    layers = fbnet_cifar_subnet()
    accelerators = [ACCELERATOR] * len(layers)
    result: dict[str, object] = {
        "device": "cpu",
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "layers": len(layers),
        "accelerator": ACCELERATOR.to_json(),
    }
    for model, suffix in (("deployment", ""), ("simulator", "_simulator")):
        for space in ("bitfusion", "jaq"):

            def run(space: str = space, model: str = model):  # type: ignore[no-untyped-def]
                return select_mappings(layers, accelerators, space, hw_model=model)

            selection = run()
            ms, cpu_ms = _median_ms(run, args.runs)
            evaluated = int(selection.candidates.sum())
            result[f"subnet_ms_{space}{suffix}"] = round(ms, 3)
            result[f"subnet_cpu_ms_{space}{suffix}"] = round(cpu_ms, 3)
            result[f"candidates_{space}{suffix}"] = evaluated
            result[f"mappings_per_s_{space}{suffix}"] = round(evaluated / (ms / 1e3))
            result[f"subnet_total_cycles_{space}{suffix}"] = int(selection.total_cycles.sum())
    for space in ("bitfusion", "jaq"):
        ratio = result[f"subnet_cpu_ms_{space}"] / result[f"subnet_cpu_ms_{space}_simulator"]  # type: ignore[operator]
        result[f"deployment_over_simulator_cpu_{space}"] = round(ratio, 3)
    # Full grid (120 orders, no reductions) that the reference loop walks, for a like-for-like rate.
    full_grid = sum(candidate_tiles(p, ACCELERATOR, "bitfusion").shape[0] * 120 for p in layers)
    result["candidates_bitfusion_full_grid"] = full_grid
    result["canonical_orders_per_layer_bitfusion"] = len(candidate_order_ranks(layers[1], "bitfusion"))

    reference_times, reference_cpu = [], []
    for _ in range(args.reference_runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        reference_cycles = _reference_search(layers)
        reference_times.append(time.perf_counter() - start)
        reference_cpu.append(time.process_time() - start_cpu)
    reference_ms = statistics.median(reference_times) * 1e3
    batched = select_mappings(layers, accelerators, "bitfusion", hw_model="simulator")
    result["reference_ms"] = round(reference_ms, 1)
    result["reference_cpu_ms"] = round(statistics.median(reference_cpu) * 1e3, 1)
    result["reference_mappings_per_s"] = round(full_grid / (reference_ms / 1e3))
    # the batched search covers the same full grid (the other orders are provably equivalent)
    result["full_grid_mappings_per_s_bitfusion"] = round(full_grid / (result["subnet_ms_bitfusion_simulator"] / 1e3))
    result["speedup_vs_reference"] = round(reference_ms / result["subnet_ms_bitfusion_simulator"], 1)
    result["reference_agrees"] = reference_cycles == [int(c) for c in batched.total_cycles.tolist()]

    blocks = fbnet_cifar_supernet()
    for model, suffix in (("deployment", ""), ("simulator", "_simulator")):
        table_ms, table_cpu_ms = _median_ms(
            lambda model=model: candidate_cost_table(blocks, ACCELERATOR, hw_model=model), args.table_runs
        )
        result[f"table_s{suffix}"] = round(table_ms / 1e3, 3)
        result[f"table_cpu_s{suffix}"] = round(table_cpu_ms / 1e3, 3)
        jaq_ms, jaq_cpu_ms = _median_ms(
            lambda model=model: candidate_cost_table(blocks, ACCELERATOR, space="jaq", hw_model=model), 1
        )
        result[f"table_s_jaq_space{suffix}"] = round(jaq_ms / 1e3, 3)
        result[f"table_cpu_s_jaq_space{suffix}"] = round(jaq_cpu_ms / 1e3, 3)
    table = candidate_cost_table(blocks, ACCELERATOR)
    result["table_shape"] = list(table.total_cycles.shape)
    result["table_layer_problems"] = sum(len(op) for ops in blocks for op in ops) * len(table.bit_pairs)
    result["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
