"""HAQ's 10-feature state of one agent step: the layer's static facts plus the previous action and a w/a flag.

Feature order (``STATE_FEATURES``): layer index, is-depthwise, in channels, out channels, stride, kernel,
weight count, input feature-map size, previous action, is-weight-step. The first eight are min-max normalised
over the network's layers, column by column (a column that is constant over the network becomes 0; HAQ's code
leaves such a column at its raw value). The previous action is the bitwidth chosen at the step before,
min-max normalised over {2, 4, 8} (2 → 0, 4 → 1/3, 8 → 1); before the first step it is 8 bits (1.0), which is
also the activation width of a first layer kept at 8 bits. The flag is 1 on a weight step, 0 on an activation
step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .actions import ACTION_BITS
from .errors import HaqError
from .layers import LayerInfo

#: The names of the state vector's entries, in order.
STATE_FEATURES: tuple[str, ...] = (
    "index",
    "is_depthwise",
    "in_channels",
    "out_channels",
    "stride",
    "kernel",
    "weight_count",
    "in_fmap_size",
    "previous_action",
    "is_weight",
)

#: Length of a state vector.
STATE_SIZE: int = len(STATE_FEATURES)


def static_features(layers: Sequence[LayerInfo]) -> np.ndarray:
    """The raw (unnormalised) first eight features of each layer, shape ``(len(layers), 8)``, float64."""
    return np.array(
        [
            [
                info.index,
                float(info.is_depthwise),
                info.in_channels,
                info.out_channels,
                info.stride,
                info.kernel,
                info.weight_count,
                info.in_fmap_size,
            ]
            for info in layers
        ],
        dtype=np.float64,
    ).reshape(len(layers), STATE_SIZE - 2)


def min_max_normalise(matrix: np.ndarray) -> np.ndarray:
    """Each column mapped linearly onto [0, 1] (min → 0, max → 1); a constant column becomes all zeros."""
    values = np.asarray(matrix, dtype=np.float64)
    low, high = values.min(axis=0), values.max(axis=0)
    span = high - low
    safe_span = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (values - low) / safe_span, 0.0)


def previous_action_feature(bits: int) -> float:
    """The previous-action feature of a bitwidth: ``(bits - 2) / 6``."""
    if bits not in ACTION_BITS:
        raise HaqError(f"bits must be one of 2, 4, 8, got {bits!r}")
    return (bits - ACTION_BITS[0]) / (ACTION_BITS[-1] - ACTION_BITS[0])


class StateEncoder:
    """Builds the state vectors of a network's agent steps from its layers (normalised once, up front)."""

    def __init__(self, layers: Sequence[LayerInfo]) -> None:
        if not layers:
            raise HaqError("a network needs at least one quantizable layer")
        indices = [info.index for info in layers]
        if indices != list(range(len(layers))):
            raise HaqError(f"layer indices must be 0..{len(layers) - 1} in order, got {indices}")
        self._static = min_max_normalise(static_features(layers))

    @property
    def static(self) -> np.ndarray:
        """The normalised static features, shape ``(layers, 8)`` (a copy)."""
        return self._static.copy()

    def state(self, layer: int, previous_bits: int, is_weight: bool) -> np.ndarray:
        """The float32 state vector of the step choosing ``layer``'s weight (or activation) bits."""
        if not 0 <= layer < len(self._static):
            raise HaqError(f"layer {layer} out of range 0..{len(self._static) - 1}")
        dynamic = [previous_action_feature(previous_bits), 1.0 if is_weight else 0.0]
        return np.concatenate([self._static[layer], dynamic]).astype(np.float32)
