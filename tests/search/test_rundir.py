"""jaqc.search.rundir: atomic files, the metrics log, checkpoints with RNG state, retention, rank 0, exact resume."""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from jaqc.core import JaqcError
from jaqc.data import DataConfig, make_loader
from jaqc.search import (
    LoopPosition,
    RetentionPolicy,
    RunDir,
    RunDirError,
    capture_rng_state,
    load_checkpoint,
    read_metrics,
    restore_rng_state,
    without_time,
)
from jaqc.search.rundir import release_run, write_summary

REPO = Path(__file__).parents[2]


# --- config -----------------------------------------------------------------------------------------------------


def test_config_snapshot_round_trip(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    config = DataConfig("cifar10", root=tmp_path / "data", resolution=16)
    run.write_config({"data": config, "epochs": 3, "bits": (2, 4)})
    assert RunDir.open(tmp_path / "run").read_config() == {
        "data": {
            "name": "cifar10",
            "root": str(tmp_path / "data"),
            "resolution": 16,
            "channels": 3,
            "val_fraction": 0.1,
            "seed": 0,
            "normalization": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616]},
        },
        "epochs": 3,
        "bits": [2, 4],
    }
    document = json.loads(run.config_path.read_text())
    assert (document["format"], document["version"]) == ("jaqc-run", 1)
    with pytest.raises(RunDirError, match=r"config\.epochs\.when: a object cannot be written as JSON"):
        run.write_config({"epochs": {"when": object()}})
    with pytest.raises(RunDirError, match=r"config\.json: the config holds NaN or infinity"):
        run.write_config({"lr": float("inf")})
    assert run.read_config()["epochs"] == 3


def test_open_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=f"{re.escape(str(tmp_path / 'missing'))}: no such run directory"):
        RunDir.open(tmp_path / "missing")
    run = RunDir.create(tmp_path / "run")
    with pytest.raises(RunDirError, match=f"{re.escape(str(run.config_path))}: missing"):
        run.read_config()
    run.config_path.write_text(json.dumps({"format": "jaqc-run", "version": 99, "jaqc_version": "9.0", "config": {}}))
    with pytest.raises(
        RunDirError,
        match=f"{re.escape(str(run.config_path))}: run format version 99 \\(jaqc 9.0\\); .* reads version 1",
    ):
        RunDir.open(run.path)
    run.config_path.write_text("{")
    with pytest.raises(RunDirError, match=r"config\.json:1: invalid JSON"):
        RunDir.open(run.path)
    run.config_path.write_bytes(b'{"format": "jaqc-run\xff"}')
    with pytest.raises(RunDirError, match=r"config\.json: not UTF-8 text \(byte 20 is 0xff\)"):
        RunDir.open(run.path)
    run.config_path.unlink()
    run.config_path.mkdir()
    with pytest.raises(RunDirError, match=r"config\.json: is a directory, not a file"):
        RunDir.open(run.path)
    run.config_path.rmdir()
    run.config_path.write_text("{")
    with pytest.raises(RunDirError, match=f"{re.escape(str(run.path))}: exists and is not an empty directory"):
        RunDir.create(run.path)
    with pytest.raises(RunDirError, match=f"{re.escape(str(run.checkpoint_dir))}: no checkpoint to resume from"):
        run.load_checkpoint()
    assert run.latest_checkpoint() is None


# --- atomic writes ----------------------------------------------------------------------------------------------


def test_failed_replace_leaves_old_files_and_no_temporaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunDir.create(tmp_path / "run")
    run.write_config({"version": "old"})
    first = run.save_checkpoint({"x": torch.tensor([1.0])}, step=1)

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(JaqcError, match=r"step000000002\.pt: cannot write: disk full"):
        run.save_checkpoint({"x": torch.tensor([2.0])}, step=2)
    with pytest.raises(JaqcError, match=r"config\.json: cannot write: disk full"):
        run.write_config({"version": "new"})
    monkeypatch.undo()
    release_run(run.path)  # (its lock file)
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["step000000001.pt", "step000000001.pt.sha256"]
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "config.json"]
    assert run.read_config() == {"version": "old"}
    assert torch.equal(run.load_checkpoint().state["x"], torch.tensor([1.0])) and run.latest_checkpoint() == first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_writer_killed_mid_checkpoint(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    run.save_checkpoint({"x": torch.tensor([1.0])}, step=1)
    with warnings.catch_warnings():  # python >= 3.12 warns about forking a process that has threads
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # the writer: dies half-way through its checkpoint, as under SIGKILL (no cleanup, no rename)

        def dying_save(obj: object, handle: typing.BinaryIO) -> None:
            handle.write(b"PK\x03\x04 half a checkpoint")
            handle.flush()
            os._exit(9)

        try:
            torch.save = dying_save
            run.save_checkpoint({"x": torch.tensor([2.0])}, step=2)
        finally:
            os._exit(1)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 9
    leftovers = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert len(leftovers) == 3 and leftovers[1:] == ["step000000001.pt", "step000000001.pt.sha256"]
    assert leftovers[0].endswith(".tmp")
    assert run.latest_checkpoint() == run.checkpoint_dir / "step000000001.pt"
    (run.path / ".config.json.x1y2.tmp").write_text("{")  # an interrupted write_config
    RunDir.open(run.path, rank=1)  # other ranks do not clean up
    assert len(list(run.checkpoint_dir.iterdir())) == 3 and (run.path / ".config.json.x1y2.tmp").exists()
    RunDir.open(run.path)  # an inspection (no claim) does not touch a writer's temporaries either
    assert len(list(run.checkpoint_dir.iterdir())) == 3
    reopened = RunDir.open(run.path, claim=True)  # the resuming writer removes them
    assert sorted(p.name for p in reopened.checkpoint_dir.iterdir()) == ["step000000001.pt", "step000000001.pt.sha256"]
    release_run(run.path)
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints"]
    assert torch.equal(reopened.load_checkpoint().state["x"], torch.tensor([1.0]))


# --- metrics ----------------------------------------------------------------------------------------------------


def test_metrics_torn_last_line(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    for step in range(3):
        run.append_metrics({"step": step, "loss": 1.0 / (step + 1), "tensor": torch.tensor(0.5)})
    with run.metrics_path.open("ab") as handle:
        handle.write(b'{"step": 3, "lo')  # the crash
    assert [r["step"] for r in run.read_metrics()] == [0, 1, 2]
    assert without_time(read_metrics(run.metrics_path))[2] == {"step": 2, "loss": 1.0 / 3, "tensor": 0.5}
    assert all(abs(r["time"] - time.time()) < 60 for r in run.read_metrics())  # every line is stamped
    run.append_metrics({"step": 3, "loss": float("nan")})
    lines = run.metrics_path.read_text().splitlines()
    assert len(lines) == 4 and re.fullmatch(r'\{"step": 3, "loss": NaN, "time": \d+\.\d+\}', lines[3])
    assert math.isnan(run.read_metrics()[3]["loss"])
    run.metrics_path.write_bytes('{"step": 0, "note": "é"}\n'.encode()[:-4])  # torn inside a UTF-8 character
    assert run.read_metrics() == []
    run.metrics_path.write_bytes(b'{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(RunDirError, match=f"{re.escape(str(run.metrics_path))}:2: not a JSON object"):
        run.read_metrics()


def test_metrics_torn_first_line_and_rewind(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    run.metrics_path.write_bytes(b'{"step": 0, "lo')
    assert run.read_metrics() == []
    run.append_metrics({"step": 0})
    for step in range(1, 6):
        run.append_metrics({"step": step})
    run.append_metrics({"event": "note"})
    run.rewind_metrics(3)
    assert without_time(run.read_metrics()) == [{"step": 0}, {"step": 1}, {"step": 2}, {"step": 3}, {"event": "note"}]


# --- checkpoints and RNG state ----------------------------------------------------------------------------------


def _draw(torch_gen: torch.Generator, numpy_gen: np.random.Generator) -> list[float]:
    return [
        random.random(),
        float(np.random.rand()),
        float(torch.rand(1)),
        float(torch.rand(1, generator=torch_gen)),
        float(numpy_gen.random()),
    ]


def test_checkpoint_round_trip_with_rng_state(tmp_path: Path) -> None:
    torch_gen, numpy_gen = torch.Generator().manual_seed(3), np.random.default_rng(4)
    generators = {"sampler": torch_gen, "noise": numpy_gen}
    _draw(torch_gen, numpy_gen)
    run = RunDir.create(tmp_path / "run")
    state = {"weights": torch.arange(4.0), "rng": capture_rng_state(generators), "position": LoopPosition(1, 2, 9)}
    path = run.save_checkpoint({**state, "position": state["position"].to_dict()}, step=9, epoch=None)
    expected = _draw(torch_gen, numpy_gen)
    assert _draw(torch_gen, numpy_gen) != expected
    checkpoint = load_checkpoint(path)
    assert (checkpoint.step, checkpoint.epoch, checkpoint.path) == (9, None, path)
    restore_rng_state(checkpoint.state["rng"], generators)
    assert _draw(torch_gen, numpy_gen) == expected
    assert torch.equal(checkpoint.state["weights"], torch.arange(4.0))
    assert LoopPosition.from_dict(checkpoint.state["position"]) == LoopPosition(epoch=1, batch=2, step=9)
    with pytest.raises(RunDirError, match=r"holds generators \['noise', 'sampler'\], but \['sampler'\] were given"):
        restore_rng_state(checkpoint.state["rng"], {"sampler": torch_gen})
    current = capture_rng_state(generators)
    with pytest.raises(RunDirError, match="generator 'noise' was saved as a numpy generator, not torch"):
        restore_rng_state(checkpoint.state["rng"], {"sampler": torch_gen, "noise": torch.Generator()})
    after_failed_restore = _draw(torch_gen, numpy_gen)
    restore_rng_state(current, generators)
    assert _draw(torch_gen, numpy_gen) == after_failed_restore  # the failed restore changed nothing


def test_checkpoint_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(RunDirError, match=f"{re.escape(str(bad))}: cannot read the checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(RunDirError, match=f"{re.escape(str(bad))}: not a jaqc checkpoint"):
        load_checkpoint(bad)
    torch.save({"format": "jaqc-checkpoint", "version": 7, "jaqc_version": "3.0"}, bad)
    with pytest.raises(RunDirError, match=f"{re.escape(str(bad))}: checkpoint version 7 from jaqc 3.0"):
        load_checkpoint(bad)
    torch.save({"format": "jaqc-checkpoint", "version": 1, "step": 3}, bad)
    with pytest.raises(RunDirError, match=r"checkpoint lacks \['epoch', 'state'\]"):
        load_checkpoint(bad)
    with pytest.raises(RunDirError, match=f"{re.escape(str(tmp_path / 'none.pt'))}: no such checkpoint file"):
        load_checkpoint(tmp_path / "none.pt")


def test_retention_keeps_latest_and_epoch_checkpoints(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", retention=RetentionPolicy(keep_last=2, keep_epoch_every=2))
    epoch_of_step = {3: 0, 6: 1, 9: 2, 12: 3}
    for step in range(1, 14):
        run.save_checkpoint({"step": step}, step=step, epoch=epoch_of_step.get(step))
    assert [p.name for p in run.checkpoints()] == [
        "step000000003-epoch0000.pt",
        "step000000009-epoch0002.pt",
        "step000000012-epoch0003.pt",
        "step000000013.pt",
    ]
    assert run.load_checkpoint().state == {"step": 13}
    only_last = RunDir.create(tmp_path / "other", retention=RetentionPolicy(keep_last=1, keep_epoch_every=0))
    for step in range(1, 5):
        only_last.save_checkpoint({}, step=step, epoch=step)
    assert [p.name for p in only_last.checkpoints()] == ["step000000004-epoch0004.pt"]
    with pytest.raises(RunDirError, match="keep_last must be an integer >= 1"):
        RetentionPolicy(keep_last=0)


def test_rank_other_than_zero_writes_nothing(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", rank=1)
    assert not run.is_writer
    assert run.write_config({"a": 1}) is None
    run.append_metrics({"step": 0})
    assert run.save_checkpoint({"x": 1}, step=1) is None
    run.rewind_metrics(0)
    assert not (tmp_path / "run").exists()
    assert run.read_metrics() == [] and run.latest_checkpoint() is None
    RunDir.create(tmp_path / "run").append_metrics({"step": 0})  # rank 0 made the folder first
    assert RunDir.create(tmp_path / "run", rank=3).path == tmp_path / "run"


# --- exact resume -----------------------------------------------------------------------------------------------

SEED, EPOCHS, BATCH = 5, 2, 6
_DATA_RNG = torch.Generator().manual_seed(0)
DATA = TensorDataset(torch.randn(40, 4, generator=_DATA_RNG), torch.randn(40, 1, generator=_DATA_RNG))


class _Crash(Exception):
    pass


def _train(run: RunDir, crash_at_step: int | None = None, checkpoint_every: int = 4) -> nn.Module:
    """A toy loop using every RNG source; resumes from ``run``'s newest checkpoint when there is one."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    noise = np.random.default_rng(SEED)
    position = LoopPosition(epoch=0, batch=0, step=0)
    latest = run.latest_checkpoint()
    if latest is not None:
        state = run.load_checkpoint(latest).state
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng_state(state["rng"], {"noise": noise})
        position = LoopPosition.from_dict(state["position"])
        run.rewind_metrics(position.step)
    step = position.step
    for epoch in range(position.epoch, EPOCHS):
        skip = position.batch if epoch == position.epoch else 0
        loader = make_loader(DATA, batch_size=BATCH, seed=SEED, epoch=epoch, skip_batches=skip)
        for batch, (inputs, targets) in enumerate(loader, start=skip):
            scale = 1.0 + 0.1 * random.random() + 0.1 * float(np.random.rand()) + 0.1 * float(noise.random())
            loss = nn.functional.mse_loss(model(inputs) * scale, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.append_metrics({"step": step, "epoch": epoch, "loss": loss.item()})
            if step % checkpoint_every == 0:
                state = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": capture_rng_state({"noise": noise}),
                    "position": LoopPosition(epoch, batch + 1, step).to_dict(),
                }
                run.save_checkpoint(state, step=step)
            if step == crash_at_step:
                raise _Crash
    return model


def test_resume_reproduces_an_uninterrupted_run_bit_for_bit(tmp_path: Path) -> None:
    straight_run = RunDir.create(tmp_path / "straight")
    straight = _train(straight_run)
    # 7 batches per epoch: crash at step 11 (epoch 1, batch 4); the newest checkpoint is step 8 (epoch 1, batch 1).
    crashed_run = RunDir.create(tmp_path / "crashed")
    with pytest.raises(_Crash):
        _train(crashed_run, crash_at_step=11)
    assert crashed_run.latest_checkpoint().name == "step000000008.pt"
    random.seed(123)  # the new process starts from other RNG states
    np.random.seed(123)
    torch.manual_seed(123)
    resumed = _train(RunDir.open(tmp_path / "crashed"))
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert without_time(crashed_run.read_metrics()) == without_time(straight_run.read_metrics())
    assert [r["step"] for r in straight_run.read_metrics()] == list(range(1, 15))


def test_docs_resume_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "data.md").read_text(), flags=re.S)
    namespace: dict = {}
    exec(compile(blocks[1], "data.md", "exec"), namespace)
    straight = namespace["train"](str(tmp_path / "straight"))
    append = RunDir.append_metrics

    def crash_at_step_11(self: RunDir, record: dict) -> None:
        append(self, record)
        if record["step"] == 11:
            raise _Crash

    monkeypatch.setattr(RunDir, "append_metrics", crash_at_step_11)
    with pytest.raises(_Crash):
        namespace["train"](str(tmp_path / "crashed"))
    monkeypatch.undo()
    crashed = RunDir.open(tmp_path / "crashed")
    # 7 batches per epoch: checkpoints at steps 3, 6, 7 (end of epoch 0), 9; the crash at 11 resumes from 9.
    assert [p.name for p in crashed.checkpoints()] == ["step000000007-epoch0000.pt", "step000000009.pt"]
    resumed = namespace["train"](str(tmp_path / "crashed"))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert without_time(crashed.read_metrics()) == without_time(RunDir(tmp_path / "straight").read_metrics())
    assert len(crashed.read_metrics()) == 14


def test_damaged_checkpoint_is_detected_and_the_previous_one_used(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = RunDir.create(tmp_path / "run", retention=RetentionPolicy(keep_last=3, keep_epoch_every=0))
    for step in (1, 2, 3, 4):
        run.save_checkpoint({"weights": torch.full((64,), float(step))}, step)
    names = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert names == [f"step{s:09d}.pt{x}" for s in (2, 3, 4) for x in ("", ".sha256")]  # sidecars go with them
    newest = run.checkpoint_dir / "step000000004.pt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the tensor payload
    newest.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match=r"step000000004\.pt: damaged checkpoint \(its SHA-256 differs"):
        run.load_checkpoint(newest)
    checkpoint = run.load_checkpoint()
    assert checkpoint.step == 3 and torch.equal(checkpoint.state["weights"], torch.full((64,), 3.0))
    assert "resuming from step000000003.pt (step 3)" in capsys.readouterr().err
    for path in run.checkpoints():
        path.write_bytes(b"truncated")
    with pytest.raises(RunDirError, match="no intact checkpoint to resume from"):
        run.load_checkpoint()


def test_summary_round_trip_and_errors(tmp_path: Path) -> None:
    from jaqc.search.rundir import read_summary, write_summary

    assert read_summary(tmp_path) is None  # not finished
    write_summary(tmp_path, {"val_acc": 0.5, "method": "jaq"})
    assert read_summary(tmp_path) == {"val_acc": 0.5, "method": "jaq"}
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(RunDirError, match=r"summary\.json: not a JSON object"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_bytes(b"\xff")
    with pytest.raises(RunDirError, match=r"summary\.json: not UTF-8 text"):
        read_summary(tmp_path)


def test_the_run_directory_owns_its_artifacts_and_lookups(tmp_path: Path) -> None:
    """One object answers where a run's files are: the deployed subnet is ``retrain/subnet.json`` first, then
    ``subnet.json``; a missing or damaged architecture is an error naming the file."""
    run = RunDir.create(tmp_path / "run")
    assert not run.finished and run.summary() is None
    with pytest.raises(RunDirError, match=r"no retrain/subnet\.json or subnet\.json"):
        run.deployed_subnet()
    run.subnet_path.write_text("{}")
    assert run.deployed_subnet() == tmp_path / "run" / "subnet.json"
    run.retrain_dir.mkdir()
    (run.retrain_dir / "subnet.json").write_text("{}")
    assert run.deployed_subnet() == tmp_path / "run" / "retrain" / "subnet.json"
    with pytest.raises(RunDirError, match=r"architecture\.json: missing"):
        run.read_architecture()
    run.architecture_path.write_text('{"ops": 3}')
    with pytest.raises(RunDirError, match=r"architecture\.json: not an architecture"):
        run.read_architecture()
    run.architecture_path.write_text('{"ops": ["k3_e1"], "bits": [[4, 4]]}')
    assert run.read_architecture()["ops"] == ["k3_e1"]
    write_summary(run.path, {"method": "jaq"})
    assert run.finished and run.summary() == {"method": "jaq"}
