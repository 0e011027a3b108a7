"""Quantizer modules: per-output-channel weight quantization and per-tensor activation quantization.

Weights are quantized per output channel, symmetric narrow-range over ``max |w|`` of the channel
(``jaqc::fake_quant_symmetric``; 2 bits is ternary). Activations are quantized per tensor, asymmetric with a
zero point (``jaqc::fake_quant``); with ``Clipping.MINMAX`` (the default,
Eq. 2 as the paper writes it) the range is the batch min/max in training and a running min/max (an
exponential moving average, like batch norm's statistics) in eval; with ``Clipping.PACT`` every bit
candidate has a learned ``[lo, hi]`` initialised from the first training batch; with ``Clipping.MSE`` every bit
candidate's range is the min/max shrunk by the factor (one of :data:`MSE_GRID` steps) with the least mean
squared quantization error on a fixed sample of the batch (:func:`mse_clip_factors`), and in eval the running
min/max times a running factor (buffer ``clip_factor``, one per candidate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .config import Clipping, QuantizerConfig
from .fake_quant import fake_quant, fake_quant_per_channel_symmetric
from .mixed_fake_quant import quantized_candidates

#: ``Clipping.MSE`` tries the shrink factors ``1/MSE_GRID, 2/MSE_GRID, ..., 1`` of the min/max range.
MSE_GRID = 32
#: ``Clipping.MSE`` measures the error on at most this many elements of the batch.
MSE_SAMPLE = 4096
#: The sample's elements are ``(i * _SAMPLE_STRIDE) mod numel``: a prime larger than any tensor, so the sample
#: spreads over channels and pixels instead of striding in step with them.
_SAMPLE_STRIDE = 2_147_483_647


def mse_clip_factors(x: Tensor, lo: Tensor, hi: Tensor, bits: Sequence[int]) -> Tensor:
    """For each of ``bits``, the factor ``f`` in ``1/MSE_GRID .. 1`` for which quantizing ``x`` over
    ``[f·lo, f·hi]`` has the least mean squared error, measured on a fixed sample of at most
    :data:`MSE_SAMPLE` elements (all of them when ``x`` is smaller). Returns a float32 ``[len(bits)]`` tensor;
    ties go to the larger factor (the wider range)."""
    flat = x.detach().reshape(-1).float()
    if flat.numel() > MSE_SAMPLE:
        index = torch.arange(MSE_SAMPLE, device=flat.device, dtype=torch.int64) * _SAMPLE_STRIDE % flat.numel()
        flat = flat.index_select(0, index)
    # candidates [m·J]: bit width m at factor j; the widest first, so argmin's first minimum is the wider range
    factors = torch.arange(MSE_GRID, 0, -1, device=flat.device, dtype=torch.float32) / MSE_GRID
    lows, highs = (lo.float() * factors).repeat(len(bits)), (hi.float() * factors).repeat(len(bits))
    widths = [int(b) for b in bits for _ in range(MSE_GRID)]
    error = (quantized_candidates(flat, lows, highs, widths, 0) - flat).square().mean(-1).view(len(bits), MSE_GRID)
    return factors[error.argmin(dim=-1)]


def quantize_weight(weight: Tensor, bits: int) -> Tensor:
    """``weight`` fake-quantized to ``bits`` bits per output channel (axis 0), symmetric over ``max |w|``."""
    return fake_quant_per_channel_symmetric(weight, bits, axis=0)


class ActivationQuantizer(nn.Module):
    """Per-tensor activation quantizer for a set of bit candidates, with a running range for eval.

    ``clip_ranges(x)`` gives the ``[lo, hi]`` of every bit candidate for this batch (and updates the
    running range once in training); ``quantize(x, index, lo, hi)`` applies the ``index``-th candidate.
    """

    running_min: Tensor
    running_max: Tensor
    initialized: Tensor
    clip_factor: Tensor

    def __init__(self, bits: Sequence[int], config: QuantizerConfig | None = None) -> None:
        super().__init__()
        self.bits: tuple[int, ...] = tuple(int(b) for b in bits)
        self.config = config or QuantizerConfig()
        self.register_buffer("running_min", torch.zeros(()))
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        # ``initialized`` read once per module, not once per batch: reading a GPU tensor waits for the GPU
        self._known_initialized = False
        self.clip_lo: nn.Parameter | None = None
        self.clip_hi: nn.Parameter | None = None
        if self.config.activation_clipping is Clipping.PACT:
            self.clip_lo = nn.Parameter(torch.zeros(len(self.bits)))
            self.clip_hi = nn.Parameter(torch.ones(len(self.bits)))
        self.mse = self.config.activation_clipping is Clipping.MSE
        if self.mse:  # only then: a model's state (and an IR layer's act_quant.* weights) says how it clips
            self.register_buffer("clip_factor", torch.ones(len(self.bits)))

    @property
    def learned(self) -> bool:
        """Whether the clipping range is learned (PACT) rather than observed."""
        return self.clip_lo is not None

    @torch.no_grad()
    def _observe(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Update the running range with this batch; returns the batch's ``(lo, hi)``: ``[]`` each, or ``[m]``
        per candidate with ``Clipping.MSE``."""
        batch_min, batch_max = torch.aminmax(x.detach())  # one pass over x
        if batch_min.dtype != self.running_min.dtype:
            batch_min, batch_max = batch_min.to(self.running_min.dtype), batch_max.to(self.running_max.dtype)
        factor = mse_clip_factors(x, batch_min, batch_max, self.bits) if self.mse else None
        if not self._known_initialized:
            self._known_initialized = bool(self.initialized)
        if not self._known_initialized:
            self.running_min.copy_(batch_min)
            self.running_max.copy_(batch_max)
            if self.clip_lo is not None and self.clip_hi is not None:
                self.clip_lo.fill_(float(batch_min))
                self.clip_hi.fill_(float(batch_max))
            if factor is not None:
                self.clip_factor.copy_(factor)
            self.initialized.fill_(True)
            self._known_initialized = True
        else:
            momentum = self.config.running_momentum
            self.running_min.lerp_(batch_min, momentum)
            self.running_max.lerp_(batch_max, momentum)
            if factor is not None:
                self.clip_factor.lerp_(factor, momentum)
        if factor is not None:
            return batch_min * factor, batch_max * factor
        return batch_min, batch_max

    @torch.no_grad()
    def set_initialized(self, value: bool | Tensor) -> None:
        """Mark the running range as observed (or not: the next training batch starts it afresh)."""
        self.initialized.copy_(torch.as_tensor(value, dtype=torch.bool))
        self._known_initialized = False

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialized = False  # read the loaded flag again

    def observes_own_range(self) -> bool:
        """Whether :meth:`clip_ranges` now returns the batch's own minimum and maximum (training mode, neither
        learned nor MSE-shrunk ranges), inside which every element of the batch lies."""
        return self.training and not self.mse and (self.clip_lo is None or self.clip_hi is None)

    def clip_ranges(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(lo, hi)``, each of shape ``[len(bits)]``, for quantizing ``x`` with every bit candidate."""
        count = len(self.bits)
        if self.training:
            batch_min, batch_max = self._observe(x)
            if self.clip_lo is None or self.clip_hi is None:
                return batch_min.expand(count), batch_max.expand(count)
        if self.clip_lo is not None and self.clip_hi is not None:
            return self.clip_lo, self.clip_hi
        if self.mse:
            return self.running_min * self.clip_factor, self.running_max * self.clip_factor
        return self.running_min.expand(count), self.running_max.expand(count)

    def quantize(self, x: Tensor, index: int, lo: Tensor, hi: Tensor) -> Tensor:
        """``x`` fake-quantized with bit candidate ``index`` over ``[lo[index], hi[index]]``."""
        return fake_quant(x, lo[index].to(x.dtype), hi[index].to(x.dtype), self.bits[index], 0)

    def forward(self, x: Tensor, index: int = 0) -> Tensor:
        """``x`` fake-quantized with bit candidate ``index``."""
        lo, hi = self.clip_ranges(x)
        return self.quantize(x, index, lo, hi)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, clipping={self.config.activation_clipping.value}"
