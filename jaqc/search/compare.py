"""``jaqc compare``: several search methods on the same data, cost model and accelerator space.

Each entry is a run directory under ``OUT/runs/<label>`` written by its method (``jaqc search --method``),
retrained the same way (``jaqc retrain``: fixed-precision QAT, the preset's epochs and learning rate) and
then read back:

* ``jaq``, ``autonba``, ``hqnas`` — one run per λ of ``--lambdas`` (label ``<method>-lam<λ>``), or one at
  the preset's λ;
* ``haq`` — bits of a fixed network under a resource budget (its own defaults, see docs/haq.md);
* ``uniform8`` / ``uniform4`` — no search: the preset's network with every block ``k3_e6`` at uniform bits,
  on the accelerator the hardware generation network designs for it (so the hardware is co-designed for
  the baselines too).

Outputs: ``compare.md`` (the table and the ablation), ``compare.json`` (every figure), ``pareto.png``
(test accuracy against EDAP, the Pareto front drawn). The *Table 7 ablation* (``--ablation``, JAQ paper
§ "misguided search"): with no hardware constraint (λ = 0) the share of searchable blocks whose bits
converge to 2, for JAQ with CSQ (at the preset's K, 1 % and 5 %), the channel-0 ablation, the naive multi-bit
supernet (Eq. 5) and Auto-NBA-style heterogeneous sampling.

A comparison resumes: a finished run (``summary.json``) or retraining is read back instead of redone, an
interrupted search continues from its checkpoint; delete ``OUT`` (or one run in it) to redo it.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attrs import field, frozen, validators

from jaqc import __version__
from jaqc.core import JaqcError, read_json
from jaqc.core.files import atomic_write_text
from jaqc.nn.config import CLIPPINGS

from .ablation import share_of_2bit, undecided_share
from .rundir import SUBNET_FILE, RunDir, read_summary, write_summary

#: What ``--methods`` accepts.
COMPARE_METHODS: tuple[str, ...] = ("jaq", "autonba", "haq", "hqnas", "uniform8", "uniform4")
#: Methods that take the hardware weight λ (one run per λ of ``--lambdas``).
LAMBDA_METHODS: frozenset[str] = frozenset({"jaq", "autonba", "hqnas"})
#: The Table 7 figures of :func:`jaqc.search.ablation.share_of_2bit`, in the table's order.
ABLATION_SHARES: tuple[str, ...] = ("weight_2bit", "activation_2bit", "any_2bit")


@frozen
class AblationVariant:
    """One search of the Table 7 ablation: a method, its supernet's quantization mode (None: the method's own)
    and CSQ's K (None: the preset's)."""

    name: str
    method: str
    quant_mode: str | None = None
    csq_k_percent: float | None = None

    @property
    def key(self) -> str:
        """What ``--ablation-variants`` and the run labels (``ablation-<key>[-s<seed>]``) call it."""
        key = self.quant_mode or self.method
        return key if self.csq_k_percent is None else f"{key}-k{self.csq_k_percent:g}"


#: The Table 7 ablation, in its table's order: JAQ's CSQ at the preset's K and at 1 % and 5 %, Ω fixed to the first
#: channel, every channel quantized (Eq. 5, the "naive" multi-bit supernet: the ground truth CSQ approximates),
#: and Auto-NBA's heterogeneous sampling.
ABLATION_VARIANTS: tuple[AblationVariant, ...] = (
    AblationVariant("JAQ (CSQ)", "jaq", "csq"),
    AblationVariant("JAQ, CSQ at K = 1 %", "jaq", "csq", 1.0),
    AblationVariant("JAQ, CSQ at K = 5 %", "jaq", "csq", 5.0),
    AblationVariant("JAQ, channel-0 ablation", "jaq", "channel0"),
    AblationVariant("Naive multi-bit supernet (Eq. 5)", "jaq", "naive"),
    AblationVariant("Auto-NBA sampling", "autonba"),
)


def parse_ablation_variants(text: str | None) -> tuple[str, ...] | None:
    """``--ablation-variants``: comma-separated keys of :data:`ABLATION_VARIANTS` (None: all)."""
    if text is None:
        return None
    return _parse_choices(text, "--ablation-variants", "variant", [v.key for v in ABLATION_VARIANTS])


def _parse_choices(text: str, flag: str, noun: str, known: Sequence[str]) -> tuple[str, ...]:
    """Comma-separated names, each one of ``known`` and none twice; errors name ``flag``."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise JaqcError(f"{flag}: give at least one {noun}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise JaqcError(f"{flag}: unknown {noun} {unknown[0]!r}; choose from {', '.join(known)}")
    if len(set(names)) != len(names):
        raise JaqcError(f"{flag}: {text!r} names a {noun} twice")
    return names


#: The op of every block in the uniform baselines (MobileNetV2's inverted residual).
UNIFORM_OP = "k3_e6"


def parse_methods(text: str) -> tuple[str, ...]:
    """``"jaq,haq"`` -> ``("jaq", "haq")``; unknown or repeated names are an error naming them."""
    return _parse_choices(text, "--methods", "method", COMPARE_METHODS)


def parse_lambdas(text: str | None) -> tuple[float | None, ...]:
    """``"0.1,1"`` -> ``(0.1, 1.0)``; ``None`` -> ``(None,)`` (the preset's λ)."""
    if text is None:
        return (None,)
    values: list[float] = []
    for token in (t.strip() for t in text.split(",")):
        try:
            value = float(token)
        except ValueError:
            raise JaqcError(f"--lambdas: {token!r} is not a number") from None
        if not value >= 0 or math.isinf(value):
            raise JaqcError(f"--lambdas: λ must be finite and >= 0, got {token}")
        values.append(value)
    if len(set(values)) != len(values):
        raise JaqcError(f"--lambdas: {text!r} repeats a value")
    return tuple(values)


def parse_seeds(text: str | None, flag: str = "--ablation-seeds") -> tuple[int, ...] | None:
    """``"0,1,2"`` or the count ``"3"`` -> ``(0, 1, 2)`` (:func:`jaqc.search.seeds.parse_seeds`); ``None`` ->
    ``None`` (the comparison's seed); errors name ``flag``."""
    from .seeds import parse_seeds as parse

    return None if text is None else tuple(parse(text, flag))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower cost and higher accuracy), by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


@frozen(kw_only=True)
class CompareSettings:
    """One comparison: preset, data, methods, λ values and the budget overrides that shorten it."""

    preset: str = "tiny"
    data_root: str | None = None
    methods: tuple[str, ...] = COMPARE_METHODS
    lambdas: tuple[float | None, ...] = (None,)
    epochs: int | None = None
    retrain_epochs: int | None = None
    episodes: int | None = None
    ablation: bool = True
    seed: int | None = field(default=None)
    #: Seeds of the Table 7 ablation searches (default: the comparison's seed only).
    ablation_seeds: tuple[int, ...] | None = None
    #: Keys of the Table 7 variants to search (:data:`ABLATION_VARIANTS`; default: all).
    ablation_variants: tuple[str, ...] | None = None
    #: How every retraining starts: from scratch (the default: every method's subnet from the same, seeded
    #: initialisation) or from its search's supernet weights (which favours methods whose supernet trained the
    #: chosen path).
    retrain_init: str = field(default="scratch", validator=validators.in_(("scratch", "supernet")))
    #: The activation clipping of every retraining (:func:`jaqc.search.retrain.retrain`). ``mse`` by default: with
    #: the batch's min/max range a subnet with 2-bit activations in its last layers can fall to chance when it
    #: leaves the float warm-up and not recover (HAQ's subnet at JAQ's latency on digits32: 9.78 % test accuracy
    #: against 81.28 % with ``mse``, docs/search.md), which would compare the recipe, not the method.
    retrain_clipping: str = field(default="mse", validator=validators.in_(CLIPPINGS))
    #: HAQ's budget: a fraction of its all-8-bit design's ``haq_budget_kind``, or ``None``: the fraction of its
    #: own all-8-bit design that JAQ's subnet reached in this comparison (raised to the cheapest fraction HAQ's
    #: network can meet where it is lower), or HAQ's own default when the comparison has no JAQ run.
    haq_budget: float | None = None
    haq_budget_kind: str = field(default="latency", validator=validators.in_(("latency", "energy", "edap")))
    #: Run every entry once per seed (labels ``<entry>-s<seed>``) and report mean ± standard deviation over them,
    #: with the wins beyond the seeds' spread (:func:`aggregate_seeds`); ``None``: one run per entry at ``seed``.
    seeds: tuple[int, ...] | None = None
    #: Further preset overrides for every run (e.g. ``final_generator_steps``), recorded in each recipe.
    overrides: dict[str, Any] = field(factory=dict)
    #: Where JAQ's and Auto-NBA's searches and every retraining run (HAQ and HQNAS search on the CPU); the
    #: default, CUDA when available. Not recorded: a comparison may continue on another device.
    device: str | None = None


class Comparison:
    """Runs (or reads back) every entry of a comparison in ``out_dir`` and writes the report."""

    def __init__(
        self,
        out_dir: str | Path,
        settings: CompareSettings,
        progress: bool | None = None,
        log: Callable[[str], None] | None = None,
        finished_only: bool = False,
    ) -> None:
        self.out = Path(out_dir)
        self.settings = settings
        self.progress = progress
        self.log = log or (lambda _msg: None)
        #: Run nothing: report the entries and ablation searches finished in ``out_dir`` and leave out the rest
        #: (``jaqc compare --report-only``; a comparison split over machines or processes, put back together).
        self.finished_only = finished_only
        if self.out.exists() and not self.out.is_dir():
            raise JaqcError(f"{self.out}: exists and is not a directory; give -o a new or existing directory")
        self.out.mkdir(parents=True, exist_ok=True)

    # --- one run -----------------------------------------------------------------------------------------

    def _overrides(
        self, lam: float | None = None, quant_mode: str | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        s = self.settings
        items = {"epochs": s.epochs, "seed": s.seed if seed is None else seed, "lam": lam, "quant_mode": quant_mode}
        return {**s.overrides, **{k: v for k, v in items.items() if v is not None}}

    def _device(self, method: str | dict[str, Any]) -> str | None:
        """The device of a search of ``method`` (or of the run whose ``config.json`` is given)."""
        from .methods import DEVICE_METHODS

        name = method.get("method", "jaq") if isinstance(method, dict) else method
        return self.settings.device if name in DEVICE_METHODS else None

    def search(self, label: str, method: str, overrides: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """The summary of run ``label`` (searched now, resumed, or read back when finished)."""
        from .methods import resume_run, start_run
        from .presets import search_preset
        from .rundir import RunDir

        run_dir = self.out / "runs" / label
        if (finished := read_summary(run_dir)) is not None:
            self.log(f"{label}: finished earlier, read back from {run_dir}")
            return self._same_model(finished, run_dir)
        if run_dir.exists() and RunDir.open(run_dir).latest_checkpoint() is not None:
            self.log(f"{label}: resuming {run_dir}")
            run = resume_run(run_dir, self.settings.data_root, self._device(RunDir.open(run_dir).read_config()))
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)  # started but never checkpointed: nothing to keep
            self.log(f"{label}: searching ({method}) in {run_dir}")
            preset = search_preset(self.settings.preset, self.settings.data_root, **overrides)
            recipe = {"preset": self.settings.preset, "data_root": self.settings.data_root, "overrides": overrides}
            run = start_run(method, preset, run_dir, recipe=recipe, options=options, device=self._device(method))
        outcome = run.run(progress=self.progress)
        return dict(outcome.summary)

    @property
    def hw_model(self) -> str:
        """The hardware model of every run of the comparison."""
        return str(self.settings.overrides.get("hw_model", "deployment"))

    def _same_model(self, summary: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        """``summary``, or an error when it was computed with another hardware model than this comparison's."""
        found = summary.get("hw_model", "simulator")
        if found != self.hw_model:
            raise JaqcError(
                f"{run_dir}: computed with the {found} hardware model, this comparison uses {self.hw_model}; "
                "give another -o directory (or --hw-model " + found + ")"
            )
        return summary

    def _design_accelerator(self, graph: Any, preset: Any) -> Any:
        """The accelerator designed for ``graph`` under the preset's λE/λL/λA (``design-accelerator``: a fresh
        generator for ``final_generator_steps``, then up to ``design_sweeps`` sweeps of the coordinate search);
        returns :class:`jaqc.hw.design.AcceleratorDesign` (the generator's design and the searched one)."""
        from jaqc.passes import PassContext, PassManager, make_pass

        hw = preset.settings.hw
        design = make_pass(
            "design-accelerator",
            {
                "steps": str(preset.final_generator_steps), "lambda_e": repr(hw.energy),
                "lambda_l": repr(hw.latency), "lambda_a": repr(hw.area), "form": hw.form,
                "seed": str(preset.settings.seed), "hw_model": preset.settings.hw_model,
                "max_sweeps": str(preset.design_sweeps),
            },
        )  # fmt: skip
        ctx = PassContext()
        PassManager([design]).run(graph.clone(), ctx)
        return ctx.data["accelerator_design"]

    def codesigned(self, label: str, seed: int | None = None) -> dict[str, Any]:
        """The retrained subnet of run ``label`` on the accelerator designed for it (cached in ``codesign.json``):
        every method's network and bits on the same hardware budget, separating what they are worth from the
        method's own accelerator choice. Also records the generator's design before the search polished it."""
        from jaqc.export.schedule import build_schedule
        from jaqc.ir import load_graph
        from jaqc.passes import PassContext, PassManager, make_pass

        from .outputs import hardware_figures
        from .presets import search_preset

        run_dir = self.out / "runs" / label
        cached = run_dir / "codesign.json"
        if (found := self._cached_design(run_dir)) is not None:
            return self._same_model(found, cached)
        self.log(f"{label}: designing an accelerator for its retrained subnet")
        preset = search_preset(self.settings.preset, self.settings.data_root, **self._overrides(seed=seed))
        graph = load_graph(RunDir(run_dir).retrain_dir / SUBNET_FILE)
        options = {"space": "jaq", "hw_model": preset.settings.hw_model}
        design = self._design_accelerator(graph, preset)
        figures = {}
        for name, accelerator in (
            ("designed", design.polished.accelerator),
            ("generator", design.generated.accelerator),
        ):
            graph.accelerator = accelerator
            mapped = PassManager([make_pass("batchtile", options)]).run(graph, PassContext()).graph
            figures[name] = {"accelerator": accelerator.to_json(), **hardware_figures(build_schedule(mapped))}
        result = {
            **figures["designed"],
            "generator": figures["generator"],
            "improvement": design.improvement,
            "sweeps": design.polished.sweeps,
            "designs_evaluated": design.polished.evaluations,
        }
        atomic_write_text(cached, json.dumps(result, indent=1) + "\n")
        return result

    def uniform(self, label: str, bits: int, seed: int | None = None) -> dict[str, Any]:
        """A uniform-``bits`` baseline: the ``k3_e6`` network and the accelerator the generator designs."""
        from jaqc.nn.subnet import DerivedSubnet
        from jaqc.nn.tracing import trace_model

        from .outputs import hardware_figures, mapped_subnet, write_search_outputs
        from .presets import search_preset
        from .rundir import RunDir
        from .runner import write_run_config

        run_dir = self.out / "runs" / label
        if (finished := read_summary(run_dir)) is not None:
            self.log(f"{label}: finished earlier, read back from {run_dir}")
            return self._same_model(finished, run_dir)
        if run_dir.exists():
            shutil.rmtree(run_dir)
        self.log(f"{label}: {UNIFORM_OP} everywhere at w{bits}a{bits}; designing its accelerator")
        overrides = self._overrides(seed=seed)
        preset = search_preset(self.settings.preset, self.settings.data_root, **overrides)
        recipe = {"preset": preset.name, "data_root": self.settings.data_root, "overrides": overrides}
        options = {"op": UNIFORM_OP, "bits": bits}
        write_run_config(RunDir.create(run_dir), f"uniform{bits}", preset, recipe, options)
        start = time.perf_counter()
        config = preset.supernet
        blocks = len(config.block_specs())
        ops, pairs = [UNIFORM_OP] * blocks, [(bits, bits)] * blocks
        model = DerivedSubnet(config, ops, pairs).eval()
        accelerator = self._design_accelerator(
            trace_model(model, model.example_input_shape), preset
        ).polished.accelerator
        mapped, schedule = mapped_subnet(
            model, model.example_input_shape, accelerator, model_name=f"{label}-subnet",
            hw_model=preset.settings.hw_model,
        )  # fmt: skip
        architecture = {"ops": ops, "bits": [list(p) for p in pairs]}
        write_search_outputs(run_dir, mapped, schedule, architecture, accelerator)
        summary = {
            "method": f"uniform{bits}", "preset": preset.name, "architecture": architecture,
            "accelerator": accelerator.to_json(), **hardware_figures(schedule),
            "search_seconds": time.perf_counter() - start,
        }  # fmt: skip
        write_summary(run_dir, summary)
        return summary

    def retrain(self, label: str) -> dict[str, Any]:
        """The retraining summary of run ``label`` (retrained now, or read back)."""
        from .retrain import retrain_run

        run_dir = self.out / "runs" / label
        retrained = RunDir(run_dir).retrain_dir
        settings = self.settings
        done = read_summary(retrained)
        if done is not None and self._same_recipe(done):
            return self._same_model(done, retrained)
        if retrained.exists():
            shutil.rmtree(retrained)  # an interrupted retraining, or one of another recipe, restarts
            (run_dir / "codesign.json").unlink(missing_ok=True)  # designed for the subnet retrained before
        start = "from scratch" if settings.retrain_init == "scratch" else "from the supernet"
        self.log(f"{label}: retraining ({start}, {settings.retrain_clipping} activation clipping)")
        return retrain_run(
            run_dir, settings.retrain_epochs, settings.data_root, self.progress, device=settings.device,
            init=settings.retrain_init, clipping=settings.retrain_clipping,
        )  # fmt: skip

    # --- the whole comparison -----------------------------------------------------------------------------

    def entries(self) -> list[tuple[str, str, float | None]]:
        """(label, method, λ) of every compared run, in the order given."""
        out: list[tuple[str, str, float | None]] = []
        for method in self.settings.methods:
            if method in LAMBDA_METHODS:
                for lam in self.settings.lambdas:
                    out.append((method if lam is None else f"{method}-lam{lam:g}", method, lam))
            else:
                out.append((method, method, None))
        return out

    def jaq_fraction(self, label: str, kind: str) -> float:
        """The ``kind`` (latency, energy or EDAP) of run ``label``'s subnet as a fraction of the same network at
        w8a8 (first and last layers as searched), both mapped by BatchTile on the run's accelerator."""
        from jaqc.export.schedule import build_schedule
        from jaqc.ir import load_graph
        from jaqc.passes import PassContext, PassManager, make_pass

        from .outputs import hardware_figures

        graph = load_graph(RunDir(self.out / "runs" / label).subnet_path)
        mapping = make_pass("batchtile", {"space": "jaq", "hw_model": self.hw_model})
        key = {"latency": "latency_ms", "energy": "energy_mJ", "edap": "edap_mJ_ms_mm2"}[kind]
        costs = []
        for pipeline in ([mapping], [make_pass("annotate-quant", {"w_bits": "8", "a_bits": "8"}), mapping]):
            mapped = PassManager(pipeline).run(graph.clone(), PassContext()).graph
            costs.append(hardware_figures(build_schedule(mapped))[key])
        return costs[0] / costs[1]

    def _haq_options(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """HAQ's options in this comparison: its episodes, and its budget (see :attr:`CompareSettings.haq_budget`)."""
        s = self.settings
        options: dict[str, Any] = {"budget_kind": s.haq_budget_kind}
        if s.episodes:
            options["episodes"] = s.episodes
        if s.haq_budget is not None:
            return {**options, "budget": s.haq_budget}
        jaq = next((r["label"] for r in rows if r["method"] == "jaq"), None)
        if jaq is None:
            self.log("haq: no JAQ run in this comparison; HAQ's own default budget")
            return options
        from .haq.budget import round_up_fraction

        fraction = self.jaq_fraction(jaq, s.haq_budget_kind)
        budget = round_up_fraction(fraction)
        self.log(f"haq: budget {budget:g} of its 8-bit {s.haq_budget_kind}, the fraction {jaq} reached")
        return {**options, "budget": budget, "budget_clamp": True}

    def ablation(self, on_variant: Callable[[list[dict[str, Any]], int], None] | None = None) -> list[dict[str, Any]]:
        """Table 7: per variant, the share of blocks at 2 bits pooled over the ablation seeds (and per seed, with
        the standard deviation over seeds). ``on_variant(done, total)`` is called after each variant with the
        variants finished so far (the comparison writes its report then)."""
        from .presets import search_preset
        from .seeds import figure_stats

        variants, seeds, base_seed = self._ablation_plan()
        out: list[dict[str, Any]] = []
        total, done, started = len(variants) * len(seeds), 0, time.perf_counter()
        for variant in variants:
            name, method = variant.name, variant.method
            per_seed: list[dict[str, Any]] = []
            for seed in seeds:
                label = f"ablation-{variant.key}" + ("" if seed == base_seed else f"-s{seed}")
                done += 1
                if self.finished_only and read_summary(self.out / "runs" / label) is None:
                    self.log(f"{label}: not finished, left out of the report")
                    continue
                self.log(
                    f"ablation {done}/{total}: {label} ({_clock(time.perf_counter() - started)} into the ablation)"
                )
                overrides = {**self._overrides(0.0, variant.quant_mode), "seed": seed}
                if variant.csq_k_percent is not None:
                    overrides["csq_k_percent"] = variant.csq_k_percent
                summary = self.search(label, method, overrides, {})
                config = search_preset(self.settings.preset, self.settings.data_root, **overrides).supernet
                shares = {**share_of_2bit(summary["architecture"], config), **undecided_share(summary, config)}
                per_seed.append({"seed": seed, "label": label, **shares})
            if not per_seed:
                continue
            layers = sum(x["layers"] for x in per_seed)

            def pooled(key: str, per_seed: list[dict[str, Any]] = per_seed, layers: int = layers) -> float:
                return sum(x[key] * x["layers"] for x in per_seed) / layers if layers else math.nan

            pooled_shares: dict[str, float] = {}
            for key in ABLATION_SHARES:
                pooled_shares[key] = pooled(key)
                pooled_shares[f"{key}_sd"] = figure_stats([x[key] for x in per_seed])["sd"]
            for key in ("weight_undecided", "activation_undecided"):
                pooled_shares[key] = pooled(key)
            out.append(
                {"variant": name, "key": variant.key, "seeds": [x["seed"] for x in per_seed], "layers": layers,
                 **pooled_shares, "per_seed": per_seed}
            )  # fmt: skip
            if on_variant is not None:
                on_variant(out, len(variants))
        return out

    def _ablation_plan(self) -> tuple[list[AblationVariant], tuple[int, ...], int]:
        """The ablation's variants (in the table's order), its seeds, and the seed its labels leave unsaid."""
        from .presets import search_preset

        base_seed = search_preset(self.settings.preset, self.settings.data_root, **self._overrides()).settings.seed
        chosen = self.settings.ablation_variants
        variants = [v for v in ABLATION_VARIANTS if chosen is None or v.key in chosen]
        return variants, self.settings.ablation_seeds or (base_seed,), base_seed

    def _same_recipe(self, trained: dict[str, Any]) -> bool:
        """Whether retraining summary ``trained`` follows this comparison's recipe (retrainings written before the
        options were recorded started from the supernet with min/max clipping)."""
        recipe = (self.settings.retrain_init, self.settings.retrain_clipping)
        return (trained.get("init", "supernet"), trained.get("activation_clipping", "minmax")) == recipe

    @staticmethod
    def _cached_design(run_dir: Path) -> dict[str, Any] | None:
        """The run's ``codesign.json``, or ``None`` when there is none or it was written before the coordinate
        search (it has no ``generator`` figures): design again."""
        cached = run_dir / "codesign.json"
        if not cached.exists():
            return None
        found = read_json(cached)
        return found if "generator" in found else None

    def _finished_entry(self, label: str) -> bool:
        """Whether entry ``label`` is searched, retrained with this comparison's recipe and designed for."""
        run_dir = self.out / "runs" / label
        trained = read_summary(RunDir(run_dir).retrain_dir)
        return (
            read_summary(run_dir) is not None
            and trained is not None
            and self._same_recipe(trained)
            and self._cached_design(run_dir) is not None
        )

    def run(self) -> dict[str, Any]:
        """Run every entry and the ablation; write ``compare.json``, ``compare.md`` and ``pareto.png``."""
        rows: list[dict[str, Any]] = []
        seeds_run = self.settings.seeds or (None,)
        total, started = len(seeds_run) * len(self.entries()), time.perf_counter()
        for seed in seeds_run:
            for entry, method, lam in self.entries():
                label = entry if seed is None else f"{entry}-s{seed}"
                elapsed = time.perf_counter() - started
                if self.finished_only and not self._finished_entry(label):
                    self.log(f"{label}: not finished, left out of the report")
                    continue
                self.log(f"entry {len(rows) + 1}/{total}: {label} ({_clock(elapsed)} into this comparison)")
                if method.startswith("uniform"):
                    summary = self.uniform(label, int(method.removeprefix("uniform")), seed)
                else:
                    same_seed = [r for r in rows if r["seed"] == seed]
                    finished = read_summary(self.out / "runs" / label) is not None  # its options are in its config
                    options = self._haq_options(same_seed) if method == "haq" and not finished else {}
                    summary = self.search(label, method, self._overrides(lam, seed=seed), options)
                trained = self.retrain(label)
                row = _row(label, method, lam, summary, trained, self.codesigned(label, seed))
                rows.append({**row, "entry": entry, "seed": seed})
                if len(rows) < total:
                    self.report(rows, [], total)  # what is finished so far, readable during a long comparison
        ablation: list[dict[str, Any]] = []
        if self.settings.ablation:
            self.report(rows, [], total)  # the table while the ablation's searches run

            def variant_done(done: list[dict[str, Any]], variants: int) -> None:
                if len(done) < variants:
                    self.report(rows, done, total, ablation_progress=(len(done), variants))

            ablation = self.ablation(variant_done)
            variants, seeds, _ = self._ablation_plan()
            complete = sum(len(a["seeds"]) == len(seeds) for a in ablation)
            if complete < len(variants):  # only with finished_only: a variant left out, or some of its seeds
                return self.report(rows, ablation, total, ablation_progress=(complete, len(variants)))
        return self.report(rows, ablation, total)

    def report(
        self,
        rows: list[dict[str, Any]],
        ablation: list[dict[str, Any]],
        total: int,
        ablation_progress: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """Write ``compare.json``, ``compare.md`` and the plots for ``rows`` (of ``total`` entries) and return the
        result. Written after every entry and every ablation variant too: a report of the entries (or, with
        ``ablation_progress`` = (finished, all), of the ablation variants) finished so far is marked partial, and
        the mean ± sd over seeds waits for every seed."""
        seeds = self.settings.seeds
        partial = len(rows) < total or (ablation_progress is not None and ablation_progress[0] < ablation_progress[1])
        aggregate = aggregate_seeds(rows) if seeds and len(seeds) > 1 and not partial else []
        result = {
            "format": "jaqc.compare",
            "jaqc_version": __version__,
            "settings": {
                "preset": self.settings.preset, "methods": list(self.settings.methods),
                "lambdas": list(self.settings.lambdas), "epochs": self.settings.epochs,
                "retrain_epochs": self.settings.retrain_epochs, "episodes": self.settings.episodes,
                "seed": self.settings.seed, "ablation_seeds": self.settings.ablation_seeds,
                "ablation_variants": self.settings.ablation_variants,
                "hw_model": self.hw_model, "retrain_init": self.settings.retrain_init,
                "retrain_clipping": self.settings.retrain_clipping,
                "haq_budget": self.settings.haq_budget, "haq_budget_kind": self.settings.haq_budget_kind,
                "seeds": None if seeds is None else list(seeds),
            },
            "rows": rows,
            "aggregate": aggregate,
            "ablation": ablation,
        }  # fmt: skip
        if partial:
            result["partial"] = {"entries_finished": len(rows), "entries": total}
            if ablation_progress is not None:
                finished, variants = ablation_progress
                result["partial"].update(ablation_variants_finished=finished, ablation_variants=variants)
        atomic_write_text(self.out / "compare.json", json.dumps(result, indent=1) + "\n")
        atomic_write_text(self.out / "compare.md", render_markdown(result))
        title = f"accuracy vs EDAP ({self.settings.preset}, {self.hw_model} model)"
        plot_pareto(rows, self.out / "pareto.png", title)
        if aggregate:
            plot_seeds(aggregate, self.out / "pareto_seeds.png", f"{title}, mean ± sd over seeds {_seed_text(seeds)}")
        preset = self.settings.preset
        if over_lambda := lambda_table(result):
            plot_lambdas(over_lambda, self.out / "lambda.png", f"accuracy and EDAP over λ ({preset})")
        if ablation:
            from .presets import search_preset

            quant = search_preset(preset, self.settings.data_root, **self._overrides()).supernet.quant
            counts = {len(quant.weight_bits), len(quant.activation_bits)}
            draw = 1 / counts.pop() if len(counts) == 1 else None
            title = f"Table 7: blocks at 2 bits, λ = 0 ({preset})"
            plot_ablation(ablation, self.out / "ablation.png", title, draw)
        return result


def _clock(seconds: float) -> str:
    """``h:mm:ss`` of a duration."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _mean_bits(architecture: dict[str, Any]) -> tuple[float, float]:
    pairs = [b for op, b in zip(architecture["ops"], architecture["bits"], strict=True) if op != "skip" and b]
    if not pairs:
        return math.nan, math.nan
    return sum(w for w, _ in pairs) / len(pairs), sum(a for _, a in pairs) / len(pairs)


#: The figures aggregated over seeds, and whether higher is better.
SEED_FIGURES: tuple[tuple[str, bool], ...] = (
    ("test_accuracy", True), ("latency_ms", False), ("energy_mJ", False), ("area_mm2", False),
    ("edap_mJ_ms_mm2", False), ("codesigned_edap_mJ_ms_mm2", False),
)  # fmt: skip


def _seed_text(seeds: Sequence[int] | None) -> str:
    return ",".join(str(s) for s in seeds or ())


def beats(a: dict[str, Any], b: dict[str, Any], key: str, higher: bool) -> bool:
    """Whether entry ``a`` beats entry ``b`` on figure ``key`` beyond the seeds' spread: its mean is better by more
    than the sum of the two standard deviations (their mean ± sd intervals do not touch)."""
    gap = a[key]["mean"] - b[key]["mean"]
    return (gap if higher else -gap) > a[key]["sd"] + b[key]["sd"]


def wins_against_all(entry: dict[str, Any], key: str, aggregate: Sequence[dict[str, Any]]) -> bool:
    """Whether ``entry`` of ``aggregate`` beats every other entry on ``key`` beyond the seeds' spread (the † of
    the reports)."""
    others = len(aggregate) - 1
    return others > 0 and len(entry["wins"][key]) == others


def aggregate_seeds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per entry (method and λ): every :data:`SEED_FIGURES` figure's mean, sample standard deviation and values
    over its seeds, and for each figure the entries it beats beyond the seeds' spread (:func:`beats`)."""
    from .seeds import figure_stats

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["entry"], []).append(row)
    out: list[dict[str, Any]] = []
    for entry, group in groups.items():
        figures = {key: figure_stats([float(r[key]) for r in group]) for key, _ in SEED_FIGURES}
        first = group[0]
        out.append({"entry": entry, "method": first["method"], "lambda": first["lambda"],
                    "seeds": [r["seed"] for r in group], **figures})  # fmt: skip
    for a in out:
        a["wins"] = {
            key: [b["entry"] for b in out if b is not a and beats(a, b, key, higher)] for key, higher in SEED_FIGURES
        }
    return out


#: The figures of the λ table (the JAQ paper's Table 4), with their column names.
LAMBDA_FIGURES: tuple[tuple[str, str], ...] = (
    ("test_accuracy", "test acc (%)"), ("edap_mJ_ms_mm2", "EDAP"), ("codesigned_edap_mJ_ms_mm2", "EDAP, designed"),
)  # fmt: skip


def lambda_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison over λ (the JAQ paper's Table 4): per method run at two or more λ, its entries in order of
    λ, each ``{"lambda", "seeds", <figure>: {"mean", "sd"}}`` for :data:`LAMBDA_FIGURES` (the mean ± sd over
    seeds, or a single run's value with sd 0). Empty when no method has two λ, and while a comparison over seeds
    is partial (the means wait for the last seed, as :func:`aggregate_seeds`)."""
    seeds = result.get("settings", {}).get("seeds") or []
    if len(seeds) > 1:
        items = [
            {"method": a["method"], "lambda": a["lambda"], "seeds": a["seeds"],
             **{key: {"mean": a[key]["mean"], "sd": a[key]["sd"]} for key, _ in LAMBDA_FIGURES}}
            for a in result.get("aggregate") or []
        ]  # fmt: skip
    else:
        items = [
            {"method": r["method"], "lambda": r["lambda"], "seeds": [r.get("seed")],
             **{key: {"mean": float(r.get(key, math.nan)), "sd": 0.0} for key, _ in LAMBDA_FIGURES}}
            for r in result.get("rows", [])
        ]  # fmt: skip
    out: list[dict[str, Any]] = []
    for method in dict.fromkeys(item["method"] for item in items):
        points = sorted((i for i in items if i["method"] == method and i["lambda"] is not None),
                        key=lambda i: i["lambda"])  # fmt: skip
        if len({p["lambda"] for p in points}) > 1:
            out.append({"method": method, "points": points})
    return out


def _row(
    label: str,
    method: str,
    lam: float | None,
    summary: dict[str, Any],
    trained: dict[str, Any],
    codesign: dict[str, Any],
) -> dict[str, Any]:
    accel = summary["accelerator"]
    w_mean, a_mean = _mean_bits(summary["architecture"])
    return {
        "label": label,
        "method": method,
        "lambda": lam,
        "test_accuracy": trained["test_accuracy"],
        "latency_ms": trained["latency_ms"],
        "energy_mJ": trained["energy_mJ"],
        "area_mm2": trained["area_mm2"],
        "edap_mJ_ms_mm2": trained["edap_mJ_ms_mm2"],
        "codesigned_edap_mJ_ms_mm2": codesign["edap_mJ_ms_mm2"],
        "codesigned_accelerator": codesign["accelerator"],
        "generator_edap_mJ_ms_mm2": codesign.get("generator", {}).get("edap_mJ_ms_mm2", math.nan),
        "design_improvement": codesign.get("improvement", math.nan),
        "search_seconds": summary.get("search_seconds", math.nan),
        "retrain_seconds": trained.get("train_seconds", math.nan),
        "mean_w_bits": w_mean,
        "mean_a_bits": a_mean,
        "accelerator": f"{accel['pe_rows']}x{accel['pe_cols']} {accel['dataflow']} "
        f"W{accel['wbuf_kb']:g}/I{accel['ibuf_kb']:g}/O{accel['obuf_kb']:g} KB",
        "warnings": list(summary.get("reward_warnings", [])),
    }


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def percent(share: float | None) -> str:
    """``0.25`` -> ``25%``; ``–`` for a missing or NaN share."""
    text = _fmt(None if share is None else 100 * share, ".0f")
    return text if text == "–" else f"{text}%"


#: How the report names each retraining start (comparisons written before the option retrained from the supernet).
_INIT_TEXT = {
    "scratch": "every subnet from scratch (the same seeded initialisation)",
    "supernet": "every subnet from its search's supernet weights",
}


def render_markdown(result: dict[str, Any]) -> str:
    """The comparison as markdown: the method table, then the Table 7 ablation."""
    s = result["settings"]
    model = s.get("hw_model", "simulator")  # comparisons written before hardware models were named
    lines = [
        f"# jaqc compare — preset {s['preset']}, {model} hardware model",
        "",
    ]
    done = result.get("partial")
    if done and done["entries_finished"] < done["entries"]:
        lines += [
            f"**Partial: {done['entries_finished']} of {done['entries']} entries finished.** The comparison is "
            "running or was stopped; the same command resumes it, and the mean ± sd over seeds comes with the last "
            "entry.",
            "",
        ]
    lines += [
        f"Test accuracy after the same QAT retraining, {_INIT_TEXT[s.get('retrain_init', 'supernet')]} with "
        f"{s.get('retrain_clipping', 'minmax')} activation clipping; "
        "hardware figures on each run's own accelerator at its "
        f"BatchTile mappings (one cost model: `{model}`, docs/cost_model.md). *EDAP, designed accel.*: the "
        "same retrained subnet on the accelerator `jaqc design` finds for it (the hardware generation network, "
        "then a coordinate search from its design), the same hardware budget for every method, which separates "
        "what a method's network and bits are worth from its accelerator choice; *search ×*: how many times "
        "lower the coordinate search made E_HW than the generator's design. Search time excludes retraining.",
        "",
        "| run | method | λ | test acc | latency (ms) | energy (mJ) | area (mm²) | EDAP (mJ·ms·mm²) "
        "| EDAP, designed accel. | search × | mean w/a bits | search (s) | accelerator |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lam = "–" if r["lambda"] is None else f"{r['lambda']:g}"
        lines.append(
            f"| {r['label']} | {r['method']} | {lam} | {_fmt(100 * r['test_accuracy'], '.2f')}% "
            f"| {_fmt(r['latency_ms'], '.4g')} | {_fmt(r['energy_mJ'], '.4g')} | {_fmt(r['area_mm2'], '.4g')} "
            f"| {_fmt(r['edap_mJ_ms_mm2'], '.4g')} | {_fmt(r.get('codesigned_edap_mJ_ms_mm2'), '.4g')} "
            f"| {_fmt(r.get('design_improvement'), '.3f')} "
            f"| {_fmt(r['mean_w_bits'], '.2f')}/{_fmt(r['mean_a_bits'], '.2f')} "
            f"| {_fmt(r['search_seconds'], '.0f')} | {r['accelerator']} |"
        )
    warned = [f"- **{r['label']}**: {w}" for r in result["rows"] for w in r.get("warnings", [])]
    if warned:  # a row whose search learned nothing is no evidence about its method
        lines += ["", "Searches whose result is not evidence about their method:", "", *warned]
    aggregate = result.get("aggregate") or []
    if aggregate:
        seeds = _seed_text(s.get("seeds"))
        lines += [
            "",
            f"## Over seeds {seeds}: mean ± standard deviation",
            "",
            "A difference is a win only when the means differ by more than the two standard deviations together "
            "(the mean ± sd intervals do not touch); † marks the entry that wins on that figure against every "
            "other entry. Retrained test accuracy; hardware on each run's own accelerator, and on the designed one.",
            "",
            "| entry | method | λ | test acc (%) | latency (ms) | energy (mJ) | area (mm²) | EDAP | EDAP, designed "
            "accel. |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for a in aggregate:
            cells = []
            for key, _ in SEED_FIGURES:
                scale = 100.0 if key == "test_accuracy" else 1.0
                mark = " †" if wins_against_all(a, key, aggregate) else ""
                cells.append(f"{_fmt(scale * a[key]['mean'], '.4g')} ± {_fmt(scale * a[key]['sd'], '.2g')}{mark}")
            lam = "–" if a["lambda"] is None else f"{a['lambda']:g}"
            lines.append(f"| {a['entry']} | {a['method']} | {lam} | " + " | ".join(cells) + " |")
        names = {"test_accuracy": "test accuracy", "edap_mJ_ms_mm2": "EDAP", "codesigned_edap_mJ_ms_mm2":
                 "EDAP on the designed accelerator"}  # fmt: skip
        wins = [
            f"- **{a['entry']}** beats {', '.join(a['wins'][key])} on {label}"
            for key, label in names.items()
            for a in aggregate
            if a["wins"][key]
        ]
        lines += ["", "Wins beyond the seeds' spread (accuracy and EDAP):", "", *(wins or ["- none"])]
    over_lambda = lambda_table(result)
    if over_lambda:
        spread = " (mean ± sd over seeds)" if len(s.get("seeds") or []) > 1 else ""
        lines += [
            "",
            "## Over λ (the JAQ paper's Table 4)",
            "",
            f"Retrained test accuracy and EDAP (mJ·ms·mm²) on the method's own accelerator and on the designed one, "
            f"per λ{spread}.",
            "",
            "| method | λ | " + " | ".join(name for _, name in LAMBDA_FIGURES) + " |",
            "|---|---|" + "---|" * len(LAMBDA_FIGURES),
        ]
        for group in over_lambda:
            for point in group["points"]:
                cells = []
                for key, _ in LAMBDA_FIGURES:
                    scale = 100.0 if key == "test_accuracy" else 1.0
                    mean, sd = scale * point[key]["mean"], scale * point[key]["sd"]
                    cells.append(_fmt(mean, ".4g") + (f" ± {_fmt(sd, '.2g')}" if spread else ""))
                lines.append(f"| {group['method']} | {point['lambda']:g} | " + " | ".join(cells) + " |")
    if result["ablation"]:
        partial = result.get("partial", {})
        lines += [
            "",
            "## Table 7 ablation: misguided search (λ = 0, no hardware constraint)",
            "",
        ]
        if "ablation_variants" in partial:
            lines += [
                f"**Partial: {partial['ablation_variants_finished']} of {partial['ablation_variants']} variants "
                "finished.**",
                "",
            ]
        lines += [
            "Share of the searchable blocks (an identity skip excluded) whose derived bits are 2, pooled over the "
            "seeds, ± the standard deviation of the seeds' shares (per seed in brackets). *Undecided*: the share of "
            "those blocks whose chosen weight / activation bits lead the runner-up by less than the margin threshold "
            "in softmax(β) (0.05, docs/search.md): where most are undecided, the 2-bit shares are close to a draw.",
            "",
            "| variant | seeds | blocks | weights at 2 bits | activations at 2 bits | either | undecided (w / a) |",
            "|---|---|---|---|---|---|---|",
        ]

        def cell(a: dict[str, Any], key: str) -> str:
            per_seed = a.get("per_seed", [])
            if len(per_seed) < 2:
                return f"{_fmt(100 * a[key], '.0f')}%"
            sd = a.get(f"{key}_sd")  # absent in comparisons written before it was reported
            text = f"{_fmt(100 * a[key], '.0f')}" + ("" if sd is None else f" ± {_fmt(100 * sd, '.0f')}") + "%"
            return text + " (" + " / ".join(f"{_fmt(100 * x[key], '.0f')}" for x in per_seed) + ")"

        for a in result["ablation"]:
            seeds = ",".join(str(x) for x in a.get("seeds", [])) or "–"
            lines.append(
                f"| {a['variant']} | {seeds} | {a['layers']} | {cell(a, 'weight_2bit')} "
                f"| {cell(a, 'activation_2bit')} | {cell(a, 'any_2bit')} "
                f"| {percent(a.get('weight_undecided'))} / {percent(a.get('activation_undecided'))} |"
            )
    return "\n".join(lines) + "\n"


def _figure_by_method(items: Sequence[dict[str, Any]]) -> tuple[Any, Any, dict[str, Any]]:
    """A figure and axes for the comparison's plots, and a colour per method of ``items`` (by name)."""
    from .plots import _figure

    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    methods = sorted({item["method"] for item in items})
    return fig, ax, {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}


def plot_seeds(aggregate: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Test accuracy against EDAP (log scale) per entry: the mean over seeds with ±sd bars on both axes."""
    from .plots import _save

    if not aggregate:
        return None
    fig, ax, colours = _figure_by_method(aggregate)
    for a in aggregate:
        x, y = a["edap_mJ_ms_mm2"], a["test_accuracy"]
        ax.errorbar(x["mean"], 100 * y["mean"], xerr=x["sd"], yerr=100 * y["sd"], fmt="o", capsize=3,
                    color=colours[a["method"]], zorder=3)  # fmt: skip
        ax.annotate(a["entry"], (x["mean"], 100 * y["mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("EDAP (mJ·ms·mm²), mean ± sd")
    ax.set_ylabel("test accuracy (%), mean ± sd")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def plot_pareto(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Test accuracy against EDAP (log scale), one labelled point per run, the Pareto front as a line."""
    from .plots import _save

    points = [(r["edap_mJ_ms_mm2"], 100 * r["test_accuracy"]) for r in rows]
    if not points:
        return None
    fig, ax, colours = _figure_by_method(rows)
    for i, (r, (x, y)) in enumerate(zip(rows, points, strict=True)):
        ax.scatter([x], [y], color=colours[r["method"]], s=36, zorder=3)
        offset = (4, 4) if i % 2 == 0 else (4, -11)  # alternate above / below: close points stay readable
        ax.annotate(r["label"], (x, y), textcoords="offset points", xytext=offset, fontsize=8)
        generated = r.get("codesigned_edap_mJ_ms_mm2")
        if generated is not None and generated != x:  # the same subnet on its designed accelerator
            ax.scatter([generated], [y], facecolors="none", edgecolors=[colours[r["method"]]], s=36, zorder=3)
            ax.annotate("", (generated, y), (x, y), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8})
    ax.scatter([], [], facecolors="none", edgecolors="0.3", s=36, label="on its designed accelerator")
    front = pareto_front(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--", color="0.5", lw=1, label="Pareto front")
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("EDAP (mJ·ms·mm², log)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_lambdas(over_lambda: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """The λ table (:func:`lambda_table`) as two panels against λ: test accuracy, and EDAP (log scale) on the
    method's own accelerator (filled) and on the designed one (open); ±sd bars over seeds."""
    from .plots import _figure, _save

    if not over_lambda:
        return None
    plt = _figure()
    fig, (ax_acc, ax_edap) = plt.subplots(1, 2, figsize=(10, 3.8))
    lambdas = sorted({p["lambda"] for g in over_lambda for p in g["points"]})
    where = {lam: i for i, lam in enumerate(lambdas)}  # evenly spaced: λ values span decades and may include 0
    for index, group in enumerate(over_lambda):
        colour = plt.get_cmap("tab10")(index % 10)
        x = [where[p["lambda"]] + 0.06 * (index - (len(over_lambda) - 1) / 2) for p in group["points"]]

        def series(key: str, scale: float = 1.0, group: dict[str, Any] = group) -> tuple[list[float], list[float]]:
            return [scale * p[key]["mean"] for p in group["points"]], [scale * p[key]["sd"] for p in group["points"]]

        y, err = series("test_accuracy", 100.0)
        ax_acc.errorbar(x, y, yerr=err, fmt="o-", capsize=3, color=colour, label=group["method"])
        y, err = series("edap_mJ_ms_mm2")
        ax_edap.errorbar(x, y, yerr=err, fmt="o-", capsize=3, color=colour, label=f"{group['method']}, own")
        y, err = series("codesigned_edap_mJ_ms_mm2")
        ax_edap.errorbar(x, y, yerr=err, fmt="o--", capsize=3, color=colour, mfc="none",
                         label=f"{group['method']}, designed")  # fmt: skip
    for ax in (ax_acc, ax_edap):
        ax.set_xticks(range(len(lambdas)), [f"{lam:g}" for lam in lambdas])
        ax.set_xlabel("λ")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_acc.set_ylabel("test accuracy (%)")
    ax_edap.set_ylabel("EDAP (mJ·ms·mm², log)")
    ax_edap.set_yscale("log")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.3)  # the log axis's tick labels need the room
    return _save(fig, path)


def plot_ablation(ablation: Sequence[dict[str, Any]], path: Path, title: str, draw: float | None = None) -> Path | None:
    """Table 7 as bars: per variant, the pooled share of blocks with 2-bit weights and with 2-bit activations,
    every seed's share a dot on its bar; ``draw``: the share a search that decided nothing would give (one of
    the bitwidth candidates at random), a dashed line."""
    from .plots import _figure, _save

    if not ablation:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7.0, 0.55 * len(ablation) + 1.4))
    height = 0.38
    for offset, key, label, colour in ((-height / 2, "weight_2bit", "weights", "tab:blue"),
                                       (height / 2, "activation_2bit", "activations", "tab:orange")):  # fmt: skip
        y = [i + offset for i in range(len(ablation))]
        ax.barh(y, [100 * a[key] for a in ablation], height=height, color=colour, alpha=0.75, label=label)
        for yi, a in zip(y, ablation, strict=True):
            dots = [100 * x[key] for x in a.get("per_seed", [])]
            if len(dots) > 1:
                ax.scatter(dots, [yi] * len(dots), color="black", s=12, zorder=3)
    ax.scatter([], [], color="black", s=12, label="one seed")
    if draw is not None:
        ax.axvline(100 * draw, color="0.4", ls="--", lw=1, label="a random draw")
    ax.set_yticks(range(len(ablation)), [a["variant"] for a in ablation])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("searchable blocks derived at 2 bits (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
