"""The mapping schedule: contents, determinism, validation errors naming the field, model matching."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import zoo_models
from jaqc.ir import LayerKind
from jaqc.passes import PassContext, PassManager, parse_pipeline

from jaqc.export.schedule import (
    ScheduleError,
    build_schedule,
    check_matches,
    read_schedule,
    validate_schedule,
    write_schedule,
)
from jaqc.frontend import import_model
from jaqc.hw.accelerators import PRESETS


@pytest.fixture(scope="module")
def mapped():
    g = import_model(zoo_models.fbnet_like(), (1, 3, 32, 32), with_weights=False)
    g.accelerator = PRESETS["bitfusion-eyeriss"]
    return PassManager(parse_pipeline("fold-batchnorm,annotate-quant{w_bits=4,a_bits=2},batchtile")).run(g).graph


def test_schedule_contents(mapped) -> None:
    s = build_schedule(mapped)
    weighted = mapped.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    assert [x["name"] for x in s["layers"]] == [x.name for x in weighted]
    for entry, layer in zip(s["layers"], weighted, strict=True):
        assert entry["tile"] == layer.mapping.tile_dict()
        assert entry["cycles"]["total"] == layer.cost.total_cycles
        assert entry["energy_nJ"] == layer.cost.energy_nJ
        assert entry["weight_initializer"] == f"{layer.name}.weight"
        for occ in entry["buffer_occupancy"].values():
            assert 0 < occ["tile_bits"] <= occ["limit_bits"]
    assert s["hw_model"] == "deployment"  # batchtile's default model, named in the schedule
    assert s["layers"][1]["bits"] == {"w": 4, "a": 2, "out": 2, "quantized": True}
    assert s["layers"][0]["bits"] == {"w": 8, "a": 8, "out": 2, "quantized": False}  # read by 2-bit layers
    assert s["layers"][-1]["bits"]["out"] == 8  # the network output
    t = s["totals"]
    assert t["cycles"] == sum(x["cycles"]["total"] for x in s["layers"])
    assert t["latency_ms"] == pytest.approx(t["cycles"] / 500e3)
    assert t["edap_mJ_ms_mm2"] == pytest.approx(t["edp_mJ_ms"] * t["area_mm2"])
    check_matches(s, [x.name for x in weighted])


def test_version_1_documents_read_as_the_simulator_model(mapped) -> None:
    from jaqc.export.schedule import schedule_hw_model, validate_schedule

    old = json.loads(json.dumps(build_schedule(mapped)))
    old["schema_version"] = 1
    del old["hw_model"]
    assert schedule_hw_model(validate_schedule(old)) == "simulator"


def test_write_is_deterministic_and_reads_back(mapped, tmp_path: Path) -> None:
    a = write_schedule(tmp_path / "a.json", build_schedule(mapped)).read_bytes()
    b = write_schedule(tmp_path / "b.json", build_schedule(mapped.clone())).read_bytes()
    assert a == b
    assert read_schedule(tmp_path / "a.json") == json.loads(a)


def test_pass_puts_schedule_in_context_and_file(mapped, tmp_path: Path) -> None:
    ctx = PassContext()
    out = tmp_path / "sched.json"
    result = PassManager(parse_pipeline(f"export-schedule{{path={out}}}"), check_functional=True).run(mapped, ctx)
    assert not result.changed
    assert read_schedule(out) == ctx.data["schedule"]


def _broken(s: dict, edit) -> dict:  # type: ignore[no-untyped-def]
    s = copy.deepcopy(s)
    edit(s)
    return s


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(schema_version=3), "unsupported schedule schema_version 3"),
        (lambda s: s.update(hw_model="exact"), "hw_model: .exact. is not one of simulator, deployment"),
        (lambda s: s.pop("hw_model"), "missing field .hw_model."),
        (lambda s: s.update(schema="other"), "not a jaqc schedule"),
        (lambda s: s["layers"][3]["tile"].update(OC=10**6), r"layers\[3\].tile.OC: 1000000 is outside 1\.\."),
        (lambda s: s["layers"][2]["num_tiles"].update(IC=99), r"layers\[2\].num_tiles.IC: 99 != ceil"),
        (lambda s: s["layers"][0].pop("loop_order"), r"layers\[0\]: missing field 'loop_order'"),
        (lambda s: s["layers"][1]["bits"].update(w=3), r"layers\[1\].bits.w: must be 2, 4 or 8"),
        (lambda s: s["layers"][1]["cycles"].update(total=1), r"layers\[1\].cycles.total: 1 != compute \+ stall"),
        (lambda s: s["layers"][4].update(name=s["layers"][3]["name"]), r"layers\[4\].name: duplicate layer name"),
        (lambda s: s["accelerator"].update(pe_rows=0), "accelerator field pe_rows must be >= 1"),
        (lambda s: s["layers"][0]["cycles"].update(stall="x"), r"layers\[0\].cycles.stall: expected int, got str"),
    ],
)
def test_validation_names_the_field(mapped, edit, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        validate_schedule(_broken(build_schedule(mapped), edit))


def test_model_mismatch_and_bad_files(mapped, tmp_path: Path) -> None:
    s = build_schedule(mapped)
    names = [x["name"] for x in s["layers"]]
    with pytest.raises(
        ScheduleError, match=r"no schedule for layer\(s\) extra_conv; schedule names unknown layer\(s\) fc"
    ):
        check_matches(s, [*names[:-1], "extra_conv"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ScheduleError, match=r"bad.json:1: invalid JSON"):
        read_schedule(tmp_path / "bad.json")
    with pytest.raises(ScheduleError, match="no such file"):
        read_schedule(tmp_path / "none.json")


def test_unmapped_graph_is_rejected(mapped) -> None:
    g = mapped.clone()
    g["stem"].mapping = None
    with pytest.raises(ScheduleError, match="layer %stem has no mapping/cost; run the batchtile pass first"):
        build_schedule(g)
