"""A synthetic HAQ environment with a known optimum, for testing that the agent learns.

Accuracy: ``reference − Σ_l (s_w[l]·P(w_l) + s_a[l]·P(a_l))`` with ``P(b) = 4^-(b-2)`` (quantization noise
power, relative to 2 bits: P(2) = 1, P(4) = 1/16, P(8) = 1/4096) and per-layer sensitivities ``s_w``, ``s_a``
(accuracy points lost at 2 bits). Costs, all non-decreasing in every bitwidth, per layer at ``(w, a)``:

- latency: ``macs · w · a / 64`` (a BitFusion unit does ``(8/w)·(8/a)`` MACs per cycle);
- energy: ``macs · w · a / 64 + MEMORY_ENERGY_PER_BYTE · (weight_count · w + in_channels · in_fmap_size · a) / 8``;
- EDAP: total energy × total latency × area (the area is 1: one fixed accelerator).

:func:`exact_optimum` enumerates every configuration of the searched layers (vectorised; 9^k for k searched
layers), so the best reward under a budget is known exactly for networks of up to about 8 searched layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from attrs import field, frozen

from .actions import ACTION_BITS
from .budget import BUDGET_REL_TOL, BudgetBounds, ResourceBudget, resolve_budget, searched_layers
from .environment import BitConfig, ResourceKind
from .errors import HaqError
from .layers import LayerInfo

#: Relative quantization-noise power of a bitwidth, ``4^-(bits-2)``.
NOISE_POWER: dict[int, float] = {bits: 4.0 ** -(bits - 2) for bits in ACTION_BITS}

#: Energy of moving one byte to or from memory, in units of one 8-bit MAC.
MEMORY_ENERGY_PER_BYTE: float = 2.0

#: The nine (w, a) options of a searched layer, in the order the enumeration uses.
BIT_PAIRS: tuple[tuple[int, int], ...] = tuple((w, a) for w in ACTION_BITS for a in ACTION_BITS)

#: The largest number of searched layers :func:`exact_optimum` enumerates (9^8 ≈ 43 million configurations).
MAX_ENUMERATED_LAYERS: int = 8


def _to_layers(value: Sequence[LayerInfo]) -> tuple[LayerInfo, ...]:
    return tuple(value)


def _to_floats(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _check_sensitivity(inst: SyntheticEnv, attribute: Any, value: tuple[float, ...]) -> None:
    if len(value) != len(inst.layers):
        raise HaqError(f"SyntheticEnv.{attribute.name} needs {len(inst.layers)} values, got {len(value)}")
    if any(not v >= 0.0 for v in value):
        raise HaqError(f"SyntheticEnv.{attribute.name} must be >= 0, got {list(value)}")


def _check_layers(_inst: object, _attr: Any, value: tuple[LayerInfo, ...]) -> None:
    if not value or [info.index for info in value] != list(range(len(value))):
        raise HaqError("SyntheticEnv.layers must be non-empty with indices 0..n-1 in order")


@frozen(kw_only=True)
class SyntheticEnv:
    """A :class:`~jaqc.search.haq.environment.HaqEnvironment` whose accuracy and costs are closed-form sums."""

    layers: tuple[LayerInfo, ...] = field(converter=_to_layers, validator=_check_layers)
    weight_sensitivity: tuple[float, ...] = field(converter=_to_floats, validator=_check_sensitivity)
    activation_sensitivity: tuple[float, ...] = field(converter=_to_floats, validator=_check_sensitivity)
    reference_accuracy: float = field(default=70.0, converter=float)

    def _check_bits(self, bits: BitConfig) -> None:
        if len(bits) != len(self.layers) or any(w not in ACTION_BITS or a not in ACTION_BITS for w, a in bits):
            raise HaqError(f"expected {len(self.layers)} (w, a) pairs of 2, 4 or 8 bits, got {bits!r}")

    def layer_penalty(self, layer: int, w_bits: int, a_bits: int) -> float:
        """Accuracy points layer ``layer`` loses at ``(w_bits, a_bits)``."""
        return (
            self.weight_sensitivity[layer] * NOISE_POWER[w_bits]
            + self.activation_sensitivity[layer] * NOISE_POWER[a_bits]
        )

    def layer_latency(self, layer: int, w_bits: int, a_bits: int) -> float:
        """Fusion-unit cycles of layer ``layer`` at ``(w_bits, a_bits)``."""
        return self.layers[layer].macs * w_bits * a_bits / 64

    def layer_energy(self, layer: int, w_bits: int, a_bits: int) -> float:
        """Energy of layer ``layer`` at ``(w_bits, a_bits)``: compute plus weight and input-activation traffic."""
        info = self.layers[layer]
        traffic_bits = info.weight_count * w_bits + info.in_channels * info.in_fmap_size * a_bits
        return self.layer_latency(layer, w_bits, a_bits) + MEMORY_ENERGY_PER_BYTE * traffic_bits / 8

    def evaluate(self, bits: BitConfig) -> float:
        """The accuracy at ``bits`` (deterministic)."""
        self._check_bits(bits)
        return self.reference_accuracy - sum(self.layer_penalty(i, w, a) for i, (w, a) in enumerate(bits))

    def cost(self, bits: BitConfig, kind: ResourceKind) -> float:
        """Latency, energy or EDAP of the network at ``bits``."""
        self._check_bits(bits)
        kind = ResourceKind(kind)
        latency = sum(self.layer_latency(i, w, a) for i, (w, a) in enumerate(bits))
        if kind is ResourceKind.LATENCY:
            return latency
        energy = sum(self.layer_energy(i, w, a) for i, (w, a) in enumerate(bits))
        return energy if kind is ResourceKind.ENERGY else energy * latency


def mobilenet_like_layers() -> tuple[LayerInfo, ...]:
    """Eight layers of a small MobileNet-style CIFAR network: stem, three dw/pw pairs, classifier."""
    rows = [  # depthwise, in, out, stride, kernel, input fmap side
        (False, 3, 16, 1, 3, 32),
        (True, 16, 16, 1, 3, 32),
        (False, 16, 32, 1, 1, 32),
        (True, 32, 32, 2, 3, 32),
        (False, 32, 64, 1, 1, 16),
        (True, 64, 64, 1, 3, 16),
        (False, 64, 128, 1, 1, 16),
        (False, 128, 10, 1, 1, 1),
    ]
    return tuple(
        LayerInfo(
            index=i,
            is_depthwise=dw,
            in_channels=cin,
            out_channels=cout,
            stride=stride,
            kernel=kernel,
            weight_count=cout * (1 if dw else cin) * kernel * kernel,
            in_fmap_size=side * side,
            out_fmap_size=(side // stride) ** 2,
        )
        for i, (dw, cin, cout, stride, kernel, side) in enumerate(rows)
    )


def make_synthetic_env(seed: int, layers: Sequence[LayerInfo] | None = None) -> SyntheticEnv:
    """A synthetic environment with seeded sensitivities: depthwise layers are about 4× as sensitive as the
    others (base 8 vs 2 accuracy points at 2 bits), each value scaled by a factor drawn log-uniformly in [1/2, 2]."""
    infos = tuple(layers) if layers is not None else mobilenet_like_layers()
    rng = np.random.default_rng(seed)
    base = np.array([8.0 if info.is_depthwise else 2.0 for info in infos])
    weight = base * 2.0 ** rng.uniform(-1.0, 1.0, len(infos))
    activation = base * 2.0 ** rng.uniform(-1.0, 1.0, len(infos))
    return SyntheticEnv(layers=infos, weight_sensitivity=weight.tolist(), activation_sensitivity=activation.tolist())


@frozen(kw_only=True)
class Optimum:
    """The best configuration under a budget, its accuracy, cost and reward (as the environment computes them)."""

    bits: BitConfig
    accuracy: float
    cost: float
    reward: float


def _enumerate(env: SyntheticEnv, budget: ResourceBudget, keep_first_last: bool) -> tuple[Any, ...]:
    """Every configuration of the searched layers: (bounds, searched, costs, penalties), flat in enumeration order."""
    count = len(env.layers)
    searched = searched_layers(count, keep_first_last)
    if not 1 <= len(searched) <= MAX_ENUMERATED_LAYERS:
        raise HaqError(f"exhaustive enumeration covers 1..{MAX_ENUMERATED_LAYERS} searched layers, got {len(searched)}")
    bounds: BudgetBounds = resolve_budget(env.cost, count, searched, budget)
    fixed = [i for i in range(count) if i not in searched]
    latency = np.array([sum(env.layer_latency(i, 8, 8) for i in fixed)])
    energy = np.array([sum(env.layer_energy(i, 8, 8) for i in fixed)])
    penalty = np.array([sum(env.layer_penalty(i, 8, 8) for i in fixed)])
    for layer in searched:
        latency = (latency[:, None] + np.array([env.layer_latency(layer, w, a) for w, a in BIT_PAIRS])).ravel()
        energy = (energy[:, None] + np.array([env.layer_energy(layer, w, a) for w, a in BIT_PAIRS])).ravel()
        penalty = (penalty[:, None] + np.array([env.layer_penalty(layer, w, a) for w, a in BIT_PAIRS])).ravel()
    costs = {ResourceKind.LATENCY: latency, ResourceKind.ENERGY: energy, ResourceKind.EDAP: energy * latency}
    return bounds, searched, costs[bounds.kind], penalty


def exact_optimum(
    env: SyntheticEnv, budget: ResourceBudget, keep_first_last: bool = True, reward_scale: float = 0.1
) -> Optimum:
    """The highest-reward configuration within ``budget`` (fixed layers at w8a8), by exhaustive enumeration.

    Feasibility uses the same comparison as the search (``BudgetBounds.within``). Ties go to the configuration
    enumerated first (layers in order, options in ``BIT_PAIRS`` order).
    """
    bounds, searched, cost, penalty = _enumerate(env, budget, keep_first_last)
    # A loose pre-filter (the vector sums round differently from env.cost); the exact check follows.
    feasible = cost <= bounds.budget_value * (1.0 + 1e-6)
    order = np.flatnonzero(feasible)[np.argsort(penalty[feasible], kind="stable")]
    for flat in order:
        bits = _decode(int(flat), searched, len(env.layers))
        exact_cost = env.cost(bits, bounds.kind)
        if bounds.within(exact_cost):
            accuracy = env.evaluate(bits)
            return Optimum(
                bits=bits,
                accuracy=accuracy,
                cost=exact_cost,
                reward=reward_scale * (accuracy - env.reference_accuracy),
            )
    raise HaqError("no configuration meets the budget")  # unreachable: resolve_budget checked the minimum


def share_better(
    env: SyntheticEnv, budget: ResourceBudget, reward: float, keep_first_last: bool = True, reward_scale: float = 0.1
) -> float:
    """The share of the configurations within ``budget`` whose reward beats ``reward`` by more than 1e-9
    (0.0 for the optimum): how close to the top a found configuration ranks."""
    bounds, _searched, cost, penalty = _enumerate(env, budget, keep_first_last)
    feasible = cost <= bounds.budget_value * (1.0 + BUDGET_REL_TOL)
    rewards = reward_scale * (-penalty[feasible])
    return float(np.count_nonzero(rewards > reward + 1e-9) / np.count_nonzero(feasible))


def _decode(flat: int, searched: Sequence[int], count: int) -> BitConfig:
    bits = [(8, 8)] * count
    for layer in reversed(searched):
        flat, option = divmod(flat, len(BIT_PAIRS))
        bits[layer] = BIT_PAIRS[option]
    return tuple(bits)
