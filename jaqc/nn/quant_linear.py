"""``QuantLinear``: a linear layer with fixed weight (per row) and activation (per tensor) bitwidths."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .config import FixedBits, QuantizerConfig
from .quantizers import ActivationQuantizer, quantize_weight


class QuantLinear(nn.Linear):
    """``nn.Linear`` whose weight and input are fake-quantized to ``bits`` (a quantized classifier)."""

    def __init__(
        self, in_features: int, out_features: int, bits: FixedBits, quantizer: QuantizerConfig | None = None
    ) -> None:
        super().__init__(in_features, out_features)
        self.bits = bits
        self.act_quant = ActivationQuantizer((bits.activation,), quantizer)
        #: False: compute in floating point (see :func:`jaqc.nn.subnet.quantization_disabled`).
        self.quantize = True

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """The linear map of the quantized input by the quantized weight (bias in floating point)."""
        if not self.quantize:
            return F.linear(x, self.weight, self.bias)
        return F.linear(self.act_quant(x), quantize_weight(self.weight, self.bits.weight), self.bias)
