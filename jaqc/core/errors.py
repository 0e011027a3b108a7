"""The root of jaqc's errors.

Every error jaqc raises for bad input derives from :class:`JaqcError`; the CLI prints such an error as one
line and exits with code 2 (the traceback only with ``--debug``). Each part of jaqc has its own subclasses
(``IRError`` in the IR, ``PassError``, ``HardwareError``, ``NNConfigError``, ``HaqError``, ...).
"""

from __future__ import annotations


class JaqcError(Exception):
    """Base class of the errors jaqc reports to users as one line."""
