"""CLI values are validated, not truncated or silently replaced (part of issue #13)."""

from __future__ import annotations

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
