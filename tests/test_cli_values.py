"""CLI values are validated, not truncated or silently replaced (part of issue #13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaqc.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--threads", "0"], "--threads"),
        (["search", "--epochs", "0"], "--epochs"),
        (["search", "--seed", str(2**63)], "--seed"),
        (["search", "--seed", "-1"], "--seed"),
        (["retrain", "runs/x", "--epochs", "0"], "--epochs"),
        (["retrain", "runs/x", "--threads", "0"], "--threads"),
        (["compare", "--retrain-epochs", "0"], "--retrain-epochs"),
        (["compare", "--threads", "0"], "--threads"),
    ],
)
def test_counts_below_one_and_out_of_range_seeds_are_refused(args: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_empty_input_shape_is_an_error_not_ignored(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["map", "tests/zoo_models.py:resnet_tiny", "--accel", "jaq-table2", "--input-shape", ""]) == 2
    assert "bad input shape ''" in capsys.readouterr().err


def test_resume_of_a_finished_run_says_so_and_changes_nothing(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"method": "jaq"}')
    (run / "config.json").write_text("{}")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir())
    assert main(["search", "--resume", str(run)]) == 2
    assert "the search finished already (summary.json); nothing to resume" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir()) == before


GRAPH = """graph g
%x = input : [1,3,8,8]
%c = conv2d[k=3,p=1](%x) : w4a8 [1,3,8,8]->[1,8,8,8]
%a = add(%c, %c) : [1,8,8,8],[1,8,8,8]->[1,8,8,8]
"""


@pytest.mark.parametrize(
    ("value", "shown"), [("5", "5"), ("'abc'", "'abc'"), ("(1, -3, 8, 8)", "(1, -3, 8, 8)"), ("()", "()")]
)
def test_a_bad_example_input_shape_is_named(tmp_path, capsys, value: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "m.py").write_text(
        "import torch.nn as nn\n"
        f"class M(nn.Sequential):\n    example_input_shape = {value}\n"
        "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 3))\n"
    )
    assert main(["dump", f"{tmp_path / 'm.py'}:M"]) == 2
    err = capsys.readouterr().err
    assert f"example_input_shape must be a sequence of positive integers such as (1, 3, 32, 32), got {shown}" in err
    assert main(["dump", f"{tmp_path / 'm.py'}:M", "--input-shape", "1,3,8,8"]) == 0  # the way out it names


def test_a_file_whose_name_holds_a_colon_is_read_as_a_file(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    Path("run:3.jaqc").write_text(GRAPH)
    assert main(["dump", "run:3.jaqc"]) == 0
    assert capsys.readouterr().out.startswith("graph g\n")
    assert main(["dump", "pkg.nope:3.jaqc"]) == 2  # no such file: still read as module:factory
    assert "cannot import module 'pkg.nope'" in capsys.readouterr().err


def test_a_directory_with_a_model_suffix_is_named(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    for name in ("x.onnx", "x.json", "x.jaqc"):
        (tmp_path / name).mkdir()
        assert main(["dump", str(tmp_path / name)]) == 2
        assert f"{name}': is a directory, not a {name[1:]} file" in capsys.readouterr().err


def test_dump_and_map_verify_what_they_load(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jaqc"
    bad.write_text(GRAPH.replace("w4a8 [1,3,8,8]->[1,8,8,8]", "w4a8 [1,3,8,8]->[100000000,64,8,8]"))
    assert "[100000000,64,8,8]" in bad.read_text()
    for args in (["dump", str(bad)], ["map", str(bad), "--accel", "jaq-table2"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "failed verification" in err and "layer %c: output shape [100000000,64,8,8]" in err
    assert main(["dump", str(bad), "--no-verify"]) == 0  # the escape hatch
    assert "[100000000,64,8,8]" in capsys.readouterr().out


def test_dump_format_combinations(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "g.jaqc"
    good.write_text(GRAPH)
    assert main(["dump", str(good), "--weights"]) == 2
    assert "--weights/--no-weights apply to --format json, not text" in capsys.readouterr().err
    assert main(["dump", str(good), "--format", "table", "--no-weights"]) == 2
    assert "not table" in capsys.readouterr().err
    assert main(["dump", str(good), "--format", "json", "--weights"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "jaqc-ir"
    assert main(["dump", str(good)]) == 0 and capsys.readouterr().out == GRAPH


def test_unwritable_outputs_are_named_not_a_traceback(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "g.jaqc"
    good.write_text(GRAPH)
    (tmp_path / "afile").write_text("x")
    assert main(["dump", str(good), "-o", str(tmp_path / "afile" / "x.json")]) == 2
    assert "afile/x.json: cannot write: " in (err := capsys.readouterr().err) and "afile is a file, not a folder" in err
    assert main(["search", "--epochs", "1", "--run-dir", str(tmp_path / "afile" / "run")]) == 2
    err = capsys.readouterr().err
    assert "afile/run: cannot create the run directory" in err and "Traceback" not in err


def test_an_os_error_no_loader_caught_is_one_line(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import jaqc.frontend.loader as loader

    def vanished(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise FileNotFoundError(2, "No such file or directory", "/data/gone.json")

    monkeypatch.setattr(loader, "load_graph", vanished)
    (tmp_path / "g.jaqc").write_text(GRAPH)
    assert main(["dump", str(tmp_path / "g.jaqc")]) == 2
    assert capsys.readouterr().err == "error: /data/gone.json: No such file or directory\n"


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "-o", ""],
        ["search", "--run-dir", " "],
        ["search", "--resume", ""],
        ["search", "--data", ""],
        ["dump", "x.jaqc", "-o", ""],
        ["export", "x.json", "-o", ""],
        ["retrain", "x.json", "-o", ""],
    ],
)
def test_an_empty_path_is_refused_not_the_current_folder(args: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(args) == 2
    assert "an empty path; give a file or folder name" in capsys.readouterr().err


def test_input_shape_does_not_apply_to_a_saved_ir(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "g.jaqc").write_text(GRAPH)
    assert main(["dump", str(tmp_path / "g.jaqc"), "--input-shape", "1,3,16,16"]) == 2
    assert "--input-shape applies to torch and ONNX models; a saved IR has its own" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--passes", "no-such-pass"], "unknown pass 'no-such-pass'"),
        (["--passes", "annotate-quant", "--method", "haq"], "--passes applies to --method jaq, not haq"),
        (["--resume", "somewhere", "--passes", "annotate-quant"], "drop passes"),
    ],
)
def test_search_passes_are_checked_before_anything_is_made(tmp_path, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    assert main(["search", "--run-dir", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
