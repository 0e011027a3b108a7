"""Tracing jaqc's own torch models into the IR: quantized convs and linears keep their bits.

:func:`trace_model` is :func:`jaqc.frontend.import_model` with a tracer that keeps jaqc's modules
(``SearchConv2d``, ``QuantLinear``, ``ChannelShuffle`` and the IR op modules of :mod:`jaqc.nn.graph_ops`) as
leaves, and importer handlers that turn them into conv2d / linear / channel_shuffle / add / mul / concat /
reshape / global_avgpool layers. A fixed-bit conv or linear gets ``QuantSpec(w, a)``; its activation
quantizer's state is kept in the layer's weights under ``act_quant.*`` so a model built back from the IR
computes the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch.fx as fx
from torch import nn

from jaqc.frontend.importer import FxImporter, import_model, register_module_handler
from jaqc.ir import (
    ConcatParams,
    Conv2dParams,
    Layer,
    LayerGraph,
    LayerKind,
    LinearParams,
    QuantSpec,
    ShuffleParams,
    SliceParams,
)

from .candidates import ChannelShuffle
from .config import QuantSearchMode
from .graph_ops import Add, Concat, GlobalAvgPool, Mul, Reshape, Slice
from .quant_linear import QuantLinear
from .search_conv import SearchConv2d

LEAF_TYPES: tuple[type, ...] = (
    SearchConv2d,
    QuantLinear,
    ChannelShuffle,
    Add,
    Mul,
    Concat,
    Reshape,
    GlobalAvgPool,
    Slice,
)


class JaqcTracer(fx.Tracer):
    """An fx tracer that keeps jaqc's quantized and IR-op modules as leaves."""

    def __init__(self, extra_leaves: Sequence[type] = ()) -> None:
        super().__init__()
        self.extra_leaves = tuple(extra_leaves)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, LEAF_TYPES + self.extra_leaves):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _np(t) -> np.ndarray:  # type: ignore[no-untyped-def]
    return t.detach().to("cpu").float().numpy().copy()


def _act_state(module: nn.Module) -> dict[str, np.ndarray]:
    quant = getattr(module, "act_quant", None)
    if quant is None:
        return {}
    return {f"act_quant.{k}": _np(v) for k, v in quant.state_dict().items()}


def _fixed_quant(module: SearchConv2d) -> QuantSpec | None:
    if module.mode is QuantSearchMode.FIXED:
        return QuantSpec(module.weight_bits[0], module.activation_bits[0])
    return None


def _conv(imp: FxImporter, node: fx.Node, mod: nn.Module, inputs: list[str]) -> Layer:
    assert isinstance(mod, SearchConv2d)
    params = Conv2dParams(
        kernel=mod.kernel_size, stride=mod.stride, padding=mod.padding, groups=mod.groups, bias=mod.bias is not None
    )
    weights = {"weight": _np(mod.weight), **({"bias": _np(mod.bias)} if mod.bias is not None else {})}
    layer = imp.emit(node, LayerKind.CONV2D, inputs[:1], params, {**weights, **_act_state(mod)})
    layer.quant = _fixed_quant(mod)
    return layer


def _linear(imp: FxImporter, node: fx.Node, mod: nn.Module, inputs: list[str]) -> Layer:
    assert isinstance(mod, QuantLinear)
    weights = {"weight": _np(mod.weight), "bias": _np(mod.bias), **_act_state(mod)}
    layer = imp.emit(node, LayerKind.LINEAR, inputs[:1], LinearParams(bias=True), weights)
    layer.quant = QuantSpec(mod.bits.weight, mod.bits.activation)
    return layer


def _simple(kind: LayerKind, params=None):  # type: ignore[no-untyped-def]
    def handler(imp: FxImporter, node: fx.Node, mod: nn.Module, inputs: list[str]) -> Layer:
        value = params(mod) if callable(params) else params
        return imp.emit(node, kind, inputs, value)

    return handler


def _reshape(imp: FxImporter, node: fx.Node, mod: nn.Module, inputs: list[str]) -> Layer:
    assert isinstance(mod, Reshape)
    return imp.emit(node, LayerKind.FLATTEN if mod.flatten else LayerKind.RESHAPE, inputs)


register_module_handler(SearchConv2d, _conv)
register_module_handler(QuantLinear, _linear)
register_module_handler(ChannelShuffle, _simple(LayerKind.CHANNEL_SHUFFLE, lambda m: ShuffleParams(groups=m.groups)))
register_module_handler(Add, _simple(LayerKind.ADD))
register_module_handler(Mul, _simple(LayerKind.MUL))
register_module_handler(Concat, _simple(LayerKind.CONCAT, lambda m: ConcatParams(axis=m.axis)))
register_module_handler(Slice, _simple(LayerKind.SLICE, lambda m: SliceParams(axis=m.axis, start=m.start, end=m.end)))
register_module_handler(Reshape, _reshape)
register_module_handler(GlobalAvgPool, _simple(LayerKind.GLOBAL_AVGPOOL))


def trace_model(
    model: nn.Module, input_shape: Sequence[int], name: str | None = None, with_weights: bool = True
) -> LayerGraph:
    """The IR of a jaqc model (derived subnet, model built from an IR, or any CNN using jaqc's modules)."""
    name = name or getattr(model, "ir_name", None)
    return import_model(model, input_shape, name=name, with_weights=with_weights, tracer=JaqcTracer())
