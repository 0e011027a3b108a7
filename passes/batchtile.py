"""``batchtile{objective=latency,space=jaq,im2col_first=true,loop_order=,hw_model=deployment,output_bits=8}``:
the best mapping of every layer.

BatchTile (JAQ): for each conv2d and linear layer and the graph's accelerator, every candidate mapping
(tile sizes x loop orders) is evaluated in one vectorised cost-model call and the exact argmin of the
objective is taken (ties: see docs/cost_model.md). ``space=bitfusion`` is the BitFusion simulator
optimizer's grid; ``space=jaq`` tiles each dimension by 2^0..2^10 clipped to it, any loop order.
Reads: ``graph.accelerator``; conv2d/linear shapes, params and ``quant`` (floating point runs at 8 bits).
Writes: ``mapping`` and ``cost`` per layer; the full cost record in ``meta["cost_record"]``.
``im2col_first`` lowers layers fed by a graph input with im2col, as the simulator does for first layers.
``loop_order`` (e.g. ``IC>OC>OH>OW>B``) restricts every layer to one loop order (e.g. a generated one).
``hw_model`` names the cost model (``deployment``, the default, or ``simulator``; docs/cost_model.md) and is
written to ``graph.hw_model``; under the deployment model each layer's outputs are written at its consumers'
activation bits (``output_bits`` where they reach a graph output).
torch is imported only when the pass runs. In place; changed when any mapping or cost changed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import field, frozen
from jaqc.ir.accelerator import HW_MODELS
from jaqc.ir.graph import LayerGraph
from jaqc.ir.types import LayerKind

from .base import Pass, PassContext, PassError, PassResult

OBJECTIVES = ("latency", "energy", "edp")
SPACES = ("bitfusion", "jaq")
#: The default cost model of every pass (jaqc.hw.DEFAULT_HW_MODEL).
DEFAULT_HW_MODEL = "deployment"
#: Widths a network output may be written at.
OUTPUT_WIDTHS = ("2", "4", "8", "16", "32")


def _one_of(choices: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def check(_inst: object, attribute: Any, value: str) -> None:
        if value not in choices:
            raise PassError(f"batchtile: {attribute.name} must be one of {', '.join(choices)}, got {value!r}")

    return check


@frozen
class BatchTile(Pass):
    """Annotate every conv2d and linear layer with its best mapping on the graph's accelerator."""

    name: ClassVar[str] = "batchtile"
    requires: ClassVar[tuple[str, ...]] = ("accelerator", "plain")
    provides: ClassVar[tuple[str, ...]] = ("mappings",)
    objective: str = field(default="latency", validator=_one_of(OBJECTIVES))
    space: str = field(default="jaq", validator=_one_of(SPACES))
    im2col_first: bool = True
    loop_order: str = ""
    hw_model: str = field(default=DEFAULT_HW_MODEL, validator=_one_of(HW_MODELS))
    output_bits: int = field(default=8, validator=lambda i, a, v: _one_of(OUTPUT_WIDTHS)(i, a, str(v)))

    def __attrs_post_init__(self) -> None:
        if self.loop_order:
            from jaqc.ir.mapping import Mapping

            try:
                Mapping(tile=(1, 1, 1, 1, 1), loop_order=self.loop_order.split(">"))
            except Exception as exc:
                raise PassError(f"batchtile: loop_order {self.loop_order!r}: {exc}") from None

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        if graph.accelerator is None:
            raise PassError("batchtile: the graph has no accelerator (give one, e.g. jaqc map --accel jaq-table2)")
        from jaqc.hw.mapping.batchtile import map_layers

        if graph.layers_of(LayerKind.CHOICE):
            raise PassError("batchtile: the graph has choice layers (a supernet); run extract-subnet first")
        layers = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
        if not layers:
            return PassResult(graph, False)
        from jaqc.ir.errors import IRError

        from jaqc.hw.model.lowering import layer_problem

        try:
            problems = [layer_problem(graph, x, self.im2col_first, self.output_bits) for x in layers]
        except IRError as exc:
            raise PassError(f"batchtile: {exc}") from None
        orders = [self.loop_order.split(">")] if self.loop_order else None
        results = map_layers(
            problems, graph.accelerator, self.space, self.objective, loop_orders=orders, hw_model=self.hw_model
        )
        model_changed = graph.hw_model != self.hw_model
        graph.hw_model = self.hw_model
        changed = 0
        for layer, result in zip(layers, results, strict=True):
            cost = result.cost.as_layer_cost()
            if layer.mapping != result.mapping or layer.cost != cost:
                changed += 1
            layer.mapping, layer.cost = result.mapping, cost
            layer.meta["cost_record"] = result.cost
            layer.meta["candidates"] = result.candidates
        ctx.log(
            f"batchtile: mapped {len(layers)} layer(s), {sum(r.candidates for r in results)} candidates "
            f"({self.hw_model} model)"
        )
        return PassResult(graph, changed > 0 or model_changed)
