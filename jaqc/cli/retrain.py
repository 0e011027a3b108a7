"""``jaqc retrain``: fixed-precision QAT of a run's subnet or of any IR with weights."""

from __future__ import annotations

import click

from jaqc.core import JaqcError
from jaqc.nn.config import CLIPPINGS

from .app import cli, console, device_options, hw_model_option, nonempty_path
from .render import print_run_summary


@cli.command("retrain")
@click.argument("source")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="QAT epochs (run: the preset's, 600 CIFAR; IR: 10)."
)
@click.option(
    "--data",
    "data_root",
    default=None,
    help="CIFAR / ImageNet directory (a run's, if it moved).",
    callback=nonempty_path,
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch intra-op threads.")
@hw_model_option(None, "Default: the search run's (an IR's own, else deployment).")
@click.option(
    "--dataset",
    type=click.Choice(["digits", "digits32", "cifar10", "cifar100", "imagenet"]),
    default=None,
    help="[IR.json] the data set to train on (default digits); its images are resized to the model's input.",
)
@click.option("--accel", default=None, help="[IR.json] accelerator for the hardware figures (default: the IR's own).")
@click.option(
    "--float-epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Epochs trained in floating point first, then quantized (run: the preset's, 4 of digits32's 8; IR: 0).",
)
@click.option(
    "--init",
    type=click.Choice(["supernet", "scratch"]),
    default="supernet",
    show_default=True,
    help="Start from the subnet's weights (a run's: the supernet's) or from a fresh, seeded initialisation.",
)
@click.option(
    "--clipping",
    type=click.Choice(CLIPPINGS),
    default=None,
    help="Activation clipping of the quantizers: minmax (the batch range), mse (the range shrunk per bitwidth to "
    "the least quantization error: 2-bit activations stay trainable) or pact (learned). Default: the subnet's "
    "stored quantizers', else minmax.",
)
@click.option("--lr", type=float, default=0.01, show_default=True, help="[IR.json] learning rate.")
@click.option(
    "-o",
    "--output",
    default=None,
    type=click.Path(file_okay=False),
    help="[IR.json] output directory.",
    callback=nonempty_path,
)
@device_options
def retrain_cmd(
    source: str,
    epochs: int | None,
    data_root: str | None,
    threads: int,
    hw_model: str | None,
    dataset: str | None,
    accel: str | None,
    float_epochs: int | None,
    init: str,
    clipping: str | None,
    lr: float,
    output: str | None,
    device: str | None,
    amp: str | None,
) -> None:
    """Fixed-precision QAT of a search run's subnet (RUN_DIR) or of any IR with weights (IR.json, e.g. from
    `jaqc quantize`); report test accuracy with the hardware cost."""
    from pathlib import Path

    import torch

    torch.set_num_threads(threads)
    path = Path(source)
    if path.is_file() and path.suffix == ".json":
        _retrain_ir(
            path, epochs or 10, dataset or "digits", data_root, accel, lr, output, hw_model, device, amp,
            float_epochs or 0, init, clipping,
        )  # fmt: skip
        return
    ir_only = {"--dataset": dataset, "--accel": accel, "-o": output}
    given = [flag for flag, value in ir_only.items() if value is not None]
    if given:
        raise JaqcError(f"{', '.join(given)} apply to retraining an IR.json, not a run directory ({source})")
    from jaqc.search.retrain import retrain_run
    from jaqc.search.rundir import RunDir
    from jaqc.search.seeds import SEEDS_FILE, retrain_seeds, seeds_table

    if (path / SEEDS_FILE).is_file():  # a --seeds folder: retrain every finished seed, then the seeds' summary
        options = {
            "hw_model": hw_model, "device": device, "amp": amp or "off", "float_epochs": float_epochs, "init": init,
            "clipping": clipping,
        }  # fmt: skip
        summary = retrain_seeds(path, lambda seed_run: retrain_run(seed_run, epochs, data_root, **options))
        console().print(seeds_table(summary), markup=False)
        return
    summary = retrain_run(
        source, epochs, data_root, hw_model=hw_model, device=device, amp=amp or "off", float_epochs=float_epochs,
        init=init, clipping=clipping,
    )  # fmt: skip
    run = RunDir(path)
    origin = run.summary() or {}
    context = {k: origin[k] for k in ("method", "preset", "identity_blocks") if k in origin}
    print_run_summary({**summary, **context, "architecture": run.read_architecture()}, run.retrain_dir)


def _retrain_ir(
    path,
    epochs,
    dataset,
    data_root,
    accel,
    lr,
    output,
    hw_model,
    device,
    amp,
    float_epochs,
    init,
    clipping,  # type: ignore[no-untyped-def]
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
    summary = retrain(
        graph, data, output, epochs, lr=lr, hw_model=hw_model, device=device, amp=amp or "off",
        float_epochs=float_epochs, init=init, clipping=clipping,
    )  # fmt: skip
    out = console()
    out.print(
        f"{graph.name} retrained {epochs} epochs on {dataset}: test accuracy {summary['test_accuracy']:.2%} | "
        f"latency {summary['latency_ms']:.4f} ms | energy {summary['energy_mJ']:.4f} mJ | "
        f"area {summary['area_mm2']:.3f} mm² ({summary['hw_model']} model)"
    )
    out.print(f"wrote {output}/subnet.json (export it with jaqc export {output}/subnet.json -o OUT/)")
