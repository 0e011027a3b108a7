"""The IR's node: a :class:`Layer` with its shape parameters and typed annotations."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
from attrs import define, field

from .encoding import OperatorVector
from .errors import IRError
from .mapping import Mapping
from .types import (
    PARAMS_FOR_KIND,
    LayerCost,
    LayerKind,
    QuantSpec,
    Shape,
    Source,
    to_kind,
)
from .values import to_int, to_list

if TYPE_CHECKING:
    from .choice import Choice

#: Layer names: letters, digits and ``_ . - /``; they appear as ``%name`` in the text form.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-/]+")


def _check_name(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise IRError(f"invalid layer name {value!r}: use letters, digits and _ . - /")


def _to_shape(value: Shape | Any) -> Shape:
    return value if isinstance(value, Shape) else Shape(value)


def _to_shapes(value: Any) -> tuple[Shape, ...]:
    return tuple(_to_shape(v) for v in to_list(value, "layer input_shapes"))


def _to_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise IRError(f"layer inputs must be a sequence of names, got the string {value!r}")
    names = tuple(to_list(value, "layer inputs"))
    for name in names:
        if not isinstance(name, str):
            raise IRError(f"layer inputs must be layer names (strings), got {name!r}")
    return names


def _to_channels(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(to_int(v, "csq channel index", 0) for v in to_list(value, "csq_channels"))


@define(kw_only=True, eq=False)
class Layer:
    """One operation of a :class:`LayerGraph`, identified by its stable ``name``.

    Shape parameters live in ``params`` (a kind-specific frozen value); channel counts come from the shapes.
    Annotations written by passes are typed fields: ``quant``, ``choice`` (supernet candidates with their
    probabilities), ``csq_channels`` (the CSQ channel set of the layer's input), ``mapping``, ``cost`` and ``op_vector``
    (the operator encoding of JAQ's Fig. 2).
    ``weights`` holds trained tensors as numpy arrays (treated as immutable: replace, never edit in place).
    ``meta`` is pass-private scratch and is never serialised or printed.
    """

    name: str = field(validator=_check_name)
    kind: LayerKind = field(converter=to_kind)
    inputs: tuple[str, ...] = field(default=(), converter=_to_names)
    input_shapes: tuple[Shape, ...] = field(default=(), converter=_to_shapes)
    output_shape: Shape = field(converter=_to_shape)
    params: Any = None
    quant: QuantSpec | None = None
    choice: Choice | None = None
    csq_channels: tuple[int, ...] | None = field(default=None, converter=_to_channels)
    mapping: Mapping | None = None
    cost: LayerCost | None = None
    op_vector: OperatorVector | None = None
    source: Source | None = None
    weights: dict[str, np.ndarray] = field(factory=dict)
    meta: dict[str, Any] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        expected = PARAMS_FOR_KIND.get(self.kind)
        if expected is None and self.params is not None:
            raise IRError(f"layer {self.name}: kind {self.kind.value} takes no parameters")
        if expected is not None and not isinstance(self.params, expected):
            raise IRError(
                f"layer {self.name}: kind {self.kind.value} needs {expected.__name__}, got {type(self.params).__name__}"
            )
        if len(self.inputs) != len(self.input_shapes):
            raise IRError(f"layer {self.name}: {len(self.inputs)} input(s) but {len(self.input_shapes)} input shape(s)")
        if (self.choice is None) != (self.kind is not LayerKind.CHOICE):
            raise IRError(f"layer {self.name}: a choice annotation belongs exactly to kind 'choice'")

    # --- derived shape facts -------------------------------------------------------------------------
    @property
    def input_shape(self) -> Shape:
        """The first input's shape (the data input of conv, linear and the element-wise layers)."""
        if not self.input_shapes:
            raise IRError(f"layer {self.name} ({self.kind.value}) has no inputs")
        return self.input_shapes[0]

    @property
    def in_channels(self) -> int:
        """Channels (dim 1) of the first input; the feature count for linear layers."""
        shape = self.input_shape
        return shape[-1] if self.kind is LayerKind.LINEAR else shape[1]

    @property
    def out_channels(self) -> int:
        """Channels (dim 1) of the output; the feature count for linear layers."""
        return self.output_shape[-1] if self.kind is LayerKind.LINEAR else self.output_shape[1]

    def __repr__(self) -> str:
        return f"<Layer %{self.name} {self.kind.value} {self.output_shape}>"
