"""The JAQ accelerator search space: PE array, three buffer sizes, dataflow and tile loop order.

A point is encoded as a mixed-radix index over the digits (pe_rows, pe_cols, wbuf, ibuf, obuf, dataflow,
loop order), the first digit most significant; every digit is the position of the value in its choice
list. The default space is the paper's: PE_x, PE_y in 3..64, buffers 64..528 KB in 16 KB steps (30
choices each), dataflow WS / OS / RS and the 120 loop orders (jaqc.hw.model.orders ranks).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from attrs import field, frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.orders import ALL_ORDERS, order_rank
from jaqc.ir.accelerator import AcceleratorConfig, Dataflow
from jaqc.ir.mapping import LoopDim

DIGIT_NAMES: tuple[str, ...] = (
    "pe_rows",
    "pe_cols",
    "wbuf_kb",
    "ibuf_kb",
    "obuf_kb",
    "dataflow",
    "loop_order",
)


@frozen
class HardwarePoint:
    """One point of the space: an accelerator and the loop order it runs its tiles in."""

    accelerator: AcceleratorConfig
    loop_order: tuple[LoopDim, ...]


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise HardwareError(f"accelerator space field {attribute.name} must be > 0, got {value}")


def _dataflows(values: object) -> tuple[Dataflow, ...]:
    try:
        return tuple(Dataflow(str(v).upper()) for v in values)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise HardwareError(f"accelerator space: dataflows must be among WS, OS, RS, got {values!r}") from None


@frozen(kw_only=True)
class AcceleratorSpace:
    """A grid of accelerators; the defaults are the JAQ paper's search space."""

    pe_min: int = field(default=3, validator=_positive)
    pe_max: int = field(default=64, validator=_positive)
    buffer_min_kb: int = field(default=64, validator=_positive)
    buffer_max_kb: int = field(default=528, validator=_positive)
    buffer_step_kb: int = field(default=16, validator=_positive)
    dataflows: tuple[Dataflow, ...] = field(default=(Dataflow.WS, Dataflow.OS, Dataflow.RS), converter=_dataflows)
    dram_bits_per_cycle: int = field(default=128, validator=_positive)
    freq_mhz: float = field(default=500.0, converter=float, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.pe_max < self.pe_min:
            raise HardwareError(f"accelerator space: pe_max={self.pe_max} < pe_min={self.pe_min}")
        if self.buffer_max_kb < self.buffer_min_kb or (self.buffer_max_kb - self.buffer_min_kb) % self.buffer_step_kb:
            raise HardwareError(
                "accelerator space: buffer_max_kb - buffer_min_kb must be a non-negative multiple of "
                f"buffer_step_kb, got {self.buffer_min_kb}..{self.buffer_max_kb} step {self.buffer_step_kb}"
            )
        if not self.dataflows or len(set(self.dataflows)) != len(self.dataflows):
            raise HardwareError(f"accelerator space: dataflows must be distinct and non-empty, got {self.dataflows}")

    # --- choices -------------------------------------------------------------------------------------------
    @property
    def pe_choices(self) -> tuple[int, ...]:
        """Values of PE_x (rows) and PE_y (columns)."""
        return tuple(range(self.pe_min, self.pe_max + 1))

    @property
    def buffer_choices_kb(self) -> tuple[int, ...]:
        """Values of each buffer size (KiB)."""
        return tuple(range(self.buffer_min_kb, self.buffer_max_kb + 1, self.buffer_step_kb))

    @property
    def radices(self) -> tuple[int, ...]:
        """Number of choices of each digit, in DIGIT_NAMES order."""
        pe, buf = len(self.pe_choices), len(self.buffer_choices_kb)
        return (pe, pe, buf, buf, buf, len(self.dataflows), len(ALL_ORDERS))

    @property
    def size(self) -> int:
        """Number of points."""
        total = 1
        for radix in self.radices:
            total *= radix
        return total

    # --- encoding ------------------------------------------------------------------------------------------
    def digits_of(self, point: HardwarePoint) -> tuple[int, ...]:
        """The digits of a point; HardwareError if it is not in the space."""
        acc = point.accelerator
        values = (acc.pe_rows, acc.pe_cols, acc.wbuf_kb, acc.ibuf_kb, acc.obuf_kb)
        choices = (self.pe_choices, self.pe_choices, *([self.buffer_choices_kb] * 3))
        digits = []
        for name, value, allowed in zip(DIGIT_NAMES, values, choices, strict=False):
            if value not in allowed:
                raise HardwareError(f"{name}={value} is not in the accelerator space ({allowed[0]}..{allowed[-1]})")
            digits.append(allowed.index(value))
        if acc.dataflow not in self.dataflows:
            raise HardwareError(f"dataflow {acc.dataflow} is not in the accelerator space {self.dataflows}")
        digits.append(self.dataflows.index(acc.dataflow))
        digits.append(order_rank(point.loop_order))
        return tuple(digits)

    def point_from_digits(self, digits: tuple[int, ...] | list[int]) -> HardwarePoint:
        """The point with the given digits."""
        if len(digits) != len(DIGIT_NAMES):
            raise HardwareError(f"accelerator space: expected {len(DIGIT_NAMES)} digits, got {len(digits)}")
        for name, digit, radix in zip(DIGIT_NAMES, digits, self.radices, strict=True):
            if not 0 <= digit < radix:
                raise HardwareError(f"accelerator space digit {name}={digit} is outside 0..{radix - 1}")
        pe, buf = self.pe_choices, self.buffer_choices_kb
        accelerator = AcceleratorConfig(
            pe_rows=pe[digits[0]],
            pe_cols=pe[digits[1]],
            wbuf_kb=buf[digits[2]],
            ibuf_kb=buf[digits[3]],
            obuf_kb=buf[digits[4]],
            dataflow=self.dataflows[digits[5]],
            dram_bits_per_cycle=self.dram_bits_per_cycle,
            freq_mhz=self.freq_mhz,
        )
        return HardwarePoint(accelerator=accelerator, loop_order=ALL_ORDERS[digits[6]])

    def index_of(self, point: HardwarePoint) -> int:
        """The index (0..size-1) of a point."""
        index = 0
        for digit, radix in zip(self.digits_of(point), self.radices, strict=True):
            index = index * radix + digit
        return index

    def point_at(self, index: int) -> HardwarePoint:
        """The point at an index (0..size-1)."""
        if not 0 <= index < self.size:
            raise HardwareError(f"accelerator space index must be in 0..{self.size - 1}, got {index}")
        digits = []
        for radix in reversed(self.radices):
            index, digit = divmod(index, radix)
            digits.append(digit)
        return self.point_from_digits(tuple(reversed(digits)))

    def __iter__(self) -> Iterator[HardwarePoint]:
        """All points in index order (lazily; the default space has about 3.7e10)."""
        return (self.point_at(i) for i in range(self.size))

    def accelerators(self) -> Iterator[AcceleratorConfig]:
        """All accelerators (points without the loop order), in index order, lazily."""
        orders = len(ALL_ORDERS)
        return (self.point_at(i * orders).accelerator for i in range(self.size // orders))

    # --- sampling ------------------------------------------------------------------------------------------
    def sample_digits(self, count: int, generator: torch.Generator | int | None = None) -> torch.Tensor:
        """(count, 7) int64 digits drawn uniformly and independently; deterministic for a seed/generator."""
        if count < 0:
            raise HardwareError(f"sample count must be >= 0, got {count}")
        if generator is None or isinstance(generator, int):
            seed = 0 if generator is None else generator
            generator = torch.Generator().manual_seed(seed)
        columns = [torch.randint(0, radix, (count,), generator=generator) for radix in self.radices]
        return torch.stack(columns, dim=1) if count else torch.zeros(0, len(DIGIT_NAMES), dtype=torch.int64)

    def sample(self, count: int, generator: torch.Generator | int | None = None) -> list[HardwarePoint]:
        """``count`` points drawn uniformly (seed 0 when no generator is given)."""
        return [self.point_from_digits(tuple(row)) for row in self.sample_digits(count, generator).tolist()]
