"""The torch-free channel selection of CSQ (Eq. 8)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from jaqc.nn.csq_select import channel_importance, csq_channel_count, select_csq_channels, top_k_channels


@pytest.mark.parametrize(
    ("channels", "k", "count"),
    [(16, 3.0, 1), (100, 3.0, 3), (101, 3.0, 4), (352, 3.0, 11), (352, 1.0, 4), (24, 100.0, 24), (8, 0.5, 1)],
)
def test_channel_count_is_ceil_of_k_percent(channels: int, k: float, count: int) -> None:
    assert csq_channel_count(channels, k) == count


def test_importance_is_alpha_weighted_abs_gamma() -> None:
    alpha = np.array([0.5, 0.25, 0.25])
    gammas = np.array([[1.0, -2.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, -8.0]])
    np.testing.assert_array_equal(channel_importance(alpha, gammas), [1.5, 1.0, 2.0])
    np.testing.assert_array_equal(channel_importance(alpha, gammas, use_abs=False), [1.5, -1.0, -2.0])


def test_top_k_picks_the_largest_and_breaks_ties_by_lower_index() -> None:
    importance = np.array([0.1, 0.9, 0.5, 0.9, 0.2, 0.5, 0.5, 0.0, 0.3, 0.4])
    assert top_k_channels(importance, 20.0).tolist() == [1, 3]
    assert top_k_channels(importance, 30.0).tolist() == [1, 2, 3]  # 0.5 at 2, 5, 6: lowest index wins
    assert top_k_channels(np.zeros(10), 30.0).tolist() == [0, 1, 2]


def test_select_matches_brute_force_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        alpha = rng.dirichlet(np.ones(9))
        gammas = rng.normal(size=(9, 64))
        k = float(rng.choice([1.0, 3.0, 5.0, 10.0]))
        got = select_csq_channels(alpha, gammas, k)
        importance = alpha @ np.abs(gammas)
        want = sorted(sorted(range(64), key=lambda j: (-importance[j], j))[: csq_channel_count(64, k)])
        assert got.tolist() == want


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="k_percent"):
        csq_channel_count(10, 0.0)
    with pytest.raises(ValueError, match="gammas"):
        channel_importance(np.ones(3), np.ones((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        top_k_channels(np.array([1.0, np.nan]), 50.0)


def test_module_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import importlib.util, pathlib\n"
        "import jaqc.nn.csq_select as m\n"
        "print(m.select_csq_channels([1.0], [[0.1, 3.0, 2.0]], 50.0).tolist())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1, 2]"
