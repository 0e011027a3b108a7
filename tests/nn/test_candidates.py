"""The nine candidate ops: structure attributes, output shapes, standalone fixed-bit build, shuffle order."""

from __future__ import annotations

import pytest
import torch

from jaqc.nn.candidates import ChannelShuffle, InvertedResidual, SkipOp, build_candidate, candidate_spec
from jaqc.nn.config import FBNET_CANDIDATES, FixedBits, QuantSearchMode
from jaqc.nn.errors import NNConfigError

STRUCTURE = {
    "k3_e1": (3, 1, 1),
    "k3_e1_g2": (3, 1, 2),
    "k3_e3": (3, 3, 1),
    "k3_e6": (3, 6, 1),
    "k5_e1": (5, 1, 1),
    "k5_e1_g2": (5, 1, 2),
    "k5_e3": (5, 3, 1),
    "k5_e6": (5, 6, 1),
    "skip": (1, 1, 1),
}


@pytest.mark.parametrize("name", FBNET_CANDIDATES)
@pytest.mark.parametrize(("cin", "cout", "stride"), [(8, 8, 1), (8, 16, 2), (16, 24, 1)])
def test_candidate_shapes_and_attributes(name: str, cin: int, cout: int, stride: int) -> None:
    op = build_candidate(name, cin, cout, stride)
    kernel, expansion, groups = STRUCTURE[name]
    assert (op.name, op.kernel, op.expansion, op.groups) == (name, kernel, expansion, groups)
    assert (op.in_channels, op.out_channels, op.stride) == (cin, cout, stride)
    assert op.has_residual == (name != "skip" and stride == 1 and cin == cout)
    out = op(torch.randn(2, cin, 8, 8))
    assert out.shape == (2, cout, 8 // stride, 8 // stride)


def test_inverted_residual_structure() -> None:
    op = build_candidate("k5_e6", 16, 24, 2)
    assert isinstance(op, InvertedResidual)
    assert op.hidden_channels == 96
    assert (op.expand.kernel_size, op.expand.groups) == ((1, 1), 1)
    assert (op.dw.kernel_size, op.dw.stride, op.dw.groups) == ((5, 5), (2, 2), 96)
    assert (op.project.in_channels, op.project.out_channels) == (96, 24)
    grouped = build_candidate("k3_e1_g2", 16, 16, 1)
    assert grouped.expand.groups == 2 and grouped.project.groups == 2 and grouped.shuffle is not None


def test_skip_is_identity_or_projection() -> None:
    identity = build_candidate("skip", 8, 8, 1)
    assert isinstance(identity, SkipOp) and identity.is_identity and identity.output_gamma() is None
    x = torch.randn(1, 8, 4, 4)
    assert identity(x) is x
    projection = build_candidate("skip", 8, 16, 2)
    assert not projection.is_identity and projection.proj is not None and projection.proj.stride == (2, 2)


def test_standalone_fixed_bits_candidate() -> None:
    op = build_candidate("k3_e3", 8, 8, 1, bits=FixedBits(weight=2, activation=4))
    convs = dict(op.quant_convs())
    assert set(convs) == {"expand", "dw", "project"}
    for conv in convs.values():
        assert conv.mode is QuantSearchMode.FIXED
        assert (conv.weight_bits, conv.activation_bits) == ((2,), (4,))
    op.eval()
    op(torch.randn(2, 8, 6, 6))  # eval needs the running range; shape only
    assert op(torch.randn(2, 8, 6, 6)).shape == (2, 8, 6, 6)
    with pytest.raises(NNConfigError, match=r"FixedBits\.weight"):
        FixedBits(weight=3, activation=4)


def test_channel_shuffle_permutation_matches_data() -> None:
    shuffle = ChannelShuffle(2)
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    perm = shuffle.permutation(6)
    assert shuffle(x).flatten().tolist() == [float(p) for p in perm] == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_grouped_candidate_internal_importance_follows_shuffle() -> None:
    op = build_candidate("k3_e1_g2", 8, 8, 1)
    assert isinstance(op, InvertedResidual)
    with torch.no_grad():
        op.bn1.weight.copy_(torch.arange(8.0))
    assert op.internal_csq_importance()["dw"].tolist() == [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]


def test_unknown_candidate_and_bad_groups() -> None:
    with pytest.raises(NNConfigError, match="unknown candidate"):
        candidate_spec("k7_e6")
    with pytest.raises(NNConfigError, match="divisible by groups"):
        build_candidate("k3_e1_g2", 7, 8, 1)
