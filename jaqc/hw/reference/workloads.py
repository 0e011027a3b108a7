"""Example workloads: an FBNet-like CIFAR subnet (22 layers) and supernet (22 blocks x 9 candidate ops).

Used by the BatchTile benchmark and tests; channel plan 16..352, resolutions 32 / 16 / 8.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from jaqc.hw.model.problem import ConvProblem

#: All (w_bits, a_bits) pairs of the JAQ search space.
ALL_BIT_PAIRS: tuple[tuple[int, int], ...] = tuple((w, a) for w in (2, 4, 8) for a in (2, 4, 8))

#: FBNet candidate ops: (name, kernel, expansion, groups of the 1x1 convolutions); "skip" has no layers.
FBNET_OPS: tuple[tuple[str, int, int, int], ...] = (
    ("k3_e1", 3, 1, 1),
    ("k3_e1_g2", 3, 1, 2),
    ("k3_e3", 3, 3, 1),
    ("k3_e6", 3, 6, 1),
    ("k5_e1", 5, 1, 1),
    ("k5_e1_g2", 5, 1, 2),
    ("k5_e3", 5, 3, 1),
    ("k5_e6", 5, 6, 1),
    ("skip", 0, 0, 0),
)

#: The 22 FBNet blocks for CIFAR: (in_channels, out_channels, stride, input resolution).
FBNET_CIFAR_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (16, 16, 1, 32),
    *[(16 if i == 0 else 24, 24, 1, 32) for i in range(4)],
    *[(24 if i == 0 else 32, 32, 2 if i == 0 else 1, 32 if i == 0 else 16) for i in range(4)],
    *[(32 if i == 0 else 64, 64, 2 if i == 0 else 1, 16 if i == 0 else 8) for i in range(4)],
    *[(64 if i == 0 else 112, 112, 1, 8) for i in range(4)],
    *[(112 if i == 0 else 184, 184, 1, 8) for i in range(4)],
    (184, 352, 1, 8),
)


def inverted_residual(
    name: str,
    in_channels: int,
    out_channels: int,
    size: int,
    kernel: int,
    expansion: int,
    stride: int,
    groups: int = 1,
    bits: tuple[int, int] = (8, 8),
) -> list[ConvProblem]:
    """The three convolutions of an inverted-residual block: 1x1 expand, kxk depthwise, 1x1 project."""
    hidden = in_channels * expansion
    w, a = bits
    out_size = (size + 2 * (kernel // 2) - kernel) // stride + 1
    return [
        ConvProblem(
            name=f"{name}.expand", batch=1, in_channels=in_channels, out_channels=hidden,
            in_h=size, in_w=size,
            kernel=1, groups=groups, w_bits=w, a_bits=a,
        ),
        ConvProblem(
            name=f"{name}.dw", batch=1, in_channels=hidden, out_channels=hidden, in_h=size, in_w=size,
            kernel=kernel, stride=stride, pad=kernel // 2, groups=hidden, w_bits=w, a_bits=a,
        ),
        ConvProblem(
            name=f"{name}.project", batch=1, in_channels=hidden, out_channels=out_channels, in_h=out_size,
            in_w=out_size, kernel=1, groups=groups, w_bits=w, a_bits=a,
        ),
    ]  # fmt: skip


def fbnet_cifar_subnet() -> list[ConvProblem]:
    """A 22-layer FBNet-like CIFAR subnet: 3x3 stem (im2col) + 7 inverted-residual blocks, mixed bits."""
    plan = [  # (in, hidden expansion, out, kernel, stride, input size)
        (16, 3, 24, 3, 1, 32),
        (24, 6, 32, 5, 2, 32),
        (32, 3, 64, 3, 1, 16),
        (64, 3, 112, 5, 2, 16),
        (112, 3, 184, 3, 1, 8),
        (184, 1, 184, 5, 1, 8),
        (184, 2, 352, 3, 1, 8),
    ]
    layers = [
        ConvProblem(
            name="stem", batch=1, in_channels=3, out_channels=16, in_h=32, in_w=32, kernel=3, pad=1,
            w_bits=8, a_bits=8, im2col=True,
        )
    ]  # fmt: skip
    for index, (cin, expansion, cout, kernel, stride, size) in enumerate(plan):
        bits = ALL_BIT_PAIRS[(3 * index + 1) % len(ALL_BIT_PAIRS)]
        layers += inverted_residual(f"b{index}", cin, cout, size, kernel, expansion, stride, bits=bits)
    return layers


def fbnet_cifar_supernet() -> list[list[list[ConvProblem]]]:
    """22 blocks x 9 candidate ops of an FBNet CIFAR supernet; an op is its list of layers (8/8 bits)."""
    blocks = []
    for index, (cin, cout, stride, size) in enumerate(FBNET_CIFAR_BLOCKS):
        ops = []
        for name, kernel, expansion, groups in FBNET_OPS:
            if name == "skip":
                ops.append([])
                continue
            ops.append(inverted_residual(f"block{index}.{name}", cin, cout, size, kernel, expansion, stride, groups))
        blocks.append(ops)
    return blocks


def chain_out_bits(problems: Sequence[ConvProblem], network_output_bits: int = 8) -> list[ConvProblem]:
    """The layers of a chain (each layer feeds the next) with each ``out_bits`` set to its consumer's
    activation bits, and the last layer's to ``network_output_bits``."""
    consumers = [p.a_bits for p in problems[1:]] + [network_output_bits]
    return [attrs.evolve(p, out_bits=bits) for p, bits in zip(problems, consumers, strict=True)]
