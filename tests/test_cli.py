"""The `jaqc` CLI: dump formats, saved IR, pass pipelines, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jaqc.ir import load_graph, print_graph

from jaqc.cli import main

ZOO = str(Path(__file__).parent / "zoo_models.py")


def cli_proc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaqc", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "factory",
    ["resnet18", "mobilenet_v2", "resnet_tiny", "mobilenet_v2_se_hswish", "shufflenet_like", "fbnet_like"],
)
def test_dump_table_for_every_test_model(factory: str, capsys) -> None:
    assert main(["dump", f"{ZOO}:{factory}", "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert f"{factory}:" in out and "MACs" in out and "total" in out


def test_dump_text_json_and_saved_ir(tmp_path: Path, capsys) -> None:
    assert main(["dump", f"{ZOO}:resnet_tiny", "--input-shape", "1,3,32,32", "-o", str(tmp_path / "net.json")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("graph resnet_tiny\n%x = input : [1,3,32,32] ; fx=x\n")
    assert "%conv1 = conv2d[k=7,s=2,p=3](%x) : [1,3,32,32]->[1,8,16,16] ; fx=conv1 module=conv1" in text
    saved = load_graph(tmp_path / "net.json")
    assert print_graph(saved) == text and saved["conv1"].weights["weight"].shape == (8, 3, 7, 7)
    assert main(["dump", str(tmp_path / "net.json"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "jaqc-ir" and "weights" not in data["layers"][1]
    (tmp_path / "net.jaqc").write_text(text)
    assert (
        main(
            [
                "dump",
                str(tmp_path / "net.jaqc"),
                "--passes",
                "fold-batchnorm,annotate-quant{w_bits=4,a_bits=4}",
                "--verify-each",
            ]
        )
        == 0
    )
    folded = capsys.readouterr().out
    assert "batchnorm" not in folded and "w4a4" in folded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dump", "missing.py:f"], "error: MODEL 'missing.py:f': no such file missing.py"),
        (["dump", f"{ZOO}:nope"], f"error: MODEL '{ZOO}:nope': no factory 'nope' in {ZOO}"),
        (["dump", "no_colon"], "error: MODEL 'no_colon': expected path/to/file.py:factory"),
        (["dump", f"{ZOO}:resnet_tiny", "--input-shape", "1,3,x"], "error: bad input shape '1,3,x'"),
        (["dump", f"{ZOO}:resnet_tiny", "--passes", "frobnicate"], "error: unknown pass 'frobnicate'"),
        (["dump", "nothing.json"], "error: nothing.json: no such file"),
        (
            ["dump", "jaqc.nope_module:f"],
            "error: MODEL 'jaqc.nope_module:f': cannot import module 'jaqc.nope_module'",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(args: list[str], message: str, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_factory_that_raises(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.py"
    model.write_text("def broken():\n    raise ValueError('no weights here')\n\ndef not_a_model():\n    return 3\n")
    assert main(["dump", f"{model}:broken"]) == 2
    assert capsys.readouterr().err == f"error: MODEL '{model}:broken': broken() raised ValueError: no weights here\n"
    assert main(["dump", f"{model}:not_a_model"]) == 2
    assert "returned int, not a torch.nn.Module" in capsys.readouterr().err


def test_debug_shows_traceback_and_console_script_exit_code() -> None:
    proc = cli_proc("--debug", "dump", "missing.py:f")
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    proc = cli_proc("dump", "missing.py:f")
    assert proc.returncode == 2 and proc.stderr == "error: MODEL 'missing.py:f': no such file missing.py\n"


def test_passes_lists_builtins(capsys) -> None:
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    assert "annotate-quant{w_bits=8, a_bits=8, keep_first_last=True}" in out
    names = [line.split("{")[0].split()[0] for line in out.splitlines()]
    assert names == sorted(names) and {"fold-batchnorm", "shape-check", "extract-subnet"} <= set(names)


def test_dump_supernet(capsys) -> None:
    assert main(["dump", "--supernet", "tiny"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("graph tiny-supernet\n")
    assert out.count(" = choice(") == 5 and out.count("candidate k5_e6 alpha=0.1111111") == 5
    assert main(["dump", "--supernet", "nano"]) == 2
    assert "unknown supernet preset 'nano'" in capsys.readouterr().err
    assert main(["dump"]) == 2
    assert capsys.readouterr().err == "error: give either MODEL or --supernet PRESET\n"


def test_search_resume_of_missing_run(tmp_path, capsys) -> None:
    assert main(["search", "--resume", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing" in err and err.count("\n") == 1
