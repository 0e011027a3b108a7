"""HQNAS (Chen et al., 2022): joint architecture and bitwidth search by weight-sharing and bit-sharing.

A re-implementation from the paper's description (there is no public code): a single-path superkernel per
block (:mod:`.superkernel`), nested 2/4/8-bit weights and activations switched by trainable thresholds,
trained in one loop on ``CE + λ·log(latency)`` with the latency from jaqc's cost model on a fixed accelerator
(:mod:`.latency`), and a lifelong mode that re-searches from a previous run (:mod:`.run`). See docs/hqnas.md.
"""

from __future__ import annotations

from .run import HqnasRun

__all__ = ["HqnasRun"]
