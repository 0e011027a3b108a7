"""The resource budget: its value (a fraction of the all-8-bit design), the feasibility check and the rule
that brings an episode's configuration within it.

Enforcement rule (after each episode, before the accuracy is measured): while the cost exceeds the budget,
sweep the searched layers from the last to the first; at each layer lower the weight bits one step
(8 → 4 → 2) and re-check, then lower the activation bits one step and re-check; stop as soon as the cost is
within the budget. Layers held fixed (first and last, at w8a8) are never touched; bits already at 2 are
skipped. HAQ's code walks the same way but lowers activations before weights.

Termination: every pass either lowers at least one bitwidth or finds every searched layer at w2a2, and there
are at most 4 lowerings per searched layer, so the loop ends after finitely many steps. It ends within the
budget because the all-minimum configuration (searched layers w2a2, fixed layers w8a8) is checked against the
budget up front (:func:`resolve_budget`): an infeasible budget is rejected before the search starts. Costs
non-decreasing in the bits make the rule meaningful (lowering never costs more) but are not needed to end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from attrs import field, frozen

from .actions import ACTION_BITS, lower_bits
from .environment import BitConfig, ResourceKind
from .errors import HaqError

#: Relative slack of the budget comparison, so that a budget equal to the minimum cost (up to rounding) is met.
BUDGET_REL_TOL: float = 1e-9


def _to_kind(value: ResourceKind | str) -> ResourceKind:
    try:
        return ResourceKind(value)
    except ValueError:
        names = ", ".join(k.value for k in ResourceKind)
        raise HaqError(f"unknown resource kind {value!r}; expected one of {names}") from None


def _check_fraction(_inst: object, _attr: Any, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise HaqError(f"a budget fraction must lie in (0, 1], got {value!r}")


@frozen
class ResourceBudget:
    """A limit on one resource as a fraction of the same network's all-8-bit cost, e.g. ``(latency, 0.5)``."""

    kind: ResourceKind = field(converter=_to_kind)
    fraction: float = field(converter=float, validator=_check_fraction)


@frozen(kw_only=True)
class BudgetBounds:
    """The budget resolved on one network: the all-8-bit cost, the budget value and the cheapest cost."""

    kind: ResourceKind
    reference_cost: float
    budget_value: float
    minimum_cost: float

    @property
    def minimum_fraction(self) -> float:
        """The smallest budget fraction any configuration meets."""
        return self.minimum_cost / self.reference_cost

    def within(self, cost: float) -> bool:
        """Whether ``cost`` meets the budget (with a relative slack of ``BUDGET_REL_TOL``)."""
        return cost <= self.budget_value * (1.0 + BUDGET_REL_TOL)


def searched_layers(layer_count: int, keep_first_last: bool) -> tuple[int, ...]:
    """The indices of the layers whose bits are searched (all but the first and last when they are kept)."""
    if not keep_first_last:
        return tuple(range(layer_count))
    return tuple(range(1, layer_count - 1))


def uniform_config(layer_count: int, searched: Sequence[int], bits: int) -> BitConfig:
    """Searched layers at ``w{bits}a{bits}``, the others at w8a8."""
    chosen = set(searched)
    return tuple((bits, bits) if i in chosen else (8, 8) for i in range(layer_count))


def round_up_fraction(fraction: float) -> float:
    """A budget fraction rounded up to 6 decimals (so it is never below the cost it was computed from), at most 1."""
    return min(1.0, math.ceil(fraction * 1e6) / 1e6)


def resolve_budget(
    cost: Callable[[BitConfig, ResourceKind], float], layer_count: int, searched: Sequence[int], budget: ResourceBudget
) -> BudgetBounds:
    """The budget's value on a network, or a :class:`HaqError` when even the cheapest configuration misses it."""
    reference = float(cost(uniform_config(layer_count, searched, 8), budget.kind))
    if not reference > 0.0:
        raise HaqError(f"the all-8-bit {budget.kind} must be positive, got {reference!r}")
    minimum = float(cost(uniform_config(layer_count, searched, ACTION_BITS[0]), budget.kind))
    bounds = BudgetBounds(
        kind=budget.kind, reference_cost=reference, budget_value=budget.fraction * reference, minimum_cost=minimum
    )
    if not bounds.within(minimum):
        cheapest = "all layers w2a2" if len(searched) == layer_count else "searched layers w2a2, the others w8a8"
        if not bounds.minimum_fraction < 1.0:
            raise HaqError(
                f"infeasible {budget.kind} budget: lower bitwidths do not reduce this network's {budget.kind}; the "
                f"cheapest configuration ({cheapest}) needs {bounds.minimum_fraction:.6g} of the 8-bit design, "
                "so no fraction <= 1 can be met"
            )
        raise HaqError(
            f"infeasible {budget.kind} budget: {budget.fraction:g} of the 8-bit design, but the cheapest "
            f"configuration ({cheapest}) needs {bounds.minimum_fraction:.6g} of it; "
            f"choose a fraction >= {round_up_fraction(bounds.minimum_fraction):g}"
        )
    return bounds


def enforce_budget(
    bits: BitConfig, cost: Callable[[BitConfig], float], bounds: BudgetBounds, searched: Sequence[int]
) -> tuple[BitConfig, float]:
    """Lower bits from the last searched layer backwards until ``cost`` meets the budget; the result and its cost.

    See the module docstring for the rule and why it terminates.
    """
    config = [list(pair) for pair in bits]
    current = float(cost(tuple(map(tuple, config))))
    while not bounds.within(current):
        lowered = False
        for layer in reversed(searched):
            for slot in (0, 1):  # weight bits, then activation bits
                if config[layer][slot] == ACTION_BITS[0]:
                    continue
                config[layer][slot] = lower_bits(config[layer][slot])
                lowered = True
                current = float(cost(tuple(map(tuple, config))))
                if bounds.within(current):
                    return tuple((w, a) for w, a in config), current
        if not lowered:
            raise HaqError(
                f"budget enforcement reached the cheapest configuration at {current!r} > {bounds.budget_value!r}: "
                "the environment's cost is not deterministic"
            )
    return tuple((w, a) for w, a in config), current
