"""torch.fx importer: trace a CNN, propagate shapes, and translate fx nodes into a :class:`LayerGraph`.

Each IR layer is named after its module path (``layer1.0.conv1``) when it comes from a module call, and
after its fx node name (``add_1``) otherwise; ``Layer.source`` keeps both. Dropout, ``nn.Identity``,
``.contiguous()`` and slices that keep the whole tensor are dropped (their consumers read their input).

Arithmetic with Python constants, clamps and gates are kept pending (:mod:`jaqc.frontend.elementwise`)
until a layer reads them, then become the activation they spell: ``x * F.relu6(x + 3) / 6`` is hardswish,
``F.relu6(x + 3) / 6`` hardsigmoid, ``x * torch.sigmoid(x)`` silu, ``torch.clamp(x, 0, 6)`` and
``F.hardtanh(x, 0, 6)`` relu6, ``torch.clamp(x, min=0)`` relu. The channel shuffle is recognised in its
``view -> transpose/permute -> [contiguous] -> view/reshape/flatten`` spellings. Anything else the importer
does not know is an :class:`ImportErrorIR` naming the fx node, its op and target, the module path and the
model line, and where there is one, the spelling that is supported.
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
from attrs import frozen
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
    SliceParams,
    Source,
)
from jaqc.ir.errors import IRError

from .elementwise import CANDIDATES, SUPPORTED_SPELLINGS, Expr, near_miss, number, recognise, render
from .errors import ImportErrorIR, describe, module_path

#: Marker for fx values that are not tensors (sizes, ints): they may feed shape arguments only.
_NOT_TENSOR = object()


@frozen
class _Split:
    """A channel split (chunk/split) not emitted yet: its pieces become slice layers where indexed."""

    source: str
    axis: int
    bounds: tuple[tuple[int, int], ...]


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
    torch.relu_: LayerKind.RELU,
    F.relu6: LayerKind.RELU6,
    F.hardswish: LayerKind.HARDSWISH,
    F.hardsigmoid: LayerKind.HARDSIGMOID,
    F.silu: LayerKind.SILU,
    torch.sigmoid: LayerKind.SIGMOID,
    F.sigmoid: LayerKind.SIGMOID,
}
_ACTIVATION_METHODS: dict[str, LayerKind] = {
    "relu": LayerKind.RELU,
    "relu_": LayerKind.RELU,
    "sigmoid": LayerKind.SIGMOID,
    "sigmoid_": LayerKind.SIGMOID,
}
#: Activations that, as the gate of ``x * gate(x)``, are kept pending so the product can become one layer
#: (``x * torch.sigmoid(x)`` is silu, ``x * F.hardsigmoid(x)`` hardswish).
_GATES = (LayerKind.SIGMOID, LayerKind.HARDSIGMOID)
_DROPPED_MODULES = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_DROPPED_FUNCTIONS = {F.dropout, F.dropout2d, torch.dropout}
_ARITH_FUNCTIONS: dict[Any, str] = {
    operator.add: "add",
    operator.iadd: "add",
    torch.add: "add",
    operator.sub: "sub",
    operator.isub: "sub",
    torch.sub: "sub",
    torch.subtract: "sub",
    operator.mul: "mul",
    operator.imul: "mul",
    torch.mul: "mul",
    torch.multiply: "mul",
    operator.truediv: "div",
    operator.itruediv: "div",
    torch.div: "div",
    torch.divide: "div",
    torch.true_divide: "div",
}
_ARITH_METHODS: dict[str, str] = {
    **{name: "add" for name in ("add", "add_")},
    **{name: "sub" for name in ("sub", "sub_", "subtract", "subtract_")},
    **{name: "mul" for name in ("mul", "mul_", "multiply", "multiply_")},
    **{name: "div" for name in ("div", "div_", "divide", "divide_", "true_divide", "true_divide_")},
}
_MUL_FUNCTIONS = [fn for fn, op in _ARITH_FUNCTIONS.items() if op == "mul"]
_MUL_METHODS = [name for name, op in _ARITH_METHODS.items() if op == "mul"]
_NEG_FUNCTIONS = {operator.neg, torch.neg, torch.negative}
_NEG_METHODS = {"neg", "neg_", "negative", "negative_"}
#: Clamp spellings -> which bounds they take (positionally after the input, or by keyword).
_CLAMP_FUNCTIONS: dict[Any, tuple[str, ...]] = {
    torch.clamp: ("min", "max"),
    torch.clip: ("min", "max"),
    torch.clamp_min: ("min",),
    torch.clamp_max: ("max",),
}
_CLAMP_METHODS: dict[str, tuple[str, ...]] = {
    **{name: ("min", "max") for name in ("clamp", "clamp_", "clip", "clip_")},
    **{name: ("min",) for name in ("clamp_min", "clamp_min_")},
    **{name: ("max",) for name in ("clamp_max", "clamp_max_")},
}
_HARDTANH_FUNCTIONS = {F.hardtanh, F.hardtanh_}
_SPLIT_FUNCTIONS = {torch.chunk, torch.split, torch.tensor_split, torch.unbind}
_SPLIT_METHODS = {"chunk", "split", "split_with_sizes", "tensor_split", "unbind"}
_TRANSPOSE_FUNCTIONS = {torch.transpose, torch.swapaxes, torch.swapdims}
_TRANSPOSE_METHODS = {"transpose", "swapaxes", "swapdims"}
_PAD_MODULES = (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)

#: How a channel shuffle may be written (quoted by errors about rank-5 reshapes and transposes).
SHUFFLE_SPELLINGS = (
    "a channel shuffle is recognised as x.view(n, g, c // g, h, w) (or reshape) -> x.transpose(1, 2), "
    "torch.transpose(x, 1, 2) or x.permute(0, 2, 1, 3, 4) -> optional .contiguous() -> x.view(n, c, h, w), "
    "x.reshape(n, c, h, w) or torch.flatten(x, 1, 2); nn.ChannelShuffle(g) and F.channel_shuffle(x, g) work too"
)
#: What errors about channel splits and slices suggest.
SLICE_SPELLINGS = (
    "the IR slices channels only: x.chunk(n, dim=1), torch.split(x, sizes, dim=1) (indexed pieces) and "
    "x[:, a:b] become slice layers; other dimensions, steps and unbind have no IR form"
)

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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_method(node: fx.Node | None, *names: str) -> bool:
    return node is not None and node.op == "call_method" and node.target in names


def _is_function(node: fx.Node | None, *functions: Any) -> bool:
    return node is not None and node.op == "call_function" and node.target in functions


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    """Argument ``index`` of a call (0 = the tensor for methods) or its keyword ``name``."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _permutation(node: fx.Node, rank: int) -> tuple[int, ...] | None:
    """The dimension order a transpose/permute/swapaxes node produces on a rank-``rank`` tensor, or None."""
    dims: list[int]
    if _is_method(node, *_TRANSPOSE_METHODS) or _is_function(node, *_TRANSPOSE_FUNCTIONS):
        d0, d1 = _arg(node, 1, "dim0"), _arg(node, 2, "dim1")
        if d0 is None or d1 is None:
            d0, d1 = _arg(node, 1, "axis0"), _arg(node, 2, "axis1")
        if not isinstance(d0, int) or not isinstance(d1, int):
            return None
        dims = list(range(rank))
        dims[d0 % rank], dims[d1 % rank] = dims[d1 % rank], dims[d0 % rank]
    elif _is_method(node, "permute") or _is_function(node, torch.permute):
        given = node.args[1:] if len(node.args) > 1 else (node.kwargs.get("dims"),)
        if len(given) == 1 and isinstance(given[0], (tuple, list)):
            given = tuple(given[0])
        if len(given) != rank or not all(isinstance(d, int) for d in given):
            return None
        dims = [d % rank for d in given]
    else:
        return None
    return tuple(dims)


def _call_text(node: fx.Node) -> str:
    """``transpose(1, 3)`` for a call node (arguments after the tensor)."""
    target = getattr(node.target, "__name__", None) or str(node.target)
    args = [repr(a) if not isinstance(a, fx.Node) else a.name for a in node.args[1:]]
    args += [f"{k}={v!r}" for k, v in node.kwargs.items()]
    return f"{target}({', '.join(args)})"


def _slice_text(index: Any) -> str:
    items = index if isinstance(index, tuple) else (index,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            text = ("" if item.start is None else str(item.start)) + ":" + ("" if item.stop is None else str(item.stop))
            parts.append(text + ("" if item.step is None else f":{item.step}"))
        else:
            parts.append("..." if item is Ellipsis else repr(item))
    return f"[{', '.join(parts)}]"


class FxImporter:
    """Translate one traced ``GraphModule`` (after ShapeProp) into a LayerGraph."""

    def __init__(self, gm: fx.GraphModule, name: str, with_weights: bool = True) -> None:
        self.gm = gm
        self.graph = LayerGraph(name)
        self.with_weights = with_weights
        self.modules = dict(gm.named_modules())
        # fx node name -> IR layer name | pending Expr (element-wise, not emitted yet) | _NOT_TENSOR
        self.value: dict[str, Any] = {}
        self.order = {node: i for i, node in enumerate(gm.graph.nodes)}
        self.shuffles, self.skipped, self.shuffle_misses = self._find_shuffles()
        self.module_uses: dict[str, int] = {}
        self._module_nodes: dict[str, set[fx.Node]] | None = None

    # --- helpers ---------------------------------------------------------------------------------------
    def error(self, node: fx.Node, msg: str) -> ImportErrorIR:
        return ImportErrorIR(f"{describe(node)}: {msg}")

    def shape(self, node: fx.Node) -> Shape:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise self.error(node, "has no tensor shape (ShapeProp did not reach it)")
        return Shape(tuple(meta.shape))

    def raw(self, node: fx.Node, arg: Any) -> Any:
        """An operand as it stands: an IR layer name, a pending :class:`Expr`, or a Python number."""
        if _is_number(arg):
            return float(arg)
        if not isinstance(arg, fx.Node):
            raise self.error(node, f"operand {arg!r} is neither a tensor nor a number")
        value = self.value.get(arg.name)
        if value is _NOT_TENSOR or value is None:
            raise self.error(node, f"operand '{arg.name}' is not a tensor the importer translated (a constant?)")
        if isinstance(value, _Split):
            raise self.error(node, f"operand '{arg.name}' is the tuple of a split; index it (pieces[0]) first")
        return value

    def operand(self, node: fx.Node, arg: Any) -> str:
        """The IR layer holding a tensor operand (pending element-wise values are emitted now)."""
        if not isinstance(arg, fx.Node):
            raise self.error(node, f"operand {arg!r} is a Python constant; only tensor operands are supported here")
        value = self.raw(node, arg)
        return self.materialize(value) if isinstance(value, Expr) else value

    def layer_name(self, node: fx.Node, module: str | None = None) -> str:
        """A fresh layer name: the module path for a module call (``module`` for a fused module's body, on
        its first use), the fx node name otherwise."""
        module = str(node.target) if node.op == "call_module" else module
        base = module if module else node.name
        if module:
            uses = self.module_uses.get(module, 0)
            self.module_uses[module] = uses + 1
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
        module: str | None = None,
    ) -> Layer:
        """Create, add and bind the layer for ``node``."""
        try:
            layer = Layer(
                name=self.layer_name(node, module),
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
        """``node`` computes its operand unchanged (a pending value stays pending)."""
        value = self.raw(node, arg)
        if not isinstance(value, (str, Expr)):
            raise self.error(node, f"operand {arg!r} is a Python constant; only tensor operands are supported")
        self.value[node.name] = value

    def _check_inplace(self, node: fx.Node, what: str) -> None:
        """An in-place op is translated as the value it returns; refuse it where a later node reads the
        tensor it overwrote (that node would see the old value in the IR)."""
        target = node.args[0] if node.args else None
        if not isinstance(target, fx.Node):
            return
        later = [
            u
            for u in target.users
            if u is not node and self.order[u] > self.order[node] and (u.op == "output" or "tensor_meta" in u.meta)
        ]
        if later:
            raise self.error(
                node,
                f"in-place {what} overwrites '{target.name}', which fx node '{later[0].name}' reads afterwards; "
                f"the importer translates values, not mutations: use the out-of-place form",
            )

    # --- channel shuffle: view(n,g,c/g,h,w) -> transpose(1,2) -> [contiguous] -> view/reshape/flatten(n,c,h,w)
    def _find_shuffles(self) -> tuple[dict[str, tuple[fx.Node, int]], set[str], dict[str, str]]:
        """Find the channel-shuffle chains: {final node: (input node, groups)}, the nodes they cover, and for
        each rank-5 reshape that starts no chain, why (for the error)."""

        def sole_user(node: fx.Node) -> fx.Node | None:
            return next(iter(node.users)) if len(node.users) == 1 else None

        found: dict[str, tuple[fx.Node, int]] = {}
        skipped: set[str] = set()
        misses: dict[str, str] = {}
        for view in self.gm.graph.nodes:
            is_view = _is_method(view, "view", "reshape") or _is_function(view, torch.reshape)
            if not is_view or not isinstance(view.args[0], fx.Node):
                continue
            meta_in, meta_out = view.args[0].meta.get("tensor_meta"), view.meta.get("tensor_meta")
            if meta_in is None or meta_out is None or len(meta_in.shape) != 4 or len(meta_out.shape) != 5:
                continue
            n, c, h, w = meta_in.shape
            g = meta_out.shape[1]
            if tuple(meta_out.shape) != (n, g, c // g, h, w):
                misses[view.name] = (
                    f"it gives {list(meta_out.shape)} from {list(meta_in.shape)}, not (n, g, c // g, h, w)"
                )
                continue
            swap = sole_user(view)
            perm = _permutation(swap, 5) if swap is not None else None
            if swap is None:
                misses[view.name] = f"its result has {len(view.users)} users where the pattern has one transpose"
                continue
            if perm != (0, 2, 1, 3, 4):
                what = "is not a transpose or permute" if perm is None else f"orders the dims {perm}"
                misses[view.name] = (
                    f"its user fx node '{swap.name}' ({_call_text(swap)}) {what}, not transpose(1, 2) / "
                    "permute(0, 2, 1, 3, 4)"
                )
                continue
            chain = [view, swap]
            final = sole_user(swap)
            while _is_method(final, "contiguous"):
                chain.append(final)
                final = sole_user(final)
            back = _is_method(final, "view", "reshape", "flatten") or _is_function(final, torch.flatten, torch.reshape)
            meta_fin = final.meta.get("tensor_meta") if final is not None else None
            if back and meta_fin is not None and tuple(meta_fin.shape) == tuple(meta_in.shape):
                found[final.name] = (view.args[0], g)
                skipped.update(x.name for x in chain)
            else:
                misses[view.name] = (
                    f"the transposed value (fx node '{chain[-1].name}') is not reshaped back to "
                    f"{list(meta_in.shape)} by its only user"
                )
        return found, skipped, misses

    # --- pending element-wise values --------------------------------------------------------------------
    def expr(self, value: str | Expr) -> Expr:
        return value if isinstance(value, Expr) else Expr.of(value)

    def pend(self, node: fx.Node, op: str, args: tuple[Any, ...], **kw: Any) -> None:
        """Bind ``node`` to a pending element-wise value over the base of its Expr operands."""
        base = next(a.base for a in args if isinstance(a, Expr))
        self.value[node.name] = Expr(op, args, base, node, **kw)

    def materialize(self, expr: Expr) -> str:
        """Emit the layer(s) computing a pending value and return the layer holding it."""
        if expr.op == "base":
            return expr.base
        assert expr.node is not None
        done = self.value.get(expr.node.name)
        if isinstance(done, str):  # emitted for an earlier reader
            return done
        kind = recognise(expr)
        node = expr.node
        if kind is LayerKind.IDENTITY:
            self.value[node.name] = expr.base
        elif kind is not None:
            self.emit(node, kind, [expr.base], module=self._fused_module(expr))
        elif expr.op == "act":
            self.emit(node, expr.kind, [self.materialize(expr.args[0])])  # type: ignore[arg-type]
        elif expr.op == "clamp" and expr.args[1] == 0 and expr.args[2] in (6, None):
            kind = LayerKind.RELU6 if expr.args[2] == 6 else LayerKind.RELU
            self.emit(node, kind, [self.materialize(expr.args[0])])
        elif expr.op in ("add", "mul") and all(isinstance(a, Expr) for a in expr.args):
            kind = LayerKind.ADD if expr.op == "add" else LayerKind.MUL
            self.emit(node, kind, [self.materialize(a) for a in expr.args])
        else:
            raise self._expr_error(expr)
        return self.value[node.name]

    def _expr_error(self, expr: Expr) -> ImportErrorIR:
        assert expr.node is not None
        text = render(expr)
        base = self.graph[expr.base]
        where = f"x is fx node '{base.source.fx_node}'" if base.source.fx_node else f"x is layer %{base.name}"
        if expr.op == "clamp":
            head = "clamp bounds other than [0, 6] (relu6) and [0, inf) (relu) are supported only inside a "
            head += "hand-written activation: "
        elif expr.op in ("sub", "div") and all(isinstance(a, Expr) for a in expr.args):
            verb = "subtracting" if expr.op == "sub" else "dividing"
            head = f"{verb} tensors is not supported (the IR has add and mul only): "
        else:
            consts = expr.constants()
            head = f"operand {number(consts[0])} is a Python constant: " if consts else ""
        msg = f"{head}{text} ({where}) is not an element-wise function the IR has"
        close = near_miss(expr)
        if close is not None:
            msg += f"; it is close to {close.value} but not equal: write {CANDIDATES[close][1]}"
        return self.error(expr.node, f"{msg}. {SUPPORTED_SPELLINGS[0].upper()}{SUPPORTED_SPELLINGS[1:]}")

    def _fused_module(self, expr: Expr) -> str | None:
        """The module whose whole forward is ``expr`` (a hand-written activation module such as
        ``HSwish``), so the fused layer is named like a module call; None when there is none."""
        root = module_path(expr.node)  # type: ignore[arg-type]
        if not root:
            return None
        base_module = self.graph[expr.base].source.module
        if base_module == root or base_module.startswith(root + "."):
            return None
        if self._module_nodes is None:
            self._module_nodes = {}
            for node in self.gm.graph.nodes:
                paths = {str(v[0]) for v in (node.meta.get("nn_module_stack") or {}).values()}
                if node.op == "call_module":
                    paths.add(str(node.target))
                for path in paths:
                    self._module_nodes.setdefault(path, set()).add(node)
        inside = {n for n in self._module_nodes.get(root, set()) if "tensor_meta" in n.meta}
        return root if inside and inside <= set(expr.nodes()) else None

    def _arith(self, node: fx.Node, op: str, a: Any, b: Any) -> None:
        """``a <op> b`` for tensors and Python numbers."""
        left, right = self.raw(node, a), self.raw(node, b)
        if not isinstance(left, (str, Expr)) and not isinstance(right, (str, Expr)):
            raise self.error(node, "arithmetic without a tensor operand is not supported")
        if isinstance(left, str) and isinstance(right, str) and op in ("add", "mul"):
            self.emit(node, LayerKind.ADD if op == "add" else LayerKind.MUL, [left, right])
            return
        if isinstance(left, (str, Expr)) and isinstance(right, (str, Expr)):
            le, re = self.expr(left), self.expr(right)
            if le.base != re.base:
                if op not in ("add", "mul"):
                    verb = "subtracting" if op == "sub" else "dividing"
                    raise self.error(node, f"{verb} two tensors is not supported (the IR has add and mul only)")
                kind = LayerKind.ADD if op == "add" else LayerKind.MUL
                self.emit(node, kind, [self.materialize(le), self.materialize(re)])
                return
            self.pend(node, op, (le, re))
            return
        args = tuple(self.expr(v) if isinstance(v, (str, Expr)) else v for v in (left, right))
        self.pend(node, op, args)

    def _arith_call(self, node: fx.Node, op: str) -> None:
        """``torch.add(x, y)``, ``x.div_(6)``, ``a / b``: checks the extra arguments, then :meth:`_arith`."""
        extra = {k: v for k, v in node.kwargs.items() if k not in ("other", "input")}
        if extra.get("alpha", 1) != 1:
            raise self.error(node, f"torch.{op} with alpha != 1 is not supported (write x {'+-'[op == 'sub']} y * a)")
        if extra.get("rounding_mode") is not None:
            raise self.error(node, "division with a rounding_mode is not supported")
        a = node.args[0] if node.args else node.kwargs.get("input")
        self._arith(node, op, a, _arg(node, 1, "other"))

    def _activation(self, node: fx.Node, kind: LayerKind, arg: Any) -> None:
        """An activation; kept pending where it reads a pending value or gates its own input."""
        value = self.raw(node, arg)
        label = getattr(node.target, "__name__", None) or str(node.target)
        if node.op == "call_module":
            label = type(self.modules[node.target]).__name__
        if isinstance(value, Expr) or (kind in _GATES and self._gates_own_input(node, arg)):
            self.pend(node, "act", (self.expr(value),), kind=kind, label=label)
        elif isinstance(value, str):
            self.emit(node, kind, [value])
        else:
            raise self.error(node, f"operand {arg!r} is a Python constant; only tensor operands are supported")

    def _gates_own_input(self, node: fx.Node, arg: Any) -> bool:
        """``node`` = gate(arg) is read only by ``arg * node`` (so the product may be one activation)."""
        if len(node.users) != 1:
            return False
        user = next(iter(node.users))
        is_mul = _is_function(user, *_MUL_FUNCTIONS) or _is_method(user, *_MUL_METHODS)
        if not is_mul:
            return False
        operands = [user.args[0] if user.args else None, _arg(user, 1, "other")]
        if node not in operands:
            return False
        other = operands[1] if operands[0] is node else operands[0]
        same = isinstance(other, fx.Node) and self.value.get(other.name, other) == self.value.get(arg.name, arg)
        return other is arg or same

    def _clamp_call(self, node: fx.Node, bounds: Any, label: str) -> None:
        """A clamp function or method: its bound arguments (named ``bounds``, after the operand) to :meth:`_clamp`."""
        given = {b: _arg(node, i + 1, b) for i, b in enumerate(bounds)}
        self._clamp(node, node.args[0], given.get("min"), given.get("max"), label)

    def _clamp(self, node: fx.Node, arg: Any, low: Any, high: Any, label: str) -> None:
        """``torch.clamp``/``clamp_min``/``clamp_max``/``F.hardtanh``/``nn.Hardtanh`` with constant bounds."""
        for bound in (low, high):
            if bound is not None and not _is_number(bound):
                raise self.error(node, f"{label} bounds must be Python numbers, got {bound!r}")
        low = None if low is None else float(low)
        high = None if high is None or high == float("inf") else float(high)
        value = self.raw(node, arg)
        if isinstance(value, str) and low == 0 and high in (6, None):
            self.emit(node, LayerKind.RELU6 if high == 6 else LayerKind.RELU, [value])
        elif isinstance(value, (str, Expr)):
            self.pend(node, "clamp", (self.expr(value), low, high), label=label)
        else:
            raise self.error(node, f"operand {arg!r} is a Python constant; only tensor operands are supported")

    def _getitem(self, node: fx.Node) -> None:
        """``x[...]``: a piece of a channel split, or a channel slice ``x[:, a:b]``, becomes a slice layer; a
        slice that keeps the whole tensor is dropped; any other indexing is an error."""
        src, index = node.args[0], node.args[1]
        split = self.value.get(src.name) if isinstance(src, fx.Node) else None
        if isinstance(split, _Split):
            if not isinstance(index, int) or not -len(split.bounds) <= index < len(split.bounds):
                raise self.error(node, f"piece {index!r} of a split into {len(split.bounds)} is not supported")
            start, end = split.bounds[index]
            self.emit(node, LayerKind.SLICE, [split.source], SliceParams(axis=split.axis, start=start, end=end))
            return
        meta = src.meta.get("tensor_meta") if isinstance(src, fx.Node) else None
        if meta is None or not hasattr(meta, "shape"):
            raise self.error(node, "indexing a value that is not a tensor is not supported")
        items = list(index) if isinstance(index, tuple) else [index]
        if Ellipsis in items:
            at = items.index(Ellipsis)
            items[at : at + 1] = [slice(None)] * (len(meta.shape) - len(items) + 1)
        keeps = len(items) <= len(meta.shape) and all(
            isinstance(item, slice)
            and item.start in (None, 0)
            and item.step in (None, 1)
            and (item.stop is None or (isinstance(item.stop, int) and item.stop >= dim))
            for item, dim in zip(items, meta.shape)
        )
        if keeps:
            self.alias(node, src)
            return
        channel = self._channel_slice(items, tuple(meta.shape))
        if channel is not None:
            self.emit(node, LayerKind.SLICE, [self.operand(node, src)], SliceParams(axis=1, start=channel[0],
                                                                                  end=channel[1]))  # fmt: skip
            return
        raise self.error(
            node,
            f"indexing {src.name}{_slice_text(index)} turns {list(meta.shape)} into {list(self.shape(node))}; "
            f"{SLICE_SPELLINGS}",
        )

    @staticmethod
    def _channel_slice(items: list[Any], shape: tuple[int, ...]) -> tuple[int, int] | None:
        """``(start, end)`` when the index keeps every dimension whole except a step-1 range of the channels."""
        if len(shape) < 2 or not 2 <= len(items) <= len(shape) or not all(isinstance(i, slice) for i in items):
            return None
        whole = all(i.start in (None, 0) and i.step in (None, 1) and (i.stop is None or i.stop >= d)
                    for n, (i, d) in enumerate(zip(items, shape)) if n != 1)  # fmt: skip
        channels = items[1]
        if not whole or channels.step not in (None, 1):
            return None
        start, end, _ = channels.indices(shape[1])
        return (start, end) if 0 <= start < end <= shape[1] else None

    def _split(self, node: fx.Node, source: Any, dim: Any) -> None:
        """``x.chunk(n, dim=1)``, ``torch.split(x, sizes, dim=1)``: pieces of the channels (axis 1) only."""
        meta = node.meta.get("tensor_meta")
        pieces = list(meta) if isinstance(meta, (list, tuple)) else []
        if not isinstance(source, fx.Node) or not pieces or not all(hasattr(m, "shape") for m in pieces):
            raise self._split_error(node)
        rank = len(pieces[0].shape)
        if not isinstance(dim, int) or dim % rank != 1 or node.target in ("unbind", torch.unbind):
            raise self._split_error(node)
        bounds, start = [], 0
        for piece in pieces:
            bounds.append((start, start + int(piece.shape[1])))
            start += int(piece.shape[1])
        if any(end <= begin for begin, end in bounds):
            raise self._split_error(node)
        self.value[node.name] = _Split(self.operand(node, source), 1, tuple(bounds))

    def _split_error(self, node: fx.Node) -> ImportErrorIR:
        return self.error(node, f"splitting a tensor ({_call_text(node)}) is not supported: {SLICE_SPELLINGS}")

    def _transpose_error(self, node: fx.Node) -> ImportErrorIR:
        return self.error(node, f"{_call_text(node)} is supported only inside a channel shuffle: {SHUFFLE_SPELLINGS}")

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
        if getattr(mod, "inplace", False) is True and not isinstance(mod, _DROPPED_MODULES):
            self._check_inplace(node, f"{type(mod).__name__}(inplace=True)")
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
            self._activation(node, _ACTIVATION_MODULES[type(mod)], x)
        elif isinstance(mod, nn.Hardtanh):
            self._clamp(node, x, mod.min_val, mod.max_val, f"nn.Hardtanh({number(mod.min_val)}, {number(mod.max_val)})")
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            self._pool(node, mod, x)
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            self._adaptive_avg(node, x, mod.output_size)
        elif isinstance(mod, nn.Flatten):
            self._reshape(node, x)
        elif isinstance(mod, nn.ChannelShuffle):
            self.emit(node, LayerKind.CHANNEL_SHUFFLE, [self.operand(node, x)], ShuffleParams(groups=mod.groups))
        elif isinstance(mod, _PAD_MODULES):
            raise self.error(
                node,
                f"module type {type(mod).__name__} is not supported: the IR pads inside conv2d and pooling layers "
                "(symmetric zero padding); give the padding to the Conv2d (padding=k // 2) instead",
            )
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
        if out.rank == 5:
            why = self.shuffle_misses.get(node.name)
            raise self.error(
                node,
                f"reshape to rank 5 ({list(out)}) starts no channel shuffle"
                + (f": {why}" if why else "")
                + f". The IR's tensors have rank 2 to 4; {SHUFFLE_SPELLINGS}",
            )
        if out.rank not in (2, 3, 4):
            raise self.error(node, f"reshape to rank {out.rank} ({list(out)}) is not supported (only ranks 2 to 4)")
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

    def on_call_function(self, node: fx.Node) -> None:
        fn, args, kw = node.target, node.args, node.kwargs
        if fn in _SPLIT_FUNCTIONS:
            self._split(node, args[0] if args else kw.get("input"), args[2] if len(args) > 2 else kw.get("dim", 0))
            return
        if node.meta.get("tensor_meta") is None or not hasattr(node.meta.get("tensor_meta"), "shape"):
            # Non-tensor values (x.size()[i], arithmetic on sizes) only feed shape arguments.
            self.value[node.name] = _NOT_TENSOR
            return
        name = getattr(fn, "__name__", "")
        if kw.get("inplace") is True or (name.endswith("_") and not name.startswith("_")):
            self._check_inplace(node, f"{name}(inplace=True)" if kw.get("inplace") is True else name)
        if fn in _ACTIVATION_FUNCTIONS:
            self._activation(node, _ACTIVATION_FUNCTIONS[fn], args[0] if args else kw.get("input"))
        elif fn in _DROPPED_FUNCTIONS:
            self.alias(node, args[0])
        elif fn in _ARITH_FUNCTIONS:
            self._arith_call(node, _ARITH_FUNCTIONS[fn])
        elif fn in _NEG_FUNCTIONS:
            self.pend_neg(node, args[0])
        elif fn in _CLAMP_FUNCTIONS:
            self._clamp_call(node, _CLAMP_FUNCTIONS[fn], f"torch.{name}")
        elif fn in _HARDTANH_FUNCTIONS:
            low, high = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
            self._clamp(node, args[0], low, high, "F.hardtanh")
        elif fn is operator.getitem:
            self._getitem(node)
        elif fn is torch.cat or fn is torch.concat:
            tensors = args[0]
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            self.emit(node, LayerKind.CONCAT, [self.operand(node, t) for t in tensors], ConcatParams(axis=dim))
        elif fn in (torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze):
            self._reshape(node, args[0])
        elif fn is F.adaptive_avg_pool2d:
            self._adaptive_avg(node, args[0], args[1] if len(args) > 1 else kw.get("output_size"))
        elif fn in (F.avg_pool2d, F.max_pool2d, torch.max_pool2d):
            self._functional_pool(node)
        elif fn is torch.mean:
            self._global_mean(node, args[0], args[1] if len(args) > 1 else kw.get("dim"), kw.get("keepdim", False))
        elif fn in (F.channel_shuffle, getattr(torch, "channel_shuffle", None)):
            self.emit(node, LayerKind.CHANNEL_SHUFFLE, [self.operand(node, args[0])], ShuffleParams(groups=args[1]))
        elif fn in _TRANSPOSE_FUNCTIONS or fn is torch.permute:
            raise self._transpose_error(node)
        elif fn is F.pad:
            raise self.error(
                node,
                "F.pad is not supported: the IR pads inside conv2d and pooling layers (symmetric zero padding); "
                "give the padding to the Conv2d (padding=k // 2) instead",
            )
        else:
            raise self.error(node, "function is not supported")

    def pend_neg(self, node: fx.Node, arg: Any) -> None:
        value = self.raw(node, arg)
        if not isinstance(value, (str, Expr)):
            raise self.error(node, f"operand {arg!r} is a Python constant; only tensor operands are supported")
        self.pend(node, "neg", (self.expr(value),))

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
        if name in _SPLIT_METHODS:
            self._split(node, args[0], args[2] if len(args) > 2 else kw.get("dim", 0))
            return
        if node.meta.get("tensor_meta") is None or not hasattr(node.meta.get("tensor_meta"), "shape"):
            self.value[node.name] = _NOT_TENSOR  # x.size(), x.dim(): shape arguments only
            return
        if name.endswith("_"):
            self._check_inplace(node, f"x.{name}()")
        if name in _ACTIVATION_METHODS:
            self._activation(node, _ACTIVATION_METHODS[name], args[0])
        elif name in ("contiguous", "clone"):
            self.alias(node, args[0])
        elif name in ("view", "reshape", "flatten", "squeeze", "unsqueeze"):
            self._reshape(node, args[0])
        elif name == "mean":
            self._global_mean(node, args[0], args[1] if len(args) > 1 else kw.get("dim"), kw.get("keepdim", False))
        elif name in _ARITH_METHODS:
            self._arith_call(node, _ARITH_METHODS[name])
        elif name in _NEG_METHODS:
            self.pend_neg(node, args[0])
        elif name in _CLAMP_METHODS:
            self._clamp_call(node, _CLAMP_METHODS[name], name)
        elif name in _TRANSPOSE_METHODS or name == "permute":
            raise self._transpose_error(node)
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
        elif isinstance(result, (tuple, list)) and result and all(isinstance(r, torch.Tensor) for r in result):
            n.meta["tensor_meta"] = tuple(_extract_tensor_metadata(r) for r in result)  # a split's pieces
        return result


def trace(model: nn.Module, tracer: fx.Tracer | None = None, stack_traces: bool = True) -> fx.GraphModule:
    """Symbolically trace ``model``; with ``stack_traces`` every node records where the model created it, so
    errors can name the model's line (this costs seconds on a large model: :func:`import_model` records them
    only to report an error)."""
    tracer = tracer or fx.Tracer()
    tracer.record_stack_traces = stack_traces
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
    arrays unless ``with_weights`` is false. The trace records no stack traces; when translation fails, the
    model is traced again with them so that the error names the model's line.
    """
    try:
        return _import(model, input_shape, name, with_weights, tracer, stack_traces=False)
    except ImportErrorIR:  # the same tracer again (its leaf rules), now recording where each node comes from
        return _import(model, input_shape, name, with_weights, tracer, stack_traces=True)


def _import(
    model: nn.Module,
    input_shape: Sequence[int],
    name: str | None,
    with_weights: bool,
    tracer: fx.Tracer | None,
    stack_traces: bool,
) -> LayerGraph:
    gm = trace(model, tracer, stack_traces)
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
