"""``jaqc export``: a run's (or an IR's) subnet as low-bit ONNX with its mapping schedule."""

from __future__ import annotations

import contextlib
import sys

import click
from rich.console import Console
from rich.table import Table

from jaqc.core import JaqcError

from .app import cli, console, hw_model_option, nonempty_path


@cli.command("export")
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["qdq", "qonnx"]), default="qdq", show_default=True)
@click.option("--opset", type=click.Choice(["21", "25"]), default="21", show_default=True, help="25: native 2-bit.")
@click.option(
    "--accel",
    default=None,
    help="Accelerator (preset or .toml/.json). Default: a RUN_DIR's accelerator.json; a SUBNET.json's own, else "
    "bitfusion-eyeriss. Given, it overrides both (the subnet is mapped on it).",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.", callback=nonempty_path
)
@hw_model_option(None, "Default: the model the subnet was mapped with, else deployment.")
def export_cmd(source: str, fmt: str, opset: str, accel: str | None, output: str, hw_model: str | None) -> None:
    """Export RUN_DIR (its retrained subnet if there is one) or SUBNET.json (an IR with weights) as low-bit ONNX
    with the BitFusion mapping schedule: OUTPUT/model.onnx and OUTPUT/schedule.json."""
    from pathlib import Path

    from jaqc.export.onnx_export import export_onnx
    from jaqc.hw.accelerators import load_accelerator
    from jaqc.ir import load_graph

    path = Path(source)
    accelerator = load_accelerator(accel) if accel else None
    if path.is_dir():
        from jaqc.search.rundir import RunDir

        run = RunDir(path)
        subnet = run.deployed_subnet()
        if accelerator is None:
            if not run.accelerator_path.is_file():
                raise JaqcError(f"{path}: no accelerator.json; give --accel")
            accelerator = load_accelerator(str(run.accelerator_path))
    elif path.suffix == ".json":
        subnet = path
    else:
        raise JaqcError(f"{source}: expected a search run directory or a SUBNET.json IR with weights")
    graph = load_graph(subnet)
    if accelerator is None and graph.accelerator is None:
        accelerator = load_accelerator("bitfusion-eyeriss")
    status = Console(stderr=True).status(f"exporting {graph.name} ({fmt}, opset {opset})")
    with status if sys.stderr.isatty() else contextlib.nullcontext():
        result = export_onnx(graph, output, fmt, int(opset), accelerator=accelerator, hw_model=hw_model)
    table = Table(title=f"{graph.name} from {subnet}: {fmt}, opset {opset}", title_justify="left")
    for col, justify in (
        ("layer", "left"),
        ("kind", "left"),
        ("w bits", "right"),
        ("a bits", "right"),
        ("weight", "left"),
        ("Quant" if fmt == "qonnx" else "Q/DQ", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for x in result.layers:
        table.add_row(
            x.name,
            x.kind,
            "float" if x.w_bits is None else str(x.w_bits),
            "float" if x.a_bits is None else str(x.a_bits),
            x.weight_storage,
            str(x.quant_nodes),
        )
    out = console()
    out.print(table)
    out.print(f"model: {result.model_path}")
    out.print(f"schedule: {result.schedule_path} (also embedded in the model's metadata_props)")
    out.print(f"manifest: {result.model_path.parent / 'export.json'} (SHA-256 of both, written last)")
    from jaqc.export.schedule import read_schedule

    out.print(f"hardware model: {read_schedule(result.schedule_path)['hw_model']}")
