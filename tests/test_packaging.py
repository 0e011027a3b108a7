"""Every package folder is installed: pyproject lists each one (the package-dir mapping needs it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_every_package_is_listed() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "jaqc." + ".".join(p.parent.relative_to(REPO / "jaqc").parts) if p.parent != REPO / "jaqc" else "jaqc"
        for p in (REPO / "jaqc").rglob("__init__.py")
    }
    found |= {"jaqc.ir", "jaqc.passes"}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_ir_and_passes_resolve_to_top_level_folders() -> None:
    import jaqc.ir
    import jaqc.passes

    assert Path(jaqc.ir.__file__).parent == REPO / "ir"
    assert Path(jaqc.passes.__file__).parent == REPO / "passes"
