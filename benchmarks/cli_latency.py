"""CLI latency: how long `jaqc map` and `jaqc dump` take on ResNet-18 and MobileNetV2 at 224x224, and `jaqc cost
--search` on a 22-case file, each beside a bare ``python -c "import torch"`` measured in the same run.

Prints one JSON object. Every command runs as a fresh process (as a user runs it), ``--runs`` times; the figure
is the median wall time. The split of `jaqc map` (import, trace, passes, mapping) comes from running the same
steps in one process with a timer between them. Target (issue #14, item 4): `jaqc map` of MobileNetV2 within
1.0 s of the bare torch import.

    python benchmarks/cli_latency.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
ZOO = ROOT / "tests" / "zoo_models.py"
MODELS = ("resnet18", "mobilenet_v2")
SHAPE = "1,3,224,224"
TARGET_S = 1.0

_SPLIT = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from jaqc.hw.accelerators import load_accelerator
from jaqc.frontend.loader import load_graph_spec
from jaqc.passes import PassContext, PassManager, make_pass
t2 = time.perf_counter()
graph = load_graph_spec(sys.argv[1], (1, 3, 224, 224), with_weights=False)
t3 = time.perf_counter()
graph.accelerator = load_accelerator("jaq-table2")
manager = PassManager([make_pass("batchtile", {"space": "jaq"})], time_passes=True)
context = PassContext()
graph = manager.run(graph, context).graph
t4 = time.perf_counter()
print(json.dumps({"import_torch_s": t1 - t0, "import_jaqc_s": t2 - t1, "trace_s": t3 - t2, "map_s": t4 - t3,
                  "layers": len(graph)}))
"""


def _median_s(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _jaqc(*args: str) -> list[str]:
    """The installed ``jaqc`` console script of this interpreter's environment."""
    return [str(Path(sys.executable).parent / "jaqc"), *args]


def _cases_file(directory: Path) -> Path:
    """22 cases (the FBNet-like CIFAR subnet's layers) on one accelerator, in the reference-data format."""
    from jaqc.hw.accelerators import load_accelerator
    from jaqc.hw.reference.workloads import fbnet_cifar_subnet

    accelerator = load_accelerator("jaq-table2").to_json()
    cases = [
        {"id": f"layer{i}", "layer": problem.to_reference(), "accelerator": accelerator}
        for i, problem in enumerate(fbnet_cifar_subnet())
    ]
    path = directory / "cases.json"
    path.write_text(json.dumps({"cases": cases}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, object] = {"cpu_count": os.cpu_count(), "runs": args.runs, "load_avg_1m": os.getloadavg()[0]}
    bare = _median_s([sys.executable, "-c", "import torch"], args.runs)
    result["import_torch_s"] = round(bare, 3)
    for model in MODELS:
        spec = f"{ZOO}:{model}"
        for command in ("map", "dump"):
            extra = ["--accel", "jaq-table2"] if command == "map" else []
            seconds = _median_s(_jaqc(command, spec, "--input-shape", SHAPE, *extra), args.runs)
            result[f"{command}_{model}_s"] = round(seconds, 3)
            result[f"{command}_{model}_beyond_torch_s"] = round(seconds - bare, 3)
        split = (
            subprocess.run([sys.executable, "-c", _SPLIT, spec], check=True, capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        result[f"map_{model}_split_s"] = {k: round(v, 3) if isinstance(v, float) else v
                                          for k, v in json.loads(split).items()}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cases = _cases_file(Path(tmp))
        result["cost_search_22_cases_s"] = round(_median_s(_jaqc("cost", str(cases), "--search"), args.runs), 3)
    beyond = result["map_mobilenet_v2_beyond_torch_s"]
    result["target"] = {"what": "jaqc map MobileNetV2 at 224 minus a bare torch import", "value_s": beyond,
                        "threshold_s": TARGET_S, "pass": beyond <= TARGET_S}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
