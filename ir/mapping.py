"""Compiler mapping of one layer onto the accelerator: tile sizes per loop dimension and a loop order.

The five tiled loops follow the BitFusion simulator: batch ``B``, output width ``OW``, output height ``OH``,
input channels ``IC`` and output channels ``OC``. The kernel loops are never tiled.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from enum import StrEnum

from attrs import field, frozen

from .errors import IRError
from .values import to_int, to_list


class LoopDim(StrEnum):
    """One of the five tiled loops of a convolution."""

    B = "B"
    OW = "OW"
    OH = "OH"
    IC = "IC"
    OC = "OC"

    def __str__(self) -> str:
        return self.value


#: The canonical order of the loop dimensions (the order of ``Mapping.tile``).
LOOP_DIMS: tuple[LoopDim, ...] = (LoopDim.B, LoopDim.OW, LoopDim.OH, LoopDim.IC, LoopDim.OC)


def group_aligned(oc_tile: int, channels_per_group: int) -> bool:
    """Whether OC tiles of ``oc_tile`` channels keep to whole groups of ``channels_per_group`` output channels
    (the deployment model's rule for grouped layers, docs/cost_model.md section 19.1): the tile divides a
    group or is a multiple of one (a whole layer's channels always are)."""
    return channels_per_group % oc_tile == 0 or oc_tile % channels_per_group == 0


def _to_dim(value: LoopDim | str) -> LoopDim:
    try:
        return LoopDim(value.upper() if isinstance(value, str) else value)
    except (ValueError, TypeError):
        raise IRError(f"unknown loop dimension {value!r}; expected one of B, OW, OH, IC, OC") from None


def _convert_order(value: Iterable[LoopDim | str]) -> tuple[LoopDim, ...]:
    return tuple(_to_dim(v) for v in to_list(value, "mapping loop_order"))


def _convert_tile(value: Iterable[int] | MappingABC[str, int]) -> tuple[int, ...]:
    if isinstance(value, MappingABC):
        keyed = {_to_dim(k): v for k, v in value.items()}
        missing = [d.value for d in LOOP_DIMS if d not in keyed]
        if missing:
            raise IRError(f"mapping tile is missing dimension(s) {', '.join(missing)}")
        return tuple(to_int(keyed[d], f"mapping tile size of {d.value}") for d in LOOP_DIMS)
    return tuple(to_int(v, "mapping tile size") for v in to_list(value, "mapping tile"))


def _check_tile(_inst: object, _attr: object, value: tuple[int, ...]) -> None:
    if len(value) != len(LOOP_DIMS):
        raise IRError(f"mapping tile needs {len(LOOP_DIMS)} sizes (B, OW, OH, IC, OC), got {len(value)}")
    for dim, size in zip(LOOP_DIMS, value):
        if size < 1:
            raise IRError(f"mapping tile size of {dim.value} must be >= 1, got {size}")


def _check_order(_inst: object, _attr: object, value: tuple[LoopDim, ...]) -> None:
    if sorted(d.value for d in value) != sorted(d.value for d in LOOP_DIMS):
        names = ">".join(d.value for d in value)
        raise IRError(f"loop order {names!r} must be a permutation of B, OW, OH, IC, OC")


@frozen
class Mapping:
    """Tile sizes of the five loops (in ``LOOP_DIMS`` order) and the loop order, outer to inner.

    ``Mapping(tile={"B": 1, "OW": 7, "OH": 7, "IC": 16, "OC": 16}, loop_order="IC>OC>OH>OW>B".split(">"))``
    """

    tile: tuple[int, ...] = field(converter=_convert_tile, validator=_check_tile)
    loop_order: tuple[LoopDim, ...] = field(converter=_convert_order, validator=_check_order)

    def tile_of(self, dim: LoopDim | str) -> int:
        """The tile size of one loop dimension."""
        return self.tile[LOOP_DIMS.index(_to_dim(dim))]

    def tile_dict(self) -> dict[str, int]:
        """Tile sizes keyed by dimension name, in ``LOOP_DIMS`` order."""
        return {d.value: t for d, t in zip(LOOP_DIMS, self.tile)}

    def order_string(self) -> str:
        """The loop order written outer>inner, e.g. ``"IC>OC>OH>OW>B"``."""
        return ">".join(d.value for d in self.loop_order)

    @classmethod
    def from_json(cls, data: MappingABC[str, object]) -> Mapping:
        """Read ``{"tile": {...}, "loop_order": [...]}`` (the reference-data format; extra keys ignored)."""
        if not isinstance(data, MappingABC):
            raise IRError(f"mapping must be an object with tile and loop_order, got {data!r}")
        try:
            tile = data["tile"]
            order = data["loop_order"]
        except KeyError as exc:
            raise IRError(f"mapping is missing field {exc.args[0]!r}") from None
        if isinstance(order, str):
            order = order.split(">")
        return cls(tile=tile, loop_order=order)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        """The inverse of :meth:`from_json`."""
        return {"tile": self.tile_dict(), "loop_order": [d.value for d in self.loop_order]}
