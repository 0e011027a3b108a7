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
from .values import integer, real, text

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


def _to_dataflow(value: Dataflow | str) -> Dataflow:
    try:
        return Dataflow(value.upper() if isinstance(value, str) else value)
    except (ValueError, TypeError):
        raise IRError(f"accelerator field dataflow must be one of WS, OS, RS, got {value!r}") from None


@frozen(kw_only=True)
class AcceleratorConfig:
    """A BitFusion-style accelerator: ``pe_rows x pe_cols`` fusion units and three SRAM buffers."""

    pe_rows: int = field(converter=integer("accelerator field pe_rows", 1))
    pe_cols: int = field(converter=integer("accelerator field pe_cols", 1))
    wbuf_kb: int = field(converter=integer("accelerator field wbuf_kb", 1))
    ibuf_kb: int = field(converter=integer("accelerator field ibuf_kb", 1))
    obuf_kb: int = field(converter=integer("accelerator field obuf_kb", 1))
    dataflow: Dataflow = field(default=Dataflow.WS, converter=_to_dataflow)
    dram_bits_per_cycle: int = field(default=128, converter=integer("accelerator field dram_bits_per_cycle", 1))
    freq_mhz: float = field(default=500.0, converter=real("accelerator field freq_mhz", 0.0, strict_minimum=True))
    name: str = field(default="", converter=text("accelerator field name"))

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
    def from_text_fields(cls, fields: MappingABC[str, str], where: str = "accelerator") -> AcceleratorConfig:
        """Read the ``key=value`` tokens of the text form's ``accelerator`` line (every value a string)."""
        kinds = {a.name: a.type for a in cls.__attrs_attrs__}  # type: ignore[attr-defined]
        data: dict[str, Any] = {}
        for key, raw in fields.items():
            kind = kinds.get(key)
            try:
                data[key] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
            except ValueError:
                expected = "an integer" if kind == "int" else "a number"
                raise IRError(f"{where}: field {key} must be {expected}, got {raw!r}") from None
        return cls.from_json(data, where)

    @classmethod
    def from_json(cls, data: MappingABC[str, Any], where: str = "accelerator") -> AcceleratorConfig:
        """Read the reference-data ``accelerator`` format; ``where`` names the source in errors."""
        if not isinstance(data, MappingABC):
            raise IRError(f"{where}: must be an object of accelerator fields, got {type(data).__name__} {data!r}")
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
