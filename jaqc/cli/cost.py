"""``jaqc cost``: evaluate layer/accelerator cases in the BitFusion reference format."""

from __future__ import annotations

import json

import click
from rich.table import Table

from .app import cli, console, hw_model_option


@cli.command("cost")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--search", is_flag=True, help="Also map each case with BatchTile and report its best mapping.")
@click.option("--space", type=click.Choice(["bitfusion", "jaq"]), default="bitfusion", show_default=True)
@click.option("--objective", type=click.Choice(["latency", "energy", "edp"]), default="latency", show_default=True)
@click.option("--own-sram", is_flag=True, help="Use the package's CACTI table instead of the cases' unit_costs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@hw_model_option(None, "Default: simulator for a file carrying the simulator's reference numbers, else deployment.")
def cost_cmd(
    file: str, search: bool, space: str, objective: str, own_sram: bool, as_json: bool, hw_model: str | None
) -> None:
    """Evaluate layer/accelerator cases in the BitFusion reference format (e.g. bitfusion_ref/public.json)."""
    from jaqc.hw.reference.cost_eval import evaluate_file
    from jaqc.layer_summary import human

    result = evaluate_file(file, search, space, objective, own_sram, hw_model)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    title = f"{file}: {len(result['cases'])} cases, {result['hw_model']} model"
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("case", "left"),
        ("mapping", "left"),
        ("order", "left"),
        ("cycles", "right"),
        ("stall", "right"),
        ("energy µJ", "right"),
        ("vs reference", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    matched = compared = 0
    for case in result["cases"]:
        rows = [*case["evaluations"], *([{"kind": "batchtile", **case["search"]}] if "search" in case else [])]
        for i, ev in enumerate(rows):
            ref = ev.get("reference")
            verdict = ""
            if ref is not None:
                compared += 1
                ok = ref["cycles_match"] and ref["access_bits_match"] and ref["energy_rel_error"] < 1e-9
                matched += ok
                verdict = (
                    "exact"
                    if ok
                    else (
                        f"cycles {'=' if ref['cycles_match'] else '≠'}, "
                        f"bits {'=' if ref['access_bits_match'] else '≠'}, "
                        f"energy {ref['energy_rel_error']:.2e}"
                    )
                )
            if ev["kind"] == "batchtile":
                verdict = f"{ev['seconds'] * 1e3:.1f} ms, {ev['candidates']} candidates"
            table.add_row(
                case["id"] if i == 0 else "",
                ev["kind"],
                ">".join(ev["mapping"]["loop_order"]),
                human(ev["cycles"]["total"]),
                human(ev["cycles"]["stall"]),
                f"{ev['energy_nJ']['total'] / 1e3:.2f}",
                verdict,
            )
    out = console()
    out.print(table)
    if compared:
        out.print(f"{matched}/{compared} evaluations match the reference exactly (cycles, access bits, energy)")
    if search:
        out.print(f"BatchTile search: {result['search_seconds_total']:.3f} s in total")
