"""The ``jaqc`` command line: thin commands over library calls, one module per command with its renderers
(:mod:`~jaqc.cli.app` holds the group, :func:`main` and the shared options, :mod:`~jaqc.cli.render` the tables
several commands print).

Errors a user can cause (bad model spec, bad shape, bad IR, unknown pass) print one line and exit with
code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

# importing the command modules registers their commands
from . import compare, cost, design, dump, export, mapping, passes, quantize, retrain, search  # noqa: F401
from .app import cli, main

__all__ = ["cli", "main"]
