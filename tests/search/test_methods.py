"""The method registry of ``jaqc search --method`` and its CLI checks."""

from __future__ import annotations

import pytest

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.search.methods import METHOD_HELP, METHODS, method_class, run_method
from jaqc.search.runner import SearchRun


def test_every_method_has_help_and_jaq_is_the_runner() -> None:
    assert set(METHODS) == set(METHOD_HELP) == {"jaq", "autonba", "haq", "hqnas"}
    assert method_class("jaq") is SearchRun


def test_unknown_method_is_named() -> None:
    with pytest.raises(JaqcError, match=r"unknown search method 'darts'; choose from jaq, autonba, haq, hqnas"):
        method_class("darts")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0.5"], "error: --budget applies to --method haq, not jaq"),
        (["--method", "autonba", "--lifelong", "x"], "error: --lifelong applies to --method hqnas, not autonba"),
        (["--method", "hqnas", "--episodes", "3"], "error: --episodes applies to --method haq, not hqnas"),
        (["--lifelong-epochs", "2"], "error: --lifelong-epochs applies to --method hqnas, not jaq"),
    ],
)
def test_options_of_other_methods_are_refused(args, message, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["search", "--run-dir", str(tmp_path / "run"), *args]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_jaq_refuses_method_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jaqc.search.presets import search_preset

    with pytest.raises(JaqcError, match="method jaq takes no method options, got budget"):
        SearchRun(search_preset("tiny"), tmp_path / "run", options={"budget": 0.5})


def test_run_method_reads_the_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jaqc.search.rundir import RunDir

    RunDir.create(tmp_path / "r").write_config({"format": "jaqc.search-run", "method": "hqnas", "recipe": {}})
    assert run_method(str(tmp_path / "r")) == "hqnas"
