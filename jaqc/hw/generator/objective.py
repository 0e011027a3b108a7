"""A subnet's totals on an accelerator at its mappings, and the differentiable E_HW for the generator.

``E_HW = λE·Energy/E_ref + λL·Latency/L_ref + λA·Area/A_ref`` (JAQ Eq. 9, :func:`jaqc.hw.model.totals.e_hw`), each term
divided by the same quantity of a **reference design** (a fixed accelerator with BatchTile mappings of the same
subnet) so the λs are unitless and comparable. ``form="log"`` uses ``λ·log(X/X_ref)`` instead: with all λ = 1
it is ``log(EDAP/EDAP_ref)``, the objective of the accelerator-search check.

Differentiable form (:func:`relaxed_objective`): the tiles are fixed at BatchTile's choice for the sampled
(hard) accelerator; every layer is evaluated under every dataflow × loop order of the space with the
relaxed accelerator values of the sample (:meth:`GeneratorSample.relaxed`), and the results are combined
with the dataflow and loop-order one-hots. The forward value is exactly the sampled design's cost; PE and
buffer heads get gradients through the cost model's straight-through rounding, the dataflow and order heads
through the costs of their alternatives. Rows whose fixed tiles would not fit under another dataflow still
contribute their cost (a gradient signal only; the forward value never uses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from jaqc.hw.generator.network import GeneratorSample
from jaqc.hw.mapping.batchtile import map_layers, select_mappings
from jaqc.hw.model.constants import DATAFLOW_CODES
from jaqc.hw.model.cost_model import evaluate
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.layer_cost import layer_costs
from jaqc.hw.model.orders import ALL_ORDERS, order_index_tensor
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.tensors import HardwareTensors, MappingTensors, ProblemTensors
from jaqc.hw.model.totals import HardwareWeights, NetworkTotals, e_hw
from jaqc.hw.model.unit_costs import area_for
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping


def subnet_totals(
    problems: Sequence[ConvProblem],
    accelerator: AcceleratorConfig,
    mappings: Sequence[Mapping],
    hw_model: HardwareModel | str | None = None,
) -> NetworkTotals:
    """Totals of a subnet at given mappings (layers run one after another)."""
    records = layer_costs(problems, accelerator, mappings, hw_model=hw_model)
    return NetworkTotals.of_layers(
        [r.total_cycles for r in records], [r.energy_nj["total"] for r in records], accelerator,
        records[0].area_mm2["total"],
    )  # fmt: skip


def best_mappings(
    problems: Sequence[ConvProblem],
    accelerator: AcceleratorConfig,
    loop_order: Sequence | None = None,
    space: str = "jaq",
    objective: str = "latency",
    hw_model: HardwareModel | str | None = None,
) -> list[Mapping]:
    """BatchTile mappings of every layer; with ``loop_order`` every layer uses that order."""
    results = map_layers(
        problems,
        accelerator,
        space,
        objective,
        loop_orders=None if loop_order is None else [loop_order],
        hw_model=hw_model,
    )
    return [r.mapping for r in results]


def mapped_totals(
    problems: Sequence[ConvProblem],
    accelerator: AcceleratorConfig,
    loop_order: Sequence | None = None,
    hw_model: HardwareModel | str | None = None,
) -> NetworkTotals:
    """Totals of a subnet at its BatchTile mappings (the reference design, random-search baselines)."""
    mappings = best_mappings(problems, accelerator, loop_order, hw_model=hw_model)
    return subnet_totals(problems, accelerator, mappings, hw_model)


def mapped_totals_each(
    problems: Sequence[ConvProblem],
    accelerators: Sequence[AcceleratorConfig],
    hw_model: HardwareModel | str = "deployment",
    loop_order: Sequence | None = None,
) -> list[NetworkTotals | None]:
    """:func:`mapped_totals` of the subnet ``problems`` on each accelerator (jaq space, latency objective, every
    loop order, or only ``loop_order``), in one vectorised BatchTile call; None where some layer cannot be
    mapped."""
    count, layers = len(accelerators), len(problems)
    if count == 0:
        return []
    selection = select_mappings(
        list(problems) * count,
        [a for a in accelerators for _ in range(layers)],
        "jaq",
        "latency",
        loop_orders=None if loop_order is None else [loop_order],
        hw_model=hw_model,
    )
    energy = selection.energy.view(count, layers)
    cycles = selection.total_cycles.view(count, layers)
    feasible = selection.feasible.view(count, layers).all(dim=1)
    return [
        NetworkTotals.of_layers(cycles[i].tolist(), energy[i].tolist(), accelerator, area_for(accelerator).total)
        if bool(feasible[i])
        else None
        for i, accelerator in enumerate(accelerators)
    ]


def _rows_cost(
    problems: ProblemTensors,
    layer_index: Tensor,
    hardware_values: dict[str, Tensor],
    dataflow_codes: Tensor,
    tiles: Tensor,
    order_ranks: Tensor,
    space_constants: tuple[float, float],
    hw_model: HardwareModel,
) -> Any:
    rows = layer_index.numel()
    hardware = HardwareTensors(
        **{k: v.expand(rows) for k, v in hardware_values.items()},
        dram_bits_per_cycle=torch.full((rows,), space_constants[0], dtype=torch.float64),
        freq_mhz=torch.full((rows,), space_constants[1], dtype=torch.float64),
        dataflow=dataflow_codes.expand(rows),
    )
    mapping = MappingTensors(tile=tiles[layer_index], order=order_index_tensor()[order_ranks.expand(rows)])
    return evaluate(problems.index(layer_index), hardware, mapping, relaxed=True, hw_model=hw_model)


def relaxed_objective(
    sample: GeneratorSample,
    problems: Sequence[ConvProblem],
    mappings: Sequence[Mapping],
    weights: HardwareWeights,
    reference: NetworkTotals,
    hw_model: HardwareModel | str | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Differentiable E_HW of the sampled accelerator (see the module docstring) and its three totals.

    The chosen dataflow and loop order are evaluated with gradients to the PE and buffer heads; the
    alternatives (every dataflow at the chosen order, every order at the chosen dataflow) without, entering
    as ``(one_hot - one_hot.detach()) · cost``: zero in the forward pass, the straight-through gradient of
    the dataflow and order heads in the backward pass.
    """
    model = parse_hw_model(hw_model)
    space = sample.space
    n_layers = len(problems)
    problem = ProblemTensors.from_problems(problems)
    tiles = torch.tensor([list(m.tile) for m in mappings], dtype=torch.float64)
    values = {
        "pe_rows": sample.relaxed("pe_rows").to(torch.float64),
        "pe_cols": sample.relaxed("pe_cols").to(torch.float64),
        "wbuf_bytes": sample.relaxed("wbuf_kb").to(torch.float64) * 1024.0,
        "ibuf_bytes": sample.relaxed("ibuf_kb").to(torch.float64) * 1024.0,
        "obuf_bytes": sample.relaxed("obuf_kb").to(torch.float64) * 1024.0,
    }
    constants = (float(space.dram_bits_per_cycle), float(space.freq_mhz))
    codes = torch.tensor([DATAFLOW_CODES[d.value] for d in space.dataflows], dtype=torch.int64)
    d_star, o_star = sample.digits[5], sample.digits[6]
    layers = torch.arange(n_layers)
    chosen = _rows_cost(problem, layers, values, codes[d_star], tiles, torch.tensor(o_star), constants, model)
    energy = chosen.energy_total.sum()
    latency = chosen.latency_s.sum()
    area = chosen.area.total.reshape(-1)[0]
    with torch.no_grad():
        hard = {k: v.detach() for k, v in values.items()}
        n_flows, n_orders = len(space.dataflows), len(ALL_ORDERS)
        rows_d = torch.arange(n_flows).repeat_interleave(n_layers)
        alt_d = _rows_cost(
            problem, layers.repeat(n_flows), hard, codes[rows_d], tiles, torch.tensor(o_star), constants, model
        )
        rows_o = torch.arange(n_orders).repeat_interleave(n_layers)
        alt_o = _rows_cost(problem, layers.repeat(n_orders), hard, codes[d_star], tiles, rows_o, constants, model)
        e_d = alt_d.energy_total.reshape(n_flows, n_layers).sum(-1)
        l_d = alt_d.latency_s.reshape(n_flows, n_layers).sum(-1)
        e_o = alt_o.energy_total.reshape(n_orders, n_layers).sum(-1)
        l_o = alt_o.latency_s.reshape(n_orders, n_layers).sum(-1)
    oh_d = sample.one_hot["dataflow"].to(torch.float64)
    oh_o = sample.one_hot["loop_order"].to(torch.float64)
    st_d, st_o = oh_d - oh_d.detach(), oh_o - oh_o.detach()
    energy = energy + (st_d * e_d).sum() + (st_o * e_o).sum()
    latency = latency + (st_d * l_d).sum() + (st_o * l_o).sum()
    totals = {"energy_nJ": energy, "latency_s": latency, "area_mm2": area}
    return e_hw(weights, energy, latency, area, reference), totals
