"""``jaqc search --method hqnas``: the HQNAS search in a run directory, resumable exactly, with a lifelong mode.

One loop (Single-Path NAS style, no bi-level split): every step takes a batch of the whole train split and
minimises ``CE + λ·log(L / L_ref)``, with SGD (momentum, weight decay, cosine learning rate: the preset's JAQ
weight-step settings) on the weights and Adam (the preset's ``arch_lr``, cosine-annealed too) on the
thresholds. ``L`` is the expected latency of the relaxed choices on a fixed accelerator
(:class:`~.latency.LatencyTable`), ``L_ref`` the latency of the largest path (a constant: it leaves the
gradients unchanged, the logged term starts near 0). λ is ``preset.settings.lam``; because the term is a log,
``λ`` is the CE-loss increase accepted for an ``e``-fold latency reduction — the scale of Single-Path NAS's λ,
not of JAQ's normalised E_HW.

The derived subnet's batch-norm statistics and activation ranges are re-estimated on a few training batches
before it is evaluated (:func:`recalibrate`); ``summary.json``'s ``val_acc`` is its val accuracy (a fraction,
as in every method's summary).

Options (``options`` mapping, checked before anything is written):

* ``accelerator``: preset name or TOML/JSON file (default ``jaq-table2``), fixed for the whole search;
* ``objective``: what the hardware term measures, ``latency`` (HQNAS's, the default), ``energy`` or ``edap``
  (energy × latency on the fixed accelerator): ``log(X / X_ref)`` with ``X_ref`` the largest path's;
* ``lifelong``: a finished hqnas run directory; the search starts from its final supernet weights,
  thresholds and statistics (its latest checkpoint) and runs ``lifelong_epochs`` epochs
  (default ``max(1, epochs // 4)``); ``summary.json`` adds ``lifelong_from`` and ``time_saved_seconds`` (the
  previous run's ``search_seconds`` minus this one's), which is also printed;
* ``lifelong_epochs``: see above (only with ``lifelong``);
* ``temperature``: τ of the sigmoid relaxation ``σ((r − t)/τ)`` (default 0.25);
* ``threshold_lr``: Adam's learning rate for the thresholds (default: :func:`default_threshold_lr`, the
  preset's ``arch_lr`` or more on a short run, so that a threshold can reach its norm whatever the run length).

The outputs are JAQ's (:mod:`jaqc.search.runner`): ``config.json``, ``metrics.jsonl``, ``checkpoints/``,
``architecture.json``, ``subnet.jaqc`` / ``subnet.json`` (the derived subnet with the supernet's trained
weights), ``accelerator.json``, ``schedule.json``, ``summary.json`` and ``plots/``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from jaqc.core import JaqcError
from jaqc.data import batches_per_epoch, load_splits, make_loader
from jaqc.hw.accelerators import load_accelerator
from jaqc.progress import Progress

from ..distributed import require_single_process
from ..outputs import accuracy, hardware_figures, mapped_subnet, write_search_outputs
from ..presets import SearchPreset
from ..rundir import LoopPosition, RunDir, capture_rng_state, read_summary, restore_rng_state, write_summary
from ..runner import SearchOutcome, write_run_config
from .latency import LatencyTable
from .superkernel import HqnasSupernet, derived_subnet

#: Training batches that re-estimate the derived subnet's batch-norm statistics and activation ranges.
CALIBRATION_BATCHES = 20

#: The options of ``--method hqnas`` and their defaults.
OPTION_DEFAULTS: dict[str, Any] = {
    "accelerator": "jaq-table2",
    "lifelong": None,
    "lifelong_epochs": None,
    "temperature": 0.25,
    "objective": "latency",
    "threshold_lr": None,
}

#: How far (in units of the unitless norms, which start at about 1 against thresholds at 0) a threshold can travel
#: at least over a whole search: :func:`default_threshold_lr`.
THRESHOLD_TRAVEL = 2.0

#: What the hardware term ``log(X / X_ref)`` measures (``objective``): HQNAS's latency, or energy or EDAP
#: (energy × latency; the accelerator, and so the area, is fixed) for comparisons on those.
OBJECTIVES: tuple[str, ...] = ("latency", "energy", "edap")


def check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options with defaults filled in; a JaqcError naming the option for an unknown name or a bad value."""
    given = dict(options or {})
    unknown = sorted(set(given) - set(OPTION_DEFAULTS))
    if unknown:
        raise JaqcError(f"method hqnas: unknown option {unknown[0]!r}; it takes {', '.join(OPTION_DEFAULTS)}")
    merged = {**OPTION_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    if not isinstance(merged["accelerator"], str):
        raise JaqcError(
            f"method hqnas: option accelerator must be a preset name or a file, got {merged['accelerator']!r}"
        )
    if merged["lifelong"] is not None:
        if not isinstance(merged["lifelong"], str | os.PathLike):
            raise JaqcError(f"method hqnas: option lifelong must be a run directory, got {merged['lifelong']!r}")
        merged["lifelong"] = str(merged["lifelong"])
    epochs = merged["lifelong_epochs"]
    if epochs is not None:
        if merged["lifelong"] is None:
            raise JaqcError("method hqnas: option lifelong_epochs needs option lifelong (a previous hqnas run)")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise JaqcError(f"method hqnas: option lifelong_epochs must be an integer >= 1, got {epochs!r}")
    merged["temperature"] = float(_positive_number("temperature", merged["temperature"]))
    if merged["objective"] not in OBJECTIVES:
        raise JaqcError(
            f"method hqnas: option objective must be one of {', '.join(OBJECTIVES)}, got {merged['objective']!r}"
        )
    if merged["threshold_lr"] is not None:
        _positive_number("threshold_lr", merged["threshold_lr"])
    return merged


def _positive_number(name: str, value: Any) -> float:
    """``value`` when it is a finite number > 0; otherwise a JaqcError naming option ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise JaqcError(f"method hqnas: option {name} must be a number > 0, got {value!r}")
    return value


def default_threshold_lr(arch_lr: float, steps: int) -> float:
    """The thresholds' learning rate when option ``threshold_lr`` is not given: ``max(arch_lr, 2·TRAVEL / steps)``.

    Adam moves a threshold by about its learning rate per step, and the cosine schedule halves the sum, so over
    ``steps`` steps a threshold travels at most about ``lr · steps / 2``. Every threshold starts at 0 against a
    norm of about 1; with the preset's ``arch_lr`` alone a short run (digits32: 160 steps at 0.01, at most 0.8)
    cannot switch any gate off and derives the largest path by construction. The floor lets a threshold travel
    :data:`THRESHOLD_TRAVEL` (twice the initial gap) in any run; long runs (cifar10: 90 epochs) keep ``arch_lr``.
    """
    return max(arch_lr, 2.0 * THRESHOLD_TRAVEL / max(1, steps))


def hardware_ratio(latency: float, energy: float, table: Any, objective: str) -> float:
    """``X / X_ref`` of the objective (what the step records as ``e_hw``)."""
    latency_ratio = latency / table.reference_latency_s
    energy_ratio = energy / table.reference_energy_nj
    return {"latency": latency_ratio, "energy": energy_ratio, "edap": latency_ratio * energy_ratio}[objective]


def hardware_term(latency: torch.Tensor, energy: torch.Tensor, table: Any, objective: str) -> torch.Tensor:
    """``log(X / X_ref)`` of the expected latency, energy or EDAP against the largest path's."""
    latency_term = torch.log(latency / table.reference_latency_s)
    energy_term = torch.log(energy / table.reference_energy_nj)
    return {"latency": latency_term, "energy": energy_term, "edap": latency_term + energy_term}[objective]


def _accelerator(spec: str) -> Any:
    try:
        return load_accelerator(spec)
    except JaqcError as exc:
        raise JaqcError(f"method hqnas: option accelerator: {exc}") from None


@torch.no_grad()
def recalibrate(
    model: torch.nn.Module, dataset: Any, batch_size: int, seed: int, batches: int = CALIBRATION_BATCHES
) -> None:
    """Re-estimate ``model``'s batch-norm statistics (exact average) and activation ranges on ``batches``
    training batches (a fixed order), without touching a weight; leaves ``model`` in eval mode.

    The supernet's running statistics mix every path the thresholds visited during the search (a threshold
    near its norm flips the path back and forth), so the derived subnet's own statistics are measured anew,
    as one-shot NAS usually does before evaluating a subnet.
    """
    from jaqc.nn.quantizers import ActivationQuantizer

    momenta = {}
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            momenta[module] = module.momentum
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
        elif isinstance(module, ActivationQuantizer) and not module.learned:
            module.set_initialized(False)  # fresh min/max ranges (learned PACT ranges are kept)
    model.train()
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, seed=seed, epoch=0, drop_last=True)
    for index, (images, _labels) in enumerate(loader):
        if index >= batches:
            break
        model(images)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.eval()


class _Previous:
    """A finished hqnas run a lifelong search starts from."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        try:
            rundir = RunDir.open(self.path)
            config = rundir.read_config()
        except JaqcError as exc:
            raise JaqcError(f"method hqnas: option lifelong: {exc}") from None
        if not isinstance(config, dict) or config.get("method") != "hqnas":
            method = config.get("method", "jaq") if isinstance(config, dict) else None
            raise JaqcError(f"method hqnas: option lifelong: {self.path} is a {method} run, not an hqnas run")
        summary = read_summary(self.path)
        if summary is None:
            raise JaqcError(f"method hqnas: option lifelong: {self.path} has not finished (no summary.json)")
        self.summary = summary
        self.rundir = rundir

    def supernet_state(self) -> dict[str, torch.Tensor]:
        """The previous run's final supernet state (its latest checkpoint)."""
        return self.rundir.load_checkpoint().state["supernet"]


class HqnasRun:
    """One HQNAS search in one run directory (see the module docstring)."""

    method: ClassVar[str] = "hqnas"

    def __init__(
        self,
        preset: SearchPreset,
        run_dir: str | Path,
        *,
        resume: bool = False,
        recipe: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.options = check_options(options)
        require_single_process(self.method)
        self.accelerator = _accelerator(self.options["accelerator"])
        self.previous = _Previous(self.options["lifelong"]) if self.options["lifelong"] is not None else None
        self.preset = preset
        self.run_dir = Path(run_dir)
        settings = preset.settings
        if self.previous is None:
            self.epochs = settings.epochs
        else:
            self.epochs = self.options["lifelong_epochs"] or max(1, settings.epochs // 4)
        self.rundir = RunDir.open(self.run_dir, claim=True) if resume else RunDir.create(self.run_dir)
        if not resume:
            given = {k: v for k, v in dict(options or {}).items() if v is not None}
            options_json = {k: str(v) if isinstance(v, os.PathLike) else v for k, v in given.items()}
            write_run_config(self.rundir, self.method, preset, recipe, options_json)
        self.splits = load_splits(preset.data)
        self.train_set = self.splits.train
        self.steps_per_epoch = batches_per_epoch(len(self.train_set), preset.batch_size, drop_last=True)
        if self.steps_per_epoch < 1:
            raise JaqcError(f"batch size {preset.batch_size} is larger than the train split ({len(self.train_set)})")
        torch.manual_seed(settings.seed)
        self.net = HqnasSupernet(preset.supernet, self.options["temperature"])
        self.weight_opt = torch.optim.SGD(
            self.net.weight_parameters(), lr=settings.lr, momentum=settings.momentum,
            weight_decay=settings.weight_decay,
        )  # fmt: skip
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_opt, T_max=self.epochs * self.steps_per_epoch
        )
        given_lr = self.options["threshold_lr"]
        self.threshold_lr = (
            float(given_lr) if given_lr is not None
            else default_threshold_lr(settings.arch_lr, self.epochs * self.steps_per_epoch)
        )  # fmt: skip
        self.threshold_opt = torch.optim.Adam(self.net.threshold_parameters(), lr=self.threshold_lr, betas=(0.5, 0.999))
        # the thresholds anneal like the weights, so the path settles instead of flipping at the end
        self.threshold_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.threshold_opt, T_max=self.epochs * self.steps_per_epoch
        )
        self.table = LatencyTable(preset.supernet, self.accelerator, hw_model=preset.settings.hw_model)
        self.position = LoopPosition(epoch=0, batch=0, step=0)
        self.skipped_on_load: list[str] = []
        self._elapsed_before = 0.0
        self._started = time.perf_counter()
        self.search_seconds: float | None = None
        if resume:
            checkpoint = self.rundir.load_checkpoint()  # the newest intact one
            state = checkpoint.state
            self.net.load_state_dict(state["supernet"])
            self.weight_opt.load_state_dict(state["weight_opt"])
            self.schedule.load_state_dict(state["schedule"])
            self.threshold_opt.load_state_dict(state["threshold_opt"])
            self.threshold_schedule.load_state_dict(state["threshold_schedule"])
            restore_rng_state(state["rng"], {})
            self.position = LoopPosition.from_dict(state["position"])
            self._elapsed_before = float(state.get("elapsed_seconds", 0.0))
            self.skipped_on_load = list(state.get("skipped_on_load", []))
            self.rundir.rewind_metrics(self.position.step)
        elif self.previous is not None:
            self._load_previous(self.previous.supernet_state())

    def _load_previous(self, state: Mapping[str, torch.Tensor]) -> None:
        """Start from a previous run's supernet: everything whose shape matches; the blocks must match."""
        own = self.net.state_dict()
        for key, value in own.items():
            if key.startswith("blocks.") and (key not in state or state[key].shape != value.shape):
                raise JaqcError(
                    f"method hqnas: option lifelong: {self.previous.path if self.previous else ''} has another "
                    f"search space ({key} differs); lifelong search keeps the blocks and changes data or budget"
                )
        loaded = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        self.skipped_on_load = sorted(set(own) - set(loaded))
        self.net.load_state_dict({**own, **loaded})

    def elapsed_seconds(self) -> float:
        """Wall-clock seconds the search loop has run, over all the processes of a resumed run."""
        return self._elapsed_before + time.perf_counter() - self._started

    def _checkpoint(self, position: LoopPosition, epoch: int | None = None) -> None:
        state = {
            "supernet": self.net.state_dict(),
            "weight_opt": self.weight_opt.state_dict(),
            "schedule": self.schedule.state_dict(),
            "threshold_opt": self.threshold_opt.state_dict(),
            "threshold_schedule": self.threshold_schedule.state_dict(),
            "rng": capture_rng_state({}),
            "position": position.to_dict(),
            "elapsed_seconds": self.elapsed_seconds(),
            "skipped_on_load": self.skipped_on_load,
        }
        self.rundir.save_checkpoint(state, step=position.step, epoch=epoch)

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One update of the weights and thresholds on ``CE + λ·log(L/L_ref)``; returns the step's record."""
        net, table = self.net, self.table
        net.train()
        self.weight_opt.zero_grad(set_to_none=True)
        self.threshold_opt.zero_grad(set_to_none=True)
        logits, decisions = net.forward_with_decisions(images)
        ce = F.cross_entropy(logits, labels)
        latency, energy = table.expected(decisions)
        term = hardware_term(latency, energy, table, self.options["objective"])
        loss = ce + self.preset.settings.lam * term.to(ce.dtype)
        loss.backward()
        self.weight_opt.step()
        self.schedule.step()
        self.threshold_opt.step()
        self.threshold_schedule.step()
        return {
            "w_loss": float(ce.detach()),
            "a_loss": float(loss.detach()),
            "w_acc": float((logits.detach().argmax(-1) == labels).float().mean()),
            "lr": self.schedule.get_last_lr()[0],
            "latency_term": float(term.detach()),  # the hardware term, whatever its objective (the name is kept)
            "e_hw": hardware_ratio(float(latency.detach()), float(energy.detach()), table, self.options["objective"]),
            "expected_latency_s": float(latency.detach()),
            "expected_energy_nJ": float(energy.detach()),
            "expected_area_mm2": table.area_mm2,
        }

    def run(self, progress: bool | None = None, *, stop_after_steps: int | None = None) -> SearchOutcome | None:
        """Search to the last epoch and write the outputs (``stop_after_steps``: stop there, as if killed)."""
        preset = self.preset
        self._started = time.perf_counter()
        total = self.epochs * self.steps_per_epoch
        start = self.position
        with Progress("hqnas search", total, enabled=progress, completed=start.step) as bar:
            for epoch in range(start.epoch, self.epochs):
                skip = start.batch if epoch == start.epoch else 0
                loader = make_loader(
                    self.train_set, batch_size=preset.batch_size, shuffle=True, seed=preset.settings.seed,
                    epoch=epoch, skip_batches=skip, drop_last=True,
                )  # fmt: skip
                for batch, (images, labels) in enumerate(loader, start=skip):
                    step = epoch * self.steps_per_epoch + batch
                    record: dict[str, Any] = {"step": step + 1, "epoch": epoch}
                    record.update(self.step(images, labels))
                    self.rundir.append_metrics(record)
                    bar.advance(loss=record["a_loss"], acc=record["w_acc"], latency=record["e_hw"])
                    position = LoopPosition(epoch=epoch, batch=batch + 1, step=step + 1)
                    if (step + 1) % preset.checkpoint_every == 0:
                        self._checkpoint(position)
                    if stop_after_steps is not None and step + 1 >= stop_after_steps:
                        return None
                step = (epoch + 1) * self.steps_per_epoch
                _subnet, arch, val_acc = self.evaluate()
                self.rundir.append_metrics(
                    {"step": step, "epoch": epoch, "val_acc": val_acc, "derived": arch.to_json()}
                )
                self._checkpoint(LoopPosition(epoch=epoch + 1, batch=0, step=step), epoch=epoch)
        self.search_seconds = self.elapsed_seconds()
        return self.finish()

    def evaluate(self) -> tuple[Any, Any, float]:
        """The derived subnet (recalibrated, eval mode), its architecture and its accuracy on the val split."""
        subnet, arch = derived_subnet(self.net)
        recalibrate(subnet, self.train_set, self.preset.batch_size, self.preset.settings.seed + 1)
        return subnet, arch, accuracy(subnet, self.splits.val, self.preset.batch_size)

    def finish(self) -> SearchOutcome:
        """Derive the subnet, map it on the accelerator, write the outputs and plots."""
        from ..plots import plot_architecture, plot_hardware, plot_training

        preset, out = self.preset, self.run_dir
        search_seconds = self.search_seconds if self.search_seconds is not None else self.elapsed_seconds()
        start = time.perf_counter()
        subnet, arch, val_acc = self.evaluate()
        graph, schedule = mapped_subnet(
            subnet, subnet.example_input_shape, self.accelerator, model_name=f"{preset.name}-subnet",
            hw_model=preset.settings.hw_model,
        )  # fmt: skip
        write_search_outputs(out, graph, schedule, arch.to_json(), self.accelerator)
        table_latency, table_energy = self.table.at(arch.ops, arch.bits)
        summary: dict[str, Any] = {
            "method": self.method,
            "preset": preset.name,
            "architecture": arch.to_json(),
            "identity_blocks": self.table.space.identity_blocks(arch.ops),
            "accelerator": self.accelerator.to_json(),
            **hardware_figures(schedule),
            "val_acc": val_acc,
            "search_seconds": search_seconds,
            "search_epochs": self.epochs,
            "table_latency_ms": 1e3 * table_latency,
            "table_energy_mJ": 1e-6 * table_energy,
            "reference_latency_ms": 1e3 * self.table.reference_latency_s,
            "lam": preset.settings.lam,
            "threshold_lr": self.threshold_lr,
            "options": {k: v for k, v in self.options.items() if v is not None},
        }
        if self.previous is not None:
            previous_seconds = float(self.previous.summary["search_seconds"])
            summary["lifelong_from"] = str(self.previous.path)
            summary["previous_search_seconds"] = previous_seconds
            summary["time_saved_seconds"] = previous_seconds - search_seconds
            summary["lifelong_skipped"] = self.skipped_on_load
            print(
                f"hqnas lifelong search from {self.previous.path}: {search_seconds:.1f} s against "
                f"{previous_seconds:.1f} s, {summary['time_saved_seconds']:.1f} s saved"
            )
        summary["finish_seconds"] = time.perf_counter() - start
        write_summary(out, summary)
        records = self.rundir.read_metrics()
        plot_training(records, out / "plots" / "training.png", f"HQNAS search ({preset.name})")
        plot_hardware(records, out / "plots" / "hardware.png", f"expected latency, HQNAS ({preset.name})")
        plot_architecture(
            arch.ops, arch.bits, out / "plots" / "architecture.png", "derived subnet (HQNAS)",
            summary["identity_blocks"],
        )  # fmt: skip
        return SearchOutcome(run_dir=out, summary=summary)
