"""Per-accelerator unit costs (core energy per cycle, SRAM energy per bit) and area, from CACTI and synthesis.

Bank organisation follows the BitFusion simulator: WBUF has N*M banks, IBUF N banks, OBUF M banks
(N = pe_rows, M = pe_cols), each of ceil(buffer bytes / (banks * 4)) 32-bit words. WBUF/IBUF banks have one
read and one write port, OBUF banks an extra read-write port.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from typing import Any

import torch
from attrs import field, frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.cacti import cacti_lookup
from jaqc.hw.model.constants import (
    CORE_AREA_UM2_4X4,
    CORE_DYNAMIC_POWER_NW_4X4,
    CORE_REFERENCE_UNITS,
    CORE_SYNTH_FREQUENCY_HZ,
    DRAM_NJ_PER_BIT,
    SRAM_WORD_BITS,
)
from jaqc.hw.model.ste import ceil_div
from jaqc.hw.model.tensors import AreaTensors, HardwareTensors, UnitCostTensors
from jaqc.ir.accelerator import AcceleratorConfig

_WORD_BYTES = SRAM_WORD_BITS // 8


def _nonneg(_inst: object, attribute: Any, value: float) -> None:
    if not value >= 0:
        raise HardwareError(f"unit cost {attribute.name} must be >= 0, got {value!r}")


@frozen(kw_only=True)
class UnitCosts:
    """Unit costs of one accelerator: nJ per compute cycle (whole array) and nJ per bit of each access."""

    core_nj_per_cycle: float = field(converter=float, validator=_nonneg)
    wbuf_read_nj_per_bit: float = field(converter=float, validator=_nonneg)
    wbuf_write_nj_per_bit: float = field(converter=float, validator=_nonneg)
    ibuf_read_nj_per_bit: float = field(converter=float, validator=_nonneg)
    ibuf_write_nj_per_bit: float = field(converter=float, validator=_nonneg)
    obuf_read_nj_per_bit: float = field(converter=float, validator=_nonneg)
    obuf_write_nj_per_bit: float = field(converter=float, validator=_nonneg)
    dram_nj_per_bit: float = field(default=DRAM_NJ_PER_BIT, converter=float, validator=_nonneg)

    @classmethod
    def from_reference(cls, data: MappingABC[str, Any]) -> UnitCosts:
        """Read a reference-data ``unit_costs`` record."""
        try:
            return cls(
                core_nj_per_cycle=data["core_nJ_per_compute_cycle"],
                wbuf_read_nj_per_bit=data["wbuf_read_nJ_per_bit"],
                wbuf_write_nj_per_bit=data["wbuf_write_nJ_per_bit"],
                ibuf_read_nj_per_bit=data["ibuf_read_nJ_per_bit"],
                ibuf_write_nj_per_bit=data["ibuf_write_nJ_per_bit"],
                obuf_read_nj_per_bit=data["obuf_read_nJ_per_bit"],
                obuf_write_nj_per_bit=data["obuf_write_nJ_per_bit"],
                dram_nj_per_bit=data.get("dram_nJ_per_bit", DRAM_NJ_PER_BIT),
            )
        except KeyError as exc:
            raise HardwareError(f"reference unit_costs record is missing field {exc.args[0]!r}") from None

    def to_tensors(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None):
        """The same costs as 0-d tensors (broadcast over any batch)."""
        return UnitCostTensors(
            **{name: torch.tensor(getattr(self, name), dtype=dtype, device=device) for name in _UNIT_FIELDS}
        )


_UNIT_FIELDS = [a.name for a in UnitCosts.__attrs_attrs__]  # type: ignore[attr-defined]


@frozen(kw_only=True)
class AreaBreakdown:
    """Accelerator area by component (mm^2)."""

    core: float
    wbuf: float
    ibuf: float
    obuf: float
    total: float


def bank_bytes(buffer_bytes: torch.Tensor, banks: torch.Tensor, relaxed: bool = False) -> torch.Tensor:
    """Bytes per bank: the buffer split into ``banks`` banks of whole 32-bit words (rounded up)."""
    return ceil_div(buffer_bytes, banks * _WORD_BYTES, relaxed) * _WORD_BYTES


def unit_cost_tensors(hardware: HardwareTensors, relaxed: bool = False) -> UnitCostTensors:
    """Unit costs of a batch of accelerators from the packaged CACTI table and the core synthesis data."""
    n, m = hardware.pe_rows, hardware.pe_cols
    wbuf_bank = bank_bytes(hardware.wbuf_bytes, n * m, relaxed)
    ibuf_bank = bank_bytes(hardware.ibuf_bytes, n, relaxed)
    obuf_bank = bank_bytes(hardware.obuf_bytes, m, relaxed)

    def per_bit(bank: torch.Tensor, ports: int, quantity: str) -> torch.Tensor:
        return cacti_lookup(bank, ports, quantity) / SRAM_WORD_BITS

    core = CORE_DYNAMIC_POWER_NW_4X4 * (n * m) / CORE_REFERENCE_UNITS / CORE_SYNTH_FREQUENCY_HZ
    dram = torch.full_like(core, DRAM_NJ_PER_BIT)
    return UnitCostTensors(
        core_nj_per_cycle=core,
        wbuf_read_nj_per_bit=per_bit(wbuf_bank, 0, "read_energy_nJ"),
        wbuf_write_nj_per_bit=per_bit(wbuf_bank, 0, "write_energy_nJ"),
        ibuf_read_nj_per_bit=per_bit(ibuf_bank, 0, "read_energy_nJ"),
        ibuf_write_nj_per_bit=per_bit(ibuf_bank, 0, "write_energy_nJ"),
        obuf_read_nj_per_bit=per_bit(obuf_bank, 1, "read_energy_nJ"),
        obuf_write_nj_per_bit=per_bit(obuf_bank, 1, "write_energy_nJ"),
        dram_nj_per_bit=dram,
    )


def area_tensors(hardware: HardwareTensors, relaxed: bool = False) -> AreaTensors:
    """Area by component (mm^2) of a batch of accelerators."""
    n, m = hardware.pe_rows, hardware.pe_cols
    core = CORE_AREA_UM2_4X4 * 1.0e-6 * (n * m) / CORE_REFERENCE_UNITS
    wbuf = cacti_lookup(bank_bytes(hardware.wbuf_bytes, n * m, relaxed), 0, "area_mm2") * (n * m)
    ibuf = cacti_lookup(bank_bytes(hardware.ibuf_bytes, n, relaxed), 0, "area_mm2") * n
    obuf = cacti_lookup(bank_bytes(hardware.obuf_bytes, m, relaxed), 1, "area_mm2") * m
    return AreaTensors(core=core, wbuf=wbuf, ibuf=ibuf, obuf=obuf, total=core + wbuf + ibuf + obuf)


def unit_costs_for(accelerator: AcceleratorConfig) -> UnitCosts:
    """Unit costs of one accelerator (CACTI interpolation + core synthesis data)."""
    tensors = unit_cost_tensors(HardwareTensors.from_accelerators([accelerator]))
    return UnitCosts(**{name: float(getattr(tensors, name).reshape(-1)[0]) for name in _UNIT_FIELDS})


def area_for(accelerator: AcceleratorConfig) -> AreaBreakdown:
    """Area by component (mm^2) of one accelerator."""
    area = area_tensors(HardwareTensors.from_accelerators([accelerator]))
    return AreaBreakdown(
        core=float(area.core[0]),
        wbuf=float(area.wbuf[0]),
        ibuf=float(area.ibuf[0]),
        obuf=float(area.obuf[0]),
        total=float(area.total[0]),
    )
