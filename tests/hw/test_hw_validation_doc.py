"""docs/cost_model.md carries the current validation table (regenerate with python -m jaqc.hw.reference.validation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaqc.hw.errors import HardwareError
from jaqc.hw.reference.validation import BEGIN, END, paper_table2_crosscheck, validation_table, write_between_markers

DOC = Path(__file__).parents[2] / "docs" / "cost_model.md"


def test_documented_validation_table_is_current(reference_cases) -> None:
    text = DOC.read_text()
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert documented == "\n" + validation_table(reference_cases) + "\n" + paper_table2_crosscheck(), (
        "regenerate: python -m jaqc.hw.reference.validation ../shared/data/bitfusion_ref/public.json "
        "--write docs/cost_model.md"
    )
    assert "160/160 mappings with exact cycles and access counts" in documented
    assert "equals the simulator optimum on 40/40 cases" in documented


def test_write_between_markers(tmp_path: Path) -> None:
    target = tmp_path / "doc.md"
    target.write_text(f"head\n{BEGIN}\nold\n{END}\ntail\n")
    write_between_markers(target, "new\n")
    assert target.read_text() == f"head\n{BEGIN}\nnew\n{END}\ntail\n"
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(HardwareError, match="markers"):
        write_between_markers(tmp_path / "bare.md", "x")
