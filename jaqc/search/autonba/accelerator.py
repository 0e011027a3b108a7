"""Auto-NBA's accelerator search: best-of-N accelerators drawn from the JAQ space, scored by E_HW."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from attrs import frozen

from jaqc.core import JaqcError
from jaqc.hw.generator.objective import HardwareWeights, NetworkTotals, mapped_totals, mapped_totals_each
from jaqc.hw.generator.space import AcceleratorSpace
from jaqc.hw.generator.training import REFERENCE_ACCELERATOR
from jaqc.hw.model.problem import ConvProblem
from jaqc.ir.accelerator import AcceleratorConfig


@frozen(kw_only=True)
class HardwareSearchResult:
    """The best of the sampled accelerators, with every sample's totals (None: no mapping fits) and E_HW."""

    accelerator: AcceleratorConfig
    totals: NetworkTotals
    e_hw: float
    reference: NetworkTotals
    accelerators: tuple[AcceleratorConfig, ...]
    sample_totals: tuple[NetworkTotals | None, ...]
    scores: tuple[float, ...]

    @property
    def best_index(self) -> int:
        """The position of the best accelerator among the samples."""
        return self.accelerators.index(self.accelerator)

    def to_json(self) -> dict[str, Any]:
        """The chosen accelerator and its figures (for metrics and the summary)."""
        return {
            **design_json(self.accelerator, self.totals, self.e_hw),
            "samples": len(self.accelerators),
            "feasible": sum(t is not None for t in self.sample_totals),
        }


@frozen(kw_only=True)
class GeneratorSearchResult:
    """An accelerator search by JAQ's generator: its design's accelerator, totals, E_HW and samples drawn."""

    accelerator: AcceleratorConfig
    totals: NetworkTotals
    e_hw: float
    steps: int

    def to_json(self) -> dict[str, Any]:
        """The accelerator and its figures (for metrics and the summary)."""
        return {**design_json(self.accelerator, self.totals, self.e_hw), "generator_samples": self.steps}


def design_json(accelerator: AcceleratorConfig, totals: NetworkTotals, e_hw: float) -> dict[str, Any]:
    """An accelerator search's result as JSON: the accelerator, E_HW, energy, latency, area and EDAP."""
    return {
        "accelerator": accelerator.to_json(),
        "e_hw": e_hw,
        "energy_nJ": totals.energy_nJ,
        "latency_s": totals.latency_s,
        "area_mm2": totals.area_mm2,
        "edap_nJ_s_mm2": totals.edap,
    }


def best_of_n(
    problems: Sequence[ConvProblem],
    count: int,
    generator: torch.Generator | int,
    weights: HardwareWeights | None = None,
    space: AcceleratorSpace | None = None,
    reference: NetworkTotals | None = None,
    hw_model: str = "deployment",
) -> HardwareSearchResult:
    """Auto-NBA's accelerator search: ``count`` accelerators drawn uniformly from ``space`` (with
    :meth:`AcceleratorSpace.sample`; the sampled loop order is not used, BatchTile picks each layer's), each
    scored by E_HW of the subnet ``problems`` at its BatchTile mappings; the lowest wins (the first on ties).

    ``reference`` normalises E_HW (default: the subnet on JAQ's Table 2 accelerator, as the generator uses).
    """
    if count < 1:
        raise JaqcError(f"best_of_n: the number of sampled accelerators must be >= 1, got {count}")
    weights = weights or HardwareWeights()
    space = space or AcceleratorSpace()
    reference = reference or mapped_totals(problems, REFERENCE_ACCELERATOR, hw_model=hw_model)
    accelerators = tuple(point.accelerator for point in space.sample(count, generator))
    totals = tuple(mapped_totals_each(problems, accelerators, hw_model))
    scores = tuple(math.inf if t is None else t.e_hw(weights, reference) for t in totals)
    best = min(range(count), key=lambda i: (scores[i], i))
    chosen = totals[best]
    if chosen is None:
        raise JaqcError(f"autonba: none of the {count} sampled accelerators can map the subnet; sample more")
    return HardwareSearchResult(
        accelerator=accelerators[best],
        totals=chosen,
        e_hw=scores[best],
        reference=reference,
        accelerators=accelerators,
        sample_totals=totals,
        scores=scores,
    )
