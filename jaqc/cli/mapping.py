"""``jaqc map``: map every conv/linear layer of a model onto an accelerator with BatchTile and report the cost."""

from __future__ import annotations

import contextlib
import json
import sys

import click
from rich.console import Console

from jaqc.ir import verify

from .app import cli, console, hw_model_option
from .render import accelerator_title, layer_cells, print_layer_table


@cli.command("map")
@click.argument("model")
@click.option(
    "--accel",
    "accel",
    required=True,
    help="Accelerator: a preset (bitfusion-eyeriss, jaq-table2) or a .toml/.json file.",
)
@click.option("--objective", type=click.Choice(["latency", "energy", "edp"]), default="latency", show_default=True)
@click.option(
    "--space",
    type=click.Choice(["bitfusion", "jaq"]),
    default="jaq",
    show_default=True,
    help="Mapping space: the BitFusion simulator's grid, or JAQ's power-of-two tiles with any loop order.",
)
@click.option("--input-shape", default=None, help="Input shape for torch models, e.g. 1,3,32,32.")
@click.option("--passes", default="", help="Pass pipeline to run before mapping (e.g. annotate-quant{w_bits=4}).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--verify/--no-verify",
    "verify_ir",
    default=True,
    show_default=True,
    help="Verify the IR as loaded (shapes, operands, weights, mappings) before mapping it.",
)
@hw_model_option()
def map_cmd(
    model: str,
    accel: str,
    objective: str,
    space: str,
    input_shape: str | None,
    passes: str,
    fmt: str,
    verify_ir: bool,
    hw_model: str,
) -> None:
    """Map every conv/linear layer of MODEL onto an accelerator with BatchTile and report its cost."""
    from jaqc.frontend.loader import load_graph_spec, parse_shape
    from jaqc.hw.accelerators import load_accelerator
    from jaqc.hw.mapping.report import design_notes, mapping_rows, network_totals
    from jaqc.passes import PassContext, PassManager, make_pass, parse_pipeline

    accelerator = load_accelerator(accel)
    pipeline = parse_pipeline(passes) if passes else []
    graph = load_graph_spec(model, parse_shape(input_shape) if input_shape is not None else None, with_weights=False)
    if verify_ir:
        verify(graph)
    graph.accelerator = accelerator
    pipeline.append(make_pass("batchtile", {"objective": objective, "space": space, "hw_model": hw_model}))
    status = Console(stderr=True).status(f"mapping {len(graph)} layers on {accelerator.name or 'the accelerator'}")
    with status if sys.stderr.isatty() else contextlib.nullcontext():
        graph = PassManager(pipeline).run(graph, PassContext()).graph
    rows = mapping_rows(graph)
    totals = network_totals(graph, rows)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "model": model,
                    "accelerator": accelerator.to_json(),
                    "objective": objective,
                    "space": space,
                    "hw_model": hw_model,
                    "layers": rows,
                    "totals": totals,
                    "notes": design_notes(accelerator.to_json(), rows),
                },
                indent=1,
            )
        )
        return
    _print_mapping_table(graph.name, accelerator, rows, totals, objective, space, hw_model)
    for note in design_notes(accelerator.to_json(), rows):
        console().print(f"note: {note}")


def _print_mapping_table(name, accelerator, rows, totals, objective, space, hw_model) -> None:  # type: ignore[no-untyped-def]
    title = accelerator_title(name, accelerator.to_json(), f"{hw_model} model, {space} space, min {objective}")
    tail = [("util", "right"), ("bound", "left"), ("core µJ", "right"), ("SRAM µJ", "right"),
            ("DRAM µJ", "right"), ("total µJ", "right")]  # fmt: skip
    cells = [
        [*layer_cells(r), f"{r['utilization']:.0%}", r["bound"],
         *(f"{r['energy_nJ'][k] / 1e3:.2f}" for k in ("core", "sram", "dram", "total"))]
        for r in rows
    ]  # fmt: skip
    print_layer_table(title, tail, cells, totals)
