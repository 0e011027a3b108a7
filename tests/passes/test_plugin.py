"""A third-party pass installed from a temporary directory is found through the `jaqc.passes` entry
points and runs from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
"""A tiny jaqc pass plugin: sets the same bits on every conv2d."""
from typing import ClassVar

from attrs import frozen

from jaqc.ir import LayerKind, QuantSpec
from jaqc.passes import Pass, PassResult


@frozen
class QuantizeConvs(Pass):
    """Set w_bits/a_bits on every conv2d layer."""

    name: ClassVar[str] = "quantize-convs"
    bits: int = 4

    def run(self, graph, ctx):
        changed = False
        for layer in graph.layers_of(LayerKind.CONV2D):
            if layer.quant != QuantSpec(self.bits, self.bits):
                layer.quant = QuantSpec(self.bits, self.bits)
                changed = True
        return PassResult(graph, changed)
'''

PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "jaqc-plugin-demo"
version = "0.0.1"

[project.entry-points."jaqc.passes"]
quantize-convs = "jaqc_plugin_demo:QuantizeConvs"
"""

IR = """graph tiny
%x = input : [1,3,8,8]
%c = conv2d[k=3,p=1](%x) : [1,3,8,8]->[1,4,8,8]
%r = relu(%c) : [1,4,8,8]->[1,4,8,8]
"""


def test_plugin_pass_runs_from_cli(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "jaqc_plugin_demo").mkdir(parents=True)
    (src / "jaqc_plugin_demo" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (src / "pyproject.toml").write_text(PYPROJECT)
    site = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    (tmp_path / "tiny.jaqc").write_text(IR)
    env = {**os.environ, "PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    listed = subprocess.run(
        [sys.executable, "-m", "jaqc", "passes"], capture_output=True, text=True, env=env, timeout=120
    )
    assert "quantize-convs{bits=4}  Set w_bits/a_bits on every conv2d layer." in listed.stdout
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaqc",
            "dump",
            str(tmp_path / "tiny.jaqc"),
            "--passes",
            "quantize-convs{bits=2},shape-check",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "%c = conv2d[k=3,p=1](%x) : w2a2 [1,3,8,8]->[1,4,8,8]" in proc.stdout
    without = subprocess.run(
        [sys.executable, "-m", "jaqc", "dump", str(tmp_path / "tiny.jaqc"), "--passes", "quantize-convs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert without.returncode == 2 and "unknown pass 'quantize-convs'" in without.stderr
