"""An accelerator for a fixed subnet: the hardware generation network, then a local search from its design.

``jaqc design``, the ``design-accelerator`` pass and :func:`design_accelerator` use it; ``jaqc compare`` scores
every method's subnet on the accelerator it designs, so that every method gets the same hardware budget.

The generator (:func:`~jaqc.hw.generator.training.train_generator`) learns a distribution over the accelerator
space and returns the best design it sampled, which need not be a local optimum. :func:`polish_design` starts
there and searches coordinate by coordinate: for each digit of the space (PE rows, PE columns, the three
buffers, dataflow, loop order) it evaluates every value of that digit with the others fixed, each with its
BatchTile mappings under the design's loop order (one vectorised BatchTile call per digit; one per loop order
for the loop-order digit), moves to the best value when it lowers E_HW, and sweeps again until a whole sweep
moves nothing (a point no single-digit change improves) or ``max_sweeps`` is reached. E_HW is the generator's
objective with the same weights and reference design, so ``improvement`` (generated E_HW over designed E_HW;
for the log form, ``exp`` of their difference) says how far the generator's design was from such a point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from attrs import frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.generator.objective import best_mappings, mapped_totals, mapped_totals_each, subnet_totals
from jaqc.hw.generator.space import DIGIT_NAMES, AcceleratorSpace, HardwarePoint
from jaqc.hw.generator.training import REFERENCE_ACCELERATOR, GeneratedDesign, GeneratorTraining, train_generator
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.orders import ALL_ORDERS
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.totals import HardwareWeights, NetworkTotals
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LoopDim, Mapping

#: E_HW decrease (relative, or absolute below 1: the log form's E_HW can be 0 or negative) below which a move is
#: not taken (float noise between equal designs).
MIN_IMPROVEMENT = 1e-12


def e_hw_ratio(before: float, after: float, form: str) -> float:
    """How many times better ``after`` is than ``before``: their ratio for the linear form (a positive weighted
    sum), ``exp(before - after)`` for the log form (a weighted sum of logs, which can be 0 or negative: the
    ratio of the weighted geometric products)."""
    return math.exp(before - after) if form == "log" else before / after


@frozen(kw_only=True)
class PolishedDesign:
    """The end of a coordinate search: its design, mappings and totals, where it started, and its moves."""

    accelerator: AcceleratorConfig
    loop_order: tuple[LoopDim, ...]
    mappings: tuple[Mapping, ...]
    totals: NetworkTotals
    e_hw: float
    start_e_hw: float
    sweeps: int
    evaluations: int
    converged: bool
    moves: tuple[dict[str, Any], ...]
    seconds: float
    form: str = "linear"

    @property
    def improvement(self) -> float:
        """How many times better the final E_HW is than the start's (:func:`e_hw_ratio`; 1.0: the start was
        already a point no single-digit change improves)."""
        return e_hw_ratio(self.start_e_hw, self.e_hw, self.form)


@frozen(kw_only=True)
class AcceleratorDesign:
    """:func:`design_accelerator`'s result: the generator's design and the polished one."""

    generated: GeneratedDesign
    polished: PolishedDesign

    @property
    def improvement(self) -> float:
        """How many times better the designed E_HW is than the generator's (:func:`e_hw_ratio`)."""
        return e_hw_ratio(self.generated.e_hw, self.polished.e_hw, self.polished.form)


class _Scorer:
    """E_HW of points of the space for one subnet, cached per digits; counts distinct evaluations."""

    def __init__(
        self,
        problems: Sequence[ConvProblem],
        space: AcceleratorSpace,
        weights: HardwareWeights,
        reference: NetworkTotals,
        hw_model: HardwareModel,
    ) -> None:
        self.problems = problems
        self.space = space
        self.weights = weights
        self.reference = reference
        self.model = hw_model
        self.cache: dict[tuple[int, ...], float] = {}

    def score(self, candidates: Sequence[tuple[int, ...]]) -> list[float]:
        """E_HW of each digits tuple (``inf`` where some layer cannot be mapped); the ones not cached are
        evaluated together per loop order."""
        todo = [d for d in dict.fromkeys(candidates) if d not in self.cache]
        by_order: dict[int, list[tuple[int, ...]]] = {}
        for digits in todo:
            by_order.setdefault(digits[-1], []).append(digits)
        for order, group in by_order.items():
            points = [self.space.point_from_digits(d) for d in group]
            totals = mapped_totals_each(
                self.problems, [p.accelerator for p in points], self.model, loop_order=ALL_ORDERS[order]
            )
            for digits, found in zip(group, totals, strict=True):
                self.cache[digits] = float("inf") if found is None else found.e_hw(self.weights, self.reference)
        return [self.cache[d] for d in candidates]


def polish_design(
    problems: Sequence[ConvProblem],
    start: HardwarePoint,
    weights: HardwareWeights | None = None,
    reference: NetworkTotals | None = None,
    hw_model: HardwareModel | str | None = None,
    space: AcceleratorSpace | None = None,
    max_sweeps: int = 10,
    on_sweep: Callable[[dict[str, Any]], None] | None = None,
) -> PolishedDesign:
    """Coordinate search of the accelerator space from ``start`` (see the module docstring)."""
    if max_sweeps < 1:
        raise HardwareError(f"polish: max_sweeps must be >= 1, got {max_sweeps}")
    if not problems:
        raise HardwareError("polish: the subnet has no conv or linear layer")
    begin = time.perf_counter()
    model = parse_hw_model(hw_model)
    weights = weights or HardwareWeights()
    space = space or AcceleratorSpace()
    reference = reference or mapped_totals(problems, REFERENCE_ACCELERATOR, hw_model=model)
    scorer = _Scorer(problems, space, weights, reference, model)
    current = space.digits_of(start)
    (start_e_hw,) = scorer.score([current])
    if start_e_hw == float("inf"):
        acc = start.accelerator
        raise HardwareError(
            f"polish: the start design ({acc.pe_rows}x{acc.pe_cols} PEs, W/I/O buffers "
            f"{acc.wbuf_kb}/{acc.ibuf_kb}/{acc.obuf_kb} KB, {acc.dataflow}) cannot map the subnet"
        )
    best, moves, sweeps, converged = start_e_hw, [], 0, False
    while sweeps < max_sweeps:
        sweeps += 1
        moved = False
        for position, (name, radix) in enumerate(zip(DIGIT_NAMES, space.radices, strict=True)):
            candidates = [(*current[:position], value, *current[position + 1 :]) for value in range(radix)]
            scores = scorer.score(candidates)
            index = min(range(radix), key=lambda i: (scores[i], i))
            if index != current[position] and scores[index] < best - MIN_IMPROVEMENT * max(1.0, abs(best)):
                moves.append({"sweep": sweeps, "digit": name, "from": current[position], "to": index,
                              "e_hw": scores[index]})  # fmt: skip
                current, best, moved = candidates[index], scores[index], True
        if on_sweep is not None:
            on_sweep({"sweep": sweeps, "e_hw": best, "evaluations": len(scorer.cache)})
        if not moved:
            converged = True
            break
    point = space.point_from_digits(current)
    mappings = tuple(best_mappings(problems, point.accelerator, point.loop_order, hw_model=model))
    return PolishedDesign(
        accelerator=point.accelerator,
        loop_order=point.loop_order,
        mappings=mappings,
        totals=subnet_totals(problems, point.accelerator, mappings, model),
        e_hw=best,
        start_e_hw=start_e_hw,
        sweeps=sweeps,
        evaluations=len(scorer.cache),
        converged=converged,
        moves=tuple(moves),
        seconds=time.perf_counter() - begin,
        form=weights.form,
    )


def design_accelerator(
    problems: Sequence[ConvProblem],
    weights: HardwareWeights | None = None,
    training: GeneratorTraining | None = None,
    hw_model: HardwareModel | str | None = None,
    max_sweeps: int = 10,
    generator: Any = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_sweep: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, AcceleratorDesign]:
    """Train the generator on the subnet ``problems`` (``generator``: one to train further; ``on_step`` sees each
    of its samples), then polish its design (``on_sweep`` sees each sweep). Returns the generator and both
    designs."""
    model = parse_hw_model(hw_model)
    weights = weights or HardwareWeights()
    reference = mapped_totals(problems, REFERENCE_ACCELERATOR, hw_model=model)
    generator, generated = train_generator(
        problems, weights, training, generator, reference, on_step=on_step, hw_model=model
    )
    start = HardwarePoint(accelerator=generated.accelerator, loop_order=generated.loop_order)
    polished = polish_design(
        problems, start, weights, reference, model, generator.space, max_sweeps=max_sweeps, on_sweep=on_sweep
    )
    return generator, AcceleratorDesign(generated=generated, polished=polished)
