"""Files in, files out: bad encodings, directories and deep nesting are one-line errors naming the file; atomic
writes get the usual mode and clean up what a killed writer left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jaqc.ir import load_graph
from jaqc.ir.errors import IRError

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.core.files import atomic_write_text, read_json
from jaqc.hw.accelerators import load_accelerator


def test_non_utf8_directories_and_deep_nesting_name_the_file(tmp_path: Path) -> None:
    latin = tmp_path / "graph.json"
    latin.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(JaqcError, match=rf"{latin}: not UTF-8 text \(byte 13 is 0xe9\)"):
        read_json(latin)
    text = tmp_path / "graph.jaqc"
    text.write_bytes(b"graph \xff\n")
    with pytest.raises(IRError, match=rf"{text}: not UTF-8 text"):
        load_graph(text)
    folder = tmp_path / "accel.toml"
    folder.mkdir()
    with pytest.raises(JaqcError, match=r"ACCEL '.*accel\.toml': is a directory, not a file"):
        load_accelerator(str(folder))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(JaqcError, match=rf"{deep}: JSON nested too deeply"):
        read_json(deep)
    accel = tmp_path / "deep_accel.json"
    accel.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(JaqcError, match="nested too deeply"):
        load_accelerator(str(accel))


def test_cli_reports_them_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "net.jaqc"
    bad.write_bytes(b"\xff\xfe")
    assert main(["dump", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8 text" in err and "Traceback" not in err


def test_atomic_writes_get_the_umask_mode_and_remove_stale_temporaries(tmp_path: Path) -> None:
    stale = tmp_path / ".out.json.abc123.tmp"
    stale.write_text("half a file")
    other = tmp_path / ".other.json.abc.tmp"
    other.write_text("another file's temporary")
    previous = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out.json", "{}")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    assert not stale.exists() and other.exists()  # only this file's temporaries
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc.tmp", "out.json"]
