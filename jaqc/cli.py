"""The ``jaqc`` command line: thin commands over library calls.

Errors a user can cause (bad model spec, bad shape, bad IR, unknown pass) print one line and exit with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback

import click
from rich.console import Console
from rich.table import Table

from jaqc import __version__
from jaqc.core import JaqcError
from jaqc.ir import graph_to_json, print_graph, save_graph, verify

_state = {"debug": False}


def _nonempty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse an empty path (``-o ''`` would otherwise mean the current folder)."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("an empty path; give a file or folder name", ctx=ctx, param=param)
    return value


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
@click.argument("model", required=False)
@click.option(
    "--supernet",
    "supernet",
    default=None,
    metavar="PRESET",
    help="Dump the FBNet supernet of a preset (cifar10, cifar100, imagenet, tiny) with its choice layers.",
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
    callback=_nonempty,
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
            _print_schedule_table(model, schedule)
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


def hw_model_option(default: str | None = "deployment", note: str = ""):  # type: ignore[no-untyped-def]
    """``--hw-model NAME``: which hardware cost model prices the command's layers (docs/cost_model.md)."""
    from jaqc.ir.accelerator import HW_MODELS

    return click.option(
        "--hw-model",
        "hw_model",
        type=click.Choice(HW_MODELS),
        default=default,
        show_default=default is not None,
        help="Hardware cost model: deployment (requantized outputs, packed depthwise layers) or simulator (the "
        "original BitFusion simulator, bit for bit)." + (f" {note}" if note else ""),
    )


def _accelerator_title(model: str, acc: dict, note: str) -> str:  # type: ignore[type-arg]
    """``MODEL on NAME: RxC PEs, W/I/O buffers ... KB, F MHz (NOTE)`` for an accelerator's JSON form."""
    return (
        f"{model} on {acc.get('name') or 'accelerator'}: {acc['pe_rows']}x{acc['pe_cols']} PEs, "
        f"W/I/O buffers {acc['wbuf_kb']}/{acc['ibuf_kb']}/{acc['obuf_kb']} KB, {acc['freq_mhz']:g} MHz ({note})"
    )


#: The per-layer columns the mapping tables of ``jaqc map`` and ``jaqc dump --mappings`` share (head, then tail).
_LAYER_HEAD = [("layer", "left"), ("kind", "left"), ("bits", "left"), ("tile b/ow/oh/ic/oc", "left"),
               ("order", "left"), ("compute", "right"), ("stall", "right")]  # fmt: skip


def _layer_cells(r: dict) -> list[str]:  # type: ignore[type-arg]
    """The shared leading cells of one row of :func:`jaqc.hw.mapping.report` output."""
    from jaqc.layer_summary import human

    tile = "/".join(str(v) for v in r["tile"].values())
    return [r["name"], r["kind"], r["bits"], tile, r["loop_order"], human(r["cycles"]["compute"]),
            human(r["cycles"]["stall"])]  # fmt: skip


def _print_layer_table(title: str, tail: list[tuple[str, str]], rows: list[list[str]], totals: dict) -> None:  # type: ignore[type-arg]
    """A mapping table (the shared columns, then ``tail``) and the totals line under it."""
    table = Table(title=title, title_justify="left")
    for col, justify in _LAYER_HEAD + tail:
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    out = console()
    out.print(table)
    t = totals
    out.print(
        f"latency {t['latency_ms']:.4f} ms | energy {t['energy_mJ']:.4f} mJ | area {t['area_mm2']:.3f} mm² | "
        f"EDP {t['edp_mJ_ms']:.4g} mJ·ms | EDAP {t['edap_mJ_ms_mm2']:.4g} mJ·ms·mm² | {t['layers']} layers, "
        f"{t['cycles']:,} cycles"
    )


def _print_schedule_table(source: str, schedule: dict) -> None:  # type: ignore[type-arg]
    from jaqc.export.schedule import schedule_hw_model
    from jaqc.hw.mapping.report import schedule_rows

    note = f"{schedule_hw_model(schedule)} model, schedule of {source}"
    title = _accelerator_title(schedule["model"], schedule["accelerator"], note)
    tail = [("bound", "left"), ("energy µJ", "right"), ("ibuf/wbuf/obuf", "right")]
    rows = [
        [*_layer_cells(r), r["bound"], f"{r['energy_nJ'] / 1e3:.2f}",
         "/".join(f"{r['occupancy'][b]:.1%}" for b in ("ibuf", "wbuf", "obuf"))]
        for r in schedule_rows(schedule)
    ]  # fmt: skip
    _print_layer_table(title, tail, rows, schedule["totals"])


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
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Output directory.", callback=_nonempty
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
    callback=_nonempty,
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
    from jaqc.ir import save_graph
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
    title = _accelerator_title(name, accelerator.to_json(), f"{hw_model} model, {space} space, min {objective}")
    tail = [("util", "right"), ("bound", "left"), ("core µJ", "right"), ("SRAM µJ", "right"),
            ("DRAM µJ", "right"), ("total µJ", "right")]  # fmt: skip
    cells = [
        [*_layer_cells(r), f"{r['utilization']:.0%}", r["bound"],
         *(f"{r['energy_nJ'][k] / 1e3:.2f}" for k in ("core", "sram", "dram", "total"))]
        for r in rows
    ]  # fmt: skip
    _print_layer_table(title, tail, cells, totals)


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


#: ``--data`` of search and compare.
data_option = click.option(
    "--data",
    "data_root",
    default=None,
    help="CIFAR / ImageNet directory (tiny uses the built-in digits).",
    callback=_nonempty,
)


@cli.command("search")
@click.option("--preset", default="tiny", show_default=True, help="tiny (digits), cifar10, cifar100, imagenet.")
@data_option
@click.option(
    "--run-dir",
    default=None,
    help="Where to write the run (default runs/<preset>); must be new or empty.",
    callback=_nonempty,
)
@click.option(
    "--resume",
    "resume",
    default=None,
    metavar="RUN_DIR",
    help="Continue an interrupted run exactly.",
    callback=_nonempty,
)
@click.option(
    "--force",
    is_flag=True,
    help="With --resume of a finished run: redo its final phase (derivation, mapping, outputs) from the last "
    "checkpoint; the outputs equal the first ones but for the timings.",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Search epochs (preset default: 90 CIFAR, 45 ImageNet)."
)
@click.option("--lam", type=float, default=None, help="λ weighting the normalised hardware cost E_HW.")
@click.option("--lambda-e", type=float, default=None, help="λE of E_HW (energy).")
@click.option("--lambda-l", type=float, default=None, help="λL of E_HW (latency).")
@click.option("--lambda-a", type=float, default=None, help="λA of E_HW (area).")
@click.option(
    "--passes",
    default=None,
    help="[jaq] pass pipeline run on the traced supernet before it is priced: passes that remove a choice layer's "
    "candidates or narrow its bits restrict that block (docs/search.md, 'Search passes').",
)
@click.option(
    "--space",
    default=None,
    metavar="SPEC",
    callback=_nonempty,
    help="[jaq, autonba] your own search space instead of FBNet: 'module:attribute' or 'file.py:attribute', a "
    "jaqc.nn.space.SearchSpace subclass (docs/search.md, 'Your own search space').",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Any integer in 0..2^63-1.")
@click.option(
    "--method",
    type=click.Choice(["jaq", "autonba", "haq", "hqnas"]),
    default="jaq",
    show_default=True,
    help="jaq | autonba (Auto-NBA) | haq (HAQ, bits of a fixed network) | hqnas (HQNAS). See docs/search.md.",
)
@click.option("--accelerator", default=None, help="[haq, hqnas] fixed accelerator: preset name or TOML/JSON file.")
@click.option(
    "--network",
    default=None,
    help="[haq] the fixed network: a run directory or an IR .json with weights.",
    callback=_nonempty,
)
@click.option("--budget", type=float, default=None, help="[haq] resource budget, a fraction of the 8-bit design.")
@click.option("--budget-kind", type=click.Choice(["latency", "energy", "edap"]), default=None, help="[haq]")
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="[haq] DDPG episodes (warm-up included).")
@click.option(
    "--lifelong",
    default=None,
    metavar="RUN_DIR",
    help="[hqnas] re-search from a previous hqnas run.",
    callback=_nonempty,
)
@click.option(
    "--lifelong-epochs", type=click.IntRange(min=1), default=None, help="[hqnas] epochs of a --lifelong re-search."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch intra-op threads (1 is fastest for the small tensors of tiny on a 2-core CPU).",
)
@hw_model_option(None, "Default: deployment (a resumed run keeps its own).")
def search_cmd(
    preset: str,
    data_root: str | None,
    run_dir: str | None,
    resume: str | None,
    epochs: int | None,
    lam: float | None,
    lambda_e: float | None,
    lambda_l: float | None,
    lambda_a: float | None,
    seed: int | None,
    method: str,
    accelerator: str | None,
    network: str | None,
    budget: float | None,
    budget_kind: str | None,
    episodes: int | None,
    lifelong: str | None,
    lifelong_epochs: int | None,
    threads: int,
    hw_model: str | None,
    force: bool,
    passes: str | None,
    space: str | None,
) -> None:
    """Jointly search architecture, bits and accelerator (JAQ, or a baseline method); write a run directory."""
    import torch

    torch.set_num_threads(threads)
    from jaqc.hw.generator.objective import HardwareWeights
    from jaqc.search.distributed import shutdown
    from jaqc.search.methods import resume_run, start_run
    from jaqc.search.presets import search_preset
    from jaqc.search.rundir import claimed_run

    options = _method_options(
        method, accelerator=accelerator, network=network, budget=budget, budget_kind=budget_kind,
        episodes=episodes, lifelong=lifelong, lifelong_epochs=lifelong_epochs,
    )  # fmt: skip
    if resume is not None:
        if options or hw_model is not None or passes is not None or space is not None:
            own = (("hw_model", hw_model), ("passes", passes), ("space", space))
            extra = [name for name, value in own if value is not None]
            given = sorted([*options, *extra])
            raise JaqcError(f"--resume continues a run with its own options; drop {', '.join(given)}")

        from jaqc.search.rundir import RunDir

        if RunDir(resume).finished and not force:
            raise JaqcError(
                f"{resume}: the search finished already (summary.json); nothing to resume and nothing was changed "
                "(retrain or export it, or add --force to redo its final phase from the last checkpoint)"
            )
        run_path = resume
    elif force:
        raise JaqcError("--force applies to --resume (redo a finished run's final phase)")
    else:
        if passes is not None and method != "jaq":
            raise JaqcError(f"--passes applies to --method jaq, not {method}")
        if space is not None and method not in ("jaq", "autonba"):
            raise JaqcError(f"--space applies to --method jaq / autonba, not {method} (its network is FBNet's)")
        if space is not None:
            from jaqc.nn.space import resolve_space_spec

            space = resolve_space_spec(space)  # a file path made absolute: the recipe must work from anywhere
        given = (
            ("epochs", epochs), ("lam", lam), ("seed", seed), ("hw_model", hw_model), ("passes", passes),
            ("space", space),
        )  # fmt: skip
        overrides: dict = {k: v for k, v in given if v is not None}
        if any(v is not None for v in (lambda_e, lambda_l, lambda_a)):
            base = HardwareWeights()
            overrides["hw"] = HardwareWeights(
                energy=base.energy if lambda_e is None else lambda_e,
                latency=base.latency if lambda_l is None else lambda_l,
                area=base.area if lambda_a is None else lambda_a,
            )
        chosen = search_preset(preset, data_root, **overrides)
        recipe = {"preset": preset, "data_root": data_root, "overrides": _jsonable(overrides)}
        run_path = run_dir or f"runs/{preset}"
    # a run that fails before its first checkpoint (bad data, a bad option found late) leaves nothing behind
    try:
        with claimed_run(run_path):
            if resume is not None:
                run = resume_run(resume, data_root)
            else:
                run = start_run(method, chosen, run_path, recipe=recipe, options=options)
            outcome = run.run()
    finally:
        shutdown()
    assert outcome is not None
    if getattr(run, "rank", 0) == 0:
        _print_summary(outcome.summary, outcome.run_dir)


#: The method options of ``jaqc search`` and the methods that take them.
_METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "accelerator": ("haq", "hqnas"),
    "network": ("haq",),
    "budget": ("haq",),
    "budget_kind": ("haq",),
    "episodes": ("haq",),
    "lifelong": ("hqnas",),
    "lifelong_epochs": ("hqnas",),
}


def _method_options(method: str, **given: object) -> dict[str, object]:
    """The method options that were given; an option the method does not take is an error."""
    options = {k: v for k, v in given.items() if v is not None}
    for key in options:
        if method not in _METHOD_OPTIONS[key]:
            flag = "--" + key.replace("_", "-")
            raise JaqcError(f"{flag} applies to --method {' / '.join(_METHOD_OPTIONS[key])}, not {method}")
    return options


def _jsonable(overrides: dict) -> dict:  # type: ignore[type-arg]
    import attrs

    return {k: attrs.asdict(v) if attrs.has(type(v)) else v for k, v in overrides.items()}


def _print_summary(summary: dict, run_dir) -> None:  # type: ignore[no-untyped-def, type-arg]
    from jaqc.hw.mapping.report import dataflow_note

    out = console()
    arch = summary["architecture"]
    table = Table(title=f"derived subnet ({run_dir})", title_justify="left")
    if summary.get("method") == "haq":  # HAQ's bits are per layer of a fixed network
        for col in ("layer", "w bits", "a bits"):
            table.add_column(col)
        for name, (w, a) in zip(arch["ops"], arch["bits"], strict=True):
            table.add_row(name, str(w), str(a))
    else:
        for col in ("block", "op", "w bits", "a bits"):
            table.add_column(col)
        identity = summary.get("identity_blocks") or [False] * len(arch["ops"])  # (older runs: not recorded)
        for i, (op, (w, a)) in enumerate(zip(arch["ops"], arch["bits"], strict=True)):
            if identity[i]:
                table.add_row(str(i), "skip (identity)", "–", "–")
            else:
                table.add_row(str(i), op, str(w), str(a))
    out.print(table)
    acc = summary["accelerator"]
    out.print(
        f"accelerator: {acc['pe_rows']}x{acc['pe_cols']} PEs, W/I/O buffers {acc['wbuf_kb']}/{acc['ibuf_kb']}/"
        f"{acc['obuf_kb']} KB, {acc['dataflow']}"
    )
    note = dataflow_note(acc)
    if note:
        out.print(f"note: {note}")
    line = (
        f"latency {summary['latency_ms']:.4f} ms | energy {summary['energy_mJ']:.4f} mJ | "
        f"area {summary['area_mm2']:.3f} mm² | EDAP {summary['edap_mJ_ms_mm2']:.4g} mJ·ms·mm²"
    )
    if "test_accuracy" in summary:
        line = f"test accuracy {summary['test_accuracy']:.2%} | " + line
    out.print(line)


@cli.command("retrain")
@click.argument("source")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="QAT epochs (run: the preset's, 600 CIFAR; IR: 10)."
)
@click.option(
    "--data", "data_root", default=None, help="CIFAR / ImageNet directory (a run's, if it moved).", callback=_nonempty
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch intra-op threads.")
@hw_model_option(None, "Default: the search run's (an IR's own, else deployment).")
@click.option(
    "--dataset",
    type=click.Choice(["digits", "cifar10", "cifar100", "imagenet"]),
    default=None,
    help="[IR.json] the data set to train on (default digits); its images are resized to the model's input.",
)
@click.option("--accel", default=None, help="[IR.json] accelerator for the hardware figures (default: the IR's own).")
@click.option("--lr", type=float, default=0.01, show_default=True, help="[IR.json] learning rate.")
@click.option(
    "-o",
    "--output",
    default=None,
    type=click.Path(file_okay=False),
    help="[IR.json] output directory.",
    callback=_nonempty,
)
def retrain_cmd(
    source: str,
    epochs: int | None,
    data_root: str | None,
    threads: int,
    hw_model: str | None,
    dataset: str | None,
    accel: str | None,
    lr: float,
    output: str | None,
) -> None:
    """Fixed-precision QAT of a search run's subnet (RUN_DIR) or of any IR with weights (IR.json, e.g. from
    `jaqc quantize`); report test accuracy with the hardware cost."""
    from pathlib import Path

    import torch

    torch.set_num_threads(threads)
    path = Path(source)
    if path.is_file() and path.suffix == ".json":
        _retrain_ir(path, epochs or 10, dataset or "digits", data_root, accel, lr, output, hw_model)
        return
    ir_only = {"--dataset": dataset, "--accel": accel, "-o": output}
    given = [flag for flag, value in ir_only.items() if value is not None]
    if given:
        raise JaqcError(f"{', '.join(given)} apply to retraining an IR.json, not a run directory ({source})")
    from jaqc.search.retrain import retrain_run
    from jaqc.search.rundir import RunDir

    summary = retrain_run(source, epochs, data_root, hw_model=hw_model)
    run = RunDir(path)
    origin = run.summary() or {}
    context = {k: origin[k] for k in ("method", "preset", "identity_blocks") if k in origin}
    _print_summary({**summary, **context, "architecture": run.read_architecture()}, run.retrain_dir)


def _retrain_ir(
    path,
    epochs,
    dataset,
    data_root,
    accel,
    lr,
    output,
    hw_model,  # type: ignore[no-untyped-def]
) -> None:
    from jaqc.data import DataConfig
    from jaqc.hw.accelerators import load_accelerator
    from jaqc.ir import load_graph
    from jaqc.search.retrain import retrain

    if output is None:
        raise JaqcError(f"retraining {path} needs an output directory: give -o OUT/")
    graph = load_graph(path)
    if accel is not None:
        graph.accelerator = load_accelerator(accel)
    elif graph.accelerator is None:
        graph.accelerator = load_accelerator("jaq-table2")
    dims = graph.inputs()[0].output_shape.dims if graph.inputs() else ()
    if len(dims) != 4 or dims[2] != dims[3]:
        raise JaqcError(f"{path}: retraining needs a square image input [N, C, H, H], the IR takes {list(dims)}")
    data = DataConfig(name=dataset, root=data_root, resolution=dims[2], channels=dims[1])
    summary = retrain(graph, data, output, epochs, lr=lr, hw_model=hw_model)
    out = console()
    out.print(
        f"{graph.name} retrained {epochs} epochs on {dataset}: test accuracy {summary['test_accuracy']:.2%} | "
        f"latency {summary['latency_ms']:.4f} ms | energy {summary['energy_mJ']:.4f} mJ | "
        f"area {summary['area_mm2']:.3f} mm² ({summary['hw_model']} model)"
    )
    out.print(f"wrote {output}/subnet.json (export it with jaqc export {output}/subnet.json -o OUT/)")


@cli.command("compare")
@click.option("--preset", default="tiny", show_default=True, help="Search preset shared by every method.")
@data_option
@click.option(
    "--methods",
    default="jaq,autonba,haq,hqnas,uniform8,uniform4",
    show_default=True,
    help="Comma-separated: jaq, autonba, haq, hqnas, uniform8, uniform4.",
)
@click.option("--lambdas", default=None, help="λ values for jaq/autonba/hqnas, e.g. 0.01,0.1 (default: the preset's).")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Search epochs of every method (default: the preset's)."
)
@click.option(
    "--retrain-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="QAT epochs of every retraining (preset default).",
)
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="HAQ episodes (default: HAQ's).")
@click.option("--ablation/--no-ablation", default=True, show_default=True, help="Also run the Table 7 ablation.")
@click.option("--ablation-seeds", default=None, help="Seeds of the ablation searches, e.g. 0,1,2 (default: --seed).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Any integer in 0..2^63-1.")
@click.option(
    "-o", "--out", "out_dir", default="runs/compare", show_default=True, help="Output directory.", callback=_nonempty
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch intra-op threads.")
@hw_model_option()
def compare_cmd(
    preset: str,
    data_root: str | None,
    methods: str,
    lambdas: str | None,
    epochs: int | None,
    retrain_epochs: int | None,
    episodes: int | None,
    ablation: bool,
    ablation_seeds: str | None,
    seed: int | None,
    out_dir: str,
    threads: int,
    hw_model: str,
) -> None:
    """Compare search methods on one cost model: table, Pareto plot, Table 7 ablation (resumable)."""
    from pathlib import Path

    import torch

    torch.set_num_threads(threads)
    from jaqc.search.compare import CompareSettings, Comparison, parse_lambdas, parse_methods, parse_seeds

    settings = CompareSettings(
        preset=preset, data_root=data_root, methods=parse_methods(methods), lambdas=parse_lambdas(lambdas),
        epochs=epochs, retrain_epochs=retrain_epochs, episodes=episodes, ablation=ablation, seed=seed,
        ablation_seeds=parse_seeds(ablation_seeds), overrides={"hw_model": hw_model},
    )  # fmt: skip
    out = console()
    result = Comparison(out_dir, settings, log=lambda msg: out.print(f"[bold]compare[/bold] {msg}")).run()
    table = Table(title=f"jaqc compare ({preset}, {hw_model} hardware model)", title_justify="left")
    for col in ("run", "test acc", "latency ms", "energy mJ", "area mm²", "EDAP", "w/a bits", "search s"):
        table.add_column(col)
    for r in result["rows"]:
        table.add_row(
            r["label"], f"{r['test_accuracy']:.2%}", f"{r['latency_ms']:.4g}", f"{r['energy_mJ']:.4g}",
            f"{r['area_mm2']:.4g}", f"{r['edap_mJ_ms_mm2']:.4g}", f"{r['mean_w_bits']:.2f}/{r['mean_a_bits']:.2f}",
            f"{r['search_seconds']:.0f}",
        )  # fmt: skip
    out.print(table)
    if result["ablation"]:
        abl = Table(title="Table 7 ablation: share of blocks at 2 bits (λ = 0)", title_justify="left")
        for col in ("variant", "seeds", "blocks", "w at 2 bits", "a at 2 bits"):
            abl.add_column(col)
        for a in result["ablation"]:
            seeds = ",".join(str(x) for x in a["seeds"])
            abl.add_row(a["variant"], seeds, str(a["layers"]), f"{a['weight_2bit']:.0%}", f"{a['activation_2bit']:.0%}")
        out.print(abl)
    root = Path(out_dir)
    out.print(f"wrote {root / 'compare.md'}, {root / 'compare.json'}, {root / 'pareto.png'}")


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
    except OSError as exc:  # an environment failure no loader caught (a full disk, a vanished file): one line too
        if _state["debug"]:
            traceback.print_exc()
        else:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
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
