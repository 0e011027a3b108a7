"""``jaqc quantize``: post-training quantization of a user's model with activation calibration."""

from __future__ import annotations

import contextlib
import sys

import click
from rich.console import Console
from rich.table import Table

from jaqc.core import JaqcError
from jaqc.ir import save_graph

from .app import cli, console, nonempty_path


@cli.command("quantize")
@click.argument("model")
@click.option(
    "--bits",
    required=True,
    help="Per-layer bits: 'w8a8' for every conv/linear layer, rules 'w8a8,*.dw=w4a8,features.0.*=float' (shell "
    "patterns on layer names, later rules win) or a .json file {PATTERN: BITS}.",
)
@click.option(
    "--calib", required=True, help="Calibration data: digits, an .npy array [N,C,H,W], or a folder of images."
)
@click.option("--input-shape", default=None, help="Input shape for torch models, e.g. 1,3,32,32.")
@click.option("--passes", default="", help="Pass pipeline to run first (e.g. a plugin of yours).")
@click.option(
    "--method",
    type=click.Choice(["percentile", "minmax"]),
    default="percentile",
    show_default=True,
    help="Activation range from the observed inputs: their min/max, or the (100-p, p) percentiles.",
)
@click.option("--percentile", type=float, default=99.99, show_default=True, help="p of --method percentile.")
@click.option("--calib-images", type=click.IntRange(min=1), default=512, show_default=True, help="At most this many.")
@click.option(
    "--normalization",
    type=click.Choice(["imagenet", "none"]),
    default="imagenet",
    show_default=True,
    help="For a folder of RGB images: normalise with the ImageNet statistics, or leave them in [0, 1].",
)
@click.option(
    "--first-last",
    type=click.Choice(["quantized", "float"]),
    default="quantized",
    show_default=True,
    help="Whether the first and the last conv/linear layer follow --bits or stay in floating point.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The quantized IR (.json).",
    callback=nonempty_path,
)
def quantize_cmd(
    model: str,
    bits: str,
    calib: str,
    input_shape: str | None,
    passes: str,
    method: str,
    percentile: float,
    calib_images: int,
    normalization: str,
    first_last: str,
    output: str,
) -> None:
    """Give MODEL's conv/linear layers their bits and calibrate their activation ranges on data; write an IR
    with weights that `jaqc export` turns into a low-bit ONNX model (docs/quantize.md)."""
    from jaqc.frontend.loader import load_graph_spec, parse_shape
    from jaqc.passes import PassContext, PassManager, parse_pipeline
    from jaqc.quantize import assign_bits, calibrate, calibration_images, parse_bits_spec

    if not output.endswith(".json"):
        raise JaqcError(f"-o {output}: the quantized IR carries weights; give a .json path")
    rules = parse_bits_spec(bits)
    graph = load_graph_spec(model, parse_shape(input_shape) if input_shape is not None else None, with_weights=True)
    if passes:
        graph = PassManager(parse_pipeline(passes)).run(graph, PassContext()).graph
    assign_bits(graph, rules, first_last)
    images = calibration_images(calib, graph.inputs()[0].output_shape.dims, calib_images, normalization)
    status = Console(stderr=True).status(f"calibrating {graph.name} on {images.shape[0]} images ({method})")
    with status if sys.stderr.isatty() else contextlib.nullcontext():
        ranges = calibrate(graph, images, method, percentile)
    save_graph(graph, output, weights=True)
    out = console()
    out.print(f"{graph.name}: {len(ranges)} quantized layer(s), {method} calibration on {calib}")
    table = Table()
    for col, justify in (("layer", "left"), ("bits", "left"), ("input low", "right"), ("input high", "right")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    by_name = {r.name: r for r in ranges}
    from jaqc.quantize import weighted_layers

    for layer in weighted_layers(graph):
        r = by_name.get(layer.name)
        spec = "float" if layer.quant is None else str(layer.quant)
        table.add_row(layer.name, spec, "" if r is None else f"{r.low:.4g}", "" if r is None else f"{r.high:.4g}")
    out.print(table)
    out.print(f"wrote {output}; export it with: jaqc export {output} -o OUT/")
