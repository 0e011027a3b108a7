"""jaqc's core: the root error type and the file helpers every part uses (atomic writes, reading text and JSON
with errors that name the file). Torch-free, like ``jaqc.ir`` and ``jaqc.passes``, which build on it."""

from __future__ import annotations

from .errors import JaqcError
from .files import atomic_write, atomic_write_bytes, atomic_write_text, read_json, read_text, sha256_file

__all__ = [
    "JaqcError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_json",
    "read_text",
    "sha256_file",
]
