"""HAQ's per-layer facts, state vectors and action mapping: exact values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from jaqc.ir import Candidate, Choice, Conv2dParams, Layer, LayerGraph, LayerKind, LinearParams, verify

from jaqc.core import JaqcError
from jaqc.search.haq import (
    STATE_FEATURES,
    HaqError,
    LayerInfo,
    StateEncoder,
    action_to_bits,
    bits_to_action,
    layer_infos_from_graph,
    lower_bits,
    min_max_normalise,
    previous_action_feature,
    static_features,
)


def _tiny_graph() -> LayerGraph:
    """conv 3→8 k3 → relu → depthwise 8 k3 s2 → pointwise 8→16 → global pool → flatten → linear 16→10."""
    graph = LayerGraph("tiny")
    rows = [
        ("x", "input", [], [], (1, 3, 8, 8), None),
        ("c1", "conv2d", ["x"], [(1, 3, 8, 8)], (1, 8, 8, 8), Conv2dParams(kernel=3, padding=1)),
        ("r1", "relu", ["c1"], [(1, 8, 8, 8)], (1, 8, 8, 8), None),
        ("dw", "conv2d", ["r1"], [(1, 8, 8, 8)], (1, 8, 4, 4), Conv2dParams(kernel=3, stride=2, padding=1, groups=8)),
        ("pw", "conv2d", ["dw"], [(1, 8, 4, 4)], (1, 16, 4, 4), Conv2dParams(kernel=1)),
        ("gap", "global_avgpool", ["pw"], [(1, 16, 4, 4)], (1, 16, 1, 1), None),
        ("flat", "flatten", ["gap"], [(1, 16, 1, 1)], (1, 16), None),
        ("fc", "linear", ["flat"], [(1, 16)], (1, 10), LinearParams(bias=True)),
        ("y", "output", ["fc"], [(1, 10)], (1, 10), None),
    ]
    for name, kind, inputs, shapes, out, params in rows:
        graph.add(Layer(name=name, kind=kind, inputs=inputs, input_shapes=shapes, output_shape=out, params=params))
    return graph


def _info(index: int, dw: bool, cin: int, cout: int, stride: int, kernel: int, weights: int, fmap: int) -> LayerInfo:
    return LayerInfo(
        index=index,
        is_depthwise=dw,
        in_channels=cin,
        out_channels=cout,
        stride=stride,
        kernel=kernel,
        weight_count=weights,
        in_fmap_size=fmap,
        out_fmap_size=fmap // max(stride, 1) ** 2,
    )


TINY_INFOS = [
    _info(0, False, 3, 8, 1, 3, 216, 64),
    _info(1, True, 8, 8, 2, 3, 72, 64),
    _info(2, False, 8, 16, 1, 1, 128, 16),
    _info(3, False, 16, 10, 1, 1, 160, 1),
]


def test_layer_infos_from_graph() -> None:
    verify(_tiny_graph())
    assert layer_infos_from_graph(_tiny_graph()) == TINY_INFOS
    assert [info.macs for info in TINY_INFOS] == [216 * 64, 72 * 16, 128 * 16, 160]


def test_layer_infos_reject_a_graph_without_weighted_layers() -> None:
    graph = LayerGraph("plain")
    graph.add(Layer(name="x", kind=LayerKind.INPUT, output_shape=(1, 3, 4, 4)))
    with pytest.raises(HaqError, match="no conv2d or linear layer"):
        layer_infos_from_graph(graph)


def test_layer_infos_reject_a_supernet() -> None:
    graph = _tiny_graph()
    candidate_graph = LayerGraph("candidate")
    candidate_graph.add(Layer(name="x", kind="input", output_shape=(1, 16, 4, 4)))
    candidate_graph.add(
        Layer(name="y", kind="output", inputs=["x"], input_shapes=[(1, 16, 4, 4)], output_shape=(1, 16, 4, 4))
    )
    block = Layer(
        name="block",
        kind="choice",
        inputs=["pw"],
        input_shapes=[(1, 16, 4, 4)],
        output_shape=(1, 16, 4, 4),
        choice=Choice([Candidate("skip", candidate_graph)]),
    )
    graph.add(block)
    with pytest.raises(HaqError, match=r"has 1 choice layer.*block.*extract the subnet first"):
        layer_infos_from_graph(graph)


def test_layer_infos_read_the_output_size_from_the_ir() -> None:
    """A 3x3 conv without padding on 8x8 writes 6x6 (a 'same'-padding guess would say 64 positions)."""
    from torch import nn

    from jaqc.frontend import import_model

    graph = import_model(nn.Sequential(nn.Conv2d(1, 4, 3, padding=0), nn.Flatten(), nn.Linear(144, 10)), (1, 1, 8, 8))
    conv, linear = layer_infos_from_graph(graph)
    assert (conv.in_fmap_size, conv.out_fmap_size, conv.macs) == (64, 36, 36 * 36)
    assert (linear.in_fmap_size, linear.out_fmap_size, linear.macs) == (1, 1, 1440)


def test_layer_info_validation() -> None:
    with pytest.raises(JaqcError, match="stride must be >= 1"):
        _info(0, False, 3, 8, 0, 3, 216, 64)
    with pytest.raises(JaqcError, match="index must be >= 0"):
        _info(-1, False, 3, 8, 1, 3, 216, 64)


def test_static_features_and_normalisation_are_exact() -> None:
    raw = static_features(TINY_INFOS)
    assert raw.tolist() == [
        [0, 0, 3, 8, 1, 3, 216, 64],
        [1, 1, 8, 8, 2, 3, 72, 64],
        [2, 0, 8, 16, 1, 1, 128, 16],
        [3, 0, 16, 10, 1, 1, 160, 1],
    ]
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 1, 1, 1],
            [1 / 3, 1, 5 / 13, 0, 1, 1, 0, 1],
            [2 / 3, 0, 5 / 13, 1, 0, 0, 56 / 144, 15 / 63],
            [1, 0, 1, 2 / 8, 0, 0, 88 / 144, 0],
        ]
    )
    np.testing.assert_allclose(min_max_normalise(raw), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(min_max_normalise(np.array([[5.0, 1.0], [5.0, 3.0]])), [[0.0, 0.0], [0.0, 1.0]])


def test_state_vector() -> None:
    encoder = StateEncoder(TINY_INFOS)
    state = encoder.state(2, previous_bits=4, is_weight=True)
    assert state.dtype == np.float32 and len(state) == len(STATE_FEATURES) == 10
    expected = [2 / 3, 0, 5 / 13, 1, 0, 0, 56 / 144, 15 / 63, 1 / 3, 1]
    np.testing.assert_array_equal(state, np.array(expected, dtype=np.float32))
    assert encoder.state(0, previous_bits=8, is_weight=False)[-2:].tolist() == [1.0, 0.0]
    assert [previous_action_feature(b) for b in (2, 4, 8)] == [0.0, 1 / 3, 1.0]
    with pytest.raises(HaqError, match="out of range"):
        encoder.state(4, 8, True)
    with pytest.raises(HaqError, match=r"indices must be 0\.\.1"):
        StateEncoder([TINY_INFOS[1], TINY_INFOS[0]])


def test_action_mapping_boundaries() -> None:
    third, two_thirds = 1 / 3, 2 / 3
    cases = {
        0.0: 2,
        math.nextafter(third, 0.0): 2,
        third: 4,
        0.5: 4,
        math.nextafter(two_thirds, 0.0): 4,
        two_thirds: 8,
        1.0: 8,
    }
    assert {action: action_to_bits(action) for action in cases} == cases
    for bad in (-1e-12, 1.0 + 1e-12, float("nan")):
        with pytest.raises(HaqError, match=r"must lie in \[0, 1\]"):
            action_to_bits(bad)


def test_action_bits_roundtrip() -> None:
    assert [bits_to_action(b) for b in (2, 4, 8)] == [1 / 6, 1 / 2, 5 / 6]
    assert all(action_to_bits(bits_to_action(b)) == b for b in (2, 4, 8))
    assert [lower_bits(b) for b in (8, 4, 2)] == [4, 2, 2]
    with pytest.raises(HaqError, match="bits must be one of 2, 4, 8"):
        bits_to_action(3)
    grid = np.linspace(0.0, 1.0, 3001)
    counts = np.unique([action_to_bits(a) for a in grid], return_counts=True)
    assert counts[0].tolist() == [2, 4, 8] and counts[1].tolist() == [1000, 1000, 1001]
