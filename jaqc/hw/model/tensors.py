"""Batched tensor forms of layer problems, accelerators, mappings and unit costs (the cost model's inputs).

Every field is a tensor broadcastable to the batch shape; one row = one (layer, accelerator, mapping).
Integers are carried as float64 (exact below 2**52) so the same tensors can carry relaxed values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from attrs import frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.constants import DATAFLOW_CODES
from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model
from jaqc.hw.model.orders import order_rank
from jaqc.hw.model.problem import ConvProblem
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LOOP_DIMS, Mapping
from jaqc.ir.mapping import group_aligned as oc_tile_aligned

DEFAULT_DTYPE = torch.float64


def _column(values: Sequence[float], dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    return torch.tensor(list(values), dtype=dtype, device=device)


@frozen(eq=False)
class ProblemTensors:
    """Layer problems: one group of each layer (channels per group) plus the group multiplier."""

    batch: torch.Tensor
    in_channels: torch.Tensor  # per group
    out_channels: torch.Tensor  # per group
    out_h: torch.Tensor
    out_w: torch.Tensor
    kernel: torch.Tensor
    stride: torch.Tensor
    w_bits: torch.Tensor
    a_bits: torch.Tensor
    im2col: torch.Tensor  # bool
    groups: torch.Tensor
    out_bits: torch.Tensor  # width of finished outputs (deployment model)

    @classmethod
    def from_problems(
        cls,
        problems: Sequence[ConvProblem],
        dtype: torch.dtype = DEFAULT_DTYPE,
        device: torch.device | str | None = None,
    ) -> ProblemTensors:
        """Stack problems into one batch (one row per problem)."""
        if not problems:
            raise HardwareError("ProblemTensors.from_problems needs at least one problem")

        def col(name: str) -> torch.Tensor:
            return _column([getattr(p, name) for p in problems], dtype, device)

        return cls(
            batch=col("batch"),
            in_channels=col("group_in_channels"),
            out_channels=col("group_out_channels"),
            out_h=col("out_h"),
            out_w=col("out_w"),
            kernel=col("kernel"),
            stride=col("stride"),
            w_bits=col("w_bits"),
            a_bits=col("a_bits"),
            im2col=torch.tensor([p.im2col for p in problems], dtype=torch.bool, device=device),
            groups=col("groups"),
            out_bits=col("out_bits"),
        )

    def loop_extents(self, whole_layer: bool = False) -> torch.Tensor:
        """(..., 5) extents of the tiled loops in LOOP_DIMS order (B, OW, OH, IC, OC): one group's (the
        simulator's view), or with ``whole_layer`` OC over every group's output channels (the deployment
        model's view; IC stays one group's)."""
        oc = self.out_channels * self.groups if whole_layer else self.out_channels
        parts = torch.broadcast_tensors(self.batch, self.out_w, self.out_h, self.in_channels, oc)
        return torch.stack(parts, dim=-1)

    def index(self, rows: torch.Tensor) -> ProblemTensors:
        """The rows selected by an index tensor (every field must have the batch shape)."""
        return ProblemTensors(**{k: getattr(self, k)[rows] for k in _fields(self)})


@frozen(eq=False)
class HardwareTensors:
    """Accelerators; real-valued fields may be relaxed (non-integer) for the generation network."""

    pe_rows: torch.Tensor
    pe_cols: torch.Tensor
    wbuf_bytes: torch.Tensor
    ibuf_bytes: torch.Tensor
    obuf_bytes: torch.Tensor
    dram_bits_per_cycle: torch.Tensor
    freq_mhz: torch.Tensor
    dataflow: torch.Tensor  # int64 code: WS=0, OS=1, RS=2

    @classmethod
    def from_accelerators(
        cls,
        accelerators: Sequence[AcceleratorConfig],
        dtype: torch.dtype = DEFAULT_DTYPE,
        device: torch.device | str | None = None,
    ) -> HardwareTensors:
        """Stack accelerator configurations into one batch."""
        if not accelerators:
            raise HardwareError("HardwareTensors.from_accelerators needs at least one accelerator")
        return cls(
            pe_rows=_column([a.pe_rows for a in accelerators], dtype, device),
            pe_cols=_column([a.pe_cols for a in accelerators], dtype, device),
            wbuf_bytes=_column([a.wbuf_kb * 1024 for a in accelerators], dtype, device),
            ibuf_bytes=_column([a.ibuf_kb * 1024 for a in accelerators], dtype, device),
            obuf_bytes=_column([a.obuf_kb * 1024 for a in accelerators], dtype, device),
            dram_bits_per_cycle=_column([a.dram_bits_per_cycle for a in accelerators], dtype, device),
            freq_mhz=_column([a.freq_mhz for a in accelerators], dtype, device),
            dataflow=torch.tensor(
                [DATAFLOW_CODES[a.dataflow.value] for a in accelerators], dtype=torch.int64, device=device
            ),
        )

    def index(self, rows: torch.Tensor) -> HardwareTensors:
        """The rows selected by an index tensor (every field must have the batch shape)."""
        return HardwareTensors(**{k: getattr(self, k)[rows] for k in _fields(self)})


@frozen(eq=False)
class MappingTensors:
    """Mappings: ``tile`` (..., 5) tile sizes in LOOP_DIMS order, ``order`` (..., 5) int64 indices into
    LOOP_DIMS, outer to inner."""

    tile: torch.Tensor
    order: torch.Tensor

    @classmethod
    def from_mappings(
        cls,
        mappings: Sequence[Mapping],
        dtype: torch.dtype = DEFAULT_DTYPE,
        device: torch.device | str | None = None,
    ) -> MappingTensors:
        """Stack IR mappings into one batch."""
        if not mappings:
            raise HardwareError("MappingTensors.from_mappings needs at least one mapping")
        for m in mappings:
            order_rank(m.loop_order)  # validates
        return cls(
            tile=torch.tensor([list(m.tile) for m in mappings], dtype=dtype, device=device),
            order=torch.tensor(
                [[LOOP_DIMS.index(d) for d in m.loop_order] for m in mappings],
                dtype=torch.int64,
                device=device,
            ),
        )


@frozen(eq=False)
class UnitCostTensors:
    """Per-accelerator unit costs: nJ per compute cycle of the whole array, nJ per bit of each access."""

    core_nj_per_cycle: torch.Tensor
    wbuf_read_nj_per_bit: torch.Tensor
    wbuf_write_nj_per_bit: torch.Tensor
    ibuf_read_nj_per_bit: torch.Tensor
    ibuf_write_nj_per_bit: torch.Tensor
    obuf_read_nj_per_bit: torch.Tensor
    obuf_write_nj_per_bit: torch.Tensor
    dram_nj_per_bit: torch.Tensor

    def index(self, rows: torch.Tensor) -> UnitCostTensors:
        """The rows selected by an index tensor (every field must have the batch shape)."""
        return UnitCostTensors(**{k: getattr(self, k)[rows] for k in _fields(self)})


@frozen(eq=False)
class AreaTensors:
    """Accelerator area by component (mm^2)."""

    core: torch.Tensor
    wbuf: torch.Tensor
    ibuf: torch.Tensor
    obuf: torch.Tensor
    total: torch.Tensor


def _fields(obj: object) -> list[str]:
    return [a.name for a in type(obj).__attrs_attrs__]  # type: ignore[attr-defined]


def check_tiles_within_extents(
    problems: Sequence[ConvProblem], mappings: Sequence[Mapping], hw_model: HardwareModel | str | None = None
) -> None:
    """Raise HardwareError when a mapping tiles a loop beyond its extent under ``hw_model`` (the simulator:
    one group; the deployment model: OC over all groups) or, in the deployment model, splits a group's
    output channels unevenly (an OC tile of a grouped layer must divide or be a multiple of C_out/g)."""
    model = parse_hw_model(hw_model)
    for problem, mapping in zip(problems, mappings, strict=True):
        extents = problem.loop_extents_for(model)
        for dim, tile, extent in zip(LOOP_DIMS, mapping.tile, extents, strict=True):
            if tile > extent:
                raise HardwareError(
                    f"mapping tile {dim.value}={tile} exceeds the loop extent {extent} of layer "
                    f"{problem.name or '<unnamed>'} ({model.value} model)"
                )
        if model is HardwareModel.DEPLOYMENT and not group_aligned(problem, mapping.tile[4]):
            raise HardwareError(
                f"mapping tile OC={mapping.tile[4]} of grouped layer {problem.name or '<unnamed>'} is not "
                f"group-aligned: it must divide or be a multiple of the {problem.out_channels_per_group} output "
                f"channels per group (or be all {problem.out_channels})"
            )


def group_aligned(problem: ConvProblem, oc_tile: int) -> bool:
    """Whether an OC tile of the deployment model keeps each tile inside whole groups (docs/cost_model.md,
    section 19.1): dense layers always; grouped layers when it divides or is a multiple of C_out/g."""
    return problem.groups == 1 or oc_tile_aligned(oc_tile, problem.out_channels_per_group)
