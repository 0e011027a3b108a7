"""``jaqc design``: an accelerator for a model, by the hardware generation network and then a local search."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from .app import cli, console, hw_model_option


def design_rows(design: Any) -> list[dict[str, Any]]:
    """The generator's design and the searched one as JSON rows: accelerator, loop order, totals, E_HW."""
    return [
        {
            "design": label,
            "accelerator": found.accelerator.to_json(),
            "loop_order": [str(d) for d in found.loop_order],
            "latency_ms": found.totals.latency_ms,
            "energy_mJ": found.totals.energy_mJ,
            "area_mm2": found.totals.area_mm2,
            "edap": found.totals.edap_mJ_ms_mm2,
            "e_hw": found.e_hw,
        }
        for label, found in (("generator", design.generated), ("designed", design.polished))
    ]


@cli.command("design")
@click.argument("model")
@click.option("--input-shape", default=None, help="Input shape for torch models, e.g. 1,3,32,32.")
@click.option("--passes", default="", help="Pass pipeline to run first (e.g. annotate-quant{w_bits=4,a_bits=4}).")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True, help="Generator training steps.")
@click.option("--lambda-e", type=float, default=0.33, show_default=True, help="E_HW weight of energy.")
@click.option("--lambda-l", type=float, default=0.33, show_default=True, help="E_HW weight of latency.")
@click.option("--lambda-a", type=float, default=0.33, show_default=True, help="E_HW weight of area.")
@click.option("--form", type=click.Choice(["linear", "log"]), default="linear", show_default=True,
              help="E_HW as a weighted sum of ratios to the reference design, or of logs (log EDAP).")  # fmt: skip
@click.option("--max-sweeps", type=click.IntRange(min=1), default=10, show_default=True, help="Search sweeps at most.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", default=None, help="Write the model with the designed accelerator and mappings.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@hw_model_option()
def design_cmd(
    model: str,
    input_shape: str | None,
    passes: str,
    steps: int,
    lambda_e: float,
    lambda_l: float,
    lambda_a: float,
    form: str,
    max_sweeps: int,
    seed: int,
    output: str | None,
    as_json: bool,
    hw_model: str,
) -> None:
    """Design an accelerator for MODEL: train the hardware generation network on it, then search the
    accelerator space digit by digit from the generator's design until no single change lowers E_HW.
    Reports both designs and how much the search improved on the generator."""
    from jaqc.frontend.loader import load_graph_spec, parse_shape
    from jaqc.ir import save_graph
    from jaqc.passes import PassContext, PassManager, make_pass, parse_pipeline
    from jaqc.progress import Progress

    graph = load_graph_spec(model, parse_shape(input_shape) if input_shape is not None else None, with_weights=True)
    options = {
        "steps": str(steps), "lambda_e": repr(lambda_e), "lambda_l": repr(lambda_l), "lambda_a": repr(lambda_a),
        "form": form, "seed": str(seed), "hw_model": hw_model, "max_sweeps": str(max_sweeps),
    }  # fmt: skip
    pipeline = [*(parse_pipeline(passes) if passes else []), make_pass("design-accelerator", options)]
    ctx = PassContext(log=(lambda _message: None) if as_json else (lambda message: click.echo(message, err=True)))
    with Progress("design: generator steps", total=steps, enabled=None if not as_json else False) as bar:
        ctx.data["generator_progress"] = bar
        graph = PassManager(pipeline).run(graph, ctx).graph
    design = ctx.data["accelerator_design"]
    if output is not None:
        save_graph(graph, output, weights=True)
    polished = design.polished
    result = {
        "model": model,
        "hw_model": hw_model,
        "weights": {"energy": lambda_e, "latency": lambda_l, "area": lambda_a, "form": form},
        "designs": design_rows(design),
        "improvement": design.improvement,
        "search": {"sweeps": polished.sweeps, "converged": polished.converged,
                   "designs_evaluated": polished.evaluations, "seconds": polished.seconds,
                   "moves": list(polished.moves)},
        "generator_seconds": design.generated.seconds,
        "output": output,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    table = Table(title=f"{graph.name}: accelerator design ({hw_model} model)", title_justify="left")
    for column in ("design", "PEs", "W/I/O KB", "flow", "loop order", "latency ms", "energy mJ", "area mm²",
                   "EDAP", "E_HW"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("design", "flow", "loop order") else "right")
    for row in result["designs"]:
        acc = row["accelerator"]
        table.add_row(
            row["design"], f"{acc['pe_rows']}x{acc['pe_cols']}", f"{acc['wbuf_kb']}/{acc['ibuf_kb']}/{acc['obuf_kb']}",
            acc["dataflow"], ">".join(row["loop_order"]), f"{row['latency_ms']:.4g}", f"{row['energy_mJ']:.4g}",
            f"{row['area_mm2']:.3g}", f"{row['edap']:.4g}", f"{row['e_hw']:.4f}",
        )  # fmt: skip
    out = console()
    out.print(table)
    verdict = "a point no single-digit change improves" if polished.converged else "stopped at --max-sweeps"
    out.print(
        f"search: E_HW x{1 / design.improvement:.3f} of the generator's ({design.improvement:.3f}x better) in "
        f"{polished.sweeps} sweeps, {polished.evaluations} designs, {polished.seconds:.1f} s: {verdict}"
    )
    if output is not None:
        out.print(f"wrote {output}")
