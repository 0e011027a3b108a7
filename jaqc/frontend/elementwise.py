"""Element-wise expressions of one tensor, and their recognition as the IR's activation kinds.

The IR has no layers for arithmetic with Python constants, but hand-written activations are made of it:
``x * F.relu6(x + 3) / 6`` is hardswish, ``torch.clamp(x, 0, 6)`` is relu6, ``x * torch.sigmoid(x)`` is
silu. The importer keeps such values pending as an :class:`Expr` (a small tree over one IR tensor, the
*base*) and, where a layer needs the value, :func:`recognise` names the activation kind the tree computes
by evaluating it in float64 on probe points spanning every breakpoint of the candidates, whatever the
spelling (``x / 6 * F.hardtanh(3 + x, 0, 6)`` is hardswish as well). A tree that computes none of them is
an error that names the fx node and the expression.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F

from jaqc.ir import LayerKind

#: Binary operators of expressions and their text form.
BINARY_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3}

#: The kinds a single-tensor expression may turn out to be, with their float64 reference functions and the
#: spelling suggested in errors. IDENTITY means "the base tensor itself" (``x * 1``, ``x + 0``).
CANDIDATES: dict[LayerKind, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    LayerKind.IDENTITY: (lambda t: t, "x"),
    LayerKind.RELU: (F.relu, "F.relu(x) or torch.clamp(x, min=0)"),
    LayerKind.RELU6: (F.relu6, "F.relu6(x), torch.clamp(x, 0, 6) or F.hardtanh(x, 0, 6)"),
    LayerKind.HARDSWISH: (F.hardswish, "F.hardswish(x) or x * F.relu6(x + 3) / 6"),
    LayerKind.HARDSIGMOID: (F.hardsigmoid, "F.hardsigmoid(x) or F.relu6(x + 3) / 6"),
    LayerKind.SILU: (F.silu, "F.silu(x) or x * torch.sigmoid(x)"),
    LayerKind.SIGMOID: (torch.sigmoid, "torch.sigmoid(x)"),
}

#: What errors about unsupported element-wise arithmetic suggest.
SUPPORTED_SPELLINGS = (
    "arithmetic with Python constants and clamps is imported only where it spells an activation the IR has: "
    "x * F.relu6(x + 3) / 6 (hardswish), F.relu6(x + 3) / 6 (hardsigmoid), x * torch.sigmoid(x) (silu), "
    "torch.clamp(x, 0, 6) / F.hardtanh(x, 0, 6) (relu6), torch.clamp(x, min=0) (relu); fold any other scale "
    "or offset into the weights of the neighbouring conv, linear or batchnorm"
)

#: Float64 probe points: a fine grid over every breakpoint (-3, 0, 3, 6) plus far-away values.
_PROBE = torch.cat(
    [
        torch.linspace(-12.0, 12.0, 2401, dtype=torch.float64),
        torch.tensor([-1e4, -1e2, -30.0, 30.0, 1e2, 1e4], dtype=torch.float64),
    ]
)
#: Agreement needed to call an expression a kind: relative 1e-7 is below float32 resolution, so
#: ``* 0.16666667`` counts as ``/ 6`` (they round to the same float32) but ``* 0.1667`` does not.
_RTOL = 1e-7
#: Agreement that earns a "close to <kind>" hint in the error.
_HINT_RTOL = 1e-2

_ACT_FUNCTIONS: dict[LayerKind, Callable[[torch.Tensor], torch.Tensor]] = {
    kind: fn for kind, (fn, _) in CANDIDATES.items() if kind is not LayerKind.IDENTITY
}


@dataclass(frozen=True, eq=False)
class Expr:
    """A value computed element-wise from the IR tensor ``base`` that the importer has not emitted yet.

    ``op`` is ``base`` (the tensor itself), ``add``/``sub``/``mul``/``div`` (``args`` two operands, each an
    Expr over the same base or a Python number), ``neg`` (one operand), ``clamp`` (``args`` = operand, low,
    high; a bound may be None) or ``act`` (``args`` = operand; ``kind`` the activation). ``node`` is the fx
    node computing the value (None for ``base``); ``label`` is how the model spelled it (``relu6``,
    ``torch.clamp``) for error messages.
    """

    op: str
    args: tuple[Any, ...]
    base: str
    node: fx.Node | None = None
    kind: LayerKind | None = None
    label: str = ""

    @staticmethod
    def of(base: str) -> Expr:
        """The base tensor itself."""
        return Expr("base", (), base)

    def nodes(self) -> Iterator[fx.Node]:
        """Every fx node of the tree (root first)."""
        if self.node is not None:
            yield self.node
        for a in self.args:
            if isinstance(a, Expr):
                yield from a.nodes()

    def constants(self) -> list[float]:
        """The Python numbers the tree's arithmetic uses, root first."""
        found: list[float] = []
        if self.op in BINARY_SYMBOLS or self.op == "neg":
            found += [a for a in self.args if not isinstance(a, Expr)]
        for a in self.args:
            if isinstance(a, Expr):
                found += a.constants()
        return found


def number(value: float) -> str:
    """``3`` for 3.0, ``0.16666667`` for 1/6."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.8g}"


def render(expr: Any, base_name: str = "x") -> str:
    """The expression as Python-like text, ``x * relu6(x + 3) / 6``."""
    if not isinstance(expr, Expr):
        return number(expr)
    if expr.op == "base":
        return base_name
    if expr.op == "act":
        return f"{expr.label or expr.kind}({render(expr.args[0], base_name)})"
    if expr.op == "clamp":
        x, low, high = expr.args
        bounds = ", ".join(f"{k}={number(v)}" for k, v in (("min", low), ("max", high)) if v is not None)
        return f"{expr.label or 'clamp'}({render(x, base_name)}, {bounds})"
    if expr.op == "neg":
        return f"-{_operand(expr.args[0], 3, base_name, right=False)}"
    prec = _PRECEDENCE[expr.op]
    left = _operand(expr.args[0], prec, base_name, right=False)
    right = _operand(expr.args[1], prec, base_name, right=expr.op in ("sub", "div"))
    return f"{left} {BINARY_SYMBOLS[expr.op]} {right}"


def _operand(expr: Any, parent: int, base_name: str, right: bool) -> str:
    text = render(expr, base_name)
    prec = _PRECEDENCE.get(expr.op, 4) if isinstance(expr, Expr) else (4 if expr >= 0 else 3)
    return f"({text})" if prec < parent or (right and prec == parent) else text


def evaluate(expr: Any, t: torch.Tensor) -> torch.Tensor:
    """The expression's value when its base is ``t``."""
    if not isinstance(expr, Expr):
        return torch.full_like(t, float(expr))
    op, args = expr.op, expr.args
    if op == "base":
        return t
    if op == "act":
        return _ACT_FUNCTIONS[expr.kind](evaluate(args[0], t))  # type: ignore[index]
    if op == "clamp":
        return torch.clamp(evaluate(args[0], t), min=args[1], max=args[2])
    if op == "neg":
        return -evaluate(args[0], t)
    a, b = evaluate(args[0], t), evaluate(args[1], t)
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    return a * b if op == "mul" else a / b


def _distance(values: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest error relative to ``max(1, |ref|)`` (NaN or infinite counts as far)."""
    err = (values - ref).abs() / ref.abs().clamp_min(1.0)
    if not torch.isfinite(err).all():
        return float("inf")
    return float(err.max())


def recognise(expr: Expr) -> LayerKind | None:
    """The kind ``expr`` computes from its base (IDENTITY for the base itself), or None."""
    with torch.no_grad():
        values = evaluate(expr, _PROBE)
        for kind, (fn, _) in CANDIDATES.items():
            if _distance(values, fn(_PROBE)) <= _RTOL:
                return kind
    return None


def near_miss(expr: Expr) -> LayerKind | None:
    """The kind ``expr`` almost computes (within 1 %), for an error's hint; None if none is close."""
    with torch.no_grad():
        values = evaluate(expr, _PROBE)
        best = min(CANDIDATES, key=lambda k: _distance(values, CANDIDATES[k][0](_PROBE)))
        return best if _distance(values, CANDIDATES[best][0](_PROBE)) <= _HINT_RTOL else None
