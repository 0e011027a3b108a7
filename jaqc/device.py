"""Where the search and the retraining run: ``--device cpu|cuda|cuda:N`` and ``--amp off|bf16``.

The default device is CUDA when this torch has it and a GPU is visible, else the CPU. Under ``torchrun`` with
CUDA each rank takes ``cuda:LOCAL_RANK``. What moves to the device: the data batches (pinned memory and
non-blocking copies on CUDA), the supernet or subnet, its optimiser state and the hardware cost tables of E_HW.
What stays on the CPU: the Gumbel noise generator (a draw is the same on every device, so a run resumed on
another device continues the same noise), the hardware generator and BatchTile mapping of the periodic refresh
(benchmarks/search_step.py measures their share of the loop), the exports.

Checkpoints are written with CPU tensors and read onto whichever device the resuming run uses.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from jaqc.core import JaqcError

#: ``--amp`` choices: ``off`` (float32) or ``bf16`` (autocast of the forward pass to bfloat16).
AMP_MODES = ("off", "bf16")


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """The device ``spec`` names (``None`` or ``"auto"``: CUDA when available, else the CPU).

    A CUDA device without CUDA, or an index beyond the visible GPUs, is an error that says what there is. Under
    ``torchrun`` (``LOCAL_RANK`` set) a bare ``cuda`` becomes ``cuda:LOCAL_RANK``.
    """
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        raise JaqcError(f"--device {spec!r}: expected cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type != "cuda":
        raise JaqcError(f"--device {spec!r}: expected cpu, cuda or cuda:N (jaqc runs on CPUs and CUDA GPUs)")
    if not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
        raise JaqcError(f"--device {spec}: no CUDA device is available (torch {torch.__version__}, {built}); use cpu")
    if device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    count = torch.cuda.device_count()
    if device.index >= count:
        raise JaqcError(f"--device {spec}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    return device


def check_amp(amp: str) -> str:
    """``amp`` if it is one of :data:`AMP_MODES`, else an error naming them."""
    if amp not in AMP_MODES:
        raise JaqcError(f"--amp {amp!r}: expected one of {', '.join(AMP_MODES)}")
    return amp


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's mixed-precision context: bfloat16 autocast for ``amp == "bf16"``, else nothing."""
    if check_amp(amp) == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def to_device(tensors: Sequence[Tensor], device: torch.device) -> tuple[Tensor, ...]:
    """``tensors`` on ``device`` (non-blocking from pinned memory on CUDA)."""
    return tuple(t.to(device, non_blocking=device.type == "cuda") for t in tensors)


def loader_options(device: torch.device) -> dict[str, Any]:
    """DataLoader options for an epoch's batches headed to ``device``: pinned memory and up to four worker
    processes on CUDA, which keep a GPU fed from decoded image folders; none on the CPU, where the workers would
    take the cores the training uses."""
    if device.type != "cuda":
        return {"num_workers": 0}
    return {"num_workers": min(4, os.cpu_count() or 1), "pin_memory": True}


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for a model without any)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside dicts, lists and tuples moved to the CPU (portable checkpoints)."""
    if isinstance(value, Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value
