"""Hardware sensitivity gate: the simulator and deployment hardware models side by side, in one run.

Every hardware-aware result is read against this benchmark (issue #10, item 6). It prints one JSON object
(indent 2, sorted keys) with, for both hardware models (``simulator``: the original BitFusion simulator's
model, the reference column; ``deployment``: requantized outputs, packed grouped/depthwise convolutions,
unpadded storage, tile-level fill/drain; docs/cost_model.md, sections 2-18 and 19):

* ``whole_network``: the all-``k3_e6`` CIFAR-10 supernet network (stem, 22 ``k3_e6`` blocks, head,
  classifier; 69 convolutions) on ``jaq-table2`` and ``bitfusion-eyeriss`` at w8a8, w4a4, w2a2 (every layer,
  stem/head/classifier included, at the same bits; ``out_bits`` chained to the consumer's activation bits,
  8 for the network output), latency and energy, and the w2a2/w8a8 and w4a4/w8a8 ratios. The variant
  ``fixed_layers_8bit`` keeps stem, head and classifier at 8 bits (the supernet config leaves them in floating
  point, which the hardware binding runs at 8 bits).
* ``per_op``: for each candidate op of the supernet, its layers summed over all 22 blocks (``out_bits`` chained
  inside the op, the op's last layer written at the op's activation bits), same ratios. ``skip`` has layers
  only where a block changes shape (its 1x1 projection).
* ``k3_e6_8bit_latency_ms``: that network's 8-bit latency per accelerator and model, and deployment/simulator.
  For scale: the JAQ paper's searched CIFAR-100 networks run 1.9-2.7 ms on their accelerators.
* ``array_sweep``: the network's latency on 8x8, 16x16, 32x32, 64x64 WS arrays (all buffers 256 KB), and
  ``buffer_sweep``: on a 16x16 WS array with all three buffers 64..528 KB (step 16; 64 with ``--quick``).
* ``lambda_designs``: the best accelerator of a fixed mixed-bit subnet (the 22-layer FBNet-like CIFAR subnet of
  ``jaqc.hw.reference.workloads``, ``out_bits`` chained) under (λE, λL, λA) = (1, 1, 1), (0.1, 0.8, 0.1),
  (0.1, 0.1, 0.8),
  log form (λ = 1 each is log EDAP), each term relative to the subnet on ``jaq-table2`` under the same model;
  found by the hardware generator (``train_generator``) and by a coordinate-descent search of the JAQ
  accelerator space (PE rows, PE cols, three buffers, dataflow; every layer at BatchTile's best mapping and
  loop order), started from ``jaq-table2`` and random seeded feasible points.
* ``layer_breakdown``: the top 10 layers of the all-``k3_e6`` network on ``jaq-table2`` (deployment model) by
  w2a2 latency, with compute and stall cycles and utilisation at w2a2 and w8a8.

Targets (deployment model only; ``targets`` holds each measured value, threshold and pass flag, ``ok`` is
their conjunction):

* whole-network w2a2/w8a8 latency <= 0.35 and energy <= 0.5 on ``jaq-table2`` (2-bit operands should pay);
* latency non-increasing in array size and in buffer size (value: the largest ratio of consecutive sweep
  latencies, over every swept bit setting; threshold 1.0);
* for each search method, the latency-weighted design faster than the area-weighted one, and the
  area-weighted design smaller than the latency-weighted one (value: the ratio; threshold < 1.0).

The exit status is 0 even when targets fail (this is a measurement); a summary line goes to stderr.

    python benchmarks/hw_sensitivity.py [--quick] [--out FILE] [--generator-steps N] [--cd-starts N]

Runs in about 5-10 minutes on a 2-core machine (one torch thread); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from jaqc.ir.accelerator import AcceleratorConfig

from jaqc.hw.accelerators import load_accelerator
from jaqc.hw.generator.objective import HardwareWeights, NetworkTotals, mapped_totals, mapped_totals_each
from jaqc.hw.generator.space import AcceleratorSpace, HardwarePoint
from jaqc.hw.generator.training import GeneratorTraining, train_generator
from jaqc.hw.mapping.batchtile import MappingResult, map_layers
from jaqc.hw.model.orders import ALL_ORDERS
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.reference.workloads import chain_out_bits, fbnet_cifar_subnet
from jaqc.nn.config import SupernetConfig, supernet_preset
from jaqc.search.space_costs import SpaceCosts

MODELS: tuple[str, ...] = ("simulator", "deployment")
ACCELERATORS: tuple[str, ...] = ("jaq-table2", "bitfusion-eyeriss")
BITS: tuple[tuple[int, int], ...] = ((8, 8), (4, 4), (2, 2))
ARRAY_SIZES: tuple[int, ...] = (8, 16, 32, 64)
SWEEP_BUFFER_KB = 256
SWEEP_ARRAY = 16
LAMBDAS: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("balanced", (1.0, 1.0, 1.0)),
    ("latency_weighted", (0.1, 0.8, 0.1)),
    ("area_weighted", (0.1, 0.1, 0.8)),
)
#: The six searched digits of AcceleratorSpace (the loop order is left to BatchTile per layer).
CD_DIGITS = 6
PAPER_SCALE = "JAQ's searched CIFAR-100 networks run 1.9-2.7 ms on their accelerators"

_START = time.perf_counter()


def log(message: str) -> None:
    """A progress line on stderr with the elapsed wall time."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- small helpers (unit-tested) ---------------------------------------------------------------------------


def bits_label(bits: tuple[int, int]) -> str:
    """``(2, 4)`` -> ``"w2a4"``."""
    return f"w{bits[0]}a{bits[1]}"


def with_uniform_bits(problems: Sequence[ConvProblem], bits: tuple[int, int], output_bits: int) -> list[ConvProblem]:
    """Every layer at ``bits``, ``out_bits`` chained (the last layer's set to ``output_bits``)."""
    w, a = bits
    return chain_out_bits([attrs.evolve(p, w_bits=w, a_bits=a) for p in problems], network_output_bits=output_bits)


def max_step_ratio(values: Sequence[float]) -> float:
    """The largest ratio of a value to its predecessor (<= 1.0 iff the sequence is non-increasing)."""
    if len(values) < 2:
        return 1.0
    return max(b / a if a > 0 else math.inf for a, b in itertools.pairwise(values))


def target(value: float, threshold: float, op: str, what: str) -> dict[str, Any]:
    """A target record: the measured value, the threshold, the comparison and whether it passed."""
    if op == "<=":
        passed = value <= threshold
    elif op == "<":
        passed = value < threshold
    else:
        raise ValueError(f"unknown comparison {op!r}")
    return {"value": value, "threshold": threshold, "op": op, "pass": bool(passed), "what": what}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


Digits = tuple[int, ...]


def coordinate_descent(
    objective: Callable[[list[Digits]], list[float]],
    radices: Sequence[int],
    start: Digits,
    max_rounds: int,
) -> dict[str, Any]:
    """Minimise ``objective`` (a batch of digit tuples -> values) one coordinate at a time.

    Each round sweeps every coordinate over all its values with the others fixed and moves to the best
    (strict improvement only, so ties keep the current point); it stops after a round without improvement
    or after ``max_rounds`` rounds. Returns the best digits and value, the rounds run, whether it converged
    (a round without improvement) and the number of points evaluated.
    """
    current = tuple(start)
    best = objective([current])[0]
    evaluations = 1
    rounds = 0
    converged = False
    for _ in range(max_rounds):
        rounds += 1
        improved = False
        for coordinate, radix in enumerate(radices):
            points = [(*current[:coordinate], v, *current[coordinate + 1 :]) for v in range(radix)]
            values = objective(points)
            evaluations += len(points)
            index = min(range(radix), key=lambda i: values[i])
            if values[index] < best:
                current, best, improved = points[index], values[index], True
        if not improved:
            converged = True
            break
    return {"digits": current, "value": best, "rounds": rounds, "converged": converged, "evaluations": evaluations}


# --- workloads --------------------------------------------------------------------------------------------


def k3_e6_network(config: SupernetConfig) -> list[ConvProblem]:
    """The all-``k3_e6`` network of the supernet (fixed layers at their config bits, 8 when floating point)."""
    blocks = config.num_blocks
    return chain_out_bits(SpaceCosts.from_config(config).derived_problems(["k3_e6"] * blocks, [(8, 8)] * blocks))


def op_layers(config: SupernetConfig, op: str, bits: tuple[int, int]) -> list[ConvProblem]:
    """The layers of candidate ``op`` in every block at ``bits`` (out_bits chained inside each block)."""
    layers: list[ConvProblem] = []
    for block in range(config.num_blocks):
        problems = SpaceCosts.from_config(config).candidate_problems(block, op, bits)
        if problems:  # a skip op has no layers where the block keeps its shape
            layers += with_uniform_bits(problems, bits, bits[1])
    return layers


def fixed8_network(config: SupernetConfig, bits: tuple[int, int]) -> list[ConvProblem]:
    """The all-``k3_e6`` network with the searchable blocks at ``bits`` and the fixed layers at 8 bits."""
    blocks = config.num_blocks
    return chain_out_bits(SpaceCosts.from_config(config).derived_problems(["k3_e6"] * blocks, [bits] * blocks))


# --- evaluation -------------------------------------------------------------------------------------------


def summarise(results: Sequence[MappingResult]) -> dict[str, float]:
    """Latency (ms), energy (mJ) and cycles of layers run one after another."""
    return {
        "latency_ms": sum(r.cost.latency_s for r in results) * 1e3,
        "energy_mJ": sum(r.cost.energy_nj["total"] for r in results) * 1e-6,
        "total_cycles": sum(r.cost.total_cycles for r in results),
        "compute_cycles": sum(r.cost.compute_cycles for r in results),
        "stall_cycles": sum(r.cost.stall_cycles for r in results),
    }


def with_ratios(per_bits: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Add the w2a2/w8a8 and w4a4/w8a8 latency and energy ratios to per-bit summaries."""
    base = per_bits["w8a8"]
    ratios = {
        f"{label}/w8a8": {
            "latency": per_bits[label]["latency_ms"] / base["latency_ms"],
            "energy": per_bits[label]["energy_mJ"] / base["energy_mJ"],
        }
        for label in ("w2a2", "w4a4")
    }
    return {**per_bits, "ratios": ratios}


def whole_network(config: SupernetConfig) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Whole-network latency/energy per accelerator, model and bits (all layers, and fixed layers at 8 bits),
    the 8-bit latencies, and the per-layer results kept for the breakdown."""
    network = k3_e6_network(config)
    table: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for acc_name in ACCELERATORS:
        acc = load_accelerator(acc_name)
        table[acc_name] = {}
        for model in MODELS:
            uniform: dict[str, dict[str, float]] = {}
            fixed8: dict[str, dict[str, float]] = {}
            for bits in BITS:
                label = bits_label(bits)
                results = map_layers(with_uniform_bits(network, bits, 8), acc, "jaq", "latency", hw_model=model)
                uniform[label] = summarise(results)
                kept[f"{acc_name}/{model}/{label}"] = results
                fixed = map_layers(fixed8_network(config, bits), acc, "jaq", "latency", hw_model=model)
                fixed8[label] = summarise(fixed)
            table[acc_name][model] = {"all_layers": with_ratios(uniform), "fixed_layers_8bit": with_ratios(fixed8)}
            log(f"whole network {acc_name} {model}: w8a8 {uniform['w8a8']['latency_ms']:.3f} ms")
    latency8 = {}
    for acc_name in ACCELERATORS:
        sim = table[acc_name]["simulator"]["all_layers"]["w8a8"]["latency_ms"]
        dep = table[acc_name]["deployment"]["all_layers"]["w8a8"]["latency_ms"]
        latency8[acc_name] = {"simulator": sim, "deployment": dep, "deployment/simulator": dep / sim}
    latency8["paper_scale"] = PAPER_SCALE
    return table, latency8, kept


def per_op(config: SupernetConfig) -> dict[str, Any]:
    """Per candidate op (summed over the blocks): latency and energy per bits, ratios to w8a8."""
    ops = list(config.candidates)
    table: dict[str, Any] = {}
    for acc_name in ACCELERATORS:
        acc = load_accelerator(acc_name)
        table[acc_name] = {}
        for model in MODELS:
            per_bits: dict[str, dict[str, dict[str, float]]] = {op: {} for op in ops}
            for bits in BITS:
                layers = {op: op_layers(config, op, bits) for op in ops}
                flat = [p for op in ops for p in layers[op]]
                results = map_layers(flat, acc, "jaq", "latency", hw_model=model)
                offset = 0
                for op in ops:
                    count = len(layers[op])
                    per_bits[op][bits_label(bits)] = {**summarise(results[offset : offset + count]), "layers": count}
                    offset += count
            table[acc_name][model] = {op: with_ratios(per_bits[op]) for op in ops if per_bits[op]["w8a8"]["layers"]}
            log(f"per op {acc_name} {model} done")
    return table


def sweep(network: Sequence[ConvProblem], accelerators: list[tuple[int, AcceleratorConfig]], key: str) -> dict:
    """Latency of the network on each accelerator, per model and bits, with the monotonicity check."""
    out: dict[str, Any] = {}
    for model in MODELS:
        out[model] = {}
        for bits in BITS:
            totals = mapped_totals_each(with_uniform_bits(network, bits, 8), [a for _, a in accelerators], model)
            latencies = [math.inf if t is None else t.latency_s * 1e3 for t in totals]
            out[model][bits_label(bits)] = {
                "points": [{key: x, "latency_ms": lat} for (x, _), lat in zip(accelerators, latencies, strict=True)],
                "max_step_ratio": max_step_ratio(latencies),
                "non_increasing": max_step_ratio(latencies) <= 1.0,
            }
    return out


def array_and_buffer_sweeps(config: SupernetConfig, buffer_step_kb: int) -> tuple[dict, dict]:
    """The array-size sweep (buffers fixed) and the buffer-size sweep (array fixed), WS dataflow."""
    network = k3_e6_network(config)
    buf = SWEEP_BUFFER_KB
    arrays = [(n, AcceleratorConfig(pe_rows=n, pe_cols=n, wbuf_kb=buf, ibuf_kb=buf, obuf_kb=buf)) for n in ARRAY_SIZES]
    array_sweep = sweep(network, arrays, "pe")
    log("array sweep done")
    sizes = sorted({*range(64, 529, buffer_step_kb), 528})
    n = SWEEP_ARRAY
    buffers = [(kb, AcceleratorConfig(pe_rows=n, pe_cols=n, wbuf_kb=kb, ibuf_kb=kb, obuf_kb=kb)) for kb in sizes]
    buffer_sweep = sweep(network, buffers, "buffer_kb")
    log("buffer sweep done")
    return (
        {"buffers_kb": buf, "dataflow": "WS", **array_sweep},
        {"array": f"{n}x{n}", "dataflow": "WS", **buffer_sweep},
    )


# --- accelerator search -----------------------------------------------------------------------------------


def describe(acc: AcceleratorConfig, totals: NetworkTotals) -> dict[str, Any]:
    """A design: its accelerator and latency (ms), energy (mJ), area (mm²), EDAP (nJ·s·mm²)."""
    return {
        "accelerator": f"{acc.pe_rows}x{acc.pe_cols} W/I/O {acc.wbuf_kb}/{acc.ibuf_kb}/{acc.obuf_kb} KB "
        f"{acc.dataflow.value}",
        "pe_rows": acc.pe_rows,
        "pe_cols": acc.pe_cols,
        "wbuf_kb": acc.wbuf_kb,
        "ibuf_kb": acc.ibuf_kb,
        "obuf_kb": acc.obuf_kb,
        "dataflow": acc.dataflow.value,
        "latency_ms": totals.latency_s * 1e3,
        "energy_mJ": totals.energy_nJ * 1e-6,
        "area_mm2": totals.area_mm2,
        "edap_nJ_s_mm2": totals.edap,
    }


class SpaceEvaluator:
    """Totals of one subnet on points of the accelerator space under one model, cached by digits."""

    def __init__(self, problems: Sequence[ConvProblem], space: AcceleratorSpace, model: str) -> None:
        self.problems = list(problems)
        self.space = space
        self.model = model
        self.cache: dict[Digits, NetworkTotals | None] = {}

    def accelerator(self, digits: Digits) -> AcceleratorConfig:
        """The accelerator of six digits (pe_rows, pe_cols, wbuf, ibuf, obuf, dataflow)."""
        return self.space.point_from_digits((*digits, 0)).accelerator

    def totals(self, points: list[Digits]) -> list[NetworkTotals | None]:
        """Totals of each point (None: the subnet does not fit), evaluating only uncached points."""
        missing = list(dict.fromkeys(d for d in points if d not in self.cache))
        if missing:
            found = mapped_totals_each(self.problems, [self.accelerator(d) for d in missing], self.model)
            self.cache.update(zip(missing, found, strict=True))
        return [self.cache[d] for d in points]

    def objective(self, weights: HardwareWeights, reference: NetworkTotals) -> Callable[[list[Digits]], list[float]]:
        """E_HW of points (inf where infeasible)."""

        def value(points: list[Digits]) -> list[float]:
            return [math.inf if t is None else t.e_hw(weights, reference) for t in self.totals(points)]

        return value


def search_starts(evaluator: SpaceEvaluator, count: int, seed: int) -> list[Digits]:
    """``jaq-table2`` and ``count - 1`` random feasible points (seeded)."""
    table2 = load_accelerator("jaq-table2")
    starts = [evaluator.space.digits_of(HardwarePoint(table2, ALL_ORDERS[0]))[:CD_DIGITS]]
    generator = torch.Generator().manual_seed(seed)
    tries = 0
    while len(starts) < count and tries < 50:
        tries += 1
        digits = tuple(int(d) for d in evaluator.space.sample_digits(1, generator)[0, :CD_DIGITS].tolist())
        if evaluator.totals([digits])[0] is not None and digits not in starts:
            starts.append(digits)
    return starts


def coordinate_search(
    evaluator: SpaceEvaluator, weights: HardwareWeights, reference: NetworkTotals, starts: list[Digits], rounds: int
) -> dict[str, Any]:
    """The best design of a coordinate descent from each start."""
    objective = evaluator.objective(weights, reference)
    radices = evaluator.space.radices[:CD_DIGITS]
    runs = [coordinate_descent(objective, radices, s, rounds) for s in starts]
    best = min(runs, key=lambda r: r["value"])
    acc = evaluator.accelerator(best["digits"])
    totals = evaluator.totals([best["digits"]])[0]
    assert totals is not None
    return {
        **describe(acc, totals),
        "e_hw": best["value"],
        "starts": [
            {"start": evaluator.accelerator(s).to_json(), "e_hw": r["value"], "rounds": r["rounds"]}
            | {"converged": r["converged"], "evaluations": r["evaluations"]}
            for s, r in zip(starts, runs, strict=True)
        ],
    }


def lambda_designs(subnet: Sequence[ConvProblem], steps: int, starts: int, rounds: int, seed: int) -> dict:
    """Generator and coordinate-descent designs per model and λ setting."""
    space = AcceleratorSpace()
    out: dict[str, Any] = {}
    table2 = load_accelerator("jaq-table2")
    for model in MODELS:
        reference = mapped_totals(subnet, table2, hw_model=model)
        evaluator = SpaceEvaluator(subnet, space, model)
        start_points = search_starts(evaluator, starts, seed)
        out[model] = {"reference": describe(table2, reference), "generator": {}, "coordinate_descent": {}}
        for name, (lam_e, lam_l, lam_a) in LAMBDAS:
            weights = HardwareWeights(energy=lam_e, latency=lam_l, area=lam_a, form="log")
            t0 = time.perf_counter()
            _, design = train_generator(
                subnet, weights, GeneratorTraining(steps=steps, seed=seed), reference=reference, hw_model=model
            )
            free = mapped_totals(subnet, design.accelerator, hw_model=model)
            out[model]["generator"][name] = {
                **describe(design.accelerator, design.totals),
                "e_hw": design.e_hw,
                "loop_order": "".join(d.value for d in design.loop_order),
                "free_loop_order": describe(design.accelerator, free),
                "seconds": time.perf_counter() - t0,
            }
            t0 = time.perf_counter()
            found = coordinate_search(evaluator, weights, reference, start_points, rounds)
            found["seconds"] = time.perf_counter() - t0
            out[model]["coordinate_descent"][name] = found
            log(
                f"{model} {name}: generator {out[model]['generator'][name]['accelerator']} "
                f"(E_HW {design.e_hw:.3f}), coordinate descent {found['accelerator']} (E_HW {found['e_hw']:.3f})"
            )
        out[model]["lambdas"] = {name: list(lam) for name, lam in LAMBDAS}
    return out


# --- breakdown and targets --------------------------------------------------------------------------------


def layer_breakdown(kept: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """Top layers of the network on jaq-table2 (deployment) by w2a2 latency, with their w8a8 costs."""
    low = kept["jaq-table2/deployment/w2a2"]
    high = kept["jaq-table2/deployment/w8a8"]
    total_low = sum(r.cost.latency_s for r in low)
    order = sorted(range(len(low)), key=lambda i: -low[i].cost.latency_s)[:top]

    def row(r: MappingResult) -> dict[str, Any]:
        return {
            "latency_us": r.cost.latency_s * 1e6,
            "compute_cycles": r.cost.compute_cycles,
            "stall_cycles": r.cost.stall_cycles,
            "utilization": r.cost.utilization,
            "dram_bits": r.cost.access_bits["dram_read"] + r.cost.access_bits["dram_write"],
        }

    layers = []
    for i in order:
        p = low[i].problem
        layers.append(
            {
                "layer": p.name,
                "shape": f"{p.in_channels}->{p.out_channels} k{p.kernel} s{p.stride} g{p.groups} {p.in_h}x{p.in_w}",
                "w2a2": row(low[i]),
                "w8a8": row(high[i]),
                "latency_ratio": low[i].cost.latency_s / high[i].cost.latency_s,
                "share_of_w2a2_latency": low[i].cost.latency_s / total_low,
            }
        )
    return {"accelerator": "jaq-table2", "hw_model": "deployment", "ranked_by": "w2a2 latency", "layers": layers}


def targets_for(whole: dict, arrays: dict, buffers: dict, designs: dict) -> dict[str, Any]:
    """The deployment model's targets."""
    ratios = whole["jaq-table2"]["deployment"]["all_layers"]["ratios"]["w2a2/w8a8"]
    dep_arrays = arrays["deployment"]
    dep_buffers = buffers["deployment"]
    out = {
        "whole_network_w2a2_over_w8a8_latency_jaq_table2": target(
            ratios["latency"], 0.35, "<=", "all-k3_e6 CIFAR-10 network latency w2a2/w8a8 on jaq-table2"
        ),
        "whole_network_w2a2_over_w8a8_energy_jaq_table2": target(
            ratios["energy"], 0.5, "<=", "all-k3_e6 CIFAR-10 network energy w2a2/w8a8 on jaq-table2"
        ),
        "latency_non_increasing_in_array_size": target(
            max(dep_arrays[label]["max_step_ratio"] for label in map(bits_label, BITS)),
            1.0,
            "<=",
            "largest latency ratio of consecutive arrays 8..64 (buffers 256 KB), over w8a8/w4a4/w2a2",
        ),
        "latency_non_increasing_in_buffer_size": target(
            max(dep_buffers[label]["max_step_ratio"] for label in map(bits_label, BITS)),
            1.0,
            "<=",
            "largest latency ratio of consecutive buffer sizes (16x16 array), over w8a8/w4a4/w2a2",
        ),
    }
    for method in ("generator", "coordinate_descent"):
        lat = designs["deployment"][method]["latency_weighted"]
        area = designs["deployment"][method]["area_weighted"]
        out[f"{method}_latency_weighted_faster"] = target(
            lat["latency_ms"] / area["latency_ms"], 1.0, "<", f"{method}: latency-weighted / area-weighted latency"
        )
        out[f"{method}_area_weighted_smaller"] = target(
            area["area_mm2"] / lat["area_mm2"], 1.0, "<", f"{method}: area-weighted / latency-weighted area"
        )
    return out


# --- main -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer steps, starts, sweep points")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file (atomically)")
    parser.add_argument("--generator-steps", type=int, help="generator training steps (default 150, quick 20)")
    parser.add_argument("--cd-starts", type=int, help="coordinate-descent starts (default 3, quick 1)")
    parser.add_argument("--cd-rounds", type=int, help="coordinate-descent rounds at most (default 4, quick 2)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    steps = args.generator_steps or (20 if args.quick else 150)
    starts = args.cd_starts or (1 if args.quick else 3)
    rounds = args.cd_rounds or (2 if args.quick else 4)
    buffer_step = 64 if args.quick else 16
    config = supernet_preset("cifar10")
    subnet = chain_out_bits(fbnet_cifar_subnet())

    whole, latency8, kept = whole_network(config)
    ops = per_op(config)
    arrays, buffers = array_and_buffer_sweeps(config, buffer_step)
    designs = lambda_designs(subnet, steps, starts, rounds, args.seed)
    targets = targets_for(whole, arrays, buffers, designs)
    ok = all(t["pass"] for t in targets.values())
    runtime = time.perf_counter() - _START
    result = {
        "config": {
            "quick": args.quick,
            "network": "cifar10 supernet, all k3_e6 (stem, 22 blocks, head, classifier)",
            "network_bits": "every layer at the stated (w, a); out_bits = consumer's a_bits, 8 for the output",
            "lambda_subnet": (
                "jaqc.hw.reference.workloads.fbnet_cifar_subnet() with chain_out_bits (22 layers, mixed bits)"
            ),
            "generator_steps": steps,
            "cd_starts": starts,
            "cd_max_rounds": rounds,
            "buffer_step_kb": buffer_step,
            "mapping_space": "jaq",
            "mapping_objective": "latency",
            "torch_threads": torch.get_num_threads(),
            "seed": args.seed,
            "reference_model": "simulator",
        },
        "whole_network": whole,
        "k3_e6_8bit_latency_ms": latency8,
        "per_op": ops,
        "array_sweep": arrays,
        "buffer_sweep": buffers,
        "lambda_designs": designs,
        "layer_breakdown": layer_breakdown(kept),
        "targets": targets,
        "ok": ok,
        "runtime_s": runtime,
    }
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out is not None:
        write_json_atomic(args.out, result)
    failed = [name for name, t in targets.items() if not t["pass"]]
    summary = "all passed" if ok else f"FAILED: {', '.join(failed)}"
    print(
        f"hw_sensitivity: deployment targets {len(targets) - len(failed)}/{len(targets)} ({summary}); "
        f"runtime {runtime:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
