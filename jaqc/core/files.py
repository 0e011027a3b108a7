"""File helpers: atomic writes (temporary file in the target's folder, fsync, rename, fsync of the folder)
and JSON reading with one-line errors that name the file and the line."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .errors import JaqcError


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Let ``write`` fill a temporary file next to ``path``, then rename it over ``path``: readers see the
    old file or the whole new one, never a part (a writer that dies leaves only a ``.tmp`` file, which the
    next write of ``path`` removes). The file gets the usual mode (``0o666`` less the umask)."""
    target = Path(path)
    try:
        if target.is_dir():
            raise JaqcError(f"{target}: is a directory; cannot write a file there")
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{target.name}."
        for stale in target.parent.iterdir():  # temporaries a killed writer of this file left behind
            if stale.name.startswith(prefix) and stale.name.endswith(".tmp") and stale.is_file():
                stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # an unwritable folder, a path under a file, a full disk: name the target, not the temp
        raise JaqcError(f"{target}: cannot write: {_reason(exc, target)}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # the mode a plain open() gives, not mkstemp's 0600
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise JaqcError(f"{target}: cannot write: {_reason(exc, target)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def _reason(exc: OSError, target: Path) -> str:
    """Why a write failed, naming the path component at fault when it is not the target itself."""
    culprit = exc.filename if isinstance(exc.filename, str) else None
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
    reason = exc.strerror or str(exc)
    if culprit and Path(culprit) != target and not Path(culprit).name.startswith(f".{target.name}."):
        return f"{reason} ({culprit})"
    return reason


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_text(path: str | os.PathLike[str], error: type[JaqcError] = JaqcError, what: str = "") -> str:
    """The UTF-8 text of ``path``; a missing file, a directory, an unreadable or non-UTF-8 file raise ``error``
    naming the file (``what``, e.g. ``"ACCEL 'x'"``, replaces the path in the message when given)."""
    path = Path(path)
    label = what or str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except IsADirectoryError:
        raise error(f"{label}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{label}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})") from None
    except OSError as exc:
        raise error(f"{label}: cannot read: {exc.strerror}") from None


def read_json(path: str | os.PathLike[str], error: type[JaqcError] = JaqcError) -> Any:
    """The JSON document in ``path``; ``error`` names the file (and the line of a syntax error)."""
    path = Path(path)
    text = read_text(path, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply") from None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
