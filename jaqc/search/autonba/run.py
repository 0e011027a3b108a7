"""``jaqc search --method autonba``: the Auto-NBA engine over a run directory (SearchRun's loop and outputs)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch

from jaqc.core import JaqcError
from jaqc.nn.config import SearchStep

from ..ablation import share_of_2bit
from ..distributed import fingerprint, ranks_agree
from ..jaq import DerivedArchitecture, choice_margins
from ..outputs import accuracy, hardware_figures, mapped_subnet, write_search_outputs
from ..presets import SearchPreset
from ..rundir import write_summary
from ..runner import SearchOutcome, SearchRun
from .engine import AutoNbaSearch, hetero_config
from .options import ARCH_FRACTION, AutoNbaOptions, parse_options


class AutoNbaRun(SearchRun):
    """One Auto-NBA search in one run directory, resumable exactly: JAQ's run loop and layout
    (:class:`~jaqc.search.runner.SearchRun`) with Auto-NBA's engine, 50/50 split, options and outputs."""

    method: ClassVar[str] = "autonba"
    arch_fraction = ARCH_FRACTION
    progress_label = "autonba search"

    def __init__(
        self,
        preset: SearchPreset,
        run_dir: str | Path,
        *,
        resume: bool = False,
        recipe: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(preset, run_dir, resume=resume, recipe=recipe, options=options, device=device)

    def _parse_options(self, options: Mapping[str, Any] | None) -> AutoNbaOptions:
        return parse_options(options)

    def _resumed_options(self, config: Any, given: Mapping[str, Any] | None) -> AutoNbaOptions:
        method = config.get("method") if isinstance(config, dict) else None
        if method != self.method:
            raise JaqcError(f"{self.run_dir}: a run of method {method!r}, not {self.method!r}")
        saved = parse_options(config.get("options"))
        if given is not None and self.options != saved:
            raise JaqcError(f"{self.run_dir}: resume with the run's own options {saved.to_json()}, not {dict(given)}")
        return saved

    def _options_json(self) -> dict[str, Any]:
        return self.options.to_json()

    def _search_preset(self, preset: SearchPreset) -> SearchPreset:
        return attrs.evolve(preset, supernet=hetero_config(preset.supernet))

    def _make_engine(self) -> AutoNbaSearch:
        return AutoNbaSearch(self.preset.supernet, self.preset.settings, self.options, self.steps_per_epoch)

    def _generators(self) -> dict[str, torch.Generator]:
        return self.engine.generators()

    def _epoch_record(self, epoch: int, step: int) -> dict[str, Any]:
        derived = self.engine.derived()
        _, subnet_acc = self._subnet_accuracy(derived)
        record = {"step": step, "epoch": epoch, "val_acc": self._supernet_accuracy()}
        return {**record, "subnet_val_acc": subnet_acc, "derived": derived.to_json()}

    def _subnet_accuracy(self, derived: DerivedArchitecture) -> tuple[Any, float]:
        from jaqc.nn.subnet import DerivedSubnet

        subnet = DerivedSubnet(self.preset.supernet, derived.ops, derived.bits)
        subnet.load_from_supernet(self.engine.supernet)
        return subnet, accuracy(subnet, self.splits.val, self.preset.batch_size)

    def _supernet_accuracy(self) -> float:
        """The supernet in eval mode (softmax α over the ops, β-blended bits), as JAQ's runner reports it."""
        self.engine.supernet.set_search_step(SearchStep.WEIGHTS)
        return accuracy(self.engine.supernet, self.splits.val, self.preset.batch_size)

    def finish(self) -> SearchOutcome:
        """The final subnet, its best-of-N accelerator, the outputs, the summary and the plots."""
        from ..plots import plot_architecture, plot_hardware, plot_training

        preset, engine, out = self.preset, self.engine, self.run_dir
        start = time.perf_counter()
        derived = engine.derived()
        search = engine.search_hardware(generator_steps=preset.final_generator_steps)
        subnet, val_acc = self._subnet_accuracy(derived)
        graph, schedule = mapped_subnet(
            subnet, subnet.example_input_shape, search.accelerator, model_name=f"{preset.name}-subnet",
            hw_model=preset.settings.hw_model,
        )  # fmt: skip
        if self.rundir.is_writer:
            write_search_outputs(out, graph, schedule, derived.to_json(), search.accelerator)
        arch = engine.supernet.arch
        agree = ranks_agree(fingerprint(arch.alpha, arch.beta_w, arch.beta_a, search.accelerator.to_json()))
        identity = engine.space.identity_blocks(derived.ops)
        summary = {
            "method": self.method,
            "preset": preset.name,
            "options": self.options.to_json(),
            "ranks": self.world,
            "ranks_agree": agree,
            "architecture": derived.to_json(),
            "identity_blocks": identity,
            **choice_margins(engine.supernet, derived, identity),
            "accelerator": search.accelerator.to_json(),
            **hardware_figures(schedule),
            "val_acc": val_acc,
            "supernet_val_acc": self._supernet_accuracy(),
            "share_of_2bit": share_of_2bit(derived.to_json(), preset.supernet),
            "hw_searches": engine.hw_searches,
            "final_hw_search": search.to_json(),
            "finish_seconds": time.perf_counter() - start,
            "search_seconds": self.elapsed_seconds(),
        }
        if self.rundir.is_writer:
            write_summary(out, summary)
            records = self.rundir.read_metrics()
            hardware = [
                {**r, **{f"expected_{k[5:]}": v for k, v in r.items() if k.startswith("path_")}} for r in records
            ]
            plot_training(records, out / "plots" / "training.png", f"Auto-NBA search ({preset.name})")
            plot_hardware(hardware, out / "plots" / "hardware.png", f"sampled-path hardware cost ({preset.name})")
            plot_architecture(
                derived.ops, derived.bits, out / "plots" / "architecture.png", "derived subnet",
                summary["identity_blocks"],
            )  # fmt: skip
        return SearchOutcome(run_dir=out, summary=summary)
