"""Training the hardware generation network for one subnet: minimise E_HW of the sampled accelerator.

Each step samples an accelerator (Gumbel-softmax, annealed temperature), maps the subnet on it with
BatchTile under the sampled loop order (cached per distinct design), evaluates the relaxed E_HW
(:func:`~jaqc.hw.generator.objective.relaxed_objective`) and takes an Adam step. The best design seen (by its exact
E_HW, which is the relaxed objective's forward value) is returned with the whole history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from attrs import field, frozen

from jaqc.hw.errors import HardwareError, InfeasibleMappingError
from jaqc.hw.generator.network import HardwareGenerator, op_vector_tensor
from jaqc.hw.generator.objective import HardwareWeights, NetworkTotals, best_mappings, mapped_totals, relaxed_objective
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.lowering import operator_vector
from jaqc.hw.model.problem import ConvProblem
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LoopDim, Mapping

#: The default reference design that normalises E_HW: JAQ's Table 2 accelerator (16x16 PEs, 384 KB x3).
REFERENCE_ACCELERATOR = AcceleratorConfig(
    pe_rows=16, pe_cols=16, wbuf_kb=384, ibuf_kb=384, obuf_kb=384, name="jaq-table2"
)


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise HardwareError(f"generator training field {attribute.name} must be > 0, got {value}")


@frozen(kw_only=True)
class GeneratorTraining:
    """Steps, Adam learning rate, Gumbel temperature annealed geometrically from start to end, samples per
    step (their E_HW is averaged), an entropy bonus on the heads (decaying linearly to 0, it keeps the
    generator exploring instead of settling on its first good design), seed."""

    steps: int = field(default=200, validator=_positive)
    lr: float = field(default=3e-3, validator=_positive)
    temperature_start: float = field(default=5.0, validator=_positive)
    temperature_end: float = field(default=0.5, validator=_positive)
    samples_per_step: int = field(default=4, validator=_positive)
    entropy: float = field(default=0.05, validator=lambda i, a, v: _positive(i, a, v + 1e-12))
    seed: int = 0

    def temperature(self, step: int) -> float:
        """Temperature at ``step`` (geometric from start to end over ``steps``)."""
        frac = step / max(1, self.steps - 1)
        return self.temperature_start * (self.temperature_end / self.temperature_start) ** frac


@frozen(kw_only=True)
class GeneratedDesign:
    """The best accelerator the generator produced, its loop order, mappings, totals and E_HW."""

    accelerator: AcceleratorConfig
    loop_order: tuple[LoopDim, ...]
    mappings: tuple[Mapping, ...]
    totals: NetworkTotals
    e_hw: float
    history: tuple[dict[str, Any], ...]
    seconds: float


def train_generator(
    problems: Sequence[ConvProblem],
    weights: HardwareWeights | None = None,
    training: GeneratorTraining | None = None,
    generator: HardwareGenerator | None = None,
    reference: NetworkTotals | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    hw_model: HardwareModel | str | None = None,
) -> tuple[HardwareGenerator, GeneratedDesign]:
    """Train ``generator`` (a new one by default) on a fixed subnet under ``hw_model`` (default: the
    deployment model); returns it and the best design."""
    model = parse_hw_model(hw_model)
    weights = weights or HardwareWeights()
    training = training or GeneratorTraining()
    start = time.perf_counter()
    if generator is None:
        torch.manual_seed(training.seed)  # initial weights; sampling below uses its own generator
        generator = HardwareGenerator()
    reference = reference or mapped_totals(problems, REFERENCE_ACCELERATOR, hw_model=model)
    inputs = op_vector_tensor([operator_vector(p).normalized() for p in problems])
    optimizer = torch.optim.Adam(generator.parameters(), lr=training.lr)
    rng = torch.Generator().manual_seed(training.seed)
    cache: dict[tuple[int, ...], tuple[Mapping, ...] | None] = {}
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None  # the record of the best feasible design so far
    for step in range(training.steps):
        tau = training.temperature(step)
        losses = []
        entropy = None
        for _ in range(training.samples_per_step):
            sample = generator(inputs, tau, rng)
            digits = sample.digits
            if digits not in cache:
                try:
                    cache[digits] = tuple(
                        best_mappings(problems, sample.accelerator(), sample.loop_order(), hw_model=model)
                    )
                except InfeasibleMappingError:
                    cache[digits] = None
            mappings = cache[digits]
            if entropy is None:
                entropy = sum(
                    -(torch.softmax(lg, -1) * torch.log_softmax(lg, -1)).sum() for lg in sample.logits.values()
                )
            if mappings is None:  # no tiling fits: push probability away from this design
                losses.append(
                    sum(
                        (torch.softmax(lg, -1) * oh.detach()).sum()
                        for lg, oh in zip(sample.logits.values(), sample.one_hot.values())
                    )
                )
                record = {"step": step, "temperature": tau, "e_hw": None, "digits": digits, "feasible": False}
            else:
                loss, totals = relaxed_objective(sample, problems, mappings, weights, reference, model)
                losses.append(loss)
                record = {
                    "step": step,
                    "temperature": tau,
                    "e_hw": float(loss.detach()),
                    "energy_nJ": float(totals["energy_nJ"].detach()),
                    "latency_s": float(totals["latency_s"].detach()),
                    "area_mm2": float(totals["area_mm2"].detach()),
                    "digits": digits,
                    "feasible": True,
                }
                if best is None or record["e_hw"] < best["e_hw"]:
                    best = record
            history.append(record)
            if on_step is not None:
                on_step(record)
        bonus = training.entropy * (1.0 - step / max(1, training.steps))
        total = sum(losses) / len(losses) - bonus * entropy  # type: ignore[operator]
        optimizer.zero_grad()
        total.backward()  # type: ignore[union-attr]
        optimizer.step()
    if best is None:
        raise InfeasibleMappingError("hardware generator: no sampled accelerator could map the subnet")
    point = generator.space.point_from_digits(best["digits"])
    mappings = cache[best["digits"]]
    totals = NetworkTotals(energy_nJ=best["energy_nJ"], latency_s=best["latency_s"], area_mm2=best["area_mm2"])
    design = GeneratedDesign(
        accelerator=point.accelerator,
        loop_order=point.loop_order,
        mappings=mappings,  # type: ignore[arg-type]
        totals=totals,
        e_hw=best["e_hw"],
        history=tuple(history),
        seconds=time.perf_counter() - start,
    )
    return generator, design
