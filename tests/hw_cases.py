"""Small hardware problems shared by the generator and design tests (on sys.path through conftest)."""

from __future__ import annotations

from jaqc.hw.generator.space import AcceleratorSpace
from jaqc.hw.model.problem import ConvProblem

PROBLEMS = [
    ConvProblem(batch=1, in_channels=3, out_channels=16, in_h=16, in_w=16, kernel=3, pad=1, im2col=True),
    ConvProblem(
        batch=1, in_channels=16, out_channels=16, in_h=16, in_w=16, kernel=3, pad=1, groups=16, w_bits=4, a_bits=4
    ),
    ConvProblem(batch=1, in_channels=16, out_channels=32, in_h=16, in_w=16, kernel=1, w_bits=2, a_bits=4),
]
SMALL_SPACE = AcceleratorSpace(pe_min=4, pe_max=12, buffer_min_kb=64, buffer_max_kb=128, buffer_step_kb=32)
