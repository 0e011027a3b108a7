"""The operator encoding vector of JAQ's Fig. 2, the input of the hardware generation network.

Seven fields: kernel, stride, output rows, input channels, output channels, activation bits, weight bits.
Input channels are counted **per group** (``IC / groups``) so that a depthwise layer (1 input channel per
output) and a dense one of the same width are told apart; a linear layer is a 1x1 convolution over a 1x1
output. A floating-point width is encoded as 8: the BitFusion target runs unquantized layers at its widest
precision.

``normalized()`` maps the fields to roughly [0, 1]: ``k/7, s/2, log2(oh)/8, log2(ic)/11, log2(oc)/11,
a/8, w/8`` (log2 of sizes, since channel counts and resolutions span orders of magnitude; the divisors
are the largest values of the ImageNet FBNet space: 7x7 kernels, 224 = 2^7.8 rows, 1984 < 2^11 channels).
"""

from __future__ import annotations

import math
from typing import Any

from attrs import field, frozen

from .errors import IRError
from .values import to_int


def _check_positive(_inst: object, attribute: Any, value: int) -> None:
    if value < 1:
        raise IRError(f"operator vector field {attribute.name} must be >= 1, got {value}")


def _int_field() -> Any:
    return field(converter=lambda value: to_int(value, "operator vector field"), validator=_check_positive)


#: Field order of the raw and normalized vectors.
OPERATOR_FIELDS: tuple[str, ...] = ("kernel", "stride", "out_rows", "in_channels", "out_channels", "a_bits", "w_bits")


@frozen(kw_only=True)
class OperatorVector:
    """One layer's encoding: the seven fields of JAQ's operator encoding vector."""

    kernel: int = _int_field()
    stride: int = _int_field()
    out_rows: int = _int_field()
    in_channels: int = _int_field()
    out_channels: int = _int_field()
    a_bits: int = _int_field()
    w_bits: int = _int_field()

    def raw(self) -> tuple[int, ...]:
        """The fields as integers, in ``OPERATOR_FIELDS`` order."""
        return tuple(getattr(self, name) for name in OPERATOR_FIELDS)

    def normalized(self) -> tuple[float, ...]:
        """The fields scaled to about [0, 1] (see the module docstring)."""
        return (
            self.kernel / 7.0,
            self.stride / 2.0,
            math.log2(self.out_rows) / 8.0,
            math.log2(self.in_channels) / 11.0,
            math.log2(self.out_channels) / 11.0,
            self.a_bits / 8.0,
            self.w_bits / 8.0,
        )

    def __str__(self) -> str:
        return (
            f"enc{{k={self.kernel},s={self.stride},oh={self.out_rows},ic={self.in_channels},"
            f"oc={self.out_channels},a={self.a_bits},w={self.w_bits}}}"
        )


#: Short keys of the printed form, in field order.
PRINT_KEYS: tuple[str, ...] = ("k", "s", "oh", "ic", "oc", "a", "w")
