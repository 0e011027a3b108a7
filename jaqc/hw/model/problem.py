"""A torch-free description of one convolution (or fully-connected) layer as the cost model sees it."""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from typing import Any

from attrs import evolve, field, frozen

from jaqc.hw.errors import HardwareError
from jaqc.hw.model.constants import PMAX_BITS, PMIN_BITS
from jaqc.ir.errors import IRError
from jaqc.ir.values import to_flag, to_int

#: Bitwidths a fusion unit accepts for weights and activations.
SUPPORTED_BITS: tuple[int, ...] = (2, 4, 8)
#: Widths an output can be requantized to: a consumer's activation bits, or a wider network output.
OUTPUT_WIDTHS: tuple[int, ...] = (2, 4, 8, 16, 32)


def perf_factor(w_bits: int, a_bits: int) -> int:
    """MACs per fusion unit per cycle: floor(8/max(a,2)) * floor(8/max(w,2)) (8x8 bits: 1, 2x2 bits: 16)."""
    return (PMAX_BITS // max(int(a_bits), PMIN_BITS)) * (PMAX_BITS // max(int(w_bits), PMIN_BITS))


def _int_at_least(minimum: int):
    def check(_inst: object, attribute: Any, value: int) -> None:
        if value < minimum:
            raise HardwareError(f"conv problem field {attribute.name} must be >= {minimum}, got {value}")

    return check


def _bits(_inst: object, attribute: Any, value: int) -> None:
    if value not in SUPPORTED_BITS:
        raise HardwareError(f"conv problem field {attribute.name} must be one of {SUPPORTED_BITS}, got {value}")


def _out_bits(_inst: object, attribute: Any, value: int) -> None:
    if value not in OUTPUT_WIDTHS:
        raise HardwareError(f"conv problem field {attribute.name} must be one of {OUTPUT_WIDTHS}, got {value}")


def _strict_int(name: str):  # type: ignore[no-untyped-def]
    def convert(value: Any) -> int:
        try:
            return to_int(value, f"conv problem field {name}", maximum=None)
        except IRError as exc:
            raise HardwareError(str(exc)) from None

    return convert


def _flag(value: Any) -> bool:
    try:
        return to_flag(value, "conv problem field im2col")
    except IRError as exc:
        raise HardwareError(str(exc)) from None


@frozen(kw_only=True)
class ConvProblem:
    """One layer: a (grouped) 2-D convolution of a ``batch x in_channels x in_h x in_w`` input.

    A fully-connected layer is a 1x1 convolution of a 1x1 input. ``im2col`` marks a first layer that the
    host lowers with im2col (the simulator's convention for layers fed by the network input). ``out_bits``
    is the width the deployment model writes finished outputs at: the consumer's activation bits (8, or a
    given width, for the network output); the simulator model ignores it (32-bit outputs).
    """

    batch: int = field(converter=_strict_int("batch"), validator=_int_at_least(1))
    in_channels: int = field(converter=_strict_int("in_channels"), validator=_int_at_least(1))
    out_channels: int = field(converter=_strict_int("out_channels"), validator=_int_at_least(1))
    in_h: int = field(converter=_strict_int("in_h"), validator=_int_at_least(1))
    in_w: int = field(converter=_strict_int("in_w"), validator=_int_at_least(1))
    kernel: int = field(converter=_strict_int("kernel"), validator=_int_at_least(1))
    stride: int = field(default=1, converter=_strict_int("stride"), validator=_int_at_least(1))
    pad: int = field(default=0, converter=_strict_int("pad"), validator=_int_at_least(0))
    groups: int = field(default=1, converter=_strict_int("groups"), validator=_int_at_least(1))
    w_bits: int = field(default=8, converter=_strict_int("w_bits"), validator=_bits)
    a_bits: int = field(default=8, converter=_strict_int("a_bits"), validator=_bits)
    im2col: bool = field(default=False, converter=_flag)
    out_bits: int = field(default=8, converter=_strict_int("out_bits"), validator=_out_bits)
    name: str = field(default="", converter=str)

    def __attrs_post_init__(self) -> None:
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise HardwareError(
                f"conv problem {self.name or '<unnamed>'}: groups={self.groups} must divide "
                f"in_channels={self.in_channels} and out_channels={self.out_channels}"
            )
        if self.kernel > self.in_h + 2 * self.pad or self.kernel > self.in_w + 2 * self.pad:
            raise HardwareError(
                f"conv problem {self.name or '<unnamed>'}: kernel={self.kernel} is larger than the padded "
                f"input {self.in_h + 2 * self.pad}x{self.in_w + 2 * self.pad}"
            )

    # --- the simulator's view -------------------------------------------------------------------------
    @property
    def out_h(self) -> int:
        """Output rows: (in_h + 2*pad - kernel) // stride + 1."""
        return (self.in_h + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_w(self) -> int:
        """Output columns: (in_w + 2*pad - kernel) // stride + 1."""
        return (self.in_w + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def group_in_channels(self) -> int:
        """Input channels of the one group that is simulated (in_channels / groups)."""
        return self.in_channels // self.groups

    @property
    def group_out_channels(self) -> int:
        """Output channels of the one group that is simulated (out_channels / groups)."""
        return self.out_channels // self.groups

    @property
    def sim_input_size(self) -> int:
        """The simulator's (square, unpadded) input size I = (O - 1) * stride + kernel, with O = out_h."""
        return (self.out_h - 1) * self.stride + self.kernel

    @property
    def perf_factor(self) -> int:
        """MACs per fusion unit per cycle at this layer's bitwidths."""
        return perf_factor(self.w_bits, self.a_bits)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole layer (all groups)."""
        return (
            self.batch
            * self.out_h
            * self.out_w
            * self.kernel
            * self.kernel
            * self.group_in_channels
            * self.out_channels
        )

    @property
    def loop_extents(self) -> tuple[int, int, int, int, int]:
        """Extents of the five tiled loops in LOOP_DIMS order (B, OW, OH, IC, OC) for one group."""
        return (self.batch, self.out_w, self.out_h, self.group_in_channels, self.group_out_channels)

    @property
    def out_channels_per_group(self) -> int:
        """Output channels of one group (q = out_channels / groups)."""
        return self.out_channels // self.groups

    def loop_extents_for(self, hw_model: Any = None) -> tuple[int, int, int, int, int]:
        """Loop extents (B, OW, OH, IC, OC) under a hardware model: the simulator's one group, or the
        deployment model's whole layer (IC of one group, OC over all output channels)."""
        from jaqc.hw.model.hw_models import HardwareModel, parse_hw_model

        if parse_hw_model(hw_model) is HardwareModel.SIMULATOR:
            return self.loop_extents
        return (self.batch, self.out_w, self.out_h, self.group_in_channels, self.out_channels)

    def with_bits(self, w_bits: int, a_bits: int) -> ConvProblem:
        """The same layer at other weight/activation bitwidths."""
        return evolve(self, w_bits=w_bits, a_bits=a_bits)

    # --- JSON ---------------------------------------------------------------------------------------------
    @classmethod
    def from_reference(cls, layer: MappingABC[str, Any]) -> ConvProblem:
        """Read a reference-data ``layer`` record (keys name, batch, ic, oc, ih, iw, k, stride, pad, groups,
        wbits, abits, im2col; optional obits)."""
        keys = ("batch", "ic", "oc", "ih", "iw", "k", "stride", "pad", "groups", "wbits", "abits", "im2col")
        if not isinstance(layer, MappingABC):
            raise HardwareError(f"reference layer record must be an object, got {type(layer).__name__} {layer!r}")
        # ``obits`` (the deployment model's output width) is optional: the simulator's records lack it.
        missing = [k for k in keys if k not in layer]
        if missing:
            raise HardwareError(f"reference layer record is missing field(s) {', '.join(missing)}")
        return cls(
            batch=layer["batch"],
            in_channels=layer["ic"],
            out_channels=layer["oc"],
            in_h=layer["ih"],
            in_w=layer["iw"],
            kernel=layer["k"],
            stride=layer["stride"],
            pad=layer["pad"],
            groups=layer["groups"],
            w_bits=layer["wbits"],
            a_bits=layer["abits"],
            im2col=layer["im2col"],
            out_bits=layer.get("obits", 8),
            name=layer.get("name", ""),
        )

    def to_reference(self) -> dict[str, Any]:
        """The inverse of :meth:`from_reference`."""
        return {
            "name": self.name,
            "batch": self.batch,
            "ic": self.in_channels,
            "oc": self.out_channels,
            "ih": self.in_h,
            "iw": self.in_w,
            "k": self.kernel,
            "stride": self.stride,
            "pad": self.pad,
            "groups": self.groups,
            "wbits": self.w_bits,
            "abits": self.a_bits,
            "im2col": self.im2col,
            "obits": self.out_bits,
        }
