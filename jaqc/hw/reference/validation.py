"""Validation of the cost model and BatchTile against the BitFusion reference cases, as a Markdown table.

    python -m jaqc.hw.reference.validation PATH/TO/public.json            # print the table
    python -m jaqc.hw.reference.validation PATH/TO/public.json --write docs/cost_model.md

``--write`` replaces the text between the ``<!-- validation:begin -->`` and ``<!-- validation:end -->``
markers of the given file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from jaqc.hw.errors import HardwareError
from jaqc.hw.mapping.batchtile import map_layers
from jaqc.hw.model.layer_cost import layer_costs
from jaqc.hw.model.orders import ALL_ORDERS
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.unit_costs import area_for
from jaqc.hw.reference.cases import ReferenceCase, load_reference_cases
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping

BEGIN, END = "<!-- validation:begin -->", "<!-- validation:end -->"

#: JAQ paper, Table 2: (row, tile (B, OW, OH, IC, OC), latency ms, energy mJ) for K=5, S=1, 7x7 output,
#: IC=OC=552, w8a8 on 16x16 PEs with 384 KB buffers (the paper gives no loop order).
PAPER_TABLE2: tuple[tuple[str, tuple[int, ...], float, float], ...] = (
    ("best tiling", (1, 1, 1, 16, 16), 3.2, 2.6),
    ("case 0", (1, 4, 4, 2, 512), 56.6, 8.3),
    ("case 1", (1, 2, 2, 32, 128), 4.7, 5.1),
)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a)


def _err(value: float) -> str:
    # Errors at floating-point noise level are shown as a bound so the table is stable across platforms.
    if value == 0:
        return "0"
    return "<1e-12" if value < 1e-12 else f"{value:.1e}"


def validation_table(cases: Sequence[ReferenceCase]) -> str:
    """The Markdown validation table (one row per case, plus a summary line)."""
    rows = [(case, record) for case in cases for record in case.records]
    exact = layer_costs(
        [c.problem for c, _ in rows],
        [c.accelerator for c, _ in rows],
        [r.mapping for _, r in rows],
        [c.unit_costs for c, _ in rows],
        hw_model="simulator",
    )
    cacti = layer_costs(
        [c.problem for c, _ in rows],
        [c.accelerator for c, _ in rows],
        [r.mapping for _, r in rows],
        hw_model="simulator",
    )
    problems, accs, units = [c.problem for c in cases], [c.accelerator for c in cases], [c.unit_costs for c in cases]
    bitfusion = map_layers(problems, accs, "bitfusion", "latency", units, hw_model="simulator")
    jaq = map_layers(problems, accs, "jaq", "latency", units, hw_model="simulator")
    lines = [
        "| case | layer | PE | w/a | mappings: cycles & accesses exact | energy rel. err. (case unit costs)"
        " | energy rel. err. (packaged CACTI) | area rel. err. | simulator optimum (cycles) | BatchTile"
        " `bitfusion` | BatchTile `jaq` |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    totals = {"mappings": 0, "exact": 0, "worst_e": 0.0, "worst_c": 0.0, "worst_a": 0.0, "bf_equal": 0, "jaq_le": 0}
    row = 0
    for index, case in enumerate(cases):
        matched, worst_e, worst_c = 0, 0.0, 0.0
        for record in case.records:
            got, cac = exact[row], cacti[row]
            row += 1
            cycles_ok = (got.total_cycles, got.stall_cycles, got.compute_cycles) == (
                record.cycles["total"],
                record.cycles["stall"],
                record.cycles["compute"],
            )
            matched += int(cycles_ok and got.access_bits == record.access_bits)
            for name, value in record.energy_nj.items():
                worst_e = max(worst_e, _rel(got.energy_nj[name], value))
                worst_c = max(worst_c, _rel(cac.energy_nj[name], value))
        area = area_for(case.accelerator)
        worst_a = max(_rel(getattr(area, k), v) for k, v in case.area_mm2.items())
        optimum = case.optimized.cycles["total"]
        bf, jq = bitfusion[index].cost.total_cycles, jaq[index].cost.total_cycles
        totals["mappings"] += len(case.records)
        totals["exact"] += matched
        totals["worst_e"] = max(totals["worst_e"], worst_e)
        totals["worst_c"] = max(totals["worst_c"], worst_c)
        totals["worst_a"] = max(totals["worst_a"], worst_a)
        totals["bf_equal"] += int(bf == optimum)
        totals["jaq_le"] += int(jq <= optimum)
        acc, p = case.accelerator, case.problem
        lines.append(
            f"| {case.case_id} | {p.name} | {acc.pe_rows}x{acc.pe_cols} | {p.w_bits}/{p.a_bits} "
            f"| {matched}/{len(case.records)} | {_err(worst_e)} | {_err(worst_c)} | {_err(worst_a)} | {optimum} "
            f"| {bf} ({'=' if bf == optimum else '≠'}) | {jq} ({'≤' if jq <= optimum else '>'}) |"
        )
    lines.append(
        f"\n**Summary:** {totals['exact']}/{totals['mappings']} mappings with exact cycles and access counts; "
        f"worst energy relative error {_err(totals['worst_e'])} with the cases' unit costs and "
        f"{_err(totals['worst_c'])} with the packaged CACTI table; worst area relative error "
        f"{_err(totals['worst_a'])}; "
        f"BatchTile `bitfusion` equals the simulator optimum on {totals['bf_equal']}/{len(cases)} cases, "
        f"`jaq` is at most the optimum on {totals['jaq_le']}/{len(cases)}."
    )
    return "\n".join(lines) + "\n"


def paper_table2_crosscheck() -> str:
    """The JAQ paper's Table 2 tilings under the model: latency and energy over the 120 loop orders."""
    problem = ConvProblem(
        name="jaq_table2", batch=1, in_channels=552, out_channels=552, in_h=7, in_w=7, kernel=5, pad=2
    )
    accelerator = AcceleratorConfig(pe_rows=16, pe_cols=16, wbuf_kb=384, ibuf_kb=384, obuf_kb=384)
    lines = [
        "| JAQ Table 2 row | tile (B, OW, OH, IC, OC) | paper latency (ms) | model latency, best order (ms)"
        " | paper energy (mJ) | model energy over the 120 orders (mJ) |",
        "|---|---|---|---|---|---|",
    ]
    for name, tile, latency_ms, energy_mj in PAPER_TABLE2:
        costs = [
            c
            for c in layer_costs(
                [problem] * len(ALL_ORDERS),
                accelerator,
                [Mapping(tile=tile, loop_order=o) for o in ALL_ORDERS],
                hw_model="simulator",
            )
            if c.feasible
        ]
        lat = min(c.latency_s for c in costs) * 1e3
        energies = [c.energy_nj["total"] / 1e6 for c in costs]
        lines.append(
            f"| {name} | {tile} | {latency_ms} | {lat:.2f} | {energy_mj} | {min(energies):.2f} .. {max(energies):.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_between_markers(path: Path, text: str) -> None:
    """Replace the text between the validation markers of a file."""
    content = path.read_text()
    if BEGIN not in content or END not in content:
        raise HardwareError(f"{path}: validation markers {BEGIN} / {END} not found")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Validate jaqc.hw against BitFusion reference cases.")
    parser.add_argument("cases", type=Path)
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args(argv)
    table = validation_table(load_reference_cases(args.cases)) + "\n" + paper_table2_crosscheck()
    if args.write is None:
        print(table, end="")
    else:
        write_between_markers(args.write, table)


if __name__ == "__main__":
    main()
