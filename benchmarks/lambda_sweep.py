"""λ sweep and hardware-priority searches on digits (tiny preset): accuracy against EDAP, latency, area.

Runs ``jaqc search --preset tiny`` for each setting, retrains each derived subnet, and prints a JSON table:
λ ∈ {0, 0.5, 2} with λE = λL = λA = 0.33, then λ = 0.5 with λL = 0.8 (latency-weighted) and λA = 0.8
(area-weighted), the other two at 0.1 (the paper's Table 6 settings, on jaqc's normalised E_HW).

    python benchmarks/lambda_sweep.py [--out runs/sweep] [--epochs 8] [--retrain-epochs 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from jaqc.hw.generator.objective import HardwareWeights
from jaqc.search.presets import search_preset
from jaqc.search.retrain import retrain_run
from jaqc.search.runner import SearchRun

SETTINGS = (
    ("lambda=0", 0.0, HardwareWeights()),
    ("lambda=0.5", 0.5, HardwareWeights()),
    ("lambda=2", 2.0, HardwareWeights()),
    ("latency-weighted", 0.5, HardwareWeights(energy=0.1, latency=0.8, area=0.1)),
    ("area-weighted", 0.5, HardwareWeights(energy=0.1, latency=0.1, area=0.8)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--retrain-epochs", type=int, default=40)
    parser.add_argument("--only", default=None, help="comma-separated setting names")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, lam, hw in SETTINGS:
        if args.only and name not in args.only.split(","):
            continue
        run_dir = Path(args.out) / name.replace("=", "")
        shutil.rmtree(run_dir, ignore_errors=True)
        overrides = {
            "epochs": args.epochs,
            "lam": lam,
            "hw": {"energy": hw.energy, "latency": hw.latency, "area": hw.area},
        }
        preset = search_preset("tiny", **overrides)
        start = time.perf_counter()
        outcome = SearchRun(preset, run_dir, recipe={"preset": "tiny", "data_root": None, "overrides": overrides}).run(
            progress=False
        )
        search_s = time.perf_counter() - start
        start = time.perf_counter()
        retrained = retrain_run(run_dir, epochs=args.retrain_epochs, progress=False)
        rows.append(
            {
                "setting": name,
                "lambda": lam,
                "lambda_e_l_a": [hw.energy, hw.latency, hw.area],
                "ops": outcome.summary["architecture"]["ops"],
                "bits": outcome.summary["architecture"]["bits"],
                "accelerator": "{pe_rows}x{pe_cols} W/I/O {wbuf_kb}/{ibuf_kb}/{obuf_kb} KB {dataflow}".format(
                    **outcome.summary["accelerator"]
                ),
                "test_accuracy": retrained["test_accuracy"],
                "latency_ms": retrained["latency_ms"],
                "energy_mJ": retrained["energy_mJ"],
                "area_mm2": retrained["area_mm2"],
                "edap_mJ_ms_mm2": retrained["edap_mJ_ms_mm2"],
                "search_s": round(search_s, 1),
                "retrain_s": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"sweep": rows}, indent=1))


if __name__ == "__main__":
    main()
