"""Measuring what autograd keeps for backward: unique storages packed by ``saved_tensors_hooks``."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import torch
from attrs import define, field
from torch import Tensor


@define
class SavedTensorMeter:
    """Context manager that records every tensor autograd saves for backward while it is active.

    Storages are counted once each (a view and its base, or one tensor saved by several ops, share one
    storage); ``excluded`` storages (a model's parameters and buffers, which exist whether or not autograd
    saves them) are left out of :attr:`activation_bytes` but kept in :attr:`total_bytes`.
    """

    excluded: Iterable[Tensor] = ()
    _storages: dict[tuple[str, int], int] = field(factory=dict, init=False)
    _excluded_keys: set[tuple[str, int]] = field(factory=set, init=False)
    _hooks: torch.autograd.graph.saved_tensors_hooks | None = field(default=None, init=False)
    saved_count: int = field(default=0, init=False)
    #: ``(shape, excluded)`` of every tensor packed, in order (a tensor saved twice appears twice).
    saved: list[tuple[tuple[int, ...], bool]] = field(factory=list, init=False)

    @staticmethod
    def _key(tensor: Tensor) -> tuple[str, int] | None:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):
            return None
        return (str(tensor.device), storage.data_ptr()) if storage.data_ptr() else (str(tensor.device), id(storage))

    def _pack(self, tensor: Tensor) -> Tensor:
        self.saved_count += 1
        key = self._key(tensor)
        self.saved.append((tuple(tensor.shape), key in self._excluded_keys))
        if key is not None and key not in self._storages:
            self._storages[key] = tensor.untyped_storage().nbytes()
        return tensor

    def __enter__(self) -> SavedTensorMeter:
        self._excluded_keys = {k for t in self.excluded if (k := self._key(t)) is not None}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._hooks is not None
        self._hooks.__exit__(exc_type, exc, tb)

    @property
    def total_bytes(self) -> int:
        """Bytes of all unique storages saved for backward, parameters included."""
        return sum(self._storages.values())

    @property
    def activation_bytes(self) -> int:
        """Bytes of unique saved storages that are not excluded (kept alive by autograd beyond the model)."""
        return sum(n for k, n in self._storages.items() if k not in self._excluded_keys)

    @property
    def storage_count(self) -> int:
        """Number of unique storages saved."""
        return len(self._storages)


def model_tensors(module: torch.nn.Module) -> list[Tensor]:
    """The parameters and buffers of ``module`` (to exclude from ``activation_bytes``)."""
    return [*module.parameters(), *module.buffers()]
