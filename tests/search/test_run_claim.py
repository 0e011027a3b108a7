"""The exclusive claim of a run directory (issue #13, item 4): one writer at a time, a stale lock from a dead
process named and taken over, nothing left behind by a run that fails before its first checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.search.rundir import LOCK_FILE, RunDir, RunDirError, release_run


def _python(code: str, *args: str, **kw) -> subprocess.Popen:  # type: ignore[no-untyped-def, type-arg]
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


HOLD = """
import sys
from jaqc.search.rundir import RunDir
RunDir.create(sys.argv[1]) if sys.argv[2] == "create" else RunDir.open(sys.argv[1], claim=True)
print("claimed", flush=True)
sys.stdin.read()  # hold the claim until the test closes stdin
"""


def test_a_run_in_use_by_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = _python(HOLD, str(run), "create")
    try:
        assert holder.stdout.readline() == "claimed\n"  # type: ignore[union-attr]
        owner = json.loads((run / LOCK_FILE).read_text())
        assert owner["pid"] == holder.pid
        with pytest.raises(RunDirError, match=rf"in use by pid {holder.pid} on .* \(since .*\); wait for that run"):
            RunDir.open(run, claim=True)  # a second --resume
        with pytest.raises(RunDirError, match=rf"in use by pid {holder.pid}"):
            RunDir.create(run)  # a second new search into the same folder
    finally:
        holder.communicate("")
    assert holder.returncode == 0 and not (run / LOCK_FILE).exists()  # released at exit
    RunDir.open(run, claim=True)  # free again
    release_run(run)


def test_concurrent_creates_of_one_folder_let_exactly_one_win(tmp_path: Path) -> None:
    run = tmp_path / "contested"
    code = """
    import sys, time
    from jaqc.search.rundir import RunDir
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together
    try:
        RunDir.create(sys.argv[1])
        print("won", flush=True)
        sys.stdin.read()
    except Exception as error:
        print(type(error).__name__, error, flush=True)
    """
    import time

    start = str(time.time() + 8.0)  # (importing torch in 8 processes on 2 cores takes a few seconds)
    racers = [_python(code, str(run), start) for _ in range(8)]
    lines = [r.stdout.readline().strip() for r in racers]  # type: ignore[union-attr]
    errors = [r.communicate("")[1] for r in racers]
    assert all(lines), errors
    assert sum(line == "won" for line in lines) == 1, lines
    losers = [line for line in lines if line != "won"]
    assert all(line.startswith("RunDirError") for line in losers), losers
    assert all("in use by pid" in line or "not an empty directory" in line for line in losers), losers


def test_a_stale_lock_of_a_killed_process_is_named_and_taken_over(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    killed = _python(HOLD, str(run), "create")
    assert killed.stdout.readline() == "claimed\n"  # type: ignore[union-attr]
    killed.kill()  # like kill -9: no clean-up, the lock file stays
    killed.communicate()
    assert (run / LOCK_FILE).is_file()
    RunDir.open(run, claim=True)
    err = capsys.readouterr().err
    assert f"stale lock of pid {killed.pid} on " in err and "which is no longer running; taking the run over" in err
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    release_run(run)
    assert not (run / LOCK_FILE).exists()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    empty = tmp_path / "no-cifar"
    empty.mkdir()
    args = ["search", "--preset", "cifar10", "--epochs", "1", "--run-dir", str(run)]
    assert main([*args, "--data", str(empty)]) == 2  # fails loading the data, after making the run directory
    assert "lacks data_batch_1" in capsys.readouterr().err
    assert not run.exists()
    given = tmp_path / "given"  # an empty folder the user made stays, emptied again
    given.mkdir()
    assert main([*args[:-1], str(given), "--data", str(empty)]) == 2
    assert given.is_dir() and list(given.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lam", "nan"], "search setting lam must be a finite number >= 0, got nan"),
        (["--lambda-e", "inf"], "hardware weight energy must be a finite number >= 0, got inf"),
    ],
)
def test_non_finite_lambdas_are_refused_before_anything_is_created(tmp_path: Path, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    assert main(["search", "--run-dir", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_create_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match=r"file/run: cannot create the run directory: .*file is a file, not a folder"):
        RunDir.create(tmp_path / "file" / "run")
    with pytest.raises(RunDirError, match=r"file: exists and is not a directory"):
        RunDir.create(tmp_path / "file")
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    with pytest.raises(JaqcError, match="exists and is not an empty directory"):
        RunDir.create(used)
    assert sorted(p.name for p in used.iterdir()) == ["x"]  # nothing added, nothing removed


def test_force_applies_to_resume_only(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["search", "--force"]) == 2
    assert "--force applies to --resume" in capsys.readouterr().err


def test_force_redoes_the_final_phase_of_a_finished_run(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """The CLI's part (the finish itself equals the uninterrupted one: test_jaq_runner)."""
    import jaqc.cli.search as cli
    import jaqc.search.methods as methods

    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    resumed: list[str] = []

    class Finished:
        def run(self):  # type: ignore[no-untyped-def]
            from types import SimpleNamespace

            return SimpleNamespace(summary={"redone": True}, run_dir=run)

    monkeypatch.setattr(methods, "resume_run", lambda path, data, device=None: resumed.append(path) or Finished())
    monkeypatch.setattr(cli, "print_run_summary", lambda summary, run_dir: print("summary", summary))
    assert main(["search", "--resume", str(run)]) == 2 and resumed == []
    assert "add --force to redo its final phase" in capsys.readouterr().err
    assert main(["search", "--resume", str(run), "--force"]) == 0
    assert resumed == [str(run)] and "summary {'redone': True}" in capsys.readouterr().out
