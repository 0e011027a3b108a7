"""scripts/compare_record.py: a comparison's finished runs kept small and put back to resume from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "compare_record", Path(__file__).parents[1] / "scripts" / "compare_record.py"
)
assert _SPEC is not None and _SPEC.loader is not None
record_script = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(record_script)


def _write(path: Path, text: str = "{}") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _subnet(path: Path) -> None:
    """A real, mapped ``tiny`` subnet with its weights, as a JAQ run leaves it."""
    from jaqc.ir import AcceleratorConfig, save_graph

    from jaqc.nn.subnet import DerivedSubnet
    from jaqc.search.outputs import mapped_subnet
    from jaqc.search.presets import search_preset

    config = search_preset("tiny").supernet
    ops, bits = ["k3_e3", "skip", "k5_e1", "k3_e6", "skip"], [(4, 8), (8, 8), (2, 4), (8, 2), (8, 8)]
    accelerator = AcceleratorConfig(pe_rows=8, pe_cols=16, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)
    model = DerivedSubnet(config, ops, bits)
    graph, _ = mapped_subnet(model, model.example_input_shape, accelerator)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_graph(graph, path, weights=True)


@pytest.fixture
def compare_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    jaq = out / "runs" / "jaq-s0"
    _write(jaq / "summary.json", json.dumps({"method": "jaq", "edap_mJ_ms_mm2": 0.5}))
    for name in ("config.json", "architecture.json", "accelerator.json", "codesign.json"):
        _write(jaq / name, json.dumps({"name": name}))
    _subnet(jaq / "subnet.json")
    _write(jaq / "retrain" / "summary.json", json.dumps({"test_acc": 0.9}))
    _write(jaq / "retrain" / "config.json")
    _write(jaq / "checkpoints" / "step-000128.pt", "x" * 1000)
    _write(jaq / "metrics.jsonl", "{}\n")
    uniform = out / "runs" / "uniform8-s0"
    _write(uniform / "summary.json", json.dumps({"method": "uniform8"}))
    _write(uniform / "subnet.json", "weights")
    _write(out / "runs" / "haq-s0" / "checkpoints" / "step-000010.pt", "unfinished")
    _write(out / "compare.md", "| table |")
    return out


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_save_keeps_what_compare_reads_back_and_nothing_else(compare_out: Path, tmp_path: Path) -> None:
    record = tmp_path / "record"
    assert record_script.main(["save", str(compare_out), str(record)]) == 0
    assert sorted(_files(record)) == [
        "compare.md",
        "runs/jaq-s0/accelerator.json", "runs/jaq-s0/architecture.json", "runs/jaq-s0/codesign.json",
        "runs/jaq-s0/config.json", "runs/jaq-s0/retrain/config.json", "runs/jaq-s0/retrain/summary.json",
        "runs/jaq-s0/subnet.json", "runs/jaq-s0/summary.json",
        "runs/uniform8-s0/summary.json",
    ]  # fmt: skip
    # no checkpoints or metrics, no unfinished run, and only JAQ's subnet (HAQ's budget reads it)
    assert _files(record)["runs/jaq-s0/summary.json"] == _files(compare_out)["runs/jaq-s0/summary.json"]


def test_the_kept_subnet_has_no_weights_and_gives_haqs_budget_alike(compare_out: Path, tmp_path: Path) -> None:
    from jaqc.search.compare import CompareSettings, Comparison

    record = tmp_path / "record"
    record_script.main(["save", str(compare_out), str(record)])
    full, kept = (json.loads((d / "runs/jaq-s0/subnet.json").read_text()) for d in (compare_out, record))
    assert any("weights" in layer for layer in full["layers"])
    assert not any("weights" in layer for layer in kept["layers"])
    assert [{k: v for k, v in layer.items() if k != "weights"} for layer in full["layers"]] == kept["layers"]
    fresh = tmp_path / "fresh"
    record_script.main(["restore", str(record), str(fresh)])
    for kind in ("latency", "energy", "edap"):
        fractions = [Comparison(d, CompareSettings()).jaq_fraction("jaq-s0", kind) for d in (compare_out, fresh)]
        assert fractions[0] == fractions[1] and 0 < fractions[0] < 1, kind


def test_restore_puts_the_runs_back_without_overwriting(compare_out: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    record = tmp_path / "record"
    record_script.main(["save", str(compare_out), str(record)])
    fresh = tmp_path / "fresh"
    _write(fresh / "runs" / "uniform8-s0" / "summary.json", json.dumps({"method": "uniform8", "mine": True}))
    assert record_script.main(["restore", str(record), str(fresh)]) == 0
    assert "restore: 1 run(s): jaq-s0" in capsys.readouterr().out
    restored = _files(fresh)
    assert json.loads(restored["runs/uniform8-s0/summary.json"])["mine"] is True  # kept
    for name, text in _files(record / "runs").items():
        if not name.startswith("uniform8-s0"):
            assert restored[f"runs/{name}"] == text


def test_bad_folders_are_one_line_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert record_script.main(["save", str(tmp_path / "nope"), str(tmp_path / "r")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'nope'}: no runs/ folder; give the -o directory of a jaqc compare"
    )
    assert record_script.main(["restore", str(tmp_path), str(tmp_path / "o")]) == 2
    assert "no runs/ folder; give a folder written by `save`" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()
