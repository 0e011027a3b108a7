"""``generate-accelerator{steps=100,lambda_e=0.33,lambda_l=0.33,lambda_a=0.33,form=linear,seed=0,
hw_model=deployment}``.

Trains the hardware generation network (JAQ Fig. 2, :mod:`jaqc.hw.generator.network`) on the graph's conv2d and
linear layers to minimise ``E_HW = λE·E/E_ref + λL·L/L_ref + λA·A/A_ref`` (reference: JAQ's Table 2
accelerator with BatchTile mappings; ``form=log`` sums ``λ·log(X/X_ref)``, i.e. log EDAP with all λ = 1),
then writes the best design: ``graph.accelerator``, and every layer's ``mapping`` and ``cost`` under the
generated tile loop order, priced by ``hw_model`` (written to ``graph.hw_model``). A generator in
``ctx.data["hardware_generator"]`` is trained further instead of a new one (the search loop keeps one across
iterations); the result goes to ``ctx.data["generated_design"]``. torch is imported when the pass runs. In
place; changed when the accelerator or the model changed.

``design-accelerator{...the same options..., max_sweeps=10}`` runs the generator and then a coordinate search of
the accelerator space from its design (:mod:`jaqc.hw.design`, ``jaqc design``) and writes the searched design.
"""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import field, frozen
from jaqc.ir.accelerator import HW_MODELS
from jaqc.ir.graph import LayerGraph
from jaqc.ir.types import LayerKind

from jaqc.core import JaqcError

from .base import Pass, PassContext, PassError, PassResult


def _describe(acc: Any) -> str:
    """``RxC PEs, W/I/O w/i/o KB, DATAFLOW`` of an accelerator (the passes' log lines)."""
    return f"{acc.pe_rows}x{acc.pe_cols} PEs, W/I/O {acc.wbuf_kb}/{acc.ibuf_kb}/{acc.obuf_kb} KB, {acc.dataflow.value}"


def _positive(_inst: object, attribute: object, value: float) -> None:
    if value < 0 or (attribute.name == "steps" and value < 1):  # type: ignore[attr-defined]
        raise PassError(f"generate-accelerator: {attribute.name} must be positive, got {value}")  # type: ignore[attr-defined]


@frozen
class GenerateAccelerator(Pass):
    """Generate the accelerator of the graph's network with the hardware generation network."""

    name: ClassVar[str] = "generate-accelerator"
    requires: ClassVar[tuple[str, ...]] = ("plain",)
    provides: ClassVar[tuple[str, ...]] = ("accelerator",)
    steps: int = field(default=100, validator=_positive)
    lambda_e: float = field(default=0.33, validator=_positive)
    lambda_l: float = field(default=0.33, validator=_positive)
    lambda_a: float = field(default=0.33, validator=_positive)
    form: str = "linear"
    seed: int = 0
    hw_model: str = field(default="deployment")

    def __attrs_post_init__(self) -> None:
        if self.hw_model not in HW_MODELS:
            raise PassError(
                f"generate-accelerator: hw_model must be one of {', '.join(HW_MODELS)}, got {self.hw_model!r}"
            )

    def _problems(self, graph: LayerGraph) -> tuple[list, list]:
        from jaqc.hw.model.lowering import layer_problem

        layers = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
        if not layers:
            raise PassError(f"{self.name}: the graph has no conv2d or linear layer")
        return layers, [layer_problem(graph, x) for x in layers]

    def _weights(self) -> object:
        from jaqc.hw.generator.objective import HardwareWeights

        try:
            return HardwareWeights(energy=self.lambda_e, latency=self.lambda_l, area=self.lambda_a, form=self.form)
        except JaqcError as exc:
            raise PassError(f"{self.name}: {exc}") from None

    def _write(self, graph: LayerGraph, layers: list, problems: list, accelerator: object, mappings: tuple) -> bool:
        """Set the graph's accelerator, hardware model and every layer's mapping and cost; whether it changed."""
        from jaqc.hw.model.layer_cost import layer_costs

        changed = graph.accelerator != accelerator or graph.hw_model != self.hw_model
        graph.accelerator, graph.hw_model = accelerator, self.hw_model  # type: ignore[assignment]
        records = layer_costs(problems, accelerator, list(mappings), hw_model=self.hw_model)  # type: ignore[arg-type]
        for layer, mapping, record in zip(layers, mappings, records, strict=True):
            layer.mapping, layer.cost = mapping, record.as_layer_cost()
            layer.meta["cost_record"] = record
        return changed

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        from jaqc.hw.generator.training import GeneratorTraining, train_generator

        layers, problems = self._problems(graph)
        generator, design = train_generator(
            problems,
            self._weights(),  # type: ignore[arg-type]
            GeneratorTraining(steps=self.steps, seed=self.seed),
            generator=ctx.data.get("hardware_generator"),
            hw_model=self.hw_model,
        )
        ctx.data["hardware_generator"] = generator
        ctx.data["generated_design"] = design
        changed = self._write(graph, layers, problems, design.accelerator, design.mappings)
        ctx.log(
            f"generate-accelerator: {_describe(design.accelerator)}, E_HW {design.e_hw:.4f} "
            f"({self.steps} steps, {design.seconds:.1f} s)"
        )
        return PassResult(graph, changed)


def _sweeps(_inst: object, _attribute: object, value: int) -> None:
    if value < 1:
        raise PassError(f"design-accelerator: max_sweeps must be >= 1, got {value}")


@frozen
class DesignAccelerator(GenerateAccelerator):
    """``design-accelerator{...generate-accelerator's options..., max_sweeps=10}``: the generator, then a
    coordinate search of the accelerator space from its design (:mod:`jaqc.hw.design`). The result goes to
    ``ctx.data["accelerator_design"]`` (both designs), the graph gets the polished one."""

    name: ClassVar[str] = "design-accelerator"
    max_sweeps: int = field(default=10, validator=_sweeps)

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        from jaqc.hw.design import design_accelerator
        from jaqc.hw.generator.training import GeneratorTraining

        layers, problems = self._problems(graph)
        progress = ctx.data.get("generator_progress")  # a jaqc.progress.Progress, advanced once per step
        steps_seen: set[int] = set()

        def on_step(record: dict) -> None:
            if progress is not None and record["step"] not in steps_seen:
                steps_seen.add(record["step"])
                progress.advance(**({"e_hw": record["e_hw"]} if record["e_hw"] is not None else {}))

        generator, design = design_accelerator(
            problems,
            self._weights(),  # type: ignore[arg-type]
            GeneratorTraining(steps=self.steps, seed=self.seed),
            hw_model=self.hw_model,
            max_sweeps=self.max_sweeps,
            generator=ctx.data.get("hardware_generator"),
            on_step=on_step,
            on_sweep=lambda r: ctx.log(
                f"design-accelerator: sweep {r['sweep']}, E_HW {r['e_hw']:.4f}, {r['evaluations']} designs"
            ),
        )
        ctx.data["hardware_generator"] = generator
        ctx.data["accelerator_design"] = design
        polished = design.polished
        changed = self._write(graph, layers, problems, polished.accelerator, polished.mappings)
        ctx.log(
            f"design-accelerator: {_describe(polished.accelerator)}, "
            f"E_HW {polished.e_hw:.4f} (generator {design.generated.e_hw:.4f}, x{design.improvement:.3f} after "
            f"{polished.sweeps} sweeps, {polished.evaluations} designs, {polished.seconds:.1f} s)"
        )
        return PassResult(graph, changed)
