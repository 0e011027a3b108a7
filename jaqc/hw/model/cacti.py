"""SRAM energy and area per bank from the packaged CACTI 7 table, interpolated log-log in the bank size.

The table (``data/cacti_sram_45nm_dense.csv``, origin in ``data/README.md``) has 32-bit-word banks from
128 B to 1 MiB in 1/16-octave steps for two port configurations. Between rows every quantity is
interpolated linearly in (log size, log value). Outside the table (banks below 128 B, which CACTI rejects,
or above 1 MiB) the quantity follows the power law of the outermost octave of the table (128 B..256 B, or
512 KiB..1 MiB), extrapolated in log-log. Bank sizes are floored at one 32-bit word (4 B), so the result is
finite and positive for every positive or zero input, and differentiable in the size.
"""

from __future__ import annotations

import csv
import functools
import math
from importlib import resources

import torch
from attrs import frozen

from jaqc.hw.errors import HardwareError

#: Columns of the table that are interpolated.
CACTI_QUANTITIES: tuple[str, ...] = ("read_energy_nJ", "write_energy_nJ", "leakage_mW", "area_mm2")
#: Smallest bank size used (bytes): one 32-bit word.
MIN_BANK_BYTES = 4.0


@frozen
class CactiCurve:
    """One port configuration of the table: sizes (bytes) and, per quantity, the values at those sizes."""

    sizes: tuple[float, ...]
    values: dict[str, tuple[float, ...]]


@functools.cache
def load_cacti_table() -> dict[int, CactiCurve]:
    """The packaged table, keyed by the number of read-write ports (0: WBUF/IBUF banks, 1: OBUF banks)."""
    text = resources.files("jaqc.hw").joinpath("data/cacti_sram_45nm_dense.csv").read_text()
    rows: dict[int, list[dict[str, str]]] = {}
    for row in csv.DictReader(text.splitlines()):
        if int(row["word_bits"]) != 32:
            raise HardwareError("packaged CACTI table: expected only 32-bit words")
        rows.setdefault(int(row["read_write_ports"]), []).append(row)
    table = {}
    for ports, entries in rows.items():
        entries.sort(key=lambda r: float(r["size_bytes"]))
        table[ports] = CactiCurve(
            sizes=tuple(float(r["size_bytes"]) for r in entries),
            values={q: tuple(float(r[q]) for r in entries) for q in CACTI_QUANTITIES},
        )
    return table


@functools.cache
def _log_curve(ports: int, quantity: str) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    curve = load_cacti_table()[ports]
    log_size = torch.tensor([math.log(s) for s in curve.sizes], dtype=torch.float64)
    log_value = torch.tensor([math.log(v) for v in curve.values[quantity]], dtype=torch.float64)
    sizes = curve.sizes
    low = sizes.index(2 * sizes[0])
    high = sizes.index(sizes[-1] / 2)
    slope_low = float((log_value[low] - log_value[0]) / (log_size[low] - log_size[0]))
    slope_high = float((log_value[-1] - log_value[high]) / (log_size[-1] - log_size[high]))
    return log_size, log_value, slope_low, slope_high


def cacti_lookup(bank_bytes: torch.Tensor, ports: int, quantity: str) -> torch.Tensor:
    """A CACTI quantity (per access of one 32-bit word, or per bank for area/leakage) at given bank sizes.

    ``ports`` is 0 (WBUF/IBUF banks) or 1 (OBUF banks); ``quantity`` one of CACTI_QUANTITIES. Works on
    any float tensor shape and keeps gradients with respect to ``bank_bytes``.
    """
    if ports not in (0, 1):
        raise HardwareError(f"CACTI read_write_ports must be 0 or 1, got {ports}")
    if quantity not in CACTI_QUANTITIES:
        raise HardwareError(f"unknown CACTI quantity {quantity!r}; expected one of {CACTI_QUANTITIES}")
    log_size, log_value, slope_low, slope_high = _log_curve(ports, quantity)
    dtype = bank_bytes.dtype if bank_bytes.is_floating_point() else torch.float64
    log_size = log_size.to(device=bank_bytes.device, dtype=dtype)
    log_value = log_value.to(device=bank_bytes.device, dtype=dtype)
    x = torch.log(torch.clamp(bank_bytes.to(dtype), min=MIN_BANK_BYTES))
    last = log_size.numel() - 1
    upper = torch.searchsorted(log_size, x.detach().contiguous()).clamp(1, last)
    x0, x1 = log_size[upper - 1], log_size[upper]
    y0, y1 = log_value[upper - 1], log_value[upper]
    inside = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    below = log_value[0] + slope_low * (x - log_size[0])
    above = log_value[last] + slope_high * (x - log_size[last])
    y = torch.where(x < log_size[0], below, torch.where(x > log_size[last], above, inside))
    return torch.exp(y)


def cacti_value(bank_bytes: float, ports: int, quantity: str) -> float:
    """Scalar form of :func:`cacti_lookup`."""
    return float(cacti_lookup(torch.tensor([float(bank_bytes)], dtype=torch.float64), ports, quantity)[0])
