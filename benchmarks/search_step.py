"""Time and memory of one JAQ search iteration per quantization search mode, and the whole search loop's throughput.

Prints one JSON object. For each mode (the floating-point supernet, CSQ with the preset's K, Eq. 5 through the
fused op ``naive_fused``, Eq. 5 written the common way ``naive_common``) and each thread setting, one spawned
process builds the search engine the CLI builds (``jaqc.search.jaq.JaqSearch`` on the preset's supernet and
settings) and times, after one warm-up iteration:

* the weight step (forward, backward and SGD update of the weights, as ``JaqSearch.weight_step``),
* the architecture step (forward, backward through α, β and γ, E_HW, Adam update, as ``JaqSearch.arch_step``
  with the hardware refresh taken out), and
* one hardware refresh (generator training and cost-table rebuild), which the search runs every
  ``hw_refresh_every`` architecture steps.

Each step's time is the fastest of ``--steps`` iterations in each of ``--rounds`` processes per mode, the modes'
processes interleaved (float, csq, ..., float, csq, ...): a shared machine only ever adds time, and on a
virtual machine a whole process can run 10-20 % slow, so one process per mode is not enough to compare modes.
``--same-process N`` adds ``same_process``: float and CSQ alternated N iterations each in one process (fastest
and median), the comparison least exposed to a slow process.

A *step* is one search iteration's supernet work: a weight step plus an architecture step, each on its own batch
of synthetic images. ``csq_over_float_step_time`` is the headline ratio (target: at most 1.5), with the ratios of
each step beside it. Memory: the bytes autograd saves in each step's forward pass (unique storages, parameters
and buffers excluded: the metric of ``benchmarks/csq_memory.py``; the ratios take the larger step), the
process's peak resident memory, and on CUDA the peak allocated memory.

``search_loop`` gives CSQ's images per second over the whole loop, ``2 × batch`` images (one weight batch, one
architecture batch) per iteration of ``weight + arch + refresh / hw_refresh_every`` seconds, and the share of
each part.

The default batch, 16, is the largest at which ``naive_common`` fits in 24 GB; the ``cifar10`` preset searches at
batch 64 (``--batch 64 --modes float,csq``), where the per-conv overhead and the weights' quantization, which do
not grow with the batch, weigh less (docs/search.md, "Step cost").

Usage: python benchmarks/search_step.py [--preset cifar10] [--batch 16] [--threads 1,all] [--steps 3]
       [--rounds 2] [--same-process N] [--device cpu|cuda|cuda:N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import time
from typing import Any

import attrs
import torch

#: Benchmark entries: name -> search mode.
MODES: dict[str, str] = {"float": "float", "csq": "csq", "naive_fused": "naive", "naive_common": "naive_common"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_for(preset_name: str, mode: str, device: torch.device) -> Any:
    from jaqc.search.jaq import JaqSearch
    from jaqc.search.presets import search_preset

    preset = search_preset(preset_name, data_root="(synthetic)", quant_mode=mode).scheduled()
    # the refresh is timed on its own: keep it out of the timed architecture steps
    settings = attrs.evolve(preset.settings, hw_refresh_every=1_000_000)
    engine = JaqSearch(preset.supernet, settings, steps_per_epoch=100)
    engine.to(device)
    engine.supernet.set_step(0, 1)
    return engine, preset


def batch_of(config: Any, batch: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, config.in_channels, config.input_size, config.input_size, generator=generator)
    labels = torch.randint(0, config.num_classes, (batch,), generator=generator)
    return images.to(device), labels.to(device)


def warmed_up(engines: list[Any], config: Any, args: argparse.Namespace, device: torch.device) -> tuple[list, list]:
    """The weight and architecture batches of a measurement (batch 0 and ``--steps`` timed ones), after one
    iteration of every engine on batch 0 (allocator, oneDNN primitives, CUDA kernels)."""
    weight_batches = [batch_of(config, args.batch, device, 2 * i) for i in range(args.steps + 1)]
    arch_batches = [batch_of(config, args.batch, device, 2 * i + 1) for i in range(args.steps + 1)]
    for engine in engines:
        engine.weight_step(*weight_batches[0])
        engine.arch_step(*arch_batches[0])
    return weight_batches, arch_batches


def saved_bytes(engine: Any, images: torch.Tensor, step: str) -> int:
    """Bytes saved for backward by one forward pass of ``step`` (as the engine's step runs it)."""
    from jaqc.nn.memory import SavedTensorMeter, model_tensors
    from jaqc.search.jaq import gradients_only_for

    net = engine.supernet
    net.train()
    net.set_search_step(step)
    trained = net.parameters() if step == "weights" else (p for g in engine.arch_opt.param_groups for p in g["params"])
    with gradients_only_for(net, list(trained)), SavedTensorMeter(model_tensors(net)) as meter:
        out = net(images)
    del out
    net.set_search_step("weights")
    return int(meter.activation_bytes)


def measure(preset_name: str, name: str, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one mode at one thread count (run in a fresh process)."""
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    engine, preset = engine_for(preset_name, MODES[name], device)
    weight_batches, arch_batches = warmed_up([engine], preset.supernet, args, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: dict[str, float] = {"weight": float("inf"), "arch": float("inf")}  # the fastest of the timed steps
    for i in range(1, args.steps + 1):
        for part, step, batch in (
            ("weight", engine.weight_step, weight_batches[i]),
            ("arch", engine.arch_step, arch_batches[i]),
        ):
            sync(device)
            start = time.perf_counter()
            step(*batch)
            sync(device)
            times[part] = min(times[part], time.perf_counter() - start)
    cuda_peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    sync(device)
    start = time.perf_counter()
    engine.refresh_hardware()
    sync(device)
    refresh = time.perf_counter() - start
    entry: dict[str, Any] = {
        "mode": MODES[name],
        "batch": args.batch,
        "weight_step_s": round(times["weight"], 4),
        "arch_step_s": round(times["arch"], 4),
        "step_s": round(times["weight"] + times["arch"], 4),
        "hw_refresh_s": round(refresh, 4),
        "saved_bytes_weight_step": saved_bytes(engine, weight_batches[0][0], "weights"),
        "saved_bytes_arch_step": saved_bytes(engine, arch_batches[0][0], "arch"),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cuda_peak_bytes": cuda_peak,
    }
    if name == "csq":
        entry["hw_refresh_every"] = preset.settings.hw_refresh_every
    return entry


def saved(entry: dict[str, Any]) -> int:
    """The bytes a mode's iteration keeps for backward: the larger of its two steps' (as csq_memory.py)."""
    return max(entry["saved_bytes_weight_step"], entry["saved_bytes_arch_step"])


def search_loop(entry: dict[str, Any]) -> dict[str, Any]:
    """The whole loop's throughput: ``2 × batch`` images per weight step, architecture step and share of a
    refresh (one every ``hw_refresh_every`` architecture steps), and each part's share of the time."""
    every = entry["hw_refresh_every"]
    parts = {
        "weight_step": entry["weight_step_s"],
        "arch_step": entry["arch_step_s"],
        "hw_refresh": entry["hw_refresh_s"] / every,
    }
    total = sum(parts.values())
    return {
        "hw_refresh_every": every,
        "seconds_per_iteration": round(total, 4),
        "images_per_s": round(2 * entry["batch"] / total, 2),
        "share": {k: round(v / total, 3) for k, v in parts.items()},
    }


def fastest(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One mode's figures over its rounds: the fastest weight step, architecture step and refresh of any round."""
    best = dict(entries[0])
    for part in ("weight_step_s", "arch_step_s", "hw_refresh_s"):
        best[part] = min(entry[part] for entry in entries)
    best["step_s"] = round(best["weight_step_s"] + best["arch_step_s"], 4)
    best["peak_rss_bytes"] = max(entry["peak_rss_bytes"] for entry in entries)
    if "hw_refresh_every" in best:
        best["search_loop"] = search_loop(best)
    best["rounds_step_s"] = [entry["step_s"] for entry in entries]
    return best


def measure_same_process(preset_name: str, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    """Float and CSQ in one process, their iterations alternated ``--same-process`` times: a slow process or a
    busy spell of a shared machine then slows both alike. Each mode's fastest and median iteration."""
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    built = {name: engine_for(preset_name, MODES[name], device) for name in ("float", "csq")}
    engines = {name: engine for name, (engine, _) in built.items()}
    weight_batches, arch_batches = warmed_up(list(engines.values()), built["float"][1].supernet, args, device)
    steps: dict[str, list[float]] = {name: [] for name in engines}
    for i in range(args.same_process):
        batch = 1 + i % args.steps
        for name, engine in engines.items():
            sync(device)
            start = time.perf_counter()
            engine.weight_step(*weight_batches[batch])
            engine.arch_step(*arch_batches[batch])
            sync(device)
            steps[name].append(time.perf_counter() - start)
    fastest = {name: min(times) for name, times in steps.items()}
    median = {name: statistics.median(times) for name, times in steps.items()}
    return {
        "iterations": args.same_process,
        "float_step_s": round(fastest["float"], 4),
        "csq_step_s": round(fastest["csq"], 4),
        "csq_over_float_step_time": round(fastest["csq"] / fastest["float"], 3),
        "median_float_step_s": round(median["float"], 4),
        "median_csq_step_s": round(median["csq"], 4),
        "median_csq_over_float_step_time": round(median["csq"] / median["float"], 3),
    }


def run_threads(preset_name: str, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in args.modes.split(",")}
    context = multiprocessing.get_context("spawn")
    for round_index in range(args.rounds):
        for name in rounds:
            log(f"[{preset_name}, {threads} thread(s), round {round_index + 1}/{args.rounds}] {name}")
            with context.Pool(1) as pool:
                rounds[name].append(pool.apply(measure, (preset_name, name, threads, args)))
    modes = {name: fastest(entries) for name, entries in rounds.items()}
    result: dict[str, Any] = {"threads": threads, "modes": modes}
    if "float" in modes and "csq" in modes:
        fp, csq = modes["float"], modes["csq"]
        result.update(
            float_step_s=fp["step_s"],
            csq_step_s=csq["step_s"],
            csq_over_float_step_time=round(csq["step_s"] / fp["step_s"], 3),
            csq_over_float_weight_step=round(csq["weight_step_s"] / fp["weight_step_s"], 3),
            csq_over_float_arch_step=round(csq["arch_step_s"] / fp["arch_step_s"], 3),
            csq_over_float_saved_bytes=round(saved(csq) / saved(fp), 3),
        )
    if "naive_common" in modes and "csq" in modes:
        result["naive_common_over_csq_saved_bytes"] = round(saved(modes["naive_common"]) / saved(modes["csq"]), 3)
    if args.same_process and "float" in modes and "csq" in modes:
        log(f"[{preset_name}, {threads} thread(s)] float and csq in one process, {args.same_process} iterations each")
        with context.Pool(1) as pool:
            result["same_process"] = pool.apply(measure_same_process, (preset_name, threads, args))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cifar10", help="search preset (cifar10, cifar100, digits32, tiny, ...)")
    parser.add_argument("--batch", type=int, default=16, help="images per step (naive_common needs ~0.5 GB each)")
    parser.add_argument("--threads", default="1,all", help="torch thread counts, comma-separated; 'all': every core")
    parser.add_argument("--steps", type=int, default=3, help="timed iterations after one warm-up (the fastest counts)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per mode, interleaved (the fastest counts)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument(
        "--same-process",
        type=int,
        default=0,
        help="also time float and csq alternated in one process, this many iterations each (0: not)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.same_process < 0:
        parser.error(f"--same-process: give a number of iterations >= 0, got {args.same_process}")
    unknown = sorted(set(args.modes.split(",")) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; expected some of {', '.join(MODES)}")
    cores = os.cpu_count() or 1
    thread_counts = [cores if t == "all" else int(t) for t in args.threads.split(",")]
    result: dict[str, Any] = {
        "preset": args.preset,
        "batch": args.batch,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "cores": cores,
        "step": "one weight step + one architecture step, each on its own batch (hardware refresh separate)",
        "runs": [run_threads(args.preset, t, args) for t in thread_counts],
    }
    first = result["runs"][0]
    for key in ("float_step_s", "csq_step_s", "csq_over_float_step_time"):
        if key in first:
            result[key] = first[key]
    if "csq" in first["modes"]:
        result["search_loop"] = first["modes"]["csq"]["search_loop"]
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
