"""Running a JAQ search end to end in a run directory (``jaqc search``), resumable exactly.

The run directory holds ``config.json`` (the preset), ``metrics.jsonl`` (one record per step and per
epoch), ``checkpoints/`` (atomic; every ``checkpoint_every`` steps and every epoch) and, at the end:
``architecture.json`` (op and bits per block), ``subnet.jaqc`` / ``subnet.json`` (the derived subnet's IR;
the JSON with the supernet's weights for retraining), ``accelerator.json``, ``schedule.json`` (every layer's
mapping on the accelerator, docs/schedule.md), ``summary.json`` and ``plots/*.png``.

Resuming continues exactly: the engine's and optimisers' state, every RNG (Python, numpy, torch, the Gumbel
generator) and the loop position come from the latest checkpoint; each epoch's batch order depends only on
(seed, epoch) and the architecture batch of step s is batch ``s mod n`` of architecture epoch ``s div n``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from attrs import frozen

from jaqc import __version__
from jaqc.core import JaqcError
from jaqc.data import batches_per_epoch, load_splits, make_loader, split_for_search
from jaqc.device import loader_options, resolve_device, to_cpu
from jaqc.progress import Progress

from .distributed import fingerprint, init_from_env, ranks_agree
from .jaq import JaqSearch, JaqSearchSettings, choice_margins
from .outputs import accuracy, hardware_figures, mapped_subnet, write_search_outputs
from .presets import SearchPreset
from .rundir import LoopPosition, RunDir, capture_rng_state, restore_rng_state, write_summary

CONFIG_FORMAT = "jaqc.search-run"


@frozen(kw_only=True)
class SearchOutcome:
    """What a finished search produced (paths inside the run directory and the headline figures)."""

    run_dir: Path
    summary: dict[str, Any]


def preset_to_json(preset: SearchPreset) -> dict[str, Any]:
    """The preset as a JSON-ready dict (the config snapshot)."""

    def plain(value: Any) -> Any:
        if isinstance(value, JaqSearchSettings):
            return value.to_json()
        if attrs.has(type(value)):
            return {k: plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
            return value.value
        return value

    return plain(preset)


def bilevel_split(preset: SearchPreset, train: Any, arch_fraction: float, world: int = 1) -> tuple[Any, Any, int, int]:
    """The weight and architecture splits of ``train`` (``arch_fraction`` of it, stratified, seeded) and their
    batches per epoch on each of ``world`` ranks; an error when a split holds no whole batch."""
    weight_set, arch_set = split_for_search(train, arch_fraction, preset.settings.seed)
    bs = preset.batch_size
    steps = batches_per_epoch(len(weight_set), bs, drop_last=True, world_size=world)
    arch_batches = batches_per_epoch(len(arch_set), bs, drop_last=True, world_size=world)
    if steps < 1 or arch_batches < 1:
        raise JaqcError(
            f"batch size {bs} is larger than the weight ({len(weight_set)}) or architecture ({len(arch_set)}) split"
        )
    return weight_set, arch_set, steps, arch_batches


def write_run_config(
    rundir: RunDir,
    method: str,
    preset: SearchPreset,
    recipe: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
) -> None:
    """``config.json`` of a search run of any method: its format, method, recipe (what ``--resume`` and
    ``jaqc retrain`` rebuild the preset from), the full preset and, when given, the method's options and the
    run's step schedule (:meth:`JaqSearchSettings.schedule_record`)."""
    config: dict[str, Any] = {
        "format": CONFIG_FORMAT,
        "jaqc_version": __version__,
        "method": method,
        "recipe": recipe or {"preset": preset.name, "data_root": None, "overrides": {}},
        "preset": preset_to_json(preset),
    }
    if options is not None:
        config["options"] = options
    if schedule is not None:
        config["schedule"] = schedule
    rundir.write_config(config)


def preset_from_run(run_dir: str | Path, data_root: str | None = None) -> tuple[SearchPreset, dict[str, Any]]:
    """The preset a run was started with (its recipe: preset name, data directory, overrides)."""
    from .presets import search_preset

    config = RunDir.open(run_dir).read_config()
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise JaqcError(f"{run_dir}: not a jaqc search run directory (config.json has no {CONFIG_FORMAT!r} format)")
    recipe = dict(config["recipe"])
    if data_root is not None:
        recipe["data_root"] = data_root
    return search_preset(recipe["preset"], recipe.get("data_root"), **recipe.get("overrides", {})), recipe


class SearchRun:
    """One search in one run directory (see the module docstring).

    It is also the template of the other bi-level methods (Auto-NBA): a subclass sets :attr:`method`,
    :attr:`arch_fraction` and :attr:`progress_label` and overrides the ``_`` hooks (options, preset, engine,
    RNGs, the end-of-epoch record) and :meth:`finish`; the loop, checkpoints and resuming are shared.
    """

    method = "jaq"
    #: The share of the training data that the architecture steps read (JAQ: 80/20).
    arch_fraction = 0.2
    progress_label = "search"

    def __init__(
        self,
        preset: SearchPreset,
        run_dir: str | Path,
        resume: bool = False,
        recipe: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.options = self._parse_options(options)  # checked before anything is written
        self.run_dir = Path(run_dir)
        #: Where the supernet trains (docs/search.md, "Devices and mixed precision"); not part of the recipe: a
        #: run may resume on another device.
        self.device = resolve_device(device)
        self.rank, self.world = init_from_env(self.device)
        if resume:
            self.rundir = RunDir.open(self.run_dir, rank=self.rank, claim=True)
        else:
            self.rundir = RunDir.create(self.run_dir, rank=self.rank)
        if resume:
            self.options = self._resumed_options(self.rundir.read_config(), options)
        self.preset = self._search_preset(preset.scheduled())
        self.splits = load_splits(self.preset.data)
        self.weight_set, self.arch_set, self.steps_per_epoch, self.arch_batches = bilevel_split(
            self.preset, self.splits.train, self.arch_fraction, self.world
        )
        if not resume:
            write_run_config(
                self.rundir, self.method, self.preset, recipe, self._options_json(),
                self.preset.settings.schedule_record(self.steps_per_epoch),
            )  # fmt: skip
        self.engine = self._make_engine().to(self.device)
        self.loader_options = loader_options(self.device)
        self.position = LoopPosition(epoch=0, batch=0, step=0)
        self._elapsed_before = 0.0  # search seconds spent before this process (resumed runs)
        self._started = time.perf_counter()
        if resume:
            checkpoint = self.rundir.load_checkpoint()  # the newest intact one
            self.engine.load_state_dict(checkpoint.state["engine"])
            restore_rng_state(checkpoint.state["rng"], self._generators())
            self.position = LoopPosition.from_dict(checkpoint.state["position"])
            self._elapsed_before = float(checkpoint.state.get("elapsed_seconds", 0.0))
            self.rundir.rewind_metrics(self.position.step)

    # --- the hooks of a method ---------------------------------------------------------------------------
    def _parse_options(self, options: Mapping[str, Any] | None) -> Any:
        """The method's options from ``options`` (JAQ takes none)."""
        if options:
            raise JaqcError(f"method jaq takes no method options, got {', '.join(sorted(options))}")
        return None

    def _resumed_options(self, config: Any, given: Mapping[str, Any] | None) -> Any:
        """The options a resumed run continues with (``config``: its ``config.json``)."""
        return self.options

    def _options_json(self) -> dict[str, Any] | None:
        """The options as ``config.json`` records them (None: no ``options`` key)."""
        return None

    def _search_preset(self, preset: SearchPreset) -> SearchPreset:
        """The preset the search runs (and ``config.json`` records)."""
        return preset

    def _make_engine(self) -> Any:
        return JaqSearch(self.preset.supernet, self.preset.settings, self.steps_per_epoch)

    def _generators(self) -> dict[str, torch.Generator]:
        """The named RNGs a checkpoint carries besides the global ones."""
        return {"gumbel": self.engine.supernet.arch.generator}

    def _epoch_record(self, epoch: int, step: int) -> dict[str, Any]:
        """The metrics record written after each epoch."""
        val_acc = accuracy(self.engine.supernet, self.splits.val, self.preset.batch_size)
        return {"step": step, "epoch": epoch, "val_acc": val_acc, "derived": self.engine.derived().to_json()}

    # --- the shared loop ---------------------------------------------------------------------------------
    def elapsed_seconds(self) -> float:
        """Wall-clock seconds this search has run, over all the processes of a resumed run."""
        return self._elapsed_before + time.perf_counter() - self._started

    def _checkpoint(self, position: LoopPosition, epoch: int | None = None) -> None:
        state = {
            "engine": to_cpu(self.engine.state_dict()),  # portable: a run may resume on another device
            "rng": capture_rng_state(self._generators()),
            "position": position.to_dict(),
            "elapsed_seconds": self.elapsed_seconds(),
        }
        self.rundir.save_checkpoint(state, step=position.step, epoch=epoch)

    def _arch_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = divmod(step, self.arch_batches)
        loader = make_loader(
            self.arch_set, batch_size=self.preset.batch_size, shuffle=True, seed=self.preset.settings.seed + 1,
            epoch=epoch, skip_batches=index, drop_last=True, rank=self.rank, world_size=self.world,
            pin_memory=self.device.type == "cuda",  # one batch per loader: no worker processes
        )  # fmt: skip
        return next(iter(loader))

    def run(self, stop_after_steps: int | None = None, progress: bool | None = None) -> SearchOutcome | None:
        """Search until the last epoch (or ``stop_after_steps`` total steps: returns None, as if killed)."""
        preset, engine = self.preset, self.engine
        self._started = time.perf_counter()
        epochs = preset.settings.epochs
        total = epochs * self.steps_per_epoch
        start = self.position
        warmup = preset.settings.warmup_steps(self.steps_per_epoch)
        with Progress(self.progress_label, total, enabled=progress, completed=start.step) as bar:
            for epoch in range(start.epoch, epochs):
                skip = start.batch if epoch == start.epoch else 0
                loader = make_loader(
                    self.weight_set, batch_size=preset.batch_size, shuffle=True, seed=preset.settings.seed,
                    epoch=epoch, skip_batches=skip, drop_last=True, rank=self.rank, world_size=self.world,
                    **self.loader_options,
                )  # fmt: skip
                for batch, (images, labels) in enumerate(loader, start=skip):
                    step = epoch * self.steps_per_epoch + batch
                    # the warm-up trains the weights only, at T0; the schedule anneals step by step after it
                    temperature = engine.supernet.set_step(max(0, step - warmup), total - warmup)
                    # "step" counts the updates done when the record is written (the run directory's convention)
                    record: dict[str, Any] = {"step": step + 1, "epoch": epoch, "temperature": temperature}
                    record.update(engine.weight_step(images, labels))
                    if step >= warmup:
                        record.update(engine.arch_step(*self._arch_batch(step)))
                        bar.advance(loss=record["w_loss"], acc=record["a_acc"], e_hw=record["e_hw"], T=temperature)
                    else:
                        record["warmup"] = True
                        bar.advance(loss=record["w_loss"], acc=record["w_acc"], phase="warm-up")
                    self.rundir.append_metrics(record)
                    position = LoopPosition(epoch=epoch, batch=batch + 1, step=step + 1)
                    if (step + 1) % preset.checkpoint_every == 0:
                        self._checkpoint(position)
                    if stop_after_steps is not None and step + 1 >= stop_after_steps:
                        return None
                step = (epoch + 1) * self.steps_per_epoch
                self.rundir.append_metrics(self._epoch_record(epoch, step))
                self._checkpoint(LoopPosition(epoch=epoch + 1, batch=0, step=step), epoch=epoch)
        return self.finish()

    def _choices_record(self) -> dict[str, Any]:
        """The search passes and the choices they narrowed (nothing when no passes ran)."""
        choices = getattr(self.engine, "choices", None)
        if choices is None:
            return {}
        config = self.preset.supernet
        narrowed = choices.describe(config.candidates, config.quant.weight_bits)
        return {"search_passes": self.preset.settings.passes, "narrowed_choices": narrowed}

    def final_hardware_point(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The expected hardware cost of the final α, β on the final accelerator (after the last generator
        refresh), as a metrics-like record one step after the last: where ``hardware.png`` ends."""
        engine = self.engine
        arch = engine.supernet.arch
        with torch.no_grad():
            e_hw, parts = engine.hw_cost(arch.alpha_probs(), arch.beta_w_probs(), arch.beta_a_probs())
        last = max((int(r["step"]) for r in records if "step" in r), default=0)
        return {"step": last, "e_hw": float(e_hw), **{f"expected_{k}": v for k, v in parts.items()}}

    def finish(self) -> SearchOutcome:
        """Derive the subnet and its accelerator, write the outputs and plots."""
        from jaqc.nn.subnet import DerivedSubnet

        from .plots import plot_architecture, plot_hardware, plot_training

        preset, engine, out = self.preset, self.engine, self.run_dir
        start = time.perf_counter()
        design = engine.refresh_hardware(steps=preset.final_generator_steps)
        derived = engine.derived()
        subnet = DerivedSubnet(preset.supernet, derived.ops, derived.bits)
        subnet.load_from_supernet(engine.supernet)
        graph, schedule = mapped_subnet(
            subnet, subnet.example_input_shape, design.accelerator, model_name=f"{preset.name}-subnet",
            hw_model=preset.settings.hw_model,
        )  # fmt: skip
        if self.rundir.is_writer:
            write_search_outputs(out, graph, schedule, derived.to_json(), design.accelerator)
        arch = engine.supernet.arch
        agree = ranks_agree(fingerprint(arch.alpha, arch.beta_w, arch.beta_a, design.accelerator.to_json()))
        val_acc = accuracy(engine.supernet, self.splits.val, preset.batch_size)
        identity = engine.space.identity_blocks(derived.ops)
        summary = {
            "method": self.method,
            "preset": preset.name,
            "ranks": self.world,
            "ranks_agree": agree,
            "architecture": derived.to_json(),
            "identity_blocks": identity,
            **choice_margins(engine.supernet, derived, identity),
            **self._choices_record(),
            "accelerator": design.accelerator.to_json(),
            "generator_loop_order": ">".join(d.value for d in design.loop_order),
            **hardware_figures(schedule),
            "supernet_val_acc": val_acc,
            "val_acc": val_acc,
            "finish_seconds": time.perf_counter() - start,
            "search_seconds": self.elapsed_seconds(),
        }
        if self.rundir.is_writer:
            write_summary(out, summary)
            records = self.rundir.read_metrics()
            plot_training(records, out / "plots" / "training.png", f"JAQ search ({preset.name})")
            plot_hardware(
                records, out / "plots" / "hardware.png", f"expected hardware cost ({preset.name})",
                final=self.final_hardware_point(records),
            )  # fmt: skip
            plot_architecture(
                derived.ops, derived.bits, out / "plots" / "architecture.png", "derived subnet",
                summary["identity_blocks"],
            )  # fmt: skip
        return SearchOutcome(run_dir=out, summary=summary)
