"""The record-level API: layer_cost(s), map_layer(s) JSON output, input errors, torch-free ConvProblem."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping

from jaqc.hw.errors import HardwareError
from jaqc.hw.mapping.batchtile import map_layer
from jaqc.hw.model.layer_cost import layer_cost, layer_costs
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.unit_costs import unit_costs_for

PROBLEM = ConvProblem(name="c3", batch=1, in_channels=32, out_channels=64, in_h=16, in_w=16, kernel=3, pad=1)
ACCELERATOR = AcceleratorConfig(pe_rows=16, pe_cols=16, wbuf_kb=128, ibuf_kb=128, obuf_kb=128)
MAPPING = Mapping(tile=[1, 4, 4, 16, 16], loop_order=["B", "OC", "IC", "OH", "OW"])


def test_layer_cost_record_is_consistent() -> None:
    record = layer_cost(PROBLEM, ACCELERATOR, MAPPING, hw_model="simulator")
    assert record.feasible
    assert record.total_cycles == record.compute_cycles + record.stall_cycles
    assert record.latency_s == record.total_cycles / 500e6
    assert record.edp == record.energy_nj["total"] * record.latency_s
    assert record.edap == pytest.approx(record.edp * record.area_mm2["total"], rel=1e-15)
    assert record.area_mm2["total"] == pytest.approx(sum(record.area_mm2[k] for k in ("core", "wbuf", "ibuf", "obuf")))
    data = json.loads(json.dumps(record.to_json()))
    assert data["cycles"]["total"] == record.total_cycles
    assert set(data["access_bits"]) == {
        "wbuf_read", "wbuf_write", "ibuf_read", "ibuf_write", "obuf_read", "obuf_write", "dram_read", "dram_write",
    }  # fmt: skip
    assert layer_cost(PROBLEM, ACCELERATOR, MAPPING, unit_costs_for(ACCELERATOR), hw_model="simulator") == record


def test_ir_layer_cost_annotation() -> None:
    record = layer_cost(PROBLEM, ACCELERATOR, MAPPING, hw_model="simulator")
    annotation = record.as_layer_cost()
    assert (annotation.compute_cycles, annotation.stall_cycles) == (record.compute_cycles, record.stall_cycles)
    assert annotation.energy_nJ == record.energy_nj["total"]


def test_map_layer_json() -> None:
    result = map_layer(PROBLEM, ACCELERATOR, "jaq", "edp", hw_model="simulator")
    data = json.loads(json.dumps(result.to_json()))
    assert data["layer"]["name"] == "c3"
    assert Mapping.from_json(data["mapping"]) == result.mapping
    assert data["candidates"] == result.candidates > 0
    assert layer_cost(PROBLEM, ACCELERATOR, result.mapping, hw_model="simulator") == result.cost


def test_input_errors_name_the_problem() -> None:
    with pytest.raises(HardwareError, match="exceeds the loop extent 16"):
        layer_cost(
            PROBLEM, ACCELERATOR, Mapping(tile=[1, 32, 4, 16, 16], loop_order=MAPPING.loop_order), hw_model="simulator"
        )
    with pytest.raises(HardwareError, match="2 problems but 1 mappings"):
        layer_costs([PROBLEM, PROBLEM], ACCELERATOR, [MAPPING], hw_model="simulator")
    with pytest.raises(HardwareError, match="accelerators"):
        layer_costs([PROBLEM, PROBLEM], [ACCELERATOR], [MAPPING, MAPPING], hw_model="simulator")


def test_conv_problem_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from jaqc.hw.model.problem import ConvProblem\n"
        "import jaqc.hw\n"
        "print(ConvProblem(batch=1, in_channels=3, out_channels=8, in_h=8, in_w=8, kernel=3, pad=1).out_h)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "8"
