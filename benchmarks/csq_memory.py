"""Memory and time of one search step of the supernet under each quantization search mode (JAQ Fig. 4, Sec. CSQ).

Prints one JSON object. The primary figure is the number of bytes autograd saves for backward in one
training iteration (the larger of its weight step, which trains the weights, and its architecture step, which
trains α, β and the batch-norm scales with the other weights held constant, as the search engine runs them),
measured with ``torch.autograd.graph.saved_tensors_hooks`` and counting each storage once;
parameters and buffers are left out (they exist whether or not autograd saves them; the figure with them is
reported too). Modes: the floating-point supernet, Eq. 5 through the fused ``jaqc::mixed_fake_quant`` op,
Eq. 5 written the common way (element-wise ops, detach STE), Auto-NBA heterogeneous sampling, CSQ with K = 3%
and 1%, and the "channel 0" ablation.

Saved bytes are affine in the batch size (weight-sized tensors plus per-sample activations), so for a preset
whose largest modes do not fit this machine at the target batch, they are fitted on two small batches and
evaluated at the target batch; the fit is checked by a direct measurement at ``--check-batch`` for the modes
that fit under ``--check-limit-gb``. Each mode runs in its own process. Time per step (forward + backward, CPU
unless CUDA is present) of both steps is measured at ``--time-batch`` after one warm-up step; treat it as
indicative on a shared machine (``benchmarks/search_step.py`` times the search engine's steps).

Usage: python benchmarks/csq_memory.py [--presets cifar10,tiny] [--batch 64] [--steps 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import sys
import time
from typing import Any

import attrs
import torch

from jaqc.nn.config import SupernetConfig, supernet_preset
from jaqc.nn.memory import SavedTensorMeter, model_tensors
from jaqc.nn.supernet import Supernet
from jaqc.search.jaq import gradients_only_for

#: Benchmark entries: name -> (search mode, K percent).
MODES: dict[str, tuple[str, float]] = {
    "float": ("float", 3.0),
    "naive_fused": ("naive", 3.0),
    "naive_common": ("naive_common", 3.0),
    "hetero": ("hetero", 3.0),
    "csq3": ("csq", 3.0),
    "csq1": ("csq", 1.0),
    "channel0": ("channel0", 3.0),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(preset: str, mode: str, k_percent: float, device: torch.device) -> Supernet:
    config: SupernetConfig = supernet_preset(preset)
    quant = attrs.evolve(config.quant, mode=mode, csq_k_percent=k_percent)
    torch.manual_seed(0)
    return Supernet(attrs.evolve(config, quant=quant)).to(device)


def steps_of(net: Supernet) -> list[str]:
    """The search steps one training iteration runs: a weight step and an architecture step."""
    return ["weights", "arch"]


def trained_in(net: Supernet, step: str) -> list[torch.nn.Parameter]:
    """The parameters ``step`` trains, as the search engine runs it: every weight in the weight step; α, β and the
    batch-norm scales γ in the architecture step (jaqc.search.jaq.JaqSearch.arch_step)."""
    if step == "weights":
        return list(net.parameters())
    gammas = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.affine]
    return [*net.arch_parameters(), *gammas]


def saved_bytes(net: Supernet, batch: int, device: torch.device) -> tuple[int, int]:
    """``(activation_bytes, total_bytes)`` saved by the forward pass of the weight step or of the architecture
    step of one training iteration, whichever saves more."""
    config = net.config
    best = (0, 0)
    for step in steps_of(net):
        net.set_search_step(step)
        x = torch.randn(batch, config.in_channels, config.input_size, config.input_size, device=device)
        with gradients_only_for(net, trained_in(net, step)), SavedTensorMeter(model_tensors(net)) as meter:
            out = net(x)
        del out
        gc.collect()
        best = max(best, (meter.activation_bytes, meter.total_bytes))
    net.set_search_step("weights")
    return best


def step_time(net: Supernet, batch: int, steps: int, device: torch.device) -> float:
    """Seconds per training iteration (forward + backward of every search step), after one warm-up."""
    config = net.config
    x = torch.randn(batch, config.in_channels, config.input_size, config.input_size, device=device)

    def one() -> None:
        for step in steps_of(net):
            net.set_search_step(step)
            net.zero_grad(set_to_none=True)
            with gradients_only_for(net, trained_in(net, step)):
                net(x).logsumexp(dim=1).mean().backward()
        net.set_search_step("weights")

    one()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        one()
    sync(device)
    return (time.perf_counter() - start) / steps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cuda_peak(net: Supernet, batch: int, device: torch.device) -> int | None:
    """Peak CUDA memory of one training iteration, when running on CUDA."""
    if device.type != "cuda":
        return None
    config = net.config
    x = torch.randn(batch, config.in_channels, config.input_size, config.input_size, device=device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    for step in steps_of(net):
        net.set_search_step(step)
        with gradients_only_for(net, trained_in(net, step)):
            net(x).logsumexp(dim=1).mean().backward()
        net.zero_grad(set_to_none=True)
    net.set_search_step("weights")
    return int(torch.cuda.max_memory_allocated(device))


def affine_at(points: list[tuple[int, int]], batch: int) -> int:
    (b1, v1), (b2, v2) = points
    slope = (v2 - v1) / (b2 - b1)
    return round(v1 + slope * (batch - b1))


def measure_mode(preset: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one mode of one preset (run in a fresh process so that modes do not share memory)."""
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mode, k_percent = MODES[name]
    net = build(preset, mode, k_percent, device)
    entry: dict[str, Any] = {"mode": mode, "k_percent": k_percent if mode == "csq" else None}
    if preset != "tiny" and device.type != "cuda":
        fit_batches = [int(b) for b in args.fit_batches.split(",")]
        small = [(b, saved_bytes(net, b, device)) for b in fit_batches]
        entry["saved_bytes"] = affine_at([(b, v[0]) for b, v in small], args.batch)
        entry["saved_bytes_with_params"] = affine_at([(b, v[1]) for b, v in small], args.batch)
        entry["saved_bytes_source"] = f"affine fit on batches {fit_batches}"
        predicted = affine_at([(b, v[0]) for b, v in small], args.check_batch)
        if predicted <= args.check_limit_gb * 1e9:
            measured = saved_bytes(net, args.check_batch, device)[0]
            entry["fit_check"] = {"batch": args.check_batch, "predicted": predicted, "measured": measured}
    else:
        activation, total = saved_bytes(net, args.batch, device)
        entry.update(saved_bytes=activation, saved_bytes_with_params=total, saved_bytes_source="measured")
    time_batch = args.time_batch if preset != "tiny" else args.batch
    entry["time_per_step_s"] = round(step_time(net, time_batch, args.steps, device), 4)
    entry["time_batch"] = time_batch
    entry["cuda_peak_bytes"] = cuda_peak(net, args.batch, device)
    return entry


def run_preset(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    """All modes of ``preset``, each measured in its own spawned process."""
    modes: dict[str, dict[str, Any]] = {}
    context = multiprocessing.get_context("spawn")
    for name in MODES:
        log(f"[{preset}] {name}")
        with context.Pool(1) as pool:
            modes[name] = pool.apply(measure_mode, (preset, name, args))
    saved = {name: entry["saved_bytes"] for name, entry in modes.items()}
    checks = [
        abs(e["fit_check"]["measured"] - e["fit_check"]["predicted"]) / e["fit_check"]["measured"]
        for e in modes.values()
        if "fit_check" in e
    ]
    return {
        "batch": args.batch,
        "modes": modes,
        "ratios_of_saved_bytes": {
            "csq3_over_fp": round(saved["csq3"] / saved["float"], 3),
            "csq1_over_fp": round(saved["csq1"] / saved["float"], 3),
            "naive_fused_over_csq3": round(saved["naive_fused"] / saved["csq3"], 3),
            "naive_common_over_csq3": round(saved["naive_common"] / saved["csq3"], 3),
            "hetero_over_csq3": round(saved["hetero"] / saved["csq3"], 3),
            "channel0_over_csq3": round(saved["channel0"] / saved["csq3"], 3),
        },
        "fit_check_max_relative_error": round(max(checks), 6) if checks else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="cifar10,tiny")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--fit-batches", default="2,4")
    parser.add_argument("--time-batch", type=int, default=4, help="batch of the timed steps (not for tiny)")
    parser.add_argument("--steps", type=int, default=1, help="timed steps after one warm-up")
    parser.add_argument("--check-batch", type=int, default=8, help="batch that checks the affine fit directly")
    parser.add_argument("--check-limit-gb", type=float, default=3.0, help="skip the check above this size")
    # One thread: with several processes sharing two cores, OpenMP's spinning threads make timings erratic.
    parser.add_argument("--threads", type=int, default=1, help="torch threads per measuring process")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": args.threads,
        "metric": "bytes saved for backward per training step, unique storages, parameters/buffers excluded",
    }
    for preset in args.presets.split(","):
        result[preset] = run_preset(preset, args)
    if "cifar10" in result:
        ratios = result["cifar10"]["ratios_of_saved_bytes"]
        for key in ("csq3_over_fp", "naive_fused_over_csq3", "naive_common_over_csq3"):
            result[key] = ratios[key]
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
