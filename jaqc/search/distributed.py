"""Distributed search under ``torchrun``: gloo on CPU, nccl on GPU; gradients averaged across ranks.

Each rank reads its own shard of every epoch (``make_loader(..., rank, world_size)``). After every backward
pass the gradients of all parameters are averaged with an all-reduce — what DistributedDataParallel does,
written out so that it also covers the architecture parameters, the batch-norm scales of the architecture
step and candidates unused in a step. With identical gradients, identical optimiser states and the same
Gumbel seed, α, β, the hardware generator and the accelerator stay identical on every rank;
:func:`ranks_agree` checks it at the end. Only rank 0 writes the run directory.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable

import torch
import torch.distributed as dist


def init_from_env(device: torch.device | None = None) -> tuple[int, int]:
    """(rank, world size); joins the process group when ``torchrun`` set WORLD_SIZE > 1: nccl when the run's
    ``device`` is a GPU (each rank on ``cuda:LOCAL_RANK``), gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        on_gpu = device is not None and device.type == "cuda"
        if on_gpu:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if on_gpu else "gloo")
    return dist.get_rank(), dist.get_world_size()


def require_single_process(method: str) -> None:
    """Refuse to run ``method`` (which has no gradient averaging) under ``torchrun`` with several ranks."""
    from jaqc.core import JaqcError

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise JaqcError(f"--method {method} runs in one process; start it without torchrun")


def shutdown() -> None:
    """Leave the process group cleanly (a barrier, then destroy).

    Without it the gloo transport threads are still running at interpreter exit, and a rank can die with
    ``terminate called without an active exception`` (SIGABRT) after its work is done.
    """
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def end_worker(code: int) -> None:
    """End a torchrun worker process now, with exit status ``code``, once its work is written.

    Interpreter teardown after :func:`shutdown` can still abort a rank (SIGABRT, ``terminate called without an
    active exception``) in a few per cent of runs; torchrun then reports the whole job as failed. Flushing the
    standard streams and leaving with ``os._exit`` skips that teardown. Does nothing outside torchrun.
    """
    if "LOCAL_RANK" not in os.environ or "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over all ranks (a parameter without a gradient counts as zero on that rank)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def fingerprint(*values: object) -> str:
    """A short hash of tensors and plain values (for comparing ranks)."""
    digest = hashlib.sha256()
    for value in values:
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()[:16]


def ranks_agree(local: str) -> bool:
    """True when every rank passes the same fingerprint (always True without a process group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return True
    gathered: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return len(set(gathered)) == 1
