"""jaqc.passes: passes over the LayerGraph, the pass manager and the pass registry (torch-free)."""

from .base import Pass, PassContext, PassError, PassResult
from .manager import PassManager, PassTiming
from .registry import (
    BUILTIN_PASSES,
    ENTRY_POINT_GROUP,
    available_passes,
    get_pass_class,
    make_pass,
    parse_pipeline,
    register,
)

__all__ = [
    "BUILTIN_PASSES",
    "ENTRY_POINT_GROUP",
    "Pass",
    "PassContext",
    "PassError",
    "PassManager",
    "PassResult",
    "PassTiming",
    "available_passes",
    "get_pass_class",
    "make_pass",
    "parse_pipeline",
    "register",
]
