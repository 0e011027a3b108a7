"""The run directory of a search or retrain run: config snapshot, metrics log, checkpoints, resumable RNG state.

Layout of ``RUN_DIR``::

    config.json              {"format": "jaqc-run", "version": 1, "jaqc_version": ..., "config": {...}}
    metrics.jsonl            one JSON object per line, appended and flushed
    checkpoints/step000001200.pt              a step checkpoint
    checkpoints/step000001500-epoch0004.pt    an end-of-epoch checkpoint

Every file is replaced atomically (temporary file in the same folder, fsync, ``os.replace``), so a crash leaves
the previous version or the new one, never a part; only a metrics line can be torn, and a torn last line is
ignored on reading and cut off before the next append. A ``RunDir`` of a rank other than 0 writes nothing.

An exactly reproducible resume stores, with the model and optimizer state, ``capture_rng_state(...)`` and a
``LoopPosition``; the resumed loop restores both and rebuilds the interrupted epoch's loader with
``jaqc.data.make_loader(..., epoch=position.epoch, skip_batches=position.batch)``, whose order depends only on
``(seed, epoch)``.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from attrs import field, frozen

from jaqc import __version__
from jaqc.core import JaqcError
from jaqc.core.files import atomic_write, atomic_write_text, read_json, sha256_file

RUN_FORMAT = "jaqc-run"
RUN_VERSION = 1
CHECKPOINT_FORMAT = "jaqc-checkpoint"
CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
#: What a finished search leaves (``jaqc.search.outputs``): the derived subnet's IR with weights and mappings,
#: its text form, its schedule, the architecture and the accelerator; a retraining writes its own subnet files
#: and summary in ``retrain/``.
SUBNET_FILE = "subnet.json"
SUBNET_TEXT_FILE = "subnet.jaqc"
SCHEDULE_FILE = "schedule.json"
ARCHITECTURE_FILE = "architecture.json"
ACCELERATOR_FILE = "accelerator.json"
RETRAIN_DIR = "retrain"
_CHECKPOINT_NAME = re.compile(r"step(\d{9,})(?:-epoch(\d{4,}))?\.pt")


#: The field of every metrics record that holds its wall-clock time.
METRICS_TIME_KEY = "time"


def without_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` without their wall-clock ``time``: what an interrupted and resumed run reproduces exactly."""
    return [{k: v for k, v in r.items() if k != METRICS_TIME_KEY} for r in records]


class RunDirError(JaqcError):
    """A run directory that is missing, incomplete, corrupt or from an incompatible version; names the path."""


def _at_least(minimum: int) -> Any:
    def validate(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, int) or value < minimum:
            raise RunDirError(f"{type(inst).__name__}.{attribute.name} must be an integer >= {minimum}, got {value!r}")

    return validate


@frozen
class RetentionPolicy:
    """Which checkpoints survive a save: the ``keep_last`` newest, plus every end-of-epoch checkpoint whose epoch
    is a multiple of ``keep_epoch_every`` (0: end-of-epoch checkpoints are kept only while among the newest)."""

    keep_last: int = field(default=2, validator=_at_least(1))
    keep_epoch_every: int = field(default=1, validator=_at_least(0))


@frozen
class LoopPosition:
    """Where a training loop stands: ``batch`` batches of epoch ``epoch`` are consumed, ``step`` updates done."""

    epoch: int = field(validator=_at_least(0))
    batch: int = field(validator=_at_least(0))
    step: int = field(validator=_at_least(0))

    def to_dict(self) -> dict[str, int]:
        """The position as a plain dict, for a checkpoint's state."""
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopPosition:
        """The position ``to_dict`` wrote."""
        try:
            return cls(epoch=data["epoch"], batch=data["batch"], step=data["step"])
        except (KeyError, TypeError) as error:
            raise RunDirError(f"loop position {data!r} lacks epoch, batch or step ({error})") from None


@frozen
class Checkpoint:
    """A loaded checkpoint: where it came from, its step and epoch, and the saved state."""

    path: Path
    step: int
    epoch: int | None
    state: dict[str, Any]


# --- RNG state --------------------------------------------------------------------------------------------------

#: The generator objects whose state a checkpoint can carry.
RngGenerator = torch.Generator | np.random.Generator


def capture_rng_state(generators: Mapping[str, RngGenerator] | None = None) -> dict[str, Any]:
    """The state of python ``random``, numpy's global RNG, torch's CPU (and initialised CUDA) RNGs and of each
    named generator, as plain values and tensors that ``torch.load(weights_only=True)`` reads back."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {**numpy_state["state"], "key": numpy_state["state"]["key"].tolist()}
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state(),
        "generators": {},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    for name, generator in (generators or {}).items():
        if isinstance(generator, torch.Generator):
            state["generators"][name] = {"kind": "torch", "state": generator.get_state()}
        elif isinstance(generator, np.random.Generator):
            state["generators"][name] = {"kind": "numpy", "state": generator.bit_generator.state}
        else:
            raise RunDirError(f"generator {name!r} is a {type(generator).__name__}, not a torch or numpy Generator")
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, RngGenerator] | None = None) -> None:
    """Put every RNG back into the state ``capture_rng_state`` recorded; ``generators`` must have the same names.
    Nothing is changed when the state does not fit."""
    generators = dict(generators or {})
    try:
        saved = state["generators"]
        python_state = _as_tuple(state["python"])
        numpy_state = dict(state["numpy"])
        numpy_state["state"] = {**numpy_state["state"], "key": np.asarray(numpy_state["state"]["key"], np.uint32)}
        torch_state = state["torch"]
    except (KeyError, TypeError, ValueError) as error:
        raise RunDirError(f"RNG state is incomplete or malformed ({error!r})") from None
    if set(generators) != set(saved):
        raise RunDirError(f"RNG state holds generators {sorted(saved)}, but {sorted(generators)} were given")
    for name, generator in generators.items():
        kind = "torch" if isinstance(generator, torch.Generator) else "numpy"
        if saved[name]["kind"] != kind:
            raise RunDirError(f"generator {name!r} was saved as a {saved[name]['kind']} generator, not {kind}")
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in generators.items():
        if isinstance(generator, torch.Generator):
            generator.set_state(saved[name]["state"])
        else:
            generator.bit_generator.state = saved[name]["state"]


def _as_tuple(value: Any) -> Any:
    """Lists back to tuples (``random.setstate`` insists on tuples), recursively."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


# --- JSON -------------------------------------------------------------------------------------------------------


def to_jsonable(value: Any, where: str = "config") -> Any:
    """``value`` as JSON data: attrs instances and dicts as objects, enums by value, paths as strings."""
    if attrs.has(type(value)):
        return {a.name: to_jsonable(getattr(value, a.name), f"{where}.{a.name}") for a in attrs.fields(type(value))}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, where)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic | torch.Tensor) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise RunDirError(f"{where}: a {type(value).__name__} cannot be written as JSON")


# --- files ------------------------------------------------------------------------------------------------------


def _atomic_torch_save(obj: Any, target: Path) -> None:
    """``torch.save`` straight into a temporary file next to ``target`` (no second copy in memory), then rename;
    then the file's SHA-256 beside it (``<name>.sha256``), which :func:`load_checkpoint` verifies."""
    atomic_write(target, lambda handle: torch.save(obj, handle))
    atomic_write_text(_checksum_path(target), f"{_sha256(target)}  {target.name}\n")


def _checksum_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".sha256")


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _cut_torn_tail(handle: Any) -> None:
    """Truncate an ``r+b`` file after its last newline (drops a line a crash left unfinished)."""
    end = handle.seek(0, os.SEEK_END)
    position = end
    while position > 0:
        start = max(0, position - 4096)
        handle.seek(start)
        newline = handle.read(position - start).rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        position = start
    else:
        keep = 0
    if keep != end:
        handle.truncate(keep)
    handle.seek(keep)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; an unterminated last line (torn by a crash) is ignored."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"{path}: no metrics file") from None
    lines = content.split(b"\n")[:-1]  # the part after the last newline is unfinished
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunDirError(f"{path}:{number}: not a JSON object ({error})") from None
        if not isinstance(record, dict):
            raise RunDirError(f"{path}:{number}: not a JSON object")
        records.append(record)
    return records


def load_checkpoint(path: str | os.PathLike[str], *, weights_only: bool = True) -> Checkpoint:
    """The checkpoint at ``path`` (on CPU); ``weights_only=False`` only for a trusted file holding other objects."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path}: no such checkpoint file")
    sidecar = _checksum_path(path)
    if sidecar.is_file():  # (a crash between the two writes leaves a whole checkpoint without one)
        expected = sidecar.read_text(encoding="utf-8", errors="replace").split()[:1]
        if expected != [_sha256(path)]:
            raise RunDirError(f"{path}: damaged checkpoint (its SHA-256 differs from {sidecar.name})")
    try:
        content = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as error:
        raise RunDirError(f"{path}: cannot read the checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"{path}: not a jaqc checkpoint (no format {CHECKPOINT_FORMAT!r})")
    if content.get("version") != CHECKPOINT_VERSION:
        raise RunDirError(
            f"{path}: checkpoint version {content.get('version')!r} from jaqc {content.get('jaqc_version')}; "
            f"this jaqc ({__version__}) reads version {CHECKPOINT_VERSION}"
        )
    if not {"step", "epoch", "state"} <= content.keys():
        raise RunDirError(f"{path}: checkpoint lacks {sorted({'step', 'epoch', 'state'} - content.keys())}")
    return Checkpoint(path=path, step=content["step"], epoch=content["epoch"], state=content["state"])


# --- the summary ----------------------------------------------------------------------------------------------

#: The file a finished run (search, retraining, baseline) writes last: its figures, one JSON object.
SUMMARY_FILE = "summary.json"


def write_summary(folder: str | os.PathLike[str], summary: Mapping[str, Any]) -> Path:
    """Write ``folder/summary.json`` atomically (one JSON object, indented); a run is finished once it exists."""
    return atomic_write_text(Path(folder) / SUMMARY_FILE, json.dumps(dict(summary), indent=1) + "\n")


def read_summary(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The summary of a finished run in ``folder``, ``None`` when it has none; a damaged one is an error naming
    the file."""
    path = Path(folder) / SUMMARY_FILE
    if not path.exists():
        return None
    document = read_json(path, RunDirError)
    if not isinstance(document, dict):
        raise RunDirError(f"{path}: not a JSON object")
    return document


# --- the exclusive claim of a run directory -------------------------------------------------------------------

#: The lock file a process holds while it writes a run directory.
LOCK_FILE = ".lock"


@attrs.define
class _Claim:
    """This process's claim of one run directory: the open lock file (flock-ed) and whether it made the run."""

    folder: Path
    fd: int
    created: bool  # this process started the run (its files go if it fails before its first checkpoint)
    made_folder: bool = False  # ... and made the folder itself (which then goes too)


#: The claims this process holds, by resolved folder (released at exit; a killed process leaves a stale file).
_CLAIMS: dict[Path, _Claim] = {}


def _lock_owner(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        owner = json.loads(os.read(fd, 4096).decode("utf-8"))
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe_owner(owner: Mapping[str, Any]) -> str:
    pid, host, since = owner.get("pid", "?"), owner.get("host", "?"), owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    return f"pid {pid} on {host} (since {when})"


def _claim(folder: Path, created: bool, made_folder: bool = False) -> _Claim:
    """Take the exclusive claim of ``folder``: create ``.lock`` with O_EXCL and hold an flock on it for the
    process's life. A lock file whose flock is free belongs to a process that died without releasing it: it is
    named on stderr and taken over. A live holder (another process) is an error naming it."""
    import fcntl
    import socket

    key = folder.resolve()
    if key in _CLAIMS:  # this process claimed it already (a run object replaced by another, e.g. in tests)
        return _CLAIMS[key]
    path = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            stale = None
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # released between our two opens: try again
                continue
            stale = _lock_owner(fd)
        except OSError as error:
            raise RunDirError(f"{folder}: cannot create the run's lock file {LOCK_FILE}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _lock_owner(fd)
            os.close(fd)
            raise RunDirError(
                f"{folder}: in use by {_describe_owner(owner)}; wait for that run to end or stop it "
                f"(its lock is {path})"
            ) from None
        try:  # the file we locked must still be the one at the path (not one released and removed meanwhile)
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        break
    if stale is not None:
        sys.stderr.write(
            f"warning: {path}: stale lock of {_describe_owner(stale)}, which is no longer running; "
            "taking the run over\n"
        )
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": round(time.time(), 3)}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(owner) + "\n").encode("utf-8"))
    claim = _Claim(folder=folder, fd=fd, created=created, made_folder=made_folder)
    _CLAIMS[key] = claim
    return claim


def release_run(folder: str | os.PathLike[str], *, failed: bool = False) -> None:
    """End this process's claim of ``folder`` (no-op without one). ``failed``: the work on it failed; a run this
    process created that holds no checkpoint yet is removed, so that the corrected command can use the folder."""
    import shutil

    claim = _CLAIMS.pop(Path(folder).resolve(), None)
    if claim is None:
        return
    checkpoints = claim.folder / CHECKPOINT_DIR
    started = checkpoints.is_dir() and any(_CHECKPOINT_NAME.fullmatch(p.name) for p in checkpoints.iterdir())
    if failed and claim.created and not started:
        for child in claim.folder.iterdir():
            if child.name != LOCK_FILE:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink(missing_ok=True)
    (claim.folder / LOCK_FILE).unlink(missing_ok=True)  # while still holding the flock
    os.close(claim.fd)
    if failed and claim.made_folder and not started:
        try:
            claim.folder.rmdir()  # a folder this process made (an empty one given to it stays)
        except OSError:
            pass


@contextlib.contextmanager
def claimed_run(folder: str | os.PathLike[str]) -> Iterator[None]:
    """The scope of one command's work on a run directory that it creates or resumes inside the block: on an
    exception the claim is released with ``failed=True`` (a run this process started that wrote no checkpoint
    is removed), otherwise released normally."""
    try:
        yield
    except BaseException:
        release_run(folder, failed=True)
        raise
    release_run(folder)


def _release_all() -> None:
    for folder in list(_CLAIMS):
        release_run(folder)


atexit.register(_release_all)


# --- the run directory ------------------------------------------------------------------------------------------


def _os_reason(error: OSError, folder: Path) -> str:
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
    return error.strerror or str(error)


def _checkpoint_key(path: Path) -> tuple[int, int, int]:
    match = _CHECKPOINT_NAME.fullmatch(path.name)
    assert match is not None
    epoch = match.group(2)
    return int(match.group(1)), epoch is not None, int(epoch) if epoch is not None else -1


@frozen
class RunDir:
    """The folder of one run. Every writing method is a no-op (returning ``None``) when ``rank != 0``."""

    path: Path = field(converter=Path)
    rank: int = field(default=0, validator=_at_least(0))
    retention: RetentionPolicy = field(factory=RetentionPolicy)

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, rank: int = 0, retention: RetentionPolicy | None = None) -> RunDir:
        """A new run in ``path``, which must not exist or be empty (checked and created by rank 0 only, under the
        run's exclusive claim: two processes cannot both create it; see :func:`release_run`)."""
        run = cls(path, rank=rank, retention=retention or RetentionPolicy())
        if not run.is_writer:  # rank 0 checks and creates; the others may see its folder already made
            return run
        folder = run.path
        if folder.exists() and not folder.is_dir():
            raise RunDirError(f"{folder}: exists and is not a directory; pick a new RUN_DIR")
        made = not folder.exists()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunDirError(f"{folder}: cannot create the run directory: {_os_reason(error, folder)}") from None
        _claim(folder, created=True, made_folder=made)
        if any(p.name != LOCK_FILE for p in folder.iterdir()):
            release_run(folder)
            raise RunDirError(f"{folder}: exists and is not an empty directory; pick a new RUN_DIR or resume")
        try:
            (folder / CHECKPOINT_DIR).mkdir(exist_ok=True)
        except OSError as error:
            release_run(folder, failed=True)
            raise RunDirError(f"{folder}: cannot write in the run directory: {_os_reason(error, folder)}") from None
        return run

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        rank: int = 0,
        retention: RetentionPolicy | None = None,
        claim: bool = False,
    ) -> RunDir:
        """An existing run, to resume (``claim=True``: take its exclusive claim, rank 0) or inspect: checks its
        config's version; a claiming rank 0 removes temporary files a killed writer left behind."""
        run = cls(path, rank=rank, retention=retention or RetentionPolicy())
        if not run.path.is_dir():
            raise RunDirError(f"{run.path}: no such run directory")
        if run.config_path.exists():
            run.read_config()
        if claim and run.is_writer:
            _claim(run.path, created=False)
            for folder in (run.path, run.checkpoint_dir):
                for stale in folder.glob(".*.tmp"):
                    stale.unlink(missing_ok=True)
        return run

    @property
    def is_writer(self) -> bool:
        """Whether this process writes (rank 0)."""
        return self.rank == 0

    @property
    def config_path(self) -> Path:
        """``RUN_DIR/config.json``."""
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        """``RUN_DIR/metrics.jsonl``."""
        return self.path / METRICS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        """``RUN_DIR/checkpoints``."""
        return self.path / CHECKPOINT_DIR

    @property
    def subnet_path(self) -> Path:
        """``RUN_DIR/subnet.json``: the searched subnet (IR with weights, mapped on the run's accelerator)."""
        return self.path / SUBNET_FILE

    @property
    def architecture_path(self) -> Path:
        """``RUN_DIR/architecture.json``: the derived ops and bits."""
        return self.path / ARCHITECTURE_FILE

    @property
    def accelerator_path(self) -> Path:
        """``RUN_DIR/accelerator.json``: the searched accelerator."""
        return self.path / ACCELERATOR_FILE

    @property
    def retrain_dir(self) -> Path:
        """``RUN_DIR/retrain``: the retrained subnet's files and summary."""
        return self.path / RETRAIN_DIR

    @property
    def finished(self) -> bool:
        """Whether the search finished (its ``summary.json`` exists)."""
        return (self.path / SUMMARY_FILE).is_file()

    def deployed_subnet(self) -> Path:
        """The subnet a run deploys: ``retrain/subnet.json`` when it was retrained, else ``subnet.json``; an
        error naming both when neither exists."""
        for candidate in (self.retrain_dir / SUBNET_FILE, self.subnet_path):
            if candidate.is_file():
                return candidate
        raise RunDirError(
            f"{self.path}: no {RETRAIN_DIR}/{SUBNET_FILE} or {SUBNET_FILE}; is it a finished jaqc search run directory?"
        )

    def read_architecture(self) -> dict[str, Any]:
        """``architecture.json`` (``ops``, ``bits``, ...); an error naming the file when missing or damaged."""
        if not self.architecture_path.is_file():
            raise RunDirError(f"{self.architecture_path}: missing; has the search finished?")
        document = read_json(self.architecture_path, RunDirError)
        if not isinstance(document, dict) or not isinstance(document.get("ops"), list):
            raise RunDirError(f"{self.architecture_path}: not an architecture (a JSON object with a list 'ops')")
        return document

    def summary(self) -> dict[str, Any] | None:
        """The run's ``summary.json`` (:func:`read_summary`), ``None`` before it finished."""
        return read_summary(self.path)

    def write_config(self, config: Any) -> Path | None:
        """Snapshot ``config`` (an attrs instance or JSON-like data) to ``config.json``, atomically."""
        if not self.is_writer:
            return None
        document = {"format": RUN_FORMAT, "version": RUN_VERSION, "jaqc_version": __version__}
        document["config"] = to_jsonable(config)
        try:
            text = json.dumps(document, indent=2, allow_nan=False) + "\n"
        except ValueError:
            raise RunDirError(f"{self.config_path}: the config holds NaN or infinity, which JSON cannot hold") from None
        return atomic_write_text(self.config_path, text)

    def read_config(self) -> Any:
        """The config ``write_config`` stored; an error when missing, corrupt or of another format version."""
        path = self.config_path
        if not path.exists():
            raise RunDirError(f"{path}: missing; {self.path} is not a jaqc run directory")
        document = read_json(path, RunDirError)  # (not a file, not UTF-8, bad JSON: one line naming the file)
        if not isinstance(document, dict) or document.get("format") != RUN_FORMAT or "config" not in document:
            raise RunDirError(f"{path}: not a jaqc run config (expected format {RUN_FORMAT!r})")
        if document.get("version") != RUN_VERSION:
            raise RunDirError(
                f"{path}: run format version {document.get('version')!r} (jaqc {document.get('jaqc_version')}); "
                f"this jaqc ({__version__}) reads version {RUN_VERSION}"
            )
        return document["config"]

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line of ``metrics.jsonl`` and flush (first cutting off a torn last line). Each
        line gets ``time``: the wall-clock time it was written (Unix seconds, ms resolution); it is the one field
        a resumed run does not reproduce (:func:`without_time`)."""
        if not self.is_writer:
            return
        stamped = {**dict(record), METRICS_TIME_KEY: round(time.time(), 3)}
        line = json.dumps(to_jsonable(stamped, "metrics"), allow_nan=True) + "\n"
        self.path.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a+b") as handle:
            _cut_torn_tail(handle)
            handle.write(line.encode("utf-8"))
            handle.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """The metrics records so far (a torn last line ignored); empty when none were written."""
        return read_metrics(self.metrics_path) if self.metrics_path.exists() else []

    def rewind_metrics(self, step: int) -> None:
        """Drop the records whose ``"step"`` is beyond ``step`` (logged after the checkpoint a resume starts from)."""
        if not self.is_writer or not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics() if not isinstance(r.get("step"), int) or r["step"] <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r, allow_nan=True) + "\n" for r in kept))

    def save_checkpoint(self, state: Mapping[str, Any], step: int, epoch: int | None = None) -> Path | None:
        """Write ``state`` as the checkpoint of ``step`` (an end-of-epoch one when ``epoch`` is given), atomically,
        then delete the checkpoints the retention policy no longer keeps. Returns the file written."""
        if not self.is_writer:
            return None
        if not isinstance(step, int) or step < 0 or (epoch is not None and (not isinstance(epoch, int) or epoch < 0)):
            raise RunDirError(f"save_checkpoint: step and epoch must be integers >= 0, got {step!r}, {epoch!r}")
        name = f"step{step:09d}.pt" if epoch is None else f"step{step:09d}-epoch{epoch:04d}.pt"
        target = self.checkpoint_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        content = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "jaqc_version": __version__,
            "step": step,
            "epoch": epoch,
            "state": dict(state),
        }
        _atomic_torch_save(content, target)
        self._apply_retention(keep=target)
        return target

    def _apply_retention(self, keep: Path) -> None:
        existing = self.checkpoints()
        kept = set(existing[-self.retention.keep_last :]) | {keep}
        every = self.retention.keep_epoch_every
        for path in existing:
            epoch = _checkpoint_key(path)[2]
            if every and epoch >= 0 and epoch % every == 0:
                kept.add(path)
        for path in existing:
            if path not in kept:
                path.unlink(missing_ok=True)
                _checksum_path(path).unlink(missing_ok=True)

    def checkpoints(self) -> list[Path]:
        """The checkpoint files, oldest first (by step; an end-of-epoch one after a step one of the same step)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [p for p in self.checkpoint_dir.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name) and p.is_file()]
        return sorted(found, key=_checkpoint_key)

    def latest_checkpoint(self, *, required: bool = False) -> Path | None:
        """The newest checkpoint file, ``None`` if there is none (an error instead when ``required``)."""
        found = self.checkpoints()
        if found:
            return found[-1]
        if required:
            raise RunDirError(f"{self.checkpoint_dir}: no checkpoint to resume from (expected step*.pt files)")
        return None

    def load_checkpoint(self, path: str | os.PathLike[str] | None = None, *, weights_only: bool = True) -> Checkpoint:
        """The checkpoint at ``path``, or when ``path`` is ``None`` the newest intact one of this run: a damaged
        newest checkpoint is reported on stderr and the one before it is used (the message says which)."""
        if path is not None:
            return load_checkpoint(path, weights_only=weights_only)
        candidates = list(reversed(self.checkpoints()))
        if not candidates:
            self.latest_checkpoint(required=True)  # raises, naming the folder
        damaged: list[str] = []
        for candidate in candidates:
            try:
                checkpoint = load_checkpoint(candidate, weights_only=weights_only)
            except RunDirError as error:
                damaged.append(str(error))
                continue
            for message in damaged:
                sys.stderr.write(f"warning: {message}; resuming from {candidate.name} (step {checkpoint.step})\n")
            return checkpoint
        raise RunDirError("no intact checkpoint to resume from: " + "; ".join(damaged))
