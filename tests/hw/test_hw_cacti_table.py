"""The packaged CACTI table: exact at its rows, log-log in between, documented behaviour outside."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.cacti import CACTI_QUANTITIES, MIN_BANK_BYTES, cacti_lookup, cacti_value, load_cacti_table
from jaqc.hw.model.unit_costs import bank_bytes

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"


def test_table_has_both_port_configurations_and_209_sizes() -> None:
    table = load_cacti_table()
    assert sorted(table) == [0, 1]
    for curve in table.values():
        assert len(curve.sizes) == 209
        assert curve.sizes[0] == 128 and curve.sizes[-1] == 1 << 20


def test_packaged_copy_equals_the_shared_data() -> None:
    source = SHARED_DATA / "cacti_sram_45nm_dense.csv"
    if not source.exists():
        pytest.skip(f"shared data not found at {source}")
    from importlib import resources

    packaged = resources.files("jaqc.hw").joinpath("data/cacti_sram_45nm_dense.csv").read_text()
    assert packaged == source.read_text()


@pytest.mark.parametrize("ports", [0, 1])
@pytest.mark.parametrize("quantity", CACTI_QUANTITIES)
def test_rows_are_reproduced(ports: int, quantity: str) -> None:
    curve = load_cacti_table()[ports]
    sizes = torch.tensor(curve.sizes, dtype=torch.float64)
    got = cacti_lookup(sizes, ports, quantity)
    expected = torch.tensor(curve.values[quantity], dtype=torch.float64)
    assert torch.allclose(got, expected, rtol=1e-13, atol=0)


def test_between_rows_is_log_log_linear() -> None:
    curve = load_cacti_table()[0]
    lo, hi = curve.sizes[40], curve.sizes[41]
    mid = math.sqrt(lo * hi)
    expected = math.sqrt(curve.values["read_energy_nJ"][40] * curve.values["read_energy_nJ"][41])
    assert cacti_value(mid, 0, "read_energy_nJ") == pytest.approx(expected, rel=1e-12)


def test_below_128_bytes_extrapolates_the_first_octave_and_is_finite() -> None:
    curve = load_cacti_table()[1]
    slope = math.log(curve.values["area_mm2"][16] / curve.values["area_mm2"][0]) / math.log(2)
    assert curve.sizes[16] == 256
    assert cacti_value(64, 1, "area_mm2") == pytest.approx(curve.values["area_mm2"][0] * 0.5**slope, rel=1e-12)
    tiny = cacti_lookup(torch.tensor([0.0, 1.0, MIN_BANK_BYTES, 16.0, 127.0]), 1, "read_energy_nJ")
    assert bool(torch.isfinite(tiny).all()) and bool((tiny > 0).all())
    assert float(tiny[0]) == float(tiny[1]) == float(tiny[2])  # floored at one 32-bit word
    assert bool((tiny[2:].diff() > 0).all())
    # continuous at the table's edge
    first = load_cacti_table()[0].values["write_energy_nJ"][0]
    assert cacti_value(128 - 1e-9, 0, "write_energy_nJ") == pytest.approx(first, rel=1e-9)


def test_bank_bytes_round_up_to_whole_words() -> None:
    assert bank_bytes(torch.tensor(384.0 * 1024), torch.tensor(256.0)).item() == 1536
    assert bank_bytes(torch.tensor(64.0 * 1024), torch.tensor(9.0)).item() == 7284  # 1821 words of 4 B


def test_bad_lookup_arguments_are_reported() -> None:
    with pytest.raises(HardwareError, match="ports"):
        cacti_lookup(torch.tensor([128.0]), 2, "area_mm2")
    with pytest.raises(HardwareError, match="quantity"):
        cacti_lookup(torch.tensor([128.0]), 0, "delay")
