"""``jaqc dump``: print a model's IR (table, text, JSON), after an optional pass pipeline; an exported model's
schedule with ``--mappings``."""

from __future__ import annotations

import json

import click
from rich.table import Table

from jaqc.core import JaqcError
from jaqc.ir import graph_to_json, print_graph, save_graph, verify

from .app import cli, console, nonempty_path
from .render import print_schedule_table


@cli.command()
@click.argument("model", required=False)
@click.option(
    "--supernet",
    "supernet",
    default=None,
    metavar="PRESET",
    help="Dump the FBNet supernet of a preset (cifar10, cifar100, imagenet, tiny, digits32) with its choice layers.",
)
@click.option("--input-shape", default=None, help="Input shape for torch models, e.g. 1,3,32,32 (default 1,3,32,32).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "table", "json"]),
    default=None,
    help="text (the IR's text form; the default), table or json; with --mappings: table (default) or json.",
)
@click.option(
    "--passes", default="", help="Pass pipeline to run first, e.g. 'fold-batchnorm,annotate-quant{w_bits=4}'."
)
@click.option("--verify-each", is_flag=True, help="Verify the IR after every pass.")
@click.option(
    "--verify/--no-verify",
    "verify_ir",
    default=True,
    show_default=True,
    help="Verify the IR as loaded (shapes, operands, weights, mappings) before anything else.",
)
@click.option("--weights/--no-weights", default=None, help="Include weights in JSON printed to stdout (--format json).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    callback=nonempty_path,
    help="Also save the IR: .json (with weights) or .jaqc (text).",
)
@click.option(
    "--mappings",
    is_flag=True,
    help="For an exported MODEL.onnx (jaqc export): print the per-layer mapping table of its embedded schedule.",
)
def dump(
    model: str | None,
    supernet: str | None,
    input_shape: str | None,
    fmt: str | None,
    passes: str,
    verify_each: bool,
    verify_ir: bool,
    weights: bool | None,
    output: str | None,
    mappings: bool,
) -> None:
    """Print the layer IR of MODEL: file.py:factory, package.module:factory, a .json/.jaqc IR file or an
    .onnx model; or, with --supernet PRESET, the searchable supernet; or, with --mappings, the mapping
    schedule embedded in an exported .onnx model."""
    from jaqc.frontend.loader import load_graph_spec, parse_shape
    from jaqc.passes import PassContext, PassManager, parse_pipeline

    if (model is None) == (supernet is None):
        raise JaqcError("give either MODEL or --supernet PRESET")
    if mappings:
        if model is None or not model.endswith(".onnx"):
            raise JaqcError("--mappings reads an exported ONNX model (MODEL.onnx from jaqc export)")
        unused = {"--passes": passes or None, "-o": output, "--input-shape": input_shape, "--weights": weights,
                  "--verify-each": verify_each or None}  # fmt: skip
        given = [flag for flag, value in unused.items() if value is not None]
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise JaqcError(f"{', '.join(given)} {verb} not apply to --mappings (it prints the embedded schedule)")
        if fmt == "text":
            raise JaqcError("--mappings prints a table (--format table, the default) or JSON (--format json)")
        from jaqc.export.embedded import check_export_files, read_export

        schedule = read_export(model)[1]
        check_export_files(model)
        if fmt == "json":
            click.echo(json.dumps(schedule, indent=1))
        else:
            print_schedule_table(model, schedule)
        return
    fmt = fmt or "text"
    if weights is not None and fmt != "json":
        raise JaqcError(f"--weights/--no-weights apply to --format json, not {fmt} (-o FILE.json saves weights)")
    shape = parse_shape(input_shape) if input_shape is not None else None
    pipeline = parse_pipeline(passes) if passes else []
    if supernet is not None:
        from jaqc.nn.config import supernet_preset
        from jaqc.nn.supernet import Supernet
        from jaqc.nn.supernet_ir import trace_supernet

        graph = trace_supernet(Supernet(supernet_preset(supernet)).eval())
    else:
        graph = load_graph_spec(model, shape)
    if verify_ir:
        verify(graph)
    if pipeline:
        graph = PassManager(pipeline, verify_each=verify_each).run(graph, PassContext()).graph
    if output:
        save_graph(graph, output, weights=True)
    if fmt == "text":
        click.echo(print_graph(graph), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(graph_to_json(graph, weights=bool(weights)), indent=1))
    else:
        _print_table(graph)


def _print_table(graph) -> None:  # type: ignore[no-untyped-def]
    from jaqc.layer_summary import human, layer_rows

    rows = layer_rows(graph)
    table = Table(title=f"{graph.name}: {len(rows)} layers", title_justify="left")
    for col, justify in (
        ("name", "left"),
        ("kind", "left"),
        ("input", "left"),
        ("output", "left"),
        ("k/s/g", "left"),
        ("params", "right"),
        ("MACs", "right"),
        ("bits", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["input_shape"],
            r["output_shape"],
            r["geometry"],
            human(r["params"]) if r["params"] else "",
            human(r["macs"]) if r["macs"] else "",
            r["bits"],
        )
    total_params = sum(r["params"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    table.add_section()
    table.add_row("total", "", "", "", "", human(total_params), human(total_macs), "")
    console().print(table)
