"""Value types of the IR: layer kinds, shapes, quantization specs, per-kind parameters, provenance, cost."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any, ClassVar

from attrs import field, fields, frozen

from .errors import IRError
from .values import MAX_INT, flag, integer, optional_integer, real, text, to_int, to_list

#: The bitwidths a BitFusion fusion unit supports for weights and activations.
LEGAL_BITS: tuple[int, ...] = (2, 4, 8)


class LayerKind(StrEnum):
    """What a layer computes. The value is the name used by the text printer and the JSON form."""

    INPUT = "input"
    OUTPUT = "output"
    CONV2D = "conv2d"
    LINEAR = "linear"
    BATCHNORM = "batchnorm"
    RELU = "relu"
    RELU6 = "relu6"
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"
    SILU = "silu"
    SIGMOID = "sigmoid"
    ADD = "add"
    MUL = "mul"
    AVGPOOL = "avgpool"
    MAXPOOL = "maxpool"
    GLOBAL_AVGPOOL = "global_avgpool"
    FLATTEN = "flatten"
    RESHAPE = "reshape"
    CONCAT = "concat"
    CHANNEL_SHUFFLE = "channel_shuffle"
    SLICE = "slice"
    IDENTITY = "identity"
    CHOICE = "choice"

    def __str__(self) -> str:
        return self.value


#: Element-wise activation kinds: one input, output shape equal to the input shape.
ACTIVATION_KINDS: frozenset[LayerKind] = frozenset(
    {
        LayerKind.RELU,
        LayerKind.RELU6,
        LayerKind.HARDSWISH,
        LayerKind.HARDSIGMOID,
        LayerKind.SILU,
        LayerKind.SIGMOID,
    }
)

#: Kinds that carry weights and so take a weight bitwidth.
WEIGHTED_KINDS: frozenset[LayerKind] = frozenset({LayerKind.CONV2D, LayerKind.LINEAR})


def to_kind(value: LayerKind | str) -> LayerKind:
    """Convert a kind name to a :class:`LayerKind`, with an error listing the valid names."""
    try:
        return LayerKind(value)
    except ValueError:
        names = ", ".join(k.value for k in LayerKind)
        raise IRError(f"unknown layer kind {value!r}; expected one of {names}") from None


def _dims(value: Iterable[int]) -> tuple[int, ...]:
    dims = tuple(to_int(v, "shape dimension", maximum=None) for v in to_list(value, "a shape"))
    if any(not 1 <= d <= MAX_INT for d in dims):
        raise IRError(f"shape dimensions must be in 1..{MAX_INT}, got {list(dims)}")
    return dims


@frozen
class Shape:
    """A tensor shape, e.g. ``Shape((1, 3, 32, 32))``; printed ``[1,3,32,32]``."""

    dims: tuple[int, ...] = field(converter=_dims)

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.dims)

    def numel(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.dims:
            n *= d
        return n

    def __iter__(self) -> Iterator[int]:
        return iter(self.dims)

    def __len__(self) -> int:
        return len(self.dims)

    def __getitem__(self, index: int) -> int:
        return self.dims[index]

    def __str__(self) -> str:
        return "[" + ",".join(str(d) for d in self.dims) + "]"


def _check_bits(_inst: object, attribute: Any, value: int | None) -> None:
    if value is not None and value not in LEGAL_BITS:
        raise IRError(f"{attribute.name} must be one of 2, 4, 8 or float (None), got {value!r}")


@frozen
class QuantSpec:
    """Weight and activation bitwidths of a layer; ``None`` means floating point. Printed ``w4a8``/``wfa8``."""

    w_bits: int | None = field(converter=optional_integer("w_bits"), validator=_check_bits)
    a_bits: int | None = field(converter=optional_integer("a_bits"), validator=_check_bits)

    def __str__(self) -> str:
        w = "f" if self.w_bits is None else str(self.w_bits)
        a = "f" if self.a_bits is None else str(self.a_bits)
        return f"w{w}a{a}"

    @classmethod
    def parse(cls, text: str) -> QuantSpec:
        """Read the printed form ``w<bits|f>a<bits|f>``."""
        import re

        m = re.fullmatch(r"w(\d+|f)a(\d+|f)", text)
        if not m:
            raise IRError(f"bad quant spec {text!r}; expected e.g. w4a8 or wfa8")
        w, a = (None if g == "f" else int(g) for g in m.groups())
        return cls(w, a)


# ---------------------------------------------------------------------------------------------------------
# Per-kind parameters. Each field carries printer metadata: its short key and its format.
# Channel counts are not parameters: they come from the layer's input and output shapes.


def _pair(key: str):  # type: ignore[no-untyped-def]
    def convert(value: int | Iterable[int]) -> tuple[int, int]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            single = to_int(value, key)
            return (single, single)
        pair = tuple(to_int(v, key) for v in to_list(value, key))
        if len(pair) != 2:
            raise IRError(f"{key} must be an integer or a pair of integers, got {value!r}")
        return pair  # type: ignore[return-value]

    return convert


def _check_pair(minimum: int):  # type: ignore[no-untyped-def]
    def check(_inst: object, attribute: Any, value: tuple[int, int]) -> None:
        if any(v < minimum for v in value):
            raise IRError(f"{attribute.metadata.get('key', attribute.name)} must be >= {minimum}, got {value}")

    return check


def _check_min(minimum: int):  # type: ignore[no-untyped-def]
    def check(_inst: object, attribute: Any, value: int) -> None:
        if value < minimum:
            raise IRError(f"{attribute.metadata.get('key', attribute.name)} must be >= {minimum}, got {value}")

    return check


def _pair_field(key: str, default: tuple[int, int] | None = None, minimum: int = 1) -> Any:
    meta = {"key": key, "fmt": "pair"}
    if default is None:
        return field(converter=_pair(key), validator=_check_pair(minimum), metadata=meta)
    return field(default=default, converter=_pair(key), validator=_check_pair(minimum), metadata=meta)


@frozen
class Conv2dParams:
    """2-D convolution: kernel, stride, padding (each (h, w)), groups, bias."""

    kind_names: ClassVar[tuple[str, ...]] = ("conv2d",)
    kernel: tuple[int, int] = _pair_field("k")
    stride: tuple[int, int] = _pair_field("s", (1, 1))
    padding: tuple[int, int] = _pair_field("p", (0, 0), minimum=0)
    groups: int = field(default=1, converter=integer("g"), validator=_check_min(1), metadata={"key": "g", "fmt": "int"})
    bias: bool = field(default=False, converter=flag("bias"), metadata={"key": "bias", "fmt": "flag"})


@frozen
class LinearParams:
    """Fully connected layer over the last dimension."""

    kind_names: ClassVar[tuple[str, ...]] = ("linear",)
    bias: bool = field(default=False, converter=flag("bias"), metadata={"key": "bias", "fmt": "flag"})


@frozen
class BatchNormParams:
    """Batch normalisation over the channel dimension (inference form uses running statistics)."""

    kind_names: ClassVar[tuple[str, ...]] = ("batchnorm",)
    eps: float = field(
        default=1e-5, converter=real("eps", 0.0, strict_minimum=True), metadata={"key": "eps", "fmt": "float"}
    )


@frozen
class PoolParams:
    """Average or max pooling window; ``ceil`` is PyTorch's ``ceil_mode``."""

    kind_names: ClassVar[tuple[str, ...]] = ("avgpool", "maxpool")
    kernel: tuple[int, int] = _pair_field("k")
    stride: tuple[int, int] = _pair_field("s")
    padding: tuple[int, int] = _pair_field("p", (0, 0), minimum=0)
    ceil: bool = field(default=False, converter=flag("ceil"), metadata={"key": "ceil", "fmt": "flag"})


@frozen
class ConcatParams:
    """Concatenation along ``axis``."""

    kind_names: ClassVar[tuple[str, ...]] = ("concat",)
    axis: int = field(default=1, converter=integer("axis"), metadata={"key": "axis", "fmt": "int"})


@frozen
class SliceParams:
    """The elements ``start`` (inclusive) to ``end`` (exclusive) of axis ``axis`` (a channel split: axis 1)."""

    kind_names: ClassVar[tuple[str, ...]] = ("slice",)
    axis: int = field(default=1, converter=integer("axis"), metadata={"key": "axis", "fmt": "int"})
    start: int = field(
        default=0, converter=integer("start"), validator=_check_min(0), metadata={"key": "start", "fmt": "int"}
    )
    end: int = field(
        default=1, converter=integer("end"), validator=_check_min(1), metadata={"key": "end", "fmt": "int"}
    )

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise IRError(f"slice end {self.end} must be greater than its start {self.start}")


@frozen
class ShuffleParams:
    """ShuffleNet channel shuffle with ``groups`` groups."""

    kind_names: ClassVar[tuple[str, ...]] = ("channel_shuffle",)
    groups: int = field(converter=integer("g"), validator=_check_min(1), metadata={"key": "g", "fmt": "int"})


LayerParams = Conv2dParams | LinearParams | BatchNormParams | PoolParams | ConcatParams | ShuffleParams | SliceParams

#: The parameter class each kind requires (kinds not listed take no parameters).
PARAMS_FOR_KIND: dict[LayerKind, type] = {
    LayerKind(name): cls
    for cls in (Conv2dParams, LinearParams, BatchNormParams, PoolParams, ConcatParams, ShuffleParams, SliceParams)
    for name in cls.kind_names
}


def params_to_dict(params: Any) -> dict[str, Any]:
    """The parameters as a JSON-ready dict keyed by their short keys (defaults included)."""
    out: dict[str, Any] = {}
    for f in fields(type(params)):
        value = getattr(params, f.name)
        out[f.metadata["key"]] = list(value) if isinstance(value, tuple) else value
    return out


def params_from_dict(kind: LayerKind, data: dict[str, Any], where: str) -> Any:
    """Build the parameter object of ``kind`` from short keys; ``where`` names the source in errors."""
    cls = PARAMS_FOR_KIND.get(kind)
    if cls is None:
        if data:
            raise IRError(f"{where}: layer kind {kind.value} takes no parameters, got {sorted(data)}")
        return None
    by_key = {f.metadata["key"]: f.name for f in fields(cls)}
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        raise IRError(f"{where}: unknown parameter(s) {', '.join(unknown)} for {kind.value}")
    try:
        return cls(**{by_key[k]: v for k, v in data.items()})
    except TypeError as exc:
        raise IRError(f"{where}: {kind.value} parameters: {exc}") from None
    except IRError as exc:
        raise IRError(f"{where}: {exc}") from None


@frozen
class Source:
    """Where a layer came from: the torch.fx node name and the module path (plain strings)."""

    fx_node: str = field(default="", converter=text("source fx_node"))
    module: str = field(default="", converter=text("source module"))


@frozen(kw_only=True)
class LayerCost:
    """The cost model's result for one layer at its mapping: cycles and energy."""

    compute_cycles: int = field(converter=integer("compute_cycles", 0, maximum=None))
    stall_cycles: int = field(converter=integer("stall_cycles", 0, maximum=None))
    energy_nJ: float = field(converter=real("energy_nJ", 0.0))

    @property
    def total_cycles(self) -> int:
        """Compute plus stall cycles."""
        return self.compute_cycles + self.stall_cycles
