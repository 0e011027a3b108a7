"""The joint search and retraining: run directories and checkpoints (more to come: the bi-level loop, methods)."""

from jaqc.search.rundir import (
    Checkpoint,
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

__all__ = [
    "Checkpoint",
    "LoopPosition",
    "RetentionPolicy",
    "RunDir",
    "RunDirError",
    "capture_rng_state",
    "load_checkpoint",
    "read_metrics",
    "restore_rng_state",
    "without_time",
]
