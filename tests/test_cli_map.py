"""`jaqc map`: accelerators from presets and files, table and JSON output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.hw.accelerators import PRESETS, load_accelerator

ZOO = str(Path(__file__).parent / "zoo_models.py")


def test_presets() -> None:
    eyeriss = PRESETS["bitfusion-eyeriss"]
    assert (eyeriss.pe_rows, eyeriss.pe_cols, eyeriss.wbuf_kb, eyeriss.ibuf_kb, eyeriss.obuf_kb) == (16, 32, 64, 32, 16)
    t2 = PRESETS["jaq-table2"]
    assert (t2.pe_rows, t2.pe_cols, t2.wbuf_kb, t2.ibuf_kb, t2.obuf_kb) == (16, 16, 384, 384, 384)


def test_accelerator_files(tmp_path: Path) -> None:
    toml = tmp_path / "edge.toml"
    toml.write_text(
        "[accelerator]\npe_rows = 8\npe_cols = 12\nwbuf_kb = 64\nibuf_kb = 80\nobuf_kb = 96\ndataflow = 'OS'\n"
    )
    acc = load_accelerator(str(toml))
    assert (acc.pe_rows, acc.pe_cols, acc.ibuf_kb, acc.dataflow.value, acc.name) == (8, 12, 80, "OS", "edge")
    js = tmp_path / "a.json"
    js.write_text(
        json.dumps({"pe_rows": 4, "pe_cols": 4, "wbuf_kb": 64, "ibuf_kb": 64, "obuf_kb": 64, "freq_mhz": 250})
    )
    assert load_accelerator(str(js)).freq_mhz == 250.0
    with pytest.raises(JaqcError, match="not a preset"):
        load_accelerator("tpu-v9")
    with pytest.raises(JaqcError, match="no such file"):
        load_accelerator(str(tmp_path / "none.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("pe_rows = 8\npe_cols = 0\nwbuf_kb = 1\nibuf_kb = 1\nobuf_kb = 1\n")
    with pytest.raises(JaqcError, match=r"bad.toml: accelerator field pe_cols must be >= 1, got 0"):
        load_accelerator(str(bad))
    bad.write_text("pe_rows = 8\npe_typo = 3\n")
    with pytest.raises(JaqcError, match=r"unknown field\(s\) pe_typo"):
        load_accelerator(str(bad))
    bad.write_text("pe_rows = [")
    with pytest.raises(JaqcError, match="invalid TOML"):
        load_accelerator(str(bad))


def test_map_json_totals_add_up(capsys) -> None:
    args = [
        "map",
        f"{ZOO}:fbnet_like",
        "--accel",
        "bitfusion-eyeriss",
        "--format",
        "json",
        "--space",
        "bitfusion",
        "--passes",
        "fold-batchnorm,annotate-quant{w_bits=4,a_bits=4}",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    rows, totals = data["layers"], data["totals"]
    assert len(rows) == 18 and totals["layers"] == 18
    assert totals["cycles"] == sum(r["cycles"]["total"] for r in rows)
    assert totals["energy_mJ"] == pytest.approx(sum(r["energy_nJ"]["total"] for r in rows) * 1e-6, rel=1e-12)
    assert totals["latency_ms"] == pytest.approx(totals["cycles"] / 500e6 * 1e3, rel=1e-9)
    assert totals["edap_mJ_ms_mm2"] == pytest.approx(totals["edp_mJ_ms"] * totals["area_mm2"], rel=1e-12)
    assert totals["area_mm2"] == totals["area_breakdown_mm2"]["total"] > 0
    assert {r["bound"] for r in rows} <= {"memory", "compute"}
    assert all(0 < r["utilization"] <= 1 for r in rows)
    assert rows[1]["bits"] == "w4a4" and rows[0]["bits"] == "w8a8 (float)"
    assert data["hw_model"] == "deployment"


def test_map_hw_model_option(capsys) -> None:
    base = ["map", f"{ZOO}:mobilenet_v2_se_hswish", "--accel", "jaq-table2", "--format", "json"]
    base += ["--passes", "fold-batchnorm,annotate-quant{w_bits=2,a_bits=2}"]
    totals = {}
    for model in ("simulator", "deployment"):
        assert main([*base, "--hw-model", model]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["hw_model"] == model
        totals[model] = data["totals"]
    # packed depthwise layers and 2-bit outputs: the deployment model is much faster on a MobileNet
    assert totals["deployment"]["cycles"] * 3 < totals["simulator"]["cycles"]
    assert main(["map", f"{ZOO}:resnet_tiny", "--accel", "jaq-table2", "--hw-model", "simulator"]) == 0
    assert "(simulator model, jaq space, min latency)" in capsys.readouterr().out
    assert main(["map", f"{ZOO}:resnet_tiny", "--accel", "jaq-table2", "--hw-model", "exact"]) == 2
    assert "'exact' is not one of 'simulator', 'deployment'" in capsys.readouterr().err


def test_map_table_and_errors(capsys) -> None:
    assert main(["map", f"{ZOO}:resnet_tiny", "--accel", "jaq-table2", "--objective", "energy"]) == 0
    out = capsys.readouterr().out
    assert "resnet_tiny on jaq-table2: 16x16 PEs" in out and "latency" in out and "EDAP" in out
    assert main(["map", f"{ZOO}:resnet_tiny", "--accel", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: ACCEL 'nope': not a preset")


@pytest.mark.parametrize("name", sorted(__import__("zoo_models").ZOO))
def test_map_every_zoo_model(name: str, capsys) -> None:
    import zoo_models

    shape = ",".join(str(d) for d in zoo_models.ZOO[name][1])
    assert main(["map", f"{ZOO}:{name}", "--accel", "jaq-table2", "--input-shape", shape, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["layers"] == len(data["layers"]) > 0 and data["totals"]["latency_ms"] > 0


def test_map_saved_ir_onnx_and_supernet(tmp_path: Path, capsys) -> None:
    import numpy as np
    import onnx
    import onnx_builders as ob

    assert main(["dump", f"{ZOO}:resnet_tiny", "-o", str(tmp_path / "net.json")]) == 0
    capsys.readouterr()
    for saved in ("net.json",):
        assert main(["map", str(tmp_path / saved), "--accel", "bitfusion-eyeriss", "--format", "json"]) == 0
        assert len(json.loads(capsys.readouterr().out)["layers"]) == 13  # 1 stem + 8 block + 3 downsample + fc
    gen = ob.rng(0)
    nodes, inits, out = ob.conv_bn(gen, "c1", "x", 3, 8)
    nodes.append(ob.node("GlobalAveragePool", [out], ["g"], name="gap"))
    nodes.append(ob.node("Flatten", ["g"], ["f"], name="flat"))
    nodes.append(ob.node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1))
    inits.update({"fc.w": ob.randn(gen, 10, 8), "fc.b": np.zeros(10, np.float32)})
    onnx.save(ob.model(nodes, {"x": [1, 3, 8, 8]}, {"y": [1, 10]}, inits), tmp_path / "net.onnx")
    assert main(["map", str(tmp_path / "net.onnx"), "--accel", "jaq-table2", "--format", "json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)["layers"]] == ["c1.conv", "fc"]
    assert main(["dump", "--supernet", "tiny", "-o", str(tmp_path / "super.json")]) == 0
    capsys.readouterr()
    assert main(["map", str(tmp_path / "super.json"), "--accel", "jaq-table2"]) == 2
    err = capsys.readouterr().err
    assert "pass batchtile requires a plain network (no choice layers), which the graph lacks" in err
    assert "run extract-subnet before batchtile" in err
    assert main(["map", str(tmp_path / "super.json"), "--accel", "jaq-table2", "--passes", "extract-subnet"]) == 0


@pytest.mark.parametrize(
    ("golden", "model", "bits", "hw_model"),
    [
        ("fbnet_like_w4a4_deployment", "fbnet_like", 4, "deployment"),
        ("mobilenet_v2_se_hswish_w2a2_simulator", "mobilenet_v2_se_hswish", 2, "simulator"),
    ],
)
def test_map_tables_are_pinned(golden: str, model: str, bits: int, hw_model: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """Guard (issue #11, item 6): the tables ``jaqc map`` printed before the cost vocabulary and the layout were
    unified (written by jaqc at 320dc9e), line for line."""
    passes = f"fold-batchnorm,annotate-quant{{w_bits={bits},a_bits={bits}}}"
    args = ["map", f"{ZOO}:{model}", "--accel", "jaq-table2", "--hw-model", hw_model, "--passes", passes]
    assert main(args) == 0
    expected = (Path(__file__).parent / "golden" / "map" / f"{golden}.txt").read_text()
    assert capsys.readouterr().out == expected
