"""Small modules for the IR's functional layer kinds, so a model built from the IR has one module per layer
(and tracing it names every layer after its module path: an exact round trip)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Add(nn.Module):
    """``a + b`` (broadcasting)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b


class Mul(nn.Module):
    """``a * b`` (broadcasting)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b


class Concat(nn.Module):
    """``torch.cat`` along ``axis``."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *tensors: Tensor) -> Tensor:
        return torch.cat(tensors, dim=self.axis)


class Slice(nn.Module):
    """Elements ``start:end`` of axis ``axis`` (a channel split when ``axis`` is 1)."""

    def __init__(self, axis: int, start: int, end: int) -> None:
        super().__init__()
        self.axis, self.start, self.end = axis, start, end

    def forward(self, x: Tensor) -> Tensor:
        return x.narrow(self.axis, self.start, self.end - self.start)


class Reshape(nn.Module):
    """Reshape to ``shape`` with the batch dimension taken from the input; ``flatten=True`` marks a flatten."""

    def __init__(self, shape: tuple[int, ...], flatten: bool = False) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.flatten = flatten

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape[1:])


class GlobalAvgPool(nn.Module):
    """Mean over the spatial dimensions, keeping them as 1x1 when ``keepdim``."""

    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: Tensor) -> Tensor:
        return x.mean((2, 3), keepdim=self.keepdim)
