"""Outputs that used to mislead (issue #14, item 5), each pinned: identity skips have no bits, HAQ's table is per
layer, an unvalidated dataflow and under-used arrays are flagged, the export help says what --accel does, and the
README's quantization example quantizes what it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jaqc.cli import main
from jaqc.cli.render import print_run_summary
from jaqc.hw.mapping.report import LOW_UTILIZATION, dataflow_note, design_notes
from jaqc.nn.config import supernet_preset
from jaqc.search.outputs import hardware_figures
from jaqc.search.space_costs import SpaceCosts

ROOT = Path(__file__).parents[1]
ACCEL = {"pe_rows": 8, "pe_cols": 8, "wbuf_kb": 64, "ibuf_kb": 64, "obuf_kb": 64, "dataflow": "WS"}
FIGURES = {"latency_ms": 0.1, "energy_mJ": 0.1, "area_mm2": 1.0, "edap_mJ_ms_mm2": 0.01}


def test_identity_skip_blocks_show_no_bits(capsys) -> None:  # type: ignore[no-untyped-def]
    config = supernet_preset("tiny")
    ops = ["skip", "skip", "k3_e1", "skip", "k5_e1"]
    identity = SpaceCosts.from_config(config).identity_blocks(ops)
    # tiny: block 0 keeps 8 channels at stride 1 (an identity skip), block 1 changes shape (a 1x1 projection)
    assert identity == [True, False, False, False, False]
    summary = {"method": "jaq", "preset": "tiny", "architecture": {"ops": ops, "bits": [[2, 2]] * 5},
               "identity_blocks": identity, "accelerator": ACCEL, **FIGURES}  # fmt: skip
    print_run_summary(summary, "run")
    out = capsys.readouterr().out
    assert re.search(r"│ 0\s+│ skip \(identity\)\s+│ –\s+│ –\s+│", out)
    assert re.search(r"│ 1\s+│ skip\s+│ 2\s+│ 2\s+│", out)  # the projection skip has layers and bits


def test_haq_summary_is_a_per_layer_table(capsys) -> None:  # type: ignore[no-untyped-def]
    summary = {"method": "haq", "preset": "tiny", "architecture": {"ops": ["stem.0", "blocks.0.dw"],
               "bits": [[8, 8], [4, 2]]}, "accelerator": ACCEL, **FIGURES}  # fmt: skip
    print_run_summary(summary, "run")
    out = capsys.readouterr().out
    assert re.search(r"┃ layer\s+┃ w bits ┃ a bits ┃", out) and "┃ block" not in out and "│ blocks.0.dw │ 4" in out
    assert "warning: flat reward" not in out
    print_run_summary({**summary, "reward_warnings": ["flat reward: all 40 episodes scored 9.86 %"]}, "run")
    assert "warning: flat reward: all 40 episodes scored 9.86 %" in capsys.readouterr().out


def test_unvalidated_dataflow_is_noted(capsys) -> None:  # type: ignore[no-untyped-def]
    assert dataflow_note(ACCEL) is None
    note = dataflow_note({**ACCEL, "dataflow": "RS"})
    assert note is not None and "only WS (BitFusion's) is validated against the BitFusion simulator" in note
    print_run_summary({"architecture": {"ops": ["k3_e1"], "bits": [[4, 4]]}, "accelerator": {**ACCEL, "dataflow": "OS"},
                    **FIGURES}, "run")  # fmt: skip
    assert "note: dataflow OS is a jaqc extension" in capsys.readouterr().out
    schedule = {"schema_version": 2, "hw_model": "deployment", "accelerator": {**ACCEL, "dataflow": "RS"},
                "totals": FIGURES}  # fmt: skip
    assert hardware_figures(schedule)["notes"] == [dataflow_note({**ACCEL, "dataflow": "RS"})]


def test_map_flags_layers_that_use_little_of_the_array(capsys) -> None:  # type: ignore[no-untyped-def]
    zoo = ROOT / "tests" / "zoo_models.py"
    args = ["map", f"{zoo}:mobilenet_v2_se_hswish", "--accel", "jaq-table2", "--format", "json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    low = [r["name"] for r in data["layers"] if r["utilization"] < LOW_UTILIZATION]
    assert low  # small CIFAR-size layers on a 16x16 array
    assert any(
        note.startswith(f"{len(low)} of {len(data['layers'])} layers use less than 10%") for note in data["notes"]
    )
    assert design_notes(ACCEL, [{"name": "a", "utilization": 0.5}]) == []


def test_export_help_says_accel_overrides_a_runs_accelerator(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Default: a RUN_DIR's accelerator.json" in text and "Given, it overrides both" in text


def test_readme_quantization_example_quantizes_what_it_shows(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    readme = (ROOT / "README.md").read_text()
    source = re.search(r"cat > mynet.py <<'PY'\n(.*?)\nPY", readme, flags=re.S)
    command = re.search(r"^jaqc map mynet\.py:mynet --accel bitfusion-eyeriss --passes '([^']+)'", readme, flags=re.M)
    assert source and command and "keep_first_last" in readme
    (tmp_path / "mynet.py").write_text(source.group(1) + "\n")
    args = ["map", f"{tmp_path / 'mynet.py'}:mynet", "--accel", "bitfusion-eyeriss", "--passes", command.group(1)]
    assert main([*args, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert [r["bits"] for r in rows] == ["w4a4", "w4a4"]


def test_schedule_utilization_equals_the_cost_models_and_summaries_flag_it() -> None:
    import pytest
    import zoo_models
    from jaqc.passes import PassContext, PassManager, make_pass

    from jaqc.export.schedule import build_schedule
    from jaqc.frontend import import_model
    from jaqc.hw.accelerators import load_accelerator
    from jaqc.hw.mapping.report import mapping_rows, schedule_rows

    factory, shape = zoo_models.ZOO["mobilenet_v2_se_hswish"]
    for model in ("deployment", "simulator"):
        graph = import_model(factory().eval(), shape, with_weights=False)
        graph.accelerator = load_accelerator("jaq-table2")
        graph = PassManager([make_pass("batchtile", {"hw_model": model})]).run(graph, PassContext()).graph
        direct = [r["utilization"] for r in mapping_rows(graph)]
        schedule = build_schedule(graph)
        assert [r["utilization"] for r in schedule_rows(schedule)] == pytest.approx(direct, rel=1e-12)
        notes = hardware_figures(schedule)["notes"]
        assert any("use less than 10% of the array's peak MAC rate" in n for n in notes)


def test_architecture_plot_has_no_bars_for_identity_skips(tmp_path: Path) -> None:
    from jaqc.search.plots import architecture_bars, plot_architecture

    ops, bits = ["skip", "k3_e1"], [(2, 2), (4, 8)]
    identity = SpaceCosts.from_config(supernet_preset("tiny")).identity_blocks([*ops, "k3_e1", "k3_e1", "k3_e1"])[:2]
    weight, activation, labels = architecture_bars(ops, bits, identity)
    assert (weight, activation) == ([0, 4], [0, 8]) and labels == ["0\nskip\n(identity)", "1\nk3_e1"]
    path = plot_architecture(ops, bits, tmp_path / "a.png", "derived subnet", identity)
    assert path.read_bytes().startswith(b"\x89PNG")
