"""A whole network on one accelerator: its totals (one type, with its units) and the hardware cost E_HW.

Layers run one after another, so cycles and energy add up in layer order and the latency is the total cycles
over the clock; the area is the accelerator's. :class:`NetworkTotals` holds them in the cost model's units
(nJ, s, mm²) and converts to the schedule's (mJ, ms: ``docs/schedule.md``): ``jaqc map``, the schedule,
the run summaries, HAQ's budgets and the searches' references all read this one type.

``E_HW = λE·Energy/E_ref + λL·Latency/L_ref + λA·Area/A_ref`` (JAQ Eq. 9; ``form="log"``: ``λ·log(X/X_ref)``)
is :func:`e_hw`, for plain numbers and for tensors with gradients alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from attrs import field, frozen

from jaqc.hw.errors import HardwareError
from jaqc.ir.accelerator import AcceleratorConfig


def _nonneg(_inst: object, attribute: object, value: float) -> None:
    if not 0 <= value < float("inf"):  # (NaN compares false)
        raise HardwareError(f"hardware weight {attribute.name} must be a finite number >= 0, got {value}")  # type: ignore[attr-defined]


def _form(_inst: object, _attr: object, value: str) -> None:
    if value not in ("linear", "log"):
        raise HardwareError(f"hardware cost form must be 'linear' or 'log', got {value!r}")


@frozen(kw_only=True)
class HardwareWeights:
    """λE, λL, λA of Eq. 9 (paper: 0.33 each) and the form of the sum (linear or log)."""

    energy: float = field(default=0.33, converter=float, validator=_nonneg)
    latency: float = field(default=0.33, converter=float, validator=_nonneg)
    area: float = field(default=0.33, converter=float, validator=_nonneg)
    form: str = field(default="linear", validator=_form)


@frozen(kw_only=True)
class NetworkTotals:
    """Energy (nJ), latency (s) and area (mm²) of a whole network on one accelerator; ``cycles`` and ``layers``
    when it was summed from its layers."""

    energy_nJ: float
    latency_s: float
    area_mm2: float
    cycles: int | None = None
    layers: int | None = None

    @classmethod
    def of_layers(
        cls, cycles: Sequence[int], energy_nJ: Sequence[float], accelerator: AcceleratorConfig, area_mm2: float
    ) -> NetworkTotals:
        """The totals of layers with these cycles and energies run one after another on ``accelerator``."""
        total = sum(int(c) for c in cycles)
        return cls(
            energy_nJ=float(sum(energy_nJ)),
            latency_s=total / (accelerator.freq_mhz * 1.0e6),
            area_mm2=float(area_mm2),
            cycles=total,
            layers=len(cycles),
        )

    @property
    def energy_mJ(self) -> float:
        """Energy in mJ."""
        return self.energy_nJ * 1e-6

    @property
    def latency_ms(self) -> float:
        """Latency in ms."""
        return self.latency_s * 1e3

    @property
    def edap(self) -> float:
        """Energy × latency × area in the cost model's units (nJ·s·mm²)."""
        return self.energy_nJ * self.latency_s * self.area_mm2

    @property
    def edap_mJ_ms_mm2(self) -> float:
        """Energy × latency × area in the schedule's units (mJ·ms·mm²)."""
        return self.energy_mJ * self.latency_ms * self.area_mm2

    def to_json(self) -> dict[str, Any]:
        """The schedule's ``totals`` (``docs/schedule.md``): layers, cycles, latency_ms, energy_mJ, area_mm2,
        edp_mJ_ms, edap_mJ_ms_mm2."""
        energy, latency = self.energy_mJ, self.latency_ms
        return {
            "layers": self.layers,
            "cycles": self.cycles,
            "latency_ms": latency,
            "energy_mJ": energy,
            "area_mm2": self.area_mm2,
            "edp_mJ_ms": energy * latency,
            "edap_mJ_ms_mm2": energy * latency * self.area_mm2,
        }

    def e_hw(self, weights: HardwareWeights, reference: NetworkTotals) -> float:
        """E_HW of these totals against ``reference``."""
        return float(e_hw(weights, self.energy_nJ, self.latency_s, self.area_mm2, reference))


def e_hw(weights: HardwareWeights, energy_nJ: Any, latency_s: Any, area_mm2: Any, reference: NetworkTotals) -> Any:
    """E_HW (Eq. 9) of an energy, latency and area (numbers or tensors) against ``reference``: the weighted sum
    of the three ratios, or of their logs when ``weights.form`` is ``"log"``."""
    ratios = (
        (weights.energy, energy_nJ / reference.energy_nJ),
        (weights.latency, latency_s / reference.latency_s),
        (weights.area, area_mm2 / reference.area_mm2),
    )
    if weights.form == "log":
        return sum(w * (torch.log(r) if isinstance(r, torch.Tensor) else math.log(r)) for w, r in ratios)
    return sum(w * r for w, r in ratios)
