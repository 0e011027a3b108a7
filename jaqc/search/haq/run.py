"""``jaqc search --method haq``: HAQ's DDPG agent picks per-layer weight and activation bits of a fixed network on a
fixed accelerator, in a run directory with the same layout as a JAQ run (docs/haq.md).

The network is the subnet of a finished run or an IR file with weights (option ``network``), or by default the
preset's FBNet network with ``base_op`` in every block, trained in floating point for ``pretrain_epochs``
epochs first. Every quantizable layer (conv2d, linear) gets a weight and an activation bitwidth; the first and
last stay at w8a8. Each episode's bits are brought within the budget (a fraction of the all-8-bit latency,
energy or EDAP on the accelerator, from per-layer cost-model figures at BatchTile mappings), the network is
fine-tuned for ``finetune_steps`` batches and validated on a held-out part of the training split; the reward
is ``0.1 × (accuracy − reference accuracy)``, the reference being the all-w8a8 network after the same
fine-tune. At the end the best episode's bits are fine-tuned for ``final_finetune_steps`` batches and written
as ``subnet.json`` (with the fine-tuned weights, the start of ``jaqc retrain``), with its schedule.

Run directory: ``config.json``; ``network.json`` (the network searched, before quantization, with weights);
``metrics.jsonl`` (``step`` = episodes done: pretraining and reference records at step 0, one record per
episode, the final fine-tune at step ``episodes + 1``); ``checkpoints/`` (after the reference accuracy and after
every episode: the agent, its replay buffer and RNG, the history, the accuracy memo, every global RNG);
``architecture.json`` (``ops``: the names of the quantizable layers, ``bits``: their ``[w, a]``);
``subnet.jaqc`` / ``subnet.json``; ``accelerator.json``; ``schedule.json``; ``summary.json``; ``plots/``.
A resumed run continues from the latest checkpoint and ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from attrs import asdict, frozen

from jaqc.core import JaqcError
from jaqc.data import load_splits, split_for_search
from jaqc.hw.accelerators import load_accelerator
from jaqc.ir import LayerGraph, load_graph, save_graph
from jaqc.nn.config import Clipping, QuantizerConfig
from jaqc.progress import Progress
from jaqc.search.distributed import require_single_process
from jaqc.search.outputs import accuracy, hardware_figures, mapped_subnet, write_search_outputs
from jaqc.search.presets import SearchPreset
from jaqc.search.rundir import RunDir, capture_rng_state, restore_rng_state, write_summary
from jaqc.search.runner import CONFIG_FORMAT, SearchOutcome, write_run_config

from .budget import BudgetBounds, ResourceBudget, resolve_budget, round_up_fraction, searched_layers
from .environment import ResourceKind
from .network import (
    REWARD_FRACTION,
    FinetuneSettings,
    HaqNetworkEnv,
    LayerCostTable,
    NetworkSource,
    accuracy_percent,
    check_fits_data,
    clear_annotations,
    default_network,
    input_shape,
    load_network,
    pretrain,
    resolve_network,
)
from .results import EpisodeRecord
from .search import HaqConfig, HaqSearch

#: The options ``HaqRun`` takes (``jaqc search --method haq`` flags), each described in docs/haq.md.
OPTION_KEYS: tuple[str, ...] = (
    "network",
    "base_op",
    "pretrain_epochs",
    "finetune_steps",
    "final_finetune_steps",
    "finetune_lr",
    "budget_kind",
    "budget",
    "budget_clamp",
    "accelerator",
    "episodes",
    "warmup_episodes",
    "episode_clipping",
)

#: The budget fraction used when none is given, if the network can meet it (HAQ's "half the resource").
DEFAULT_BUDGET: float = 0.5

#: Default fine-tune steps per episode ("a few dozen batches"; HAQ's code: one epoch).
DEFAULT_FINETUNE_STEPS: int = 24

#: The default fine-tune learning rate is the preset's retraining rate divided by this (tiny: 0.05 → 0.002).
FINETUNE_LR_DIVISOR: float = 25.0

#: The network file a run searches (written before the first episode, read on resume).
NETWORK_FILE = "network.json"


#: HAQ's episodes on the CPU testbeds (elsewhere 600, as HAQ's code runs): about a JAQ search's wall time there
#: (digits32: about 17 s an episode on 2 cores, so 40 take some 11 minutes against JAQ's 10-minute search; 600
#: would take three hours a seed).
TESTBED_EPISODES: dict[str, int] = {"tiny": 40, "digits32": 40}

#: Pretraining epochs of the default network where ``retrain_epochs // 4`` leaves it short of a trained float model,
#: which HAQ starts from: on digits32, 2 epochs reach 71 % on the reward split at w8a8, 8 epochs (the preset's
#: retraining) 84 % (docs/haq.md).
TESTBED_PRETRAIN_EPOCHS: dict[str, int] = {"digits32": 8}

#: The activation clipping of the episodes' fine-tunes (HAQ calibrates its clipping, with KL divergence): with the
#: min/max range, 24 steps leave a network with 2-bit activations at chance on digits32, and every episode's
#: reward the same (docs/haq.md).
DEFAULT_EPISODE_CLIPPING = "mse"


def _option_error(key: str, requirement: str, value: Any) -> JaqcError:
    return JaqcError(f"haq option {key!r} must be {requirement}, got {value!r}")


def _int_option(options: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = options.get(key)
    if value is None:
        return default
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise _option_error(key, f"an integer >= {minimum}", value) from None
    if number < minimum:
        raise _option_error(key, f"an integer >= {minimum}", value)
    return number


def _float_option(options: Mapping[str, Any], key: str, default: float | None, low: float, high: float) -> float | None:
    """A number in ``(low, high]``."""
    value = options.get(key)
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise _option_error(key, f"a number in ({low:g}, {high:g}]", value) from None
    if not low < number <= high:
        raise _option_error(key, f"a number in ({low:g}, {high:g}]", value)
    return number


def _bool_option(options: Mapping[str, Any], key: str) -> bool:
    value = options.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _option_error(key, "true or false", value)
    return value


@frozen(kw_only=True)
class HaqSettings:
    """The resolved options of a HAQ run (``budget`` ``None``: 0.5 when the network can meet it, else the
    midpoint between the cheapest configuration's fraction and 1)."""

    network: str | None
    base_op: str
    pretrain_epochs: int
    finetune_steps: int
    final_finetune_steps: int
    finetune_lr: float
    budget_kind: ResourceKind
    budget: float | None
    #: A given budget below the cheapest configuration's fraction is raised to it instead of refused (``jaqc
    #: compare`` gives HAQ the fraction JAQ reached, which HAQ's network may not be able to meet).
    budget_clamp: bool = False
    accelerator: str
    episodes: int
    warmup_episodes: int
    seed: int
    batch_size: int
    #: The activation clipping of the episodes' fine-tunes and of the final one (``minmax``, ``mse`` or ``pact``); the
    #: written subnet stores it, and ``jaqc retrain --clipping`` (``jaqc compare``: one clipping for every method)
    #: retrains with another where asked.
    episode_clipping: str = DEFAULT_EPISODE_CLIPPING

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["budget_kind"] = self.budget_kind.value
        return data


def resolve_settings(preset: SearchPreset, options: Mapping[str, Any] | None) -> HaqSettings:
    """The run's settings from the preset and ``options``; an unknown option or a bad value is a JaqcError
    naming the option."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise JaqcError(f"unknown haq option(s) {', '.join(map(repr, unknown))}; expected {', '.join(OPTION_KEYS)}")
    network = options.get("network")
    if network is not None and not isinstance(network, str | os.PathLike):
        raise _option_error("network", "a run directory or an IR .json file", network)
    if network is not None:
        given = [k for k in ("base_op", "pretrain_epochs") if options.get(k) is not None]
        if given:
            raise JaqcError(
                f"haq option(s) {', '.join(map(repr, given))} describe the default network; "
                "they do not apply with option 'network'"
            )
    base_op = options.get("base_op") or "k3_e6"
    from jaqc.nn.config import FBNET_CANDIDATES

    if base_op not in FBNET_CANDIDATES:
        raise _option_error("base_op", f"one of {', '.join(FBNET_CANDIDATES)}", base_op)
    kind_value = options.get("budget_kind") or "latency"
    try:
        kind = ResourceKind(kind_value)
    except ValueError:
        raise _option_error("budget_kind", "one of latency, energy, edap", kind_value) from None
    accelerator = options.get("accelerator") or "jaq-table2"
    if not isinstance(accelerator, str | os.PathLike):
        raise _option_error("accelerator", "a preset name or a TOML/JSON file", accelerator)
    finetune_steps = _int_option(options, "finetune_steps", DEFAULT_FINETUNE_STEPS, 1)
    episodes = _int_option(options, "episodes", TESTBED_EPISODES.get(preset.name, 600), 1)
    warmup = _int_option(options, "warmup_episodes", min(20, episodes // 2), 0)
    if warmup > episodes:
        raise JaqcError(f"haq option 'warmup_episodes' ({warmup}) exceeds option 'episodes' ({episodes})")
    lr = _float_option(options, "finetune_lr", preset.retrain_lr / FINETUNE_LR_DIVISOR, 0.0, math.inf)
    assert lr is not None
    clipping = options.get("episode_clipping") or DEFAULT_EPISODE_CLIPPING
    if clipping not in {c.value for c in Clipping}:
        raise _option_error("episode_clipping", f"one of {', '.join(c.value for c in Clipping)}", clipping)
    pretrain_default = TESTBED_PRETRAIN_EPOCHS.get(preset.name, preset.retrain_epochs // 4)
    return HaqSettings(
        network=None if network is None else str(network),
        base_op=str(base_op),
        pretrain_epochs=_int_option(options, "pretrain_epochs", pretrain_default, 0),
        finetune_steps=finetune_steps,
        final_finetune_steps=_int_option(options, "final_finetune_steps", 4 * finetune_steps, 0),
        finetune_lr=lr,
        budget_kind=kind,
        budget=_float_option(options, "budget", None, 0.0, 1.0),
        budget_clamp=_bool_option(options, "budget_clamp"),
        accelerator=str(accelerator),
        episodes=episodes,
        warmup_episodes=warmup,
        seed=int(preset.settings.seed),
        batch_size=int(preset.batch_size),
        episode_clipping=str(clipping),
    )


def choose_budget(table: LayerCostTable, settings: HaqSettings) -> tuple[float, BudgetBounds]:
    """The budget fraction (the given one, or the default rule of :class:`HaqSettings`) and its bounds; an
    infeasible budget raises the error of :func:`resolve_budget` (with the fraction to choose instead)."""
    count = len(table)
    searched = searched_layers(count, True)
    if not searched:
        raise JaqcError(f"HAQ needs at least 3 quantizable layers (the first and last stay at 8 bits), got {count}")
    if settings.budget is not None:
        fraction = settings.budget
        if settings.budget_clamp:
            full = resolve_budget(table.cost, count, searched, ResourceBudget(settings.budget_kind, 1.0))
            fraction = max(fraction, round_up_fraction(full.minimum_fraction))
    else:
        full = resolve_budget(table.cost, count, searched, ResourceBudget(settings.budget_kind, 1.0))
        if full.minimum_fraction <= DEFAULT_BUDGET:
            fraction = DEFAULT_BUDGET
        else:
            fraction = round_up_fraction((1.0 + full.minimum_fraction) / 2)
    bounds = resolve_budget(table.cost, count, searched, ResourceBudget(settings.budget_kind, fraction))
    return fraction, bounds


def _episode_accuracy(history: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """The spread of the episodes' accuracies (fractions): the reward's only signal."""
    accuracies = [record.accuracy / 100.0 for record in history]
    return {"min": min(accuracies), "max": max(accuracies), "distinct": len(set(accuracies))}


def reward_warnings(history: Sequence[EpisodeRecord], episode_clipping: str = DEFAULT_EPISODE_CLIPPING) -> list[str]:
    """A warning when every episode scored the same accuracy: the reward did not depend on the bits, so the
    agent learned nothing and the best configuration is merely the first (docs/haq.md: on digits32 with min/max
    clipping every 2-bit-heavy configuration scored chance)."""
    accuracies = {record.accuracy for record in history}
    if len(history) < 2 or len(accuracies) > 1:
        return []
    (accuracy,) = accuracies
    remedies = ["more finetune_steps", "a looser budget"]
    if episode_clipping != Clipping.MSE.value:
        remedies.insert(0, "episode_clipping 'mse'")
    return [
        f"flat reward: all {len(history)} episodes scored {accuracy:.2f} %, so the agent had nothing to learn and "
        "the chosen bits are the first episode's; the fine-tune does not recover the network at the budget's bits "
        f"(try {', '.join(remedies[:-1])} or {remedies[-1]})"
    ]


class HaqRun:
    """One HAQ search in one run directory (see the module docstring); ``options`` as in :data:`OPTION_KEYS`."""

    method: ClassVar[str] = "haq"

    def __init__(
        self,
        preset: SearchPreset,
        run_dir: str | Path,
        *,
        resume: bool = False,
        recipe: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        require_single_process(self.method)
        self.preset = preset
        self.run_dir = Path(run_dir)
        self.rank = 0
        if resume:
            self.rundir = RunDir.open(self.run_dir, claim=True)
            config = self.rundir.read_config()
            method = config.get("method") if isinstance(config, dict) else None
            if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT or method != self.method:
                raise JaqcError(f"{self.run_dir}: not a HAQ search run (config.json has method {method!r})")
            stored = dict(config.get("options") or {})
            if options is not None and dict(options) != stored:
                raise JaqcError(f"{self.run_dir}: resume with the run's own options {stored}, not {dict(options)}")
            options = stored
        self.options = dict(options or {})
        self.settings = resolve_settings(preset, self.options)
        try:
            self.accelerator = load_accelerator(self.settings.accelerator)
        except JaqcError as exc:
            raise JaqcError(f"haq option 'accelerator': {exc}") from None
        self.source: NetworkSource | None = (
            None if self.settings.network is None else resolve_network(self.settings.network)
        )
        if not resume:
            self.rundir = RunDir.create(self.run_dir)
            write_run_config(self.rundir, self.method, preset, recipe, dict(self.options))
        self.resume = resume
        self.splits = load_splits(preset.data)
        self.finetune_set, self.reward_set = split_for_search(self.splits.train, REWARD_FRACTION, self.settings.seed)
        self.finetune = FinetuneSettings(
            steps=self.settings.finetune_steps,
            lr=self.settings.finetune_lr,
            batch_size=self.settings.batch_size,
            seed=self.settings.seed,
        )

    # --- the network ---------------------------------------------------------------------------------------
    def _sample_shape(self) -> tuple[int, ...]:
        return tuple(self.splits.train[0][0].shape)

    def _prepare_network(self, from_checkpoint: bool, progress: bool | None) -> tuple[LayerGraph, LayerCostTable]:
        """The network (pretrained if it is the default one) and its cost table; rejects an infeasible budget
        before any training."""
        path = self.run_dir / NETWORK_FILE
        if from_checkpoint:
            graph = load_graph(path)
            return graph, LayerCostTable(graph, self.accelerator, hw_model=self.preset.settings.hw_model)
        preset, settings = self.preset, self.settings
        if self.source is not None:
            graph = clear_annotations(load_network(self.source))
            check_fits_data(graph, self._sample_shape(), preset.data.num_classes, "haq option 'network'")
            table = LayerCostTable(graph, self.accelerator, hw_model=self.preset.settings.hw_model)
            choose_budget(table, settings)
            save_graph(graph, path, weights=True)
            return load_graph(path), table
        from jaqc.nn.tracing import trace_model

        torch.manual_seed(settings.seed)
        model = default_network(preset.supernet, settings.base_op)
        shape = model.example_input_shape
        graph = trace_model(model, shape, name=f"{preset.name}-{settings.base_op}")
        check_fits_data(graph, self._sample_shape(), preset.data.num_classes, f"preset {preset.name}")
        table = LayerCostTable(graph, self.accelerator, hw_model=self.preset.settings.hw_model)
        choose_budget(table, settings)  # before pretraining: an infeasible budget fails fast
        steps = settings.pretrain_epochs * (len(self.finetune_set) // settings.batch_size)
        with Progress("haq pretrain", steps, enabled=progress) as bar:
            pretrain(
                model, self.finetune_set, settings.pretrain_epochs, preset.retrain_lr, settings.batch_size,
                settings.seed, on_step=lambda loss: bar.advance(loss=loss),
                on_epoch=lambda rec: self.rundir.append_metrics({"step": 0, "phase": "pretrain", **rec}),
            )  # fmt: skip
        graph = trace_model(model, shape, name=f"{preset.name}-{settings.base_op}")
        save_graph(graph, path, weights=True)
        return load_graph(path), table  # the file's weights, as a resumed run reads them

    # --- checkpoints ---------------------------------------------------------------------------------------
    def _checkpoint(self, search: HaqSearch, env: HaqNetworkEnv, fraction: float, elapsed: float) -> None:
        state = {
            "search": search.state_dict(),
            "accuracy_cache": env.accuracy_cache(),
            "reference_acc": env.reference_accuracy,
            "budget_fraction": fraction,
            "elapsed": elapsed,
            "rng": capture_rng_state(),
            "settings": self.settings.to_json(),
        }
        self.rundir.save_checkpoint(state, step=len(search.history))

    def _check_settings(self, stored: dict[str, Any] | None) -> None:
        """A resumed run must search with the settings it started with: the options are re-read from config.json,
        but defaults resolve with this jaqc (``episode_clipping`` was added with another default than the clipping
        earlier episodes used). Checkpoints written before the settings were stored cannot be checked."""
        if stored is None:
            return
        current = self.settings.to_json()
        changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        if changed:
            differences = ", ".join(f"{k} {stored.get(k)!r} -> {current.get(k)!r}" for k in changed)
            raise JaqcError(
                f"{self.run_dir}: cannot resume: this jaqc resolves the run's options to other settings than its "
                f"checkpoint's ({differences}); resume with the jaqc that started it, or start a new run"
            )

    # --- the search ----------------------------------------------------------------------------------------
    def run(self, progress: bool | None = None, stop_after_episodes: int | None = None) -> SearchOutcome | None:
        """Search (or continue) and write the outputs; ``stop_after_episodes`` stops after that many episodes
        in all (returns None, as if killed) to test resuming."""
        session_start = time.perf_counter()
        settings = self.settings
        checkpoint = self.rundir.load_checkpoint() if self.resume and self.rundir.latest_checkpoint() else None
        if checkpoint is not None:
            self._check_settings(checkpoint.state.get("settings"))
        if self.resume:
            self.rundir.rewind_metrics(-1 if checkpoint is None else checkpoint.step)
        graph, table = self._prepare_network(checkpoint is not None, progress)
        fraction, bounds = choose_budget(table, settings)
        env = HaqNetworkEnv(
            graph, self.finetune_set, self.reward_set, self.accelerator, self.finetune, cost_table=table,
            reference_accuracy=None if checkpoint is None else checkpoint.state["reference_acc"],
            quantizer=QuantizerConfig(activation_clipping=settings.episode_clipping),
        )  # fmt: skip
        config = HaqConfig(episodes=settings.episodes, warmup_episodes=settings.warmup_episodes, seed=settings.seed)
        search = HaqSearch(env, ResourceBudget(settings.budget_kind, fraction), config)
        if checkpoint is not None:
            state = checkpoint.state
            if state["budget_fraction"] != fraction:
                raise JaqcError(f"{self.run_dir}: the checkpoint's budget {state['budget_fraction']} != {fraction}")
            search.load_state_dict(state["search"])
            env.load_accuracy_cache(state["accuracy_cache"])
            restore_rng_state(state["rng"])
            elapsed_before = float(state["elapsed"])
        else:
            reference = env.reference_accuracy
            self.rundir.append_metrics(
                {
                    "step": 0, "phase": "reference", "reference_acc": reference, "budget_kind": bounds.kind.value,
                    "budget_fraction": fraction, "budget_value": bounds.budget_value,
                    "reference_cost": bounds.reference_cost, "minimum_fraction": bounds.minimum_fraction,
                }
            )  # fmt: skip
            elapsed_before = 0.0
            self._checkpoint(search, env, fraction, time.perf_counter() - session_start)

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - session_start

        with Progress("haq", settings.episodes, enabled=progress, completed=len(search.history)) as bar:
            while not search.finished:
                record = search.run_episode()
                best = search.result().best
                self.rundir.append_metrics(
                    {"step": record.episode + 1, "phase": "episode", **record.to_json(), "best_reward": best.reward}
                )
                bar.advance(acc=record.accuracy, reward=record.reward, cost=record.cost_fraction, best=best.reward)
                self._checkpoint(search, env, fraction, elapsed())
                if stop_after_episodes is not None and len(search.history) >= stop_after_episodes:
                    return None
        return self._finish(search, env, bounds, fraction, elapsed)

    def _finish(
        self, search: HaqSearch, env: HaqNetworkEnv, bounds: BudgetBounds, fraction: float, elapsed: Any
    ) -> SearchOutcome:
        from jaqc.search.plots import plot_architecture, plot_training

        from .plots import plot_episodes

        settings, preset, out = self.settings, self.preset, self.run_dir
        result = search.result()
        best = result.best
        final = HaqNetworkEnv(
            env.graph, self.finetune_set, self.reward_set, self.accelerator, self.finetune, cost_table=env.cost_table,
            reference_accuracy=env.reference_accuracy,
            quantizer=QuantizerConfig(activation_clipping=settings.episode_clipping),
        )  # fmt: skip  # the episodes' clipping: the accuracy the search chose by is the one written
        model, _losses = final.trained_model(best.bits, settings.final_finetune_steps)
        reward_acc = accuracy_percent(model, self.reward_set)
        search_seconds = elapsed()
        val_acc = accuracy(model, self.splits.val)  # a fraction, as in every method's summary
        self.rundir.append_metrics(
            {"step": settings.episodes + 1, "phase": "final", "reward_acc": reward_acc, "val_acc": val_acc}
        )
        graph, schedule = mapped_subnet(
            model, input_shape(env.graph), self.accelerator, name=env.graph.name, model_name=f"{preset.name}-haq",
            hw_model=preset.settings.hw_model,
        )  # fmt: skip
        architecture = {"ops": list(env.layer_names), "bits": [list(pair) for pair in best.bits]}
        write_search_outputs(out, graph, schedule, architecture, self.accelerator)
        summary = {
            "method": self.method,
            "preset": preset.name,
            "network": {
                "source": "default" if self.source is None else str(self.source.path),
                "ops": _network_ops(self.source, settings, preset),
                "layers": list(env.layer_names),
            },
            "architecture": architecture,
            "accelerator": self.accelerator.to_json(),
            **hardware_figures(schedule),
            # Accuracies are fractions in every summary (the reward itself is HAQ's 0.1 x difference in percent).
            "val_acc": val_acc,
            "reward_acc": reward_acc / 100.0,
            "reference_acc": env.reference_accuracy / 100.0,
            "episodes": len(result.history),
            "warmup_episodes": settings.warmup_episodes,
            "best_episode": best.episode,
            "best_reward": best.reward,
            "best_episode_acc": best.accuracy / 100.0,
            "budget": {
                "kind": bounds.kind.value,
                "fraction": fraction,
                "requested": settings.budget,
                "value": bounds.budget_value,
                "reference_cost": bounds.reference_cost,
                "minimum_fraction": bounds.minimum_fraction,
                "cost": best.cost,
                "cost_fraction": best.cost_fraction,
            },
            "configurations_evaluated": len(env.accuracy_cache()),
            "episode_accuracy": _episode_accuracy(result.history),
            "reward_warnings": reward_warnings(result.history, settings.episode_clipping),
            "search_seconds": search_seconds,
            "settings": settings.to_json(),
        }
        write_summary(out, summary)
        records = self.rundir.read_metrics()
        pretrain_records = [
            {"step": r["epoch"] + 1, "w_loss": r["w_loss"], "w_acc": r["w_acc"]}
            for r in records
            if r.get("phase") == "pretrain"
        ]
        if pretrain_records:
            plot_training(pretrain_records, out / "plots" / "pretrain.png", f"float pretraining ({preset.name})")
        plot_episodes(result.history, bounds, out / "plots" / "search.png", f"HAQ search ({preset.name})")
        plot_architecture(list(env.layer_names), best.bits, out / "plots" / "architecture.png", "HAQ bits per layer")
        return SearchOutcome(run_dir=out, summary=summary)


def _network_ops(source: NetworkSource | None, settings: HaqSettings, preset: SearchPreset) -> list[str] | None:
    """The block ops of the network when it is a derived subnet (the default one, or a run with its
    architecture.json), else None."""
    if source is None:
        return [settings.base_op] * preset.supernet.num_blocks
    return None if source.ops is None else list(source.ops)
