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
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen
from jaqc.ir.accelerator import HW_MODELS
from jaqc.ir.graph import LayerGraph
from jaqc.ir.types import LayerKind

from jaqc.core import JaqcError

from .base import Pass, PassContext, PassError, PassResult


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

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        from jaqc.hw.generator.objective import HardwareWeights
        from jaqc.hw.generator.training import GeneratorTraining, train_generator
        from jaqc.hw.model.layer_cost import layer_costs
        from jaqc.hw.model.lowering import layer_problem

        layers = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
        if not layers:
            raise PassError("generate-accelerator: the graph has no conv2d or linear layer")
        problems = [layer_problem(graph, x) for x in layers]
        try:
            weights = HardwareWeights(energy=self.lambda_e, latency=self.lambda_l, area=self.lambda_a, form=self.form)
        except JaqcError as exc:
            raise PassError(f"generate-accelerator: {exc}") from None
        generator, design = train_generator(
            problems,
            weights,
            GeneratorTraining(steps=self.steps, seed=self.seed),
            generator=ctx.data.get("hardware_generator"),
            hw_model=self.hw_model,
        )
        ctx.data["hardware_generator"] = generator
        ctx.data["generated_design"] = design
        changed = graph.accelerator != design.accelerator or graph.hw_model != self.hw_model
        graph.accelerator, graph.hw_model = design.accelerator, self.hw_model
        records = layer_costs(problems, design.accelerator, list(design.mappings), hw_model=self.hw_model)
        for layer, mapping, record in zip(layers, design.mappings, records, strict=True):
            layer.mapping, layer.cost = mapping, record.as_layer_cost()
            layer.meta["cost_record"] = record
        acc = design.accelerator
        ctx.log(
            f"generate-accelerator: {acc.pe_rows}x{acc.pe_cols} PEs, "
            f"W/I/O {acc.wbuf_kb}/{acc.ibuf_kb}/{acc.obuf_kb} KB, "
            f"{acc.dataflow.value}, E_HW {design.e_hw:.4f} ({self.steps} steps, {design.seconds:.1f} s)"
        )
        return PassResult(graph, changed)
