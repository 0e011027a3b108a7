"""Candidate mappings of a layer: the ``bitfusion`` and ``jaq`` tile spaces, loop-order sets and objectives.

Tilings are listed in lexicographic order of (B, OW, OH, IC, OC) tile sizes and loop orders by rank, the
order BatchTile's tie-breaking rule refers to (docs/cost_model.md, section 14).
"""

from __future__ import annotations

import functools
import math
from enum import Enum

import torch

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.orders import canonical_order_ranks
from jaqc.hw.model.problem import ConvProblem
from jaqc.ir.accelerator import AcceleratorConfig

#: Largest tile exponent of the ``jaq`` space (tiles 2^0 .. 2^10).
JAQ_MAX_TILE_EXPONENT = 10


class MappingSpace(str, Enum):  # noqa: UP042 - Python 3.10 has no StrEnum
    """Which candidate mappings BatchTile searches."""

    #: Exactly the BitFusion simulator optimizer's grid: power-of-two tiles clipped to the extent, square
    #: output tiles, OC tiles of 2^i * pe_cols (2^i for im2col layers), all 120 loop orders.
    BITFUSION = "bitfusion"
    #: The JAQ paper's space: every tile 2^0..2^10 clipped to its extent, OW and OH independent, any order.
    JAQ = "jaq"

    def __str__(self) -> str:
        return self.value


class Objective(str, Enum):  # noqa: UP042 - Python 3.10 has no StrEnum
    """What BatchTile minimises per layer."""

    LATENCY = "latency"
    ENERGY = "energy"
    EDP = "edp"

    def __str__(self) -> str:
        return self.value


def parse_enum(enum_type, value, what: str):
    """``enum_type(value)``, or a HardwareError naming ``what`` and the valid values."""
    try:
        return enum_type(value)
    except ValueError:
        names = ", ".join(e.value for e in enum_type)
        raise HardwareError(f"unknown {what} {value!r}; expected one of {names}") from None


def _pow2_clipped(extent: int, max_exponent: int) -> list[int]:
    """min(2^i, extent) for i = 0..max_exponent, without repeats, ascending."""
    return sorted({min(1 << i, extent) for i in range(max_exponent + 1)})


def _pow2_up_to(extent: int) -> list[int]:
    """The simulator's grid for one dimension: min(2^i, extent), i = 0..ceil(log2(extent))."""
    return _pow2_clipped(extent, math.ceil(math.log2(extent)) if extent > 1 else 0)


def group_aligned_oc_tiles(out_channels: int, per_group: int, candidates: list[int]) -> list[int]:
    """The deployment model's OC tiles of a grouped layer (docs/cost_model.md, section 19.1): the candidates
    that divide the channels per group, then whole groups ``min(per_group * 2^j, out_channels)``."""
    inside = [t for t in candidates if per_group % t == 0]
    whole = sorted({min(per_group << j, out_channels) for j in range(_exponent(out_channels // per_group) + 1)})
    return sorted(set(inside) | set(whole))


def tile_options(
    problem: ConvProblem,
    accelerator: AcceleratorConfig,
    space: MappingSpace | str,
    hw_model: HardwareModel | str | None = None,
) -> list[list[int]]:
    """The candidate tile sizes of each loop (LOOP_DIMS order) in a space under a hardware model; output
    tiles of the ``bitfusion`` space are square, so its OW and OH lists are zipped rather than crossed."""
    space = parse_enum(MappingSpace, space, "mapping space")
    model = parse_hw_model(hw_model)
    options = _simulator_tile_options(problem, accelerator, space, model)
    if model is HardwareModel.DEPLOYMENT and problem.groups > 1:
        options[4] = group_aligned_oc_tiles(problem.out_channels, problem.out_channels_per_group, options[4])
    return options


def _simulator_tile_options(
    problem: ConvProblem, accelerator: AcceleratorConfig, space: MappingSpace, model: HardwareModel
) -> list[list[int]]:
    batch, out_w, out_h, ic, oc = problem.loop_extents_for(model)
    if space is MappingSpace.JAQ:
        return [_pow2_clipped(e, JAQ_MAX_TILE_EXPONENT) for e in (batch, out_w, out_h, ic, oc)]
    square = _pow2_up_to(max(out_w, out_h))
    if problem.im2col:
        oc_tiles = _pow2_up_to(oc)
    else:
        folds = -(-oc // accelerator.pe_cols)
        oc_tiles = sorted({min((1 << i) * accelerator.pe_cols, oc) for i in range(_exponent(folds) + 1)})
    return [
        _pow2_up_to(batch),
        [min(t, out_w) for t in square],
        [min(t, out_h) for t in square],
        _pow2_up_to(ic),
        oc_tiles,
    ]


def _exponent(value: int) -> int:
    return math.ceil(math.log2(value)) if value > 1 else 0


def candidate_tiles(
    problem: ConvProblem,
    accelerator: AcceleratorConfig,
    space: MappingSpace | str,
    hw_model: HardwareModel | str | None = None,
) -> torch.Tensor:
    """(T, 5) float64 candidate tilings, sorted lexicographically by (B, OW, OH, IC, OC)."""
    space = parse_enum(MappingSpace, space, "mapping space")
    return shared_candidate_tiles(problem, accelerator, space, parse_hw_model(hw_model)).clone()


def shared_candidate_tiles(
    problem: ConvProblem,
    accelerator: AcceleratorConfig,
    space: MappingSpace,
    hw_model: HardwareModel = HardwareModel.SIMULATOR,
) -> torch.Tensor:
    """Like :func:`candidate_tiles` but the cached tensor itself (callers must not modify it)."""
    cols = accelerator.pe_cols if space is MappingSpace.BITFUSION and not problem.im2col else 1
    per_group = problem.out_channels_per_group if hw_model is HardwareModel.DEPLOYMENT and problem.groups > 1 else 0
    return _cached_tiles(problem.loop_extents_for(hw_model), problem.im2col, cols, space, per_group)


@functools.lru_cache(maxsize=8192)
def _cached_tiles(
    extents: tuple[int, ...], im2col: bool, cols: int, space: MappingSpace, per_group: int = 0
) -> torch.Tensor:
    # Tile options depend only on the loop extents, im2col, pe_cols (bitfusion OC grid), the space and, for
    # a grouped layer of the deployment model, the output channels per group (``per_group``; 0: dense).
    batch, out_w, out_h, ic, oc = extents
    problem = ConvProblem(batch=batch, in_channels=ic, out_channels=oc, in_h=out_h, in_w=out_w, kernel=1, im2col=im2col)
    accelerator = AcceleratorConfig(pe_rows=1, pe_cols=cols, wbuf_kb=1, ibuf_kb=1, obuf_kb=1)
    options = tile_options(problem, accelerator, space, HardwareModel.SIMULATOR)
    if per_group:
        options[4] = group_aligned_oc_tiles(oc, per_group, options[4])
    b, ow, oh, ic_t, oc_t = (torch.tensor(o, dtype=torch.float64) for o in options)
    if space is MappingSpace.JAQ:
        return torch.cartesian_prod(b, ow, oh, ic_t, oc_t).reshape(-1, 5)
    square = torch.arange(ow.numel(), dtype=torch.float64)
    grid = torch.cartesian_prod(b, square, ic_t, oc_t).reshape(-1, 4)
    index = grid[:, 1].long()
    tiles = torch.stack([grid[:, 0], ow[index], oh[index], grid[:, 2], grid[:, 3]], dim=1)
    # Clipping OW and OH separately (non-square layers) can repeat a tiling; keep the first of each.
    return torch.unique(tiles, dim=0) if out_h != out_w else tiles


def candidate_order_ranks(problem: ConvProblem, space: MappingSpace | str) -> list[int]:
    """The loop-order ranks BatchTile evaluates for a layer (one per cost-equivalence class)."""
    space = parse_enum(MappingSpace, space, "mapping space")
    square = space is MappingSpace.BITFUSION and problem.out_h == problem.out_w
    return canonical_order_ranks(batch_is_one=problem.batch == 1, square_output_tiles=square)
