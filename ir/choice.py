"""Supernet annotation: a *choice* layer holds candidate ops, each a small sub-graph, with probabilities.

A choice layer has one data input and one output. Each :class:`Candidate` is a self-contained
:class:`~jaqc.ir.graph.LayerGraph` with one ``input`` layer and one ``output`` layer whose shapes equal the
choice layer's input and output shapes. ``alpha`` is the candidate's probability (softmax of the
architecture logits); ``beta_w`` and ``beta_a`` are probability vectors over :attr:`Choice.bits` for the
candidate's weights and activations. All probabilities are optional (``None`` before a search assigns them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from .errors import IRError
from .types import LEGAL_BITS
from .values import text, to_int, to_list, to_real

if TYPE_CHECKING:
    from .graph import LayerGraph


def _probs(what: str):  # type: ignore[no-untyped-def]
    def convert(value: Any) -> tuple[float, ...] | None:
        return None if value is None else tuple(to_real(v, what, 0.0) for v in to_list(value, what))

    return convert


def _opt_probability(value: Any) -> float | None:
    return None if value is None else to_real(value, "candidate alpha", 0.0)


def _bits(value: Any) -> tuple[int, ...]:
    return tuple(to_int(v, "choice bits") for v in to_list(value, "choice bits"))


@frozen(eq=False)
class Candidate:
    """One candidate op of a choice layer: its op name (e.g. ``k3_e6``), sub-graph and probabilities."""

    op: str = field(converter=text("candidate op"))
    graph: LayerGraph
    alpha: float | None = field(default=None, converter=_opt_probability)
    beta_w: tuple[float, ...] | None = field(default=None, converter=_probs("candidate beta_w"))
    beta_a: tuple[float, ...] | None = field(default=None, converter=_probs("candidate beta_a"))


def _check_bits(_inst: object, _attr: object, value: tuple[int, ...]) -> None:
    if not value or any(b not in LEGAL_BITS for b in value) or list(value) != sorted(set(value)):
        raise IRError(f"choice bit candidates must be a sorted, non-empty subset of 2, 4, 8; got {value}")


def _check_candidates(_inst: object, _attr: object, value: tuple[Candidate, ...]) -> None:
    if not value:
        raise IRError("a choice layer needs at least one candidate")
    ops = [c.op for c in value]
    if len(set(ops)) != len(ops):
        raise IRError(f"choice candidate op names must be unique, got {ops}")


@frozen(eq=False)
class Choice:
    """The candidates of a choice layer and the bitwidths their β vectors range over."""

    candidates: tuple[Candidate, ...] = field(
        converter=lambda v: tuple(to_list(v, "choice candidates")), validator=_check_candidates
    )
    bits: tuple[int, ...] = field(default=LEGAL_BITS, converter=_bits, validator=_check_bits)

    def candidate(self, op: str) -> Candidate:
        """The candidate named ``op``."""
        for c in self.candidates:
            if c.op == op:
                return c
        raise IRError(f"no candidate {op!r}; candidates are {[c.op for c in self.candidates]}")
