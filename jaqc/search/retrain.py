"""Retraining a derived subnet with fixed-precision quantization-aware training (``jaqc retrain``).

The subnet comes from a search run directory (``subnet.json``, with the supernet's weights as the start)
or any subnet IR file with weights. It is built as a torch model (:func:`jaqc.nn.subnet.build_subnet`:
fixed-bit fake quantization with straight-through gradients); its first ``float_epochs`` epochs train it in
floating point (a float warm-up: 2-bit layers that train from scratch at 2 bits rarely leave chance), the
rest quantized; it is trained with SGD (momentum 0.9, weight decay
5e-4, cosine learning rate, gradients clipped to :data:`GRAD_CLIP_NORM`) on the train split, and evaluated on
the test split; a non-finite loss stops it with an error naming the step. Outputs go to
``RUN_DIR/retrain/``: ``metrics.jsonl``, ``subnet.json`` / ``subnet.jaqc`` (trained weights, mappings on
the searched accelerator), ``summary.json`` (test accuracy with latency, energy, area and EDAP) and
``plots/retrain.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from jaqc.core import JaqcError
from jaqc.data import DataConfig, load_splits, make_loader
from jaqc.device import autocast, check_amp, loader_options, resolve_device, to_device
from jaqc.ir import LayerGraph, load_graph
from jaqc.nn.config import CLIPPINGS, QuantizerConfig
from jaqc.progress import Progress

from .outputs import accuracy, hardware_figures, mapped_subnet, write_subnet
from .rundir import RunDir, claimed_run, write_summary

#: Gradients are clipped to this global L2 norm. Low-bit subnets (2-bit activations everywhere, narrow grouped
#: convs) leave batch-norm channels with near-zero variance, whose backward amplifies the gradient layer after
#: layer until it overflows; clipping keeps such a subnet trainable and binds only on gradient spikes elsewhere.
GRAD_CLIP_NORM = 5.0


def retrain(
    graph: LayerGraph,
    data: DataConfig,
    out_dir: str | Path,
    epochs: int,
    lr: float = 0.01,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool | None = None,
    hw_model: str | None = None,
    device: str | torch.device | None = None,
    amp: str = "off",
    float_epochs: int = 0,
    init: str = "supernet",
    clipping: str | None = None,
) -> dict[str, Any]:
    """QAT of the subnet ``graph`` on ``data`` on ``device`` (default: CUDA when available) with ``amp`` mixed
    precision, after ``float_epochs`` of its ``epochs`` in floating point; writes ``out_dir`` and returns the
    summary, whose hardware figures come from ``hw_model`` (default: the model the subnet was mapped with, else
    deployment). ``init``: start from the weights the graph carries (``supernet``) or from a fresh, seeded
    initialisation (``scratch``, :func:`jaqc.nn.subnet.reinitialize`); the summary records it. ``clipping``: the
    activation quantizers' clipping (:class:`jaqc.nn.config.Clipping`: ``minmax``, ``mse`` or ``pact``; default:
    the one the subnet's stored quantizer state says, else ``minmax``); the summary records it as
    ``activation_clipping``."""
    from jaqc.nn.subnet import RETRAIN_INITS

    if init not in RETRAIN_INITS:
        raise JaqcError(f"retrain init must be one of {', '.join(RETRAIN_INITS)}, got {init!r}")
    if clipping is not None and clipping not in CLIPPINGS:
        raise JaqcError(f"retrain clipping must be one of {', '.join(CLIPPINGS)}, got {clipping!r}")
    if graph.accelerator is None:
        raise JaqcError(f"subnet {graph.name!r} has no accelerator: retrain the output of a search (subnet.json)")
    if epochs < 1:
        raise JaqcError(f"retrain epochs must be >= 1, got {epochs}")
    if not 0 <= float_epochs < epochs:
        raise JaqcError(
            f"retrain float_epochs must be in 0..{epochs - 1} (at least one quantized epoch of {epochs}), "
            f"got {float_epochs}"
        )
    hw_model = hw_model or graph.hw_model or "deployment"
    target = resolve_device(device)
    check_amp(amp)
    out = Path(out_dir)
    with claimed_run(out):  # a retraining that fails leaves no half-written directory (it has no checkpoints)
        return _retrain(
            graph,
            data,
            out,
            RunDir.create(out),
            epochs,
            lr,
            batch_size,
            seed,
            progress,
            hw_model,
            target,
            amp,
            float_epochs,
            init,
            clipping,
        )


def _retrain(
    graph: LayerGraph,
    data: DataConfig,
    out: Path,
    rundir: RunDir,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: bool | None,
    hw_model: str,
    device: torch.device,
    amp: str,
    float_epochs: int,
    init: str,
    clipping: str | None,
) -> dict[str, Any]:
    from contextlib import nullcontext

    from jaqc.nn.subnet import build_subnet, quantization_disabled, reinitialize

    from .plots import plot_training

    torch.manual_seed(seed)
    graph, clipping = _with_clipping(graph, clipping)
    model = build_subnet(graph, QuantizerConfig(activation_clipping=clipping))
    if init == "scratch":
        reinitialize(model, seed)
    model = model.to(device)
    splits = load_splits(data)
    steps = epochs * max(1, len(splits.train) // batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    start = time.perf_counter()
    step = 0
    with Progress("retrain", steps, enabled=progress) as bar:
        for epoch in range(epochs):
            in_float = epoch < float_epochs
            tag = {"float": True} if in_float else {}
            with quantization_disabled(model) if in_float else nullcontext():
                model.train()
                loader = make_loader(
                    splits.train, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch, drop_last=True,
                    **loader_options(device),
                )  # fmt: skip
                for images, labels in loader:
                    images, labels = to_device((images, labels), device)
                    optimizer.zero_grad(set_to_none=True)
                    with autocast(device, amp):
                        logits = model(images)
                        loss = F.cross_entropy(logits, labels)
                    if not torch.isfinite(loss):
                        raise JaqcError(
                            f"retraining {graph.name!r} diverged: the loss is {float(loss.detach())} at step "
                            f"{step + 1} (epoch {epoch}); try a lower learning rate than {lr}"
                        )
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
                    optimizer.step()
                    schedule.step()
                    acc = float((logits.argmax(-1) == labels).float().mean())
                    step += 1  # records count the updates done (the run directory's convention)
                    loss_value = float(loss.detach())
                    rundir.append_metrics({"step": step, "epoch": epoch, "w_loss": loss_value, "w_acc": acc, **tag})
                    bar.advance(loss=loss_value, acc=acc, **({"phase": "float"} if in_float else {}))
                if len(splits.val):  # a float epoch's accuracy is the float network's
                    rundir.append_metrics({"step": step, "epoch": epoch, "val_acc": accuracy(model, splits.val), **tag})
    train_seconds = time.perf_counter() - start
    test_acc = accuracy(model, splits.test)
    model.cpu()  # the IR, its mapping and the exports are made on the CPU
    example = graph.inputs()[0].output_shape.dims
    trained, sched = mapped_subnet(model, example, graph.accelerator, name=graph.name, hw_model=hw_model)
    summary = {
        "test_accuracy": test_acc,
        "test_samples": len(splits.test),
        "epochs": epochs,
        "float_epochs": float_epochs,
        "init": init,
        "activation_clipping": clipping,
        "device": str(device),
        "amp": amp,
        "train_seconds": train_seconds,
        **hardware_figures(sched),
        "accelerator": graph.accelerator.to_json(),
    }
    if rundir.is_writer:
        write_subnet(out, trained, sched)
        write_summary(out, summary)
        plot_training(rundir.read_metrics(), out / "plots" / "retrain.png", f"retraining {graph.name}")
    return summary


def _with_clipping(graph: LayerGraph, clipping: str | None) -> tuple[LayerGraph, str]:
    """``graph`` ready to build with activation ``clipping`` (None: the one its stored quantizer state says, else
    ``minmax``), and that clipping. A layer whose stored state comes from another clipping loses it (a copy of
    the graph does): training observes the range afresh, as it does from scratch."""
    from jaqc.nn.subnet import stored_clipping

    stored = {stored_clipping(layer) for layer in graph if layer.quant is not None} - {None}
    if clipping is None:
        if len(stored) > 1:
            found = ", ".join(sorted(stored))
            raise JaqcError(
                f"subnet {graph.name!r} stores activation quantizers of several clippings ({found}); give the "
                "retraining's clipping"
            )
        return graph, next(iter(stored), "minmax")
    if stored <= {clipping}:
        return graph, clipping
    graph = graph.clone()
    for layer in graph:
        if stored_clipping(layer) not in (None, clipping):
            for key in [k for k in layer.weights if k.startswith("act_quant.")]:
                del layer.weights[key]
    return graph, clipping


def retrain_run(
    run_dir: str | Path,
    epochs: int | None = None,
    data_root: str | None = None,
    progress: bool | None = None,
    hw_model: str | None = None,
    device: str | torch.device | None = None,
    amp: str = "off",
    float_epochs: int | None = None,
    init: str = "supernet",
    clipping: str | None = None,
) -> dict[str, Any]:
    """Retrain the subnet of a finished search run (its preset gives the data and the schedule; ``hw_model``
    overrides the run's hardware model for the retrained subnet's figures; ``float_epochs`` the preset's float
    warm-up, which a shorter ``epochs`` than the preset's shortens to leave a quantized epoch; ``init``: from the
    supernet's weights or from scratch; ``clipping``: the activation clipping, see :func:`retrain`)."""
    from .runner import preset_from_run

    run = RunDir(run_dir)
    preset, _ = preset_from_run(run.path, data_root)
    if not run.subnet_path.exists():
        raise JaqcError(
            f"{run.path}: no subnet.json; the search has not finished (resume it with jaqc search --resume)"
        )
    graph = load_graph(run.subnet_path)
    return retrain(
        graph, preset.data, run.retrain_dir, epochs or preset.retrain_epochs, preset.retrain_lr,
        preset.batch_size, preset.settings.seed, progress, hw_model or preset.settings.hw_model, device, amp,
        _float_epochs(preset.retrain_float_epochs, epochs, float_epochs), init, clipping,
    )  # fmt: skip


def _float_epochs(preset_value: int, epochs: int | None, given: int | None) -> int:
    if given is not None:
        return given
    return preset_value if epochs is None else min(preset_value, epochs - 1)
