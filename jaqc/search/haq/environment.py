"""The protocol a network must offer to be searched by HAQ (the real network, or the synthetic stand-in)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Protocol, runtime_checkable

from .layers import LayerInfo

#: One configuration: ``(w_bits, a_bits)`` per quantizable layer, in the order of ``env.layers``.
BitConfig = tuple[tuple[int, int], ...]


class ResourceKind(str, Enum):  # noqa: UP042 - the project's enums are str mix-ins
    """The hardware resource a budget limits: latency, energy, or their product with the area (EDAP)."""

    LATENCY = "latency"
    ENERGY = "energy"
    EDAP = "edap"

    def __str__(self) -> str:
        return self.value


@runtime_checkable
class HaqEnvironment(Protocol):
    """A fixed network whose per-layer bitwidths HAQ chooses.

    ``evaluate(bits)`` returns the accuracy after the short fine-tune (the units of ``reference_accuracy``,
    e.g. percent; HAQ's reward 0.1 × difference assumes percent). ``cost(bits, kind)`` returns the resource of
    the whole network at ``bits`` (e.g. from the cost model at BatchTile mappings on a given accelerator). The
    search relies on the cost being non-decreasing in every layer's weight and activation bits, and calls it
    often with repeated configurations (it memoises per configuration, but an environment should cache
    per-layer figures itself).
    """

    @property
    def layers(self) -> Sequence[LayerInfo]:
        """The quantizable layers, in network order, with indices 0..n-1."""
        ...

    @property
    def reference_accuracy(self) -> float:
        """The accuracy the reward is measured against (the full-precision or 8-bit network)."""
        ...

    def evaluate(self, bits: BitConfig) -> float:
        """The accuracy of the network quantized to ``bits`` after the short fine-tune."""
        ...

    def cost(self, bits: BitConfig, kind: ResourceKind) -> float:
        """The network's resource of ``kind`` at ``bits`` (positive, non-decreasing in every bitwidth)."""
        ...
