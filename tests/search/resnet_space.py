"""A user's own search space, as docs/search.md shows it: ResNet-style basic blocks with kernel and width options.

Structurally unlike FBNet's inverted residuals: two dense k×k convs per block (no depthwise, no expansion), a
1x1 projection shortcut where the shape changes (so a block has two layers writing its output), ReLU after the
residual add, and no head conv (the classifier reads the last block). Loaded by file path in the tests
(``--space tests/search/resnet_space.py:ResNetSpace``), as a user's file would be.
"""

from __future__ import annotations

from torch import Tensor, nn

from jaqc.nn.candidates import CandidateOp, ConvFactory, conv_bn_relu
from jaqc.nn.quant_linear import QuantLinear
from jaqc.nn.search_conv import SearchConv2d
from jaqc.nn.space import SearchSpace


class BasicBlock(CandidateOp):
    """k×k conv-bn-relu → k×k conv-bn, plus the input (or its 1x1 projection), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, width: float, conv: ConvFactory) -> None:
        super().__init__()
        hidden = max(2, int(cout * width))
        self.conv1 = conv(cin, hidden, kernel, stride)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = conv(hidden, cout, kernel, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: SearchConv2d | None = None
        self.bn_shortcut: nn.BatchNorm2d | None = None
        if stride != 1 or cin != cout:
            self.shortcut = conv(cin, cout, 1, stride)
            self.bn_shortcut = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, w_probs: Tensor | None = None, a_probs: Tensor | None = None) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x, w_probs, a_probs)))
        out = self.bn2(self.conv2(out, w_probs, a_probs))
        if self.shortcut is not None and self.bn_shortcut is not None:
            x = self.bn_shortcut(self.shortcut(x, w_probs, a_probs))
        return self.relu(out + x)

    # what CSQ reads: which convs read the block input, and the γ that rank channels
    def input_convs(self) -> list[SearchConv2d]:
        return [self.conv1] + ([self.shortcut] if self.shortcut is not None else [])

    def output_gamma(self) -> Tensor:
        return self.bn2.weight

    def internal_csq_importance(self) -> dict[str, Tensor]:
        return {"conv2": self.bn1.weight}


class ResNetSpace(SearchSpace):
    """Three stages of basic blocks; each block chooses a kernel (3, 5) and a width (0.5x, 1x)."""

    ops = ("k3_w050", "k3_w100", "k5_w050", "k5_w100")
    channels = (8, 16, 16)
    strides = (1, 2, 1)

    def block_specs(self) -> list[tuple[int, int, int]]:
        specs, cin = [], 8
        for cout, stride in zip(self.channels, self.strides, strict=True):
            specs.append((cin, cout, stride))
            cin = cout
        return specs

    def candidate(self, op: str, in_channels: int, out_channels: int, stride: int, conv: ConvFactory) -> CandidateOp:
        kernel, width = op.split("_")
        return BasicBlock(in_channels, out_channels, stride, int(kernel[1:]), int(width[1:]) / 100, conv)

    def stem(self) -> nn.Module:
        config = self.config
        return conv_bn_relu(config.in_channels, 8, 3, 1, config.stem_bits, config.quant.quantizer)

    def head(self) -> nn.Module:
        return nn.Identity()

    def classifier(self) -> nn.Module:
        config = self.config
        if config.fc_bits is None:
            return nn.Linear(self.channels[-1], config.num_classes)
        return QuantLinear(self.channels[-1], config.num_classes, config.fc_bits, config.quant.quantizer)
