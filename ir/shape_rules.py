"""Output-shape rules per layer kind, used by :func:`~jaqc.ir.verify.verify` and the importers."""

from __future__ import annotations

from .errors import IRError
from .layer import Layer
from .types import ACTIVATION_KINDS, LayerKind, Shape

#: How many inputs each kind takes: an exact count, or (minimum, None) for "at least".
ARITY: dict[LayerKind, tuple[int, int | None]] = {
    LayerKind.INPUT: (0, 0),
    LayerKind.ADD: (2, 2),
    LayerKind.MUL: (2, 2),
    LayerKind.CONCAT: (1, None),
}


def arity(kind: LayerKind) -> tuple[int, int | None]:
    """(minimum, maximum) number of inputs of ``kind``; maximum ``None`` means unbounded."""
    return ARITY.get(kind, (1, 1))


def _window(size: int, kernel: int, stride: int, pad: int, ceil: bool = False) -> int:
    span = size + 2 * pad - kernel
    if span < 0:
        raise IRError(f"window {kernel} with padding {pad} does not fit input size {size}")
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1  # PyTorch: the last window must start inside the input or left padding
    return out


def broadcast(a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting of two shapes."""
    rank = max(a.rank, b.rank)
    da = (1,) * (rank - a.rank) + a.dims
    db = (1,) * (rank - b.rank) + b.dims
    out = []
    for x, y in zip(da, db):
        if x != y and 1 not in (x, y):
            raise IRError(f"shapes {a} and {b} do not broadcast")
        out.append(max(x, y))
    return Shape(out)


def infer_output_shape(layer: Layer) -> Shape | None:
    """The output shape ``layer`` must have given its inputs and params; ``None`` where the shape is free
    (input, reshape, flatten and choice layers carry their own)."""
    kind, p = layer.kind, layer.params
    if kind in (LayerKind.INPUT, LayerKind.RESHAPE, LayerKind.FLATTEN, LayerKind.CHOICE):
        return None
    x = layer.input_shapes[0]
    if kind is LayerKind.CONV2D:
        if x.rank != 4:
            raise IRError(f"conv2d needs a rank-4 input, got {x}")
        if x[1] % p.groups:
            raise IRError(f"input channels {x[1]} are not divisible by groups {p.groups}")
        oc = layer.output_shape[1] if layer.output_shape.rank == 4 else 0
        if oc % p.groups:
            raise IRError(f"output channels {oc} are not divisible by groups {p.groups}")
        oh = _window(x[2], p.kernel[0], p.stride[0], p.padding[0])
        ow = _window(x[3], p.kernel[1], p.stride[1], p.padding[1])
        return Shape((x[0], oc, oh, ow))
    if kind in (LayerKind.AVGPOOL, LayerKind.MAXPOOL):
        if x.rank != 4:
            raise IRError(f"{kind.value} needs a rank-4 input, got {x}")
        oh = _window(x[2], p.kernel[0], p.stride[0], p.padding[0], p.ceil)
        ow = _window(x[3], p.kernel[1], p.stride[1], p.padding[1], p.ceil)
        return Shape((x[0], x[1], oh, ow))
    if kind is LayerKind.LINEAR:
        return Shape((*x.dims[:-1], layer.output_shape[-1]))
    if kind is LayerKind.GLOBAL_AVGPOOL:
        if x.rank != 4:
            raise IRError(f"global_avgpool needs a rank-4 input, got {x}")
        keep = layer.output_shape.rank == 4
        return Shape((x[0], x[1], 1, 1) if keep else (x[0], x[1]))
    if kind in (LayerKind.ADD, LayerKind.MUL):
        return broadcast(x, layer.input_shapes[1])
    if kind is LayerKind.CONCAT:
        axis = p.axis % x.rank
        for other in layer.input_shapes[1:]:
            if other.rank != x.rank or any(a != b for i, (a, b) in enumerate(zip(x, other)) if i != axis):
                raise IRError(f"concat inputs {x} and {other} differ outside axis {p.axis}")
        dims = list(x.dims)
        dims[axis] = sum(s[axis] for s in layer.input_shapes)
        return Shape(dims)
    if kind is LayerKind.SLICE:
        axis = p.axis % x.rank
        if p.end > x[axis]:
            raise IRError(f"slice {p.start}:{p.end} of axis {p.axis} is outside the input {x}")
        dims = list(x.dims)
        dims[axis] = p.end - p.start
        return Shape(dims)
    if kind is LayerKind.CHANNEL_SHUFFLE:
        if x.rank != 4 or x[1] % p.groups:
            raise IRError(f"channel_shuffle with {p.groups} groups needs rank-4 input with divisible channels, got {x}")
        return x
    if kind is LayerKind.BATCHNORM or kind in ACTIVATION_KINDS or kind in (LayerKind.IDENTITY, LayerKind.OUTPUT):
        return x
    raise IRError(f"no shape rule for kind {kind.value}")  # pragma: no cover - every kind is covered above
