"""Hardware priorities on a fixed subnet: the accelerator the generator produces for balanced,
latency-weighted and area-weighted E_HW (JAQ Table 6 settings: 0.8 on one term, 0.1 on the others).

Isolates the hardware side of the λ trade-off (the searches in lambda_sweep.py also change the network).
Prints one JSON line per setting: the accelerator, latency (ms), energy (mJ), area (mm²) at BatchTile
mappings, and the generator's wall time.

    python benchmarks/hw_priorities.py RUN_DIR/subnet.json [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from jaqc.ir import load_graph
from jaqc.passes import PassContext, make_pass

from jaqc.hw.mapping.report import mapping_rows, network_totals

SETTINGS = (("balanced", 0.33, 0.33, 0.33), ("latency-weighted", 0.1, 0.8, 0.1), ("area-weighted", 0.1, 0.1, 0.8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subnet", help="a subnet IR (e.g. a search run's subnet.json)")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_graph(args.subnet)
    for name, e, lat, a in SETTINGS:
        graph = base.clone()
        start = time.perf_counter()
        options = {"steps": str(args.steps), "lambda_e": str(e), "lambda_l": str(lat), "lambda_a": str(a)}
        make_pass("generate-accelerator", options).run(graph, PassContext())
        make_pass("batchtile", {}).run(graph, PassContext())
        totals = network_totals(graph, mapping_rows(graph))
        acc = graph.accelerator
        print(
            json.dumps(
                {
                    "setting": name,
                    "lambda_e_l_a": [e, lat, a],
                    "accelerator": f"{acc.pe_rows}x{acc.pe_cols} W/I/O {acc.wbuf_kb}/{acc.ibuf_kb}/{acc.obuf_kb} KB "
                    f"{acc.dataflow.value}",
                    "latency_ms": totals["latency_ms"],
                    "energy_mJ": totals["energy_mJ"],
                    "area_mm2": totals["area_mm2"]["total"],
                    "seconds": round(time.perf_counter() - start, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
