"""`jaqc cost`: the public reference file as it is, plain case lists, JSON layout, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaqc.cli import main

PUBLIC = Path(__file__).parents[2] / "shared" / "data" / "bitfusion_ref" / "public.json"
needs_public = pytest.mark.skipif(not PUBLIC.exists(), reason=f"reference data not found at {PUBLIC}")

LAYER = {
    "name": "l",
    "batch": 1,
    "ic": 64,
    "oc": 64,
    "ih": 8,
    "iw": 8,
    "k": 3,
    "stride": 1,
    "pad": 1,
    "groups": 1,
    "wbits": 4,
    "abits": 4,
    "im2col": False,
}
ACCEL = {
    "name": "a",
    "pe_rows": 16,
    "pe_cols": 16,
    "wbuf_kb": 64,
    "ibuf_kb": 64,
    "obuf_kb": 64,
    "dram_bits_per_cycle": 128,
    "freq_mhz": 500,
}


MAPPING = {"tile": {"B": 1, "OW": 1, "OH": 1, "IC": 1, "OC": 1}, "loop_order": ["B", "OW", "OH", "IC", "OC"]}
CASE = {"layer": LAYER, "accelerator": ACCEL}
CYCLES = {"total": 10, "stall": 2, "compute": 8}
REFERENCE = {"mapping": MAPPING, "cycles": CYCLES, "access_bits": {"dram_read": 8}, "energy_nJ": {"total": 1.0}}


@needs_public
def test_public_reference_file_as_is(capsys) -> None:
    assert main(["cost", str(PUBLIC), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["cases"]) == 40 and "search_seconds_total" not in data
    assert data["hw_model"] == "simulator"  # a file carrying the simulator's numbers is read with its model
    evaluations = [e for c in data["cases"] for e in c["evaluations"]]
    assert len(evaluations) == 160
    for e in evaluations:
        assert set(e) >= {"mapping", "cycles", "access_bits", "energy_nJ", "area_mm2"}
        assert set(e["cycles"]) == {"total", "stall", "compute"} and "total" in e["energy_nJ"]
        assert e["reference"]["cycles_match"] and e["reference"]["access_bits_match"]
        assert e["reference"]["energy_rel_error"] < 1e-12


@needs_public
def test_reference_file_under_the_deployment_model_is_not_compared(tmp_path: Path, capsys) -> None:
    # The simulator's mappings of grouped (not depthwise) layers split a group's channels: under the deployment
    # model that is a clear error, so this file keeps the dense and depthwise cases.
    assert main(["cost", str(PUBLIC), "--hw-model", "deployment"]) == 2
    assert "is not group-aligned" in capsys.readouterr().err
    cases = json.loads(PUBLIC.read_text())["cases"]
    kept = [c for c in cases if c["layer"]["groups"] in (1, c["layer"]["ic"])]
    path = tmp_path / "dense_and_depthwise.json"
    path.write_text(json.dumps({"cases": kept}))
    assert main(["cost", str(path), "--json", "--hw-model", "deployment"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hw_model"] == "deployment"
    evaluations = [e for c in data["cases"] for e in c["evaluations"]]
    assert evaluations and all("reference" not in e for e in evaluations)
    # the depthwise case runs packed on the array: far fewer compute cycles than the simulator's 1 MAC/cycle
    dw = next(c for c in data["cases"] if c["id"] == "pub_039")
    assert main(["cost", str(PUBLIC), "--json"]) == 0
    simulator = next(c for c in json.loads(capsys.readouterr().out)["cases"] if c["id"] == "pub_039")
    assert dw["evaluations"][0]["cycles"]["compute"] * 4 < simulator["evaluations"][0]["cycles"]["compute"]


@needs_public
def test_own_sram_within_one_percent(capsys) -> None:
    assert main(["cost", str(PUBLIC), "--json", "--own-sram"]) == 0
    data = json.loads(capsys.readouterr().out)
    errors = [e["reference"]["energy_rel_error"] for c in data["cases"] for e in c["evaluations"]]
    assert max(errors) < 0.01
    assert all(e["reference"]["cycles_match"] for c in data["cases"] for e in c["evaluations"])


def test_plain_case_list_with_search(tmp_path: Path, capsys) -> None:
    cases = [
        {
            "id": "given",
            "layer": LAYER,
            "accelerator": ACCEL,
            "mapping": {"tile": {"B": 1, "OW": 8, "OH": 8, "IC": 16, "OC": 16}, "loop_order": "B>OC>IC>OH>OW"},
        },
        {"id": "search-only", "layer": LAYER, "accelerator": ACCEL},
    ]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    assert main(["cost", str(path), "--search", "--space", "jaq", "--objective", "energy", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hw_model"] == "deployment"  # no reference numbers: the default model
    given, search_only = data["cases"]
    assert [e["kind"] for e in given["evaluations"]] == ["given"] and "reference" not in given["evaluations"][0]
    assert search_only["evaluations"] == []
    assert search_only["search"]["energy_nJ"]["total"] <= given["evaluations"][0]["energy_nJ"]["total"]
    assert search_only["search"]["seconds"] > 0
    assert data["search_seconds_total"] == pytest.approx(sum(c["search"]["seconds"] for c in data["cases"]))
    assert main(["cost", str(path)]) == 0
    assert "given" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{oops", "invalid JSON"),
        ('{"cases": 3}', 'expected a list of cases or an object with a "cases" list'),
        (json.dumps([{"id": "c1", "accelerator": ACCEL}]), "error: case c1: missing field 'layer'"),
        (
            json.dumps([{"id": "c2", "layer": LAYER, "accelerator": {**ACCEL, "pe_rows": 0}}]),
            "error: case c2: accelerator: accelerator field pe_rows must be >= 1",
        ),
        (
            json.dumps([{"id": "c3", **CASE, "fixed_mappings": [None]}]),
            "error: case c3: fixed_mappings[0] must be an object",
        ),
        (json.dumps([{"id": "c4", **CASE, "fixed_mappings": 2.0}]), "error: case c4: fixed_mappings must be a list"),
        (
            json.dumps([{"id": "c5", **CASE, "optimized": {"mapping": MAPPING, "cycles": CYCLES}}]),
            "error: case c5: optimized: reference numbers need cycles, access_bits, energy_nJ; missing access_bits, "
            "energy_nJ",
        ),
        (
            json.dumps([{"id": "c6", **CASE, "optimized": {**REFERENCE, "cycles": {"total": 5}}}]),
            "error: case c6: optimized.cycles: missing field 'stall'",
        ),
        (
            json.dumps([{"id": "c7", **CASE, "optimized": {**REFERENCE, "energy_nJ": {"total": "WS"}}}]),
            "error: case c7: optimized.energy_nJ.total must be a number, got 'WS'",
        ),
        (
            json.dumps([{"id": "c8", **CASE, "optimized": {**REFERENCE, "access_bits": {"a": 1}}}]),
            "error: case c8: optimized.access_bits: unknown field(s) a",
        ),
        (
            json.dumps([{"id": "c9", **CASE, "optimized": {**REFERENCE, "access_bits": None}}]),
            "error: case c9: optimized.access_bits must be an object, got NoneType None",
        ),
        (
            json.dumps([{"id": "c10", "layer": {**LAYER, "wbits": 2.5}, "accelerator": ACCEL}]),
            "error: case c10: conv problem field w_bits must be an integer, got 2.5",
        ),
        (
            json.dumps([{"id": "c11", "layer": 5, "accelerator": ACCEL}]),
            "error: case c11: reference layer record must be an object, got int 5",
        ),
    ],
)
def test_errors(tmp_path: Path, capsys, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["cost", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
