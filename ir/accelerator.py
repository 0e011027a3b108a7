"""The BitFusion-style accelerator configuration: PE array, three buffers, dataflow, DRAM interface.

``pe_rows`` (N) reduce over input channels, ``pe_cols`` (M) hold one output channel each. Buffer sizes are in
KiB (x1024 bytes). The value is immutable and validated, so an invalid accelerator cannot exist.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from enum import StrEnum
from typing import Any

from attrs import asdict, field, frozen

from .errors import IRError

#: The hardware models a graph's mappings and costs can refer to (jaqc.hw.HardwareModel; docs/cost_model.md).
HW_MODELS: tuple[str, ...] = ("simulator", "deployment")


def check_hw_model(value: object, where: str = "hw_model") -> str | None:
    """``value`` if it names a hardware model (or is None), else an IRError naming ``where``."""
    if value is None or value in HW_MODELS:
        return value  # type: ignore[return-value]
    raise IRError(f"{where}: unknown hardware model {value!r}; expected one of {', '.join(HW_MODELS)}")


class Dataflow(StrEnum):
    """Which operand stays in the PEs: weight-, output- or row-stationary."""

    WS = "WS"
    OS = "OS"
    RS = "RS"

    def __str__(self) -> str:
        return self.value


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise IRError(f"accelerator field {attribute.name} must be > 0, got {value!r}")


def _to_dataflow(value: Dataflow | str) -> Dataflow:
    try:
        return Dataflow(value.upper() if isinstance(value, str) else value)
    except ValueError:
        raise IRError(f"accelerator field dataflow must be one of WS, OS, RS, got {value!r}") from None


@frozen(kw_only=True)
class AcceleratorConfig:
    """A BitFusion-style accelerator: ``pe_rows x pe_cols`` fusion units and three SRAM buffers."""

    pe_rows: int = field(converter=int, validator=_positive)
    pe_cols: int = field(converter=int, validator=_positive)
    wbuf_kb: int = field(converter=int, validator=_positive)
    ibuf_kb: int = field(converter=int, validator=_positive)
    obuf_kb: int = field(converter=int, validator=_positive)
    dataflow: Dataflow = field(default=Dataflow.WS, converter=_to_dataflow)
    dram_bits_per_cycle: int = field(default=128, converter=int, validator=_positive)
    freq_mhz: float = field(default=500.0, converter=float, validator=_positive)
    name: str = ""

    @property
    def num_pes(self) -> int:
        """Number of fusion units in the array."""
        return self.pe_rows * self.pe_cols

    def to_json(self) -> dict[str, Any]:
        """A plain dict (the reference-data ``accelerator`` format plus ``dataflow``)."""
        data = asdict(self)
        data["dataflow"] = self.dataflow.value
        return data

    @classmethod
    def from_json(cls, data: MappingABC[str, Any], where: str = "accelerator") -> AcceleratorConfig:
        """Read the reference-data ``accelerator`` format; ``where`` names the source in errors."""
        names = {a.name for a in cls.__attrs_attrs__}  # type: ignore[attr-defined]
        unknown = sorted(set(data) - names)
        if unknown:
            raise IRError(f"{where}: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise IRError(f"{where}: {exc}") from None
        except IRError as exc:
            raise IRError(f"{where}: {exc}") from None
