"""The ``jaqc`` command line: thin commands over library calls.

Errors a user can cause (bad model spec, bad shape, bad IR, unknown pass) print one line and exit with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import traceback

import click
from rich.console import Console
from rich.table import Table

from jaqc import __version__
from jaqc.ir import graph_to_json, print_graph, save_graph
from jaqc.ir.errors import JaqcError

_state = {"debug": False}


def console() -> Console:
    """A rich console: full width on a terminal, 200 columns when writing to a pipe or file."""
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jaqc")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """jaqc: joint search of CNN architecture, low-bit quantization and a BitFusion-style accelerator."""
    _state["debug"] = debug


@cli.command()
@click.argument("model")
@click.option("--input-shape", default=None, help="Input shape for torch models, e.g. 1,3,32,32 (default 1,3,32,32).")
@click.option("--format", "fmt", type=click.Choice(["text", "table", "json"]), default="text", show_default=True)
@click.option(
    "--passes", default="", help="Pass pipeline to run first, e.g. 'fold-batchnorm,annotate-quant{w_bits=4}'."
)
@click.option("--verify-each", is_flag=True, help="Verify the IR after every pass.")
@click.option("--weights/--no-weights", default=False, help="Include weights in JSON printed to stdout.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also save the IR: .json (with weights) or .jaqc (text).",
)
def dump(
    model: str,
    input_shape: str | None,
    fmt: str,
    passes: str,
    verify_each: bool,
    weights: bool,
    output: str | None,
) -> None:
    """Print the layer IR of MODEL: file.py:factory, package.module:factory, or a .json/.jaqc IR file."""
    from jaqc.frontend.loader import load_graph_spec, parse_shape
    from jaqc.passes import PassContext, PassManager, parse_pipeline

    shape = parse_shape(input_shape) if input_shape else None
    pipeline = parse_pipeline(passes) if passes else []
    graph = load_graph_spec(model, shape)
    if pipeline:
        graph = PassManager(pipeline, verify_each=verify_each).run(graph, PassContext()).graph
    if output:
        save_graph(graph, output, weights=True)
    if fmt == "text":
        click.echo(print_graph(graph), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(graph_to_json(graph, weights=weights), indent=1))
    else:
        _print_table(graph)


def _print_table(graph) -> None:  # type: ignore[no-untyped-def]
    from jaqc.inspect import human, layer_rows

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


@cli.command("passes")
def list_passes() -> None:
    """List the available passes (built-in and plugins) with their options."""
    import attrs

    from jaqc.passes import available_passes, get_pass_class

    for name in available_passes():
        cls = get_pass_class(name)
        opts = ", ".join(f"{f.name}={f.default}" for f in attrs.fields(cls) if f.init)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name}{{{opts}}}  {doc}" if opts else f"{name}  {doc}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaqc`` console script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="jaqc", standalone_mode=False)
    except JaqcError as exc:
        if _state["debug"]:
            traceback.print_exc()
        else:
            click.echo(f"error: {exc}", err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
