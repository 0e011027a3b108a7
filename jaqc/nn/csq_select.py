"""Channel selection of channel-wise sparse quantization (CSQ, JAQ Eq. 8), torch-free.

Only numpy is imported here, so that the IR pass ``csq-instrument`` computes exactly the channel set Ω
that the torch supernet computes.

The importance of channel ``j`` of a layer input is ``Γ_j = Σ_i α_i · |γ_ij|`` (Eq. 8): ``α_i`` is the
probability of candidate ``i`` of the previous layer and ``γ_ij`` the scale of that candidate's output
batch norm for channel ``j``. The magnitude is used because network slimming (Liu et al. 2017), which the
paper cites for this criterion, ranks channels by ``|γ|``: a large negative scale is as important as a large
positive one. Ω holds the ``ceil(K/100 · N)`` channels of largest Γ (at least one); ties go to the lower
channel index; Ω is returned sorted ascending.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def csq_channel_count(num_channels: int, k_percent: float) -> int:
    """The number of channels CSQ quantizes out of ``num_channels`` for ``K = k_percent`` (at least one)."""
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}")
    if not 0.0 < k_percent <= 100.0:
        raise ValueError(f"k_percent must be in (0, 100], got {k_percent}")
    # The small tolerance keeps e.g. 3% of 100 channels at 3, not 4, despite 0.03 * 100 = 3.0000000000000004.
    count = math.ceil(num_channels * k_percent / 100.0 - 1e-9)
    return min(num_channels, max(1, count))


def channel_importance(
    alpha_probs: npt.ArrayLike, gammas: npt.ArrayLike, use_abs: bool = True
) -> npt.NDArray[np.float64]:
    """Γ of Eq. 8: the α-weighted sum of the previous layer's candidates' batch-norm scales, per channel.

    ``alpha_probs`` has shape ``[n_candidates]`` and ``gammas`` shape ``[n_candidates, n_channels]``; a
    candidate without an output batch norm (the identity skip) has a zero row, which shifts every Γ_j by the
    same amount and so never changes the ranking.
    """
    probs = np.asarray(alpha_probs, dtype=np.float64)
    scales = np.asarray(gammas, dtype=np.float64)
    if probs.ndim != 1 or scales.ndim != 2 or scales.shape[0] != probs.shape[0]:
        raise ValueError(f"alpha_probs must be [n] and gammas [n, channels]; got {probs.shape} and {scales.shape}")
    if use_abs:
        scales = np.abs(scales)
    return probs @ scales


def top_k_channels(importance: npt.ArrayLike, k_percent: float) -> npt.NDArray[np.int64]:
    """Ω of Eq. 8: indices of the ``ceil(K%)`` most important channels, ties to the lower index, sorted."""
    values = np.asarray(importance)
    if values.ndim != 1:
        raise ValueError(f"importance must be one-dimensional, got shape {values.shape}")
    if np.isnan(values).any():
        raise ValueError("importance contains NaN")
    count = csq_channel_count(values.shape[0], k_percent)
    order = np.argsort(-values, kind="stable")
    return np.sort(order[:count]).astype(np.int64)


def select_csq_channels(
    alpha_probs: npt.ArrayLike, gammas: npt.ArrayLike, k_percent: float, use_abs: bool = True
) -> npt.NDArray[np.int64]:
    """Ω from the previous layer's candidate probabilities and batch-norm scales (Eq. 8 end to end)."""
    return top_k_channels(channel_importance(alpha_probs, gammas, use_abs=use_abs), k_percent)
