"""torch.fx importer: trace a CNN, propagate shapes, and translate fx nodes into a :class:`LayerGraph`.

Each IR layer is named after its module path (``layer1.0.conv1``) when it comes from a module call, and
after its fx node name (``add_1``) otherwise; ``Layer.source`` keeps both. Dropout, ``nn.Identity`` and
``.contiguous()`` are dropped (their consumers read their input). Anything else the importer does not know
is an :class:`ImportErrorIR` naming the fx node, its op and target, the module path and the model line.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import _extract_tensor_metadata

from jaqc.ir import (
    BatchNormParams,
    ConcatParams,
    Conv2dParams,
    Layer,
    LayerGraph,
    LayerKind,
    LinearParams,
    PoolParams,
    Shape,
    ShuffleParams,
    Source,
)
from jaqc.ir.errors import IRError

from .errors import ImportErrorIR, describe, module_path

#: Marker for fx values that are not tensors (sizes, ints): they may feed shape arguments only.
_NOT_TENSOR = object()

_ACTIVATION_MODULES: dict[type, LayerKind] = {
    nn.ReLU6: LayerKind.RELU6,  # before ReLU/Hardtanh lookups: ReLU6 subclasses Hardtanh
    nn.ReLU: LayerKind.RELU,
    nn.Hardswish: LayerKind.HARDSWISH,
    nn.Hardsigmoid: LayerKind.HARDSIGMOID,
    nn.SiLU: LayerKind.SILU,
    nn.Sigmoid: LayerKind.SIGMOID,
}
_ACTIVATION_FUNCTIONS: dict[Any, LayerKind] = {
    F.relu: LayerKind.RELU,
    torch.relu: LayerKind.RELU,
    F.relu6: LayerKind.RELU6,
    F.hardswish: LayerKind.HARDSWISH,
    F.hardsigmoid: LayerKind.HARDSIGMOID,
    F.silu: LayerKind.SILU,
    torch.sigmoid: LayerKind.SIGMOID,
    F.sigmoid: LayerKind.SIGMOID,
}
_ACTIVATION_METHODS: dict[str, LayerKind] = {
    "relu": LayerKind.RELU,
    "sigmoid": LayerKind.SIGMOID,
    "relu_": LayerKind.RELU,
}
_DROPPED_MODULES = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_DROPPED_FUNCTIONS = {F.dropout, F.dropout2d, torch.dropout}
_ADD = {operator.add, operator.iadd, torch.add}
_MUL = {operator.mul, operator.imul, torch.mul}

#: Handlers for extra module types (e.g. supernet candidate blocks traced as leaves).
#: A handler gets (importer, node, module, input layer names) and returns the new Layer.
ModuleHandler = Callable[["FxImporter", fx.Node, nn.Module, list[str]], Layer]
MODULE_HANDLERS: dict[type, ModuleHandler] = {}


def register_module_handler(module_type: type, handler: ModuleHandler) -> None:
    """Teach the importer a module type (matched with isinstance, most recently registered first)."""
    MODULE_HANDLERS[module_type] = handler


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class FxImporter:
    """Translate one traced ``GraphModule`` (after ShapeProp) into a LayerGraph."""

    def __init__(self, gm: fx.GraphModule, name: str, with_weights: bool = True) -> None:
        self.gm = gm
        self.graph = LayerGraph(name)
        self.with_weights = with_weights
        self.modules = dict(gm.named_modules())
        self.value: dict[str, Any] = {}  # fx node name -> IR layer name | _NOT_TENSOR
        self.shuffles, self.skipped = self._find_shuffles()
        self.module_uses: dict[str, int] = {}

    # --- helpers ---------------------------------------------------------------------------------------
    def error(self, node: fx.Node, msg: str) -> ImportErrorIR:
        return ImportErrorIR(f"{describe(node)}: {msg}")

    def shape(self, node: fx.Node) -> Shape:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise self.error(node, "has no tensor shape (ShapeProp did not reach it)")
        return Shape(tuple(meta.shape))

    def operand(self, node: fx.Node, arg: Any) -> str:
        if not isinstance(arg, fx.Node):
            raise self.error(node, f"operand {arg!r} is a Python constant; only tensor operands are supported")
        value = self.value.get(arg.name)
        if value is _NOT_TENSOR or value is None:
            raise self.error(node, f"operand '{arg.name}' is not a tensor the importer translated (a constant?)")
        return value

    def layer_name(self, node: fx.Node) -> str:
        base = str(node.target) if node.op == "call_module" else node.name
        if node.op == "call_module":
            uses = self.module_uses.get(base, 0)
            self.module_uses[base] = uses + 1
            if uses:
                base = node.name
        name, i = base, 1
        while name in self.graph:
            name, i = f"{base}_{i}", i + 1
        return name

    def emit(
        self,
        node: fx.Node,
        kind: LayerKind,
        inputs: list[str],
        params: Any = None,
        weights: dict | None = None,
    ) -> Layer:
        """Create, add and bind the layer for ``node``."""
        try:
            layer = Layer(
                name=self.layer_name(node),
                kind=kind,
                inputs=inputs,
                input_shapes=[self.graph[i].output_shape for i in inputs],
                output_shape=self.shape(node),
                params=params,
                source=Source(fx_node=node.name, module=module_path(node)),
                weights=weights if (weights and self.with_weights) else {},
            )
            self.graph.add(layer)
        except IRError as exc:
            raise self.error(node, str(exc)) from None
        self.value[node.name] = layer.name
        return layer

    def alias(self, node: fx.Node, arg: Any) -> None:
        self.value[node.name] = self.operand(node, arg)

    # --- channel shuffle: view(n,g,c/g,h,w) -> transpose(1,2) -> [contiguous] -> view/reshape/flatten(n,c,h,w)
    def _find_shuffles(self) -> tuple[dict[str, tuple[fx.Node, int]], set[str]]:
        """Find ``view(n,g,c/g,h,w) -> transpose(1,2) -> [contiguous] -> view/reshape/flatten(n,c,h,w)``."""

        def sole_user(node: fx.Node) -> fx.Node | None:
            return next(iter(node.users)) if len(node.users) == 1 else None

        def is_method(node: fx.Node | None, *names: str) -> bool:
            return node is not None and node.op == "call_method" and node.target in names

        found: dict[str, tuple[fx.Node, int]] = {}
        skipped: set[str] = set()
        for view in self.gm.graph.nodes:
            if not is_method(view, "view", "reshape") or not isinstance(view.args[0], fx.Node):
                continue
            meta_in, meta_out = view.args[0].meta.get("tensor_meta"), view.meta.get("tensor_meta")
            if meta_in is None or meta_out is None or len(meta_in.shape) != 4 or len(meta_out.shape) != 5:
                continue
            n, c, h, w = meta_in.shape
            g = meta_out.shape[1]
            if tuple(meta_out.shape) != (n, g, c // g, h, w):
                continue
            transpose = sole_user(view)
            if not is_method(transpose, "transpose") or sorted(transpose.args[1:3]) != [1, 2]:
                continue
            chain = [view, transpose]
            final = sole_user(transpose)
            if is_method(final, "contiguous"):
                chain.append(final)
                final = sole_user(final)
            back = is_method(final, "view", "reshape", "flatten") or (
                final is not None and final.op == "call_function" and final.target in (torch.flatten, torch.reshape)
            )
            meta_fin = final.meta.get("tensor_meta") if final is not None else None
            if back and meta_fin is not None and tuple(meta_fin.shape) == tuple(meta_in.shape):
                found[final.name] = (view.args[0], g)
                skipped.update(x.name for x in chain)
        return found, skipped

    # --- translation -----------------------------------------------------------------------------------
    def run(self) -> LayerGraph:
        for node in self.gm.graph.nodes:
            if node.name in self.skipped:
                continue
            if node.name in self.shuffles:
                src, groups = self.shuffles[node.name]
                self.emit(node, LayerKind.CHANNEL_SHUFFLE, [self.operand(node, src)], ShuffleParams(groups=groups))
                continue
            handler = getattr(self, f"on_{node.op}")
            handler(node)
        return self.graph

    def on_placeholder(self, node: fx.Node) -> None:
        self.emit(node, LayerKind.INPUT, [])

    def on_get_attr(self, node: fx.Node) -> None:
        # A constant (a buffer such as fixed probabilities passed to a leaf module). It may feed non-data
        # arguments of handled leaf modules; as a data operand of a layer it is an error (see operand()).
        self.value[node.name] = _NOT_TENSOR

    def on_output(self, node: fx.Node) -> None:
        results = node.args[0]
        items = list(results) if isinstance(results, (tuple, list)) else [results]
        for i, item in enumerate(items):
            src = self.operand(node, item)
            name = "output" if len(items) == 1 else f"output_{i}"
            layer = Layer(
                name=name if name not in self.graph else f"{name}_{len(self.graph)}",
                kind=LayerKind.OUTPUT,
                inputs=[src],
                input_shapes=[self.graph[src].output_shape],
                output_shape=self.graph[src].output_shape,
                source=Source(fx_node=node.name),
            )
            self.graph.add(layer)

    def on_call_module(self, node: fx.Node) -> None:
        mod = self.modules[node.target]
        for mtype in reversed(list(MODULE_HANDLERS)):
            if isinstance(mod, mtype):
                data = [a for a in node.args if isinstance(a, fx.Node) and self.value.get(a.name) is not _NOT_TENSOR]
                layer = MODULE_HANDLERS[mtype](self, node, mod, [self.operand(node, a) for a in data])
                self.value[node.name] = layer.name
                return
        x = node.args[0] if node.args else None
        if isinstance(mod, _DROPPED_MODULES):
            self.alias(node, x)
        elif isinstance(mod, nn.Conv2d):
            self._conv(node, mod)
        elif isinstance(mod, nn.Linear):
            w = {"weight": _np(mod.weight)}
            if mod.bias is not None:
                w["bias"] = _np(mod.bias)
            self.emit(node, LayerKind.LINEAR, [self.operand(node, x)], LinearParams(bias=mod.bias is not None), w)
        elif isinstance(mod, nn.BatchNorm2d):
            self._batchnorm(node, mod)
        elif type(mod) in _ACTIVATION_MODULES:
            self.emit(node, _ACTIVATION_MODULES[type(mod)], [self.operand(node, x)])
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            self._pool(node, mod, x)
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            self._adaptive_avg(node, x, mod.output_size)
        elif isinstance(mod, nn.Flatten):
            self._reshape(node, x)
        elif isinstance(mod, nn.ChannelShuffle):
            self.emit(node, LayerKind.CHANNEL_SHUFFLE, [self.operand(node, x)], ShuffleParams(groups=mod.groups))
        else:
            raise self.error(node, f"module type {type(mod).__name__} is not supported")

    def _conv(self, node: fx.Node, mod: nn.Conv2d) -> None:
        if _pair(mod.dilation) != (1, 1):
            raise self.error(
                node,
                f"dilation {mod.dilation} is not supported (only 1); the BitFusion target has no dilated convolution",
            )
        if mod.padding_mode != "zeros":
            raise self.error(node, f"padding_mode {mod.padding_mode!r} is not supported (only 'zeros')")
        padding = mod.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            else:  # 'same': symmetric padding exists for odd kernels at stride 1
                if any(k % 2 == 0 for k in mod.kernel_size):
                    raise self.error(node, "padding='same' with an even kernel is asymmetric and not supported")
                padding = tuple(k // 2 for k in mod.kernel_size)
        params = Conv2dParams(
            kernel=_pair(mod.kernel_size),
            stride=_pair(mod.stride),
            padding=_pair(padding),
            groups=mod.groups,
            bias=mod.bias is not None,
        )
        w = {"weight": _np(mod.weight)}
        if mod.bias is not None:
            w["bias"] = _np(mod.bias)
        self.emit(node, LayerKind.CONV2D, [self.operand(node, node.args[0])], params, w)

    def _batchnorm(self, node: fx.Node, mod: nn.BatchNorm2d) -> None:
        if not mod.track_running_stats or mod.running_mean is None:
            raise self.error(node, "batchnorm without running statistics is not supported")
        c = mod.num_features
        w = {
            "weight": _np(mod.weight) if mod.affine else np.ones(c, np.float32),
            "bias": _np(mod.bias) if mod.affine else np.zeros(c, np.float32),
            "running_mean": _np(mod.running_mean),
            "running_var": _np(mod.running_var),
        }
        self.emit(node, LayerKind.BATCHNORM, [self.operand(node, node.args[0])], BatchNormParams(eps=mod.eps), w)

    def _pool(self, node: fx.Node, mod: Any, x: Any) -> None:
        kind = LayerKind.MAXPOOL if isinstance(mod, nn.MaxPool2d) else LayerKind.AVGPOOL
        if kind is LayerKind.MAXPOOL and (_pair(mod.dilation) != (1, 1) or mod.return_indices):
            raise self.error(node, "max pooling with dilation or return_indices is not supported")
        if kind is LayerKind.AVGPOOL and (
            getattr(mod, "divisor_override", None) or (not mod.count_include_pad and _pair(mod.padding) != (0, 0))
        ):
            raise self.error(
                node,
                "avg pooling with divisor_override or count_include_pad=False and padding is not supported",
            )
        stride = mod.stride if mod.stride is not None else mod.kernel_size
        params = PoolParams(
            kernel=_pair(mod.kernel_size),
            stride=_pair(stride),
            padding=_pair(mod.padding),
            ceil=mod.ceil_mode,
        )
        self.emit(node, kind, [self.operand(node, x)], params)

    def _adaptive_avg(self, node: fx.Node, x: Any, output_size: Any) -> None:
        size = _pair(output_size) if output_size is not None else None
        if size == (1, 1):
            self.emit(node, LayerKind.GLOBAL_AVGPOOL, [self.operand(node, x)])
            return
        src = self.operand(node, x)
        h, w = self.graph[src].output_shape[2], self.graph[src].output_shape[3]
        out = self.shape(node)
        oh, ow = out[2], out[3]
        if h % oh or w % ow:
            raise self.error(node, f"adaptive average pooling {h}x{w} -> {oh}x{ow} is not a uniform window")
        k = (h // oh, w // ow)
        self.emit(node, LayerKind.AVGPOOL, [src], PoolParams(kernel=k, stride=k))

    def _reshape(self, node: fx.Node, x: Any) -> None:
        src = self.operand(node, x)
        in_shape = self.graph[src].output_shape
        out = self.shape(node)
        if out.rank != 2 and out.rank != 4 and out.rank != 3:
            raise self.error(node, f"reshape to rank {out.rank} is not supported outside the channel-shuffle pattern")
        kind = LayerKind.FLATTEN if out.rank == 2 and out[0] == in_shape[0] else LayerKind.RESHAPE
        if out == in_shape:
            self.value[node.name] = src
            return
        self.emit(node, kind, [src])

    def _global_mean(self, node: fx.Node, x: Any, dims: Any, keepdim: bool) -> None:
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        src = self.operand(node, x)
        rank = self.graph[src].output_shape.rank
        if rank != 4 or sorted(d % rank for d in dims) != [2, 3]:
            raise self.error(node, f"mean over dims {dims} is not supported (only the spatial dims (2, 3))")
        self.emit(node, LayerKind.GLOBAL_AVGPOOL, [src])

    def _binary(self, node: fx.Node, kind: LayerKind, a: Any, b: Any) -> None:
        self.emit(node, kind, [self.operand(node, a), self.operand(node, b)])

    def on_call_function(self, node: fx.Node) -> None:
        fn, args, kw = node.target, node.args, node.kwargs
        if node.meta.get("tensor_meta") is None or not hasattr(node.meta.get("tensor_meta"), "shape"):
            # Non-tensor values (x.size()[i], arithmetic on sizes) only feed shape arguments.
            self.value[node.name] = _NOT_TENSOR
            return
        if fn in _ACTIVATION_FUNCTIONS:
            self.emit(node, _ACTIVATION_FUNCTIONS[fn], [self.operand(node, args[0])])
        elif fn in _DROPPED_FUNCTIONS:
            self.alias(node, args[0])
        elif fn in _ADD:
            if kw.get("alpha", 1) != 1:
                raise self.error(node, "torch.add with alpha != 1 is not supported")
            self._binary(node, LayerKind.ADD, args[0], args[1] if len(args) > 1 else kw.get("other"))
        elif fn in _MUL:
            self._binary(node, LayerKind.MUL, args[0], args[1] if len(args) > 1 else kw.get("other"))
        elif fn is torch.cat or fn is torch.concat:
            tensors = args[0]
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            self.emit(node, LayerKind.CONCAT, [self.operand(node, t) for t in tensors], ConcatParams(axis=dim))
        elif fn in (torch.flatten, torch.reshape):
            self._reshape(node, args[0])
        elif fn is F.adaptive_avg_pool2d:
            self._adaptive_avg(node, args[0], args[1] if len(args) > 1 else kw.get("output_size"))
        elif fn in (F.avg_pool2d, F.max_pool2d, torch.max_pool2d):
            self._functional_pool(node)
        elif fn is torch.mean:
            self._global_mean(node, args[0], args[1] if len(args) > 1 else kw.get("dim"), kw.get("keepdim", False))
        elif fn in (F.channel_shuffle, getattr(torch, "channel_shuffle", None)):
            self.emit(node, LayerKind.CHANNEL_SHUFFLE, [self.operand(node, args[0])], ShuffleParams(groups=args[1]))
        else:
            raise self.error(node, "function is not supported")

    def _functional_pool(self, node: fx.Node) -> None:
        fn = node.target
        names = ["input", "kernel_size", "stride", "padding"]
        bound = dict(zip(names, node.args))
        bound.update({k: v for k, v in node.kwargs.items() if k in names})
        kernel = bound["kernel_size"]
        stride = bound.get("stride") or kernel
        ceil = node.kwargs.get("ceil_mode", False)
        kind = LayerKind.MAXPOOL if fn in (F.max_pool2d, torch.max_pool2d) else LayerKind.AVGPOOL
        params = PoolParams(
            kernel=_pair(kernel), stride=_pair(stride), padding=_pair(bound.get("padding", 0)), ceil=ceil
        )
        self.emit(node, kind, [self.operand(node, bound["input"])], params)

    def on_call_method(self, node: fx.Node) -> None:
        name, args, kw = node.target, node.args, node.kwargs
        if node.meta.get("tensor_meta") is None or not hasattr(node.meta.get("tensor_meta"), "shape"):
            self.value[node.name] = _NOT_TENSOR  # x.size(), x.dim(): shape arguments only
            return
        if name in _ACTIVATION_METHODS:
            self.emit(node, _ACTIVATION_METHODS[name], [self.operand(node, args[0])])
        elif name in ("contiguous", "clone"):
            self.alias(node, args[0])
        elif name in ("view", "reshape", "flatten"):
            self._reshape(node, args[0])
        elif name == "mean":
            self._global_mean(node, args[0], args[1] if len(args) > 1 else kw.get("dim"), kw.get("keepdim", False))
        elif name in ("add", "add_"):
            self._binary(node, LayerKind.ADD, args[0], args[1])
        elif name in ("mul", "mul_"):
            self._binary(node, LayerKind.MUL, args[0], args[1])
        else:
            raise self.error(node, "tensor method is not supported")


class _ShapeRecorder(fx.Interpreter):
    """Run the traced module once and record each tensor value's metadata in ``node.meta["tensor_meta"]``
    (what torch's ShapeProp does, with errors that name the fx node and the model line)."""

    def __init__(self, gm: fx.GraphModule, model_name: str, input_shape: list[int]) -> None:
        super().__init__(gm)
        self.extra_traceback = False  # our error already names the node and the model line
        self.model_name = model_name
        self.input_shape = input_shape

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as exc:
            raise ImportErrorIR(
                f"running {self.model_name} on an input of shape {self.input_shape} failed at {describe(n)}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        if isinstance(result, torch.Tensor):
            n.meta["tensor_meta"] = _extract_tensor_metadata(result)
        return result


def trace(model: nn.Module, tracer: fx.Tracer | None = None) -> fx.GraphModule:
    """Symbolically trace ``model`` (stack traces recorded so errors can name the model's line)."""
    tracer = tracer or fx.Tracer()
    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        raise ImportErrorIR(f"torch.fx could not trace {type(model).__name__}: {type(exc).__name__}: {exc}") from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def import_model(
    model: nn.Module,
    input_shape: Sequence[int],
    name: str | None = None,
    with_weights: bool = True,
    tracer: fx.Tracer | None = None,
) -> LayerGraph:
    """Trace ``model`` on an input of ``input_shape`` and return its LayerGraph (model left unchanged).

    Shapes come from ``ShapeProp`` on a random input in eval mode; weights are copied as float32 numpy
    arrays unless ``with_weights`` is false.
    """
    gm = trace(model, tracer)
    was_training = [m.training for m in model.modules()]
    model.eval()
    gm.eval()
    try:
        example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            _ShapeRecorder(gm, type(model).__name__, list(input_shape)).run(example)
    finally:
        for m, flag in zip(model.modules(), was_training):
            m.training = flag
    return FxImporter(gm, name or type(model).__name__, with_weights=with_weights).run()
