"""Realistic CNN definitions written the way model zoos write them, for frontend and CLI tests.

Each factory returns a freshly initialised model (BN statistics randomised so folding is not trivial).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
    return model.eval()


# --- ResNet (torchvision style) ------------------------------------------------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, layers: list[int], num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes: int = 1000) -> nn.Module:
    return _randomise_bn(ResNet([2, 2, 2, 2], num_classes))


def resnet_tiny(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(ResNet([1, 1, 1, 1], num_classes, width=8))


# --- MobileNetV2 (torchvision style) with SE and hardswish ----------------------------------------------
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand: int, se: bool = False, act: type = nn.ReLU6) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            act(inplace=True),
        ]
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4)))
        layers += [nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS: ClassVar[list[list[int]]] = [
        [1, 16, 1, 1],
        [6, 24, 2, 2],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ]

    def __init__(
        self, num_classes: int = 1000, width_mult: float = 1.0, se: bool = False, hardswish: bool = False
    ) -> None:
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU6
        inp = int(32 * width_mult)
        last = int(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, inp, 3, 2, 1, bias=False), nn.BatchNorm2d(inp), act(inplace=True))
        ]
        for t, c, n, s in self.SETTINGS:
            out = int(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t, se=se and t != 1, act=act))
                inp = out
        features.append(nn.Sequential(nn.Conv2d(inp, last, 1, bias=False), nn.BatchNorm2d(last), act(inplace=True)))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    return _randomise_bn(MobileNetV2(num_classes))


def mobilenet_v2_se_hswish(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(MobileNetV2(num_classes, width_mult=0.5, se=True, hardswish=True))


# --- ShuffleNetV2 style (view/transpose/view channel shuffle, chunk-free split via slicing conv) --------
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous() if False else x.transpose(1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleUnit(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        branch = oup // 2
        self.stride = stride
        self.branch1 = nn.Sequential(
            nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
            nn.BatchNorm2d(inp),
            nn.Conv2d(inp, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
        )
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetLike(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.stage2 = nn.Sequential(ShuffleUnit(24, 48, 2), ShuffleUnit(48, 48, 1))
        self.stage3 = nn.Sequential(ShuffleUnit(48, 96, 2), ShuffleUnit(96, 96, 1))
        self.conv5 = nn.Sequential(nn.Conv2d(96, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(inplace=True))
        self.fc = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage3(self.stage2(x)))
        x = x.mean([2, 3])
        return self.fc(x)


def shufflenet_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(ShuffleNetLike(num_classes))


# --- FBNet style: inverted residual with grouped 1x1 + shuffle, k5 depthwise, SiLU / sigmoid gate ------
class FBNetBlock(nn.Module):
    def __init__(self, inp: int, oup: int, k: int, e: int, stride: int, groups: int = 1) -> None:
        super().__init__()
        hidden = inp * e
        self.groups = groups
        self.pw = nn.Conv2d(inp, hidden, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.dw = nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.pwl = nn.Conv2d(hidden, oup, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(oup)
        self.res = stride == 1 and inp == oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.pw(x)))
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = F.silu(self.bn2(self.dw(y)))
        y = self.bn3(self.pwl(y))
        return torch.add(x, y) if self.res else y


class FBNetLike(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(
            FBNetBlock(16, 16, 3, 1, 1),
            FBNetBlock(16, 24, 5, 3, 2),
            FBNetBlock(24, 24, 3, 1, 1, groups=2),
            FBNetBlock(24, 32, 5, 6, 2),
            FBNetBlock(32, 32, 3, 3, 1),
        )
        self.head = nn.Conv2d(32, 64, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(64)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        x = F.relu(self.head_bn(self.head(x)))
        x = torch.sigmoid(x) * x
        x = self.dropout(x.mean((2, 3)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


def fbnet_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(FBNetLike(num_classes))


#: name -> (factory, input shape) for parametrised tests.
ZOO = {
    "resnet18": (resnet18, (1, 3, 64, 64)),
    "resnet_tiny": (resnet_tiny, (2, 3, 32, 32)),
    "mobilenet_v2": (mobilenet_v2, (1, 3, 64, 64)),
    "mobilenet_v2_se_hswish": (mobilenet_v2_se_hswish, (1, 3, 32, 32)),
    "shufflenet_like": (shufflenet_like, (1, 3, 32, 32)),
    "fbnet_like": (fbnet_like, (2, 3, 32, 32)),
}


# =========================================================================================================
# Model-zoo styles the frontend imports through pattern recognition (issue #14): hand-written activations
# with Python constants, clamps, functional gates, and the transpose/permute spellings of the channel shuffle.
# Each is written the way its family's public reference code writes it, at a small size.


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# --- MobileNetV3 style: h-swish / h-sigmoid written with `+ 3` and `/ 6`, SE blocks ------------------------
class HSigmoid(nn.Module):
    """``relu6(x + 3) / 6`` with a ReLU6 module (as in d-li14/mobilenetv3.pytorch)."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU6(inplace=inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + 3) / 6


class HSwish(nn.Module):
    """``x * h_sigmoid(x)`` (as in d-li14/mobilenetv3.pytorch)."""

    def __init__(self, inplace: bool = True) -> None:
        super().__init__()
        self.sigmoid = HSigmoid(inplace=inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(x)


class HSwishInline(nn.Module):
    """``x * relu6(x + 3.) / 6.`` in one line (as in kuan-wang/pytorch-mobilenet-v3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3.0, inplace=True) / 6.0


class HSwishScaled(nn.Module):
    """``x * relu6(x + 3.) * (1. / 6.)``: the constant as a reciprocal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3.0) * (1.0 / 6.0)


class SELinear(nn.Module):
    """Squeeze-excite with Linear layers and view reshapes (d-li14 style)."""

    def __init__(self, channel: int, reduction: int = 4) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, _make_divisible(channel // reduction, 8)),
            nn.ReLU(inplace=True),
            nn.Linear(_make_divisible(channel // reduction, 8), channel),
            HSigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y


class SEConv(nn.Module):
    """Squeeze-excite with 1x1 convs and an inline hard sigmoid gate ``x * (relu6(s + 3) / 6)``."""

    def __init__(self, channel: int, reduction: int = 4) -> None:
        super().__init__()
        squeezed = _make_divisible(channel // reduction, 8)
        self.fc1 = nn.Conv2d(channel, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(F.relu(self.fc1(s)))
        return x * (F.relu6(s + 3.0) / 6.0)


class MobileNetV3Block(nn.Module):
    def __init__(self, inp: int, hidden: int, oup: int, k: int, stride: int, se: str, hs: bool) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == oup

        def act() -> nn.Module:
            return HSwish() if hs else nn.ReLU(inplace=True)

        se_layer: nn.Module = {"linear": SELinear, "conv": SEConv}[se](hidden) if se else nn.Identity()
        layers: list[nn.Module] = []
        if inp != hidden:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), act()]
        layers += [
            nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            se_layer,
            act(),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.identity else self.conv(x)


class MobileNetV3Like(nn.Module):
    # k, expansion, c, se, hswish, stride
    CFGS: ClassVar[list[tuple[int, float, int, str, bool, int]]] = [
        (3, 1, 16, "linear", False, 2),
        (3, 4.5, 24, "", False, 2),
        (3, 3.67, 24, "", False, 1),
        (5, 4, 40, "conv", True, 2),
        (5, 6, 40, "linear", True, 1),
        (5, 3, 48, "conv", True, 1),
    ]

    def __init__(self, num_classes: int = 10, width_mult: float = 0.5) -> None:
        super().__init__()
        inp = _make_divisible(16 * width_mult, 8)
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, inp, 3, 2, 1, bias=False), nn.BatchNorm2d(inp), HSwishInline())
        ]
        for k, t, c, se, hs, s in self.CFGS:
            oup = _make_divisible(c * width_mult, 8)
            layers.append(MobileNetV3Block(inp, _make_divisible(inp * t, 8), oup, k, s, se, hs))
            inp = oup
        self.features = nn.Sequential(*layers)
        exp = _make_divisible(inp * 6, 8)
        self.conv = nn.Sequential(nn.Conv2d(inp, exp, 1, bias=False), nn.BatchNorm2d(exp), HSwish())
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Linear(exp, 128), HSwishScaled(), nn.Dropout(0.2), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.features(x))
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


def mobilenet_v3_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(MobileNetV3Like(num_classes), seed=11)


# --- GhostNet style: ghost modules (primary conv + cheap depthwise, concat, [:, :oup] slice), SE with a
# hard_sigmoid gate function (in-place `add_/clamp_/div_`, `relu6(x + 3.) / 6.` and `torch.clamp` forms) --
def hard_sigmoid(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    if inplace:
        return x.add_(3.0).clamp_(0.0, 6.0).div_(6.0)
    return F.relu6(x + 3.0) / 6.0


def hard_sigmoid_inplace(x: torch.Tensor) -> torch.Tensor:
    return hard_sigmoid(x, inplace=True)


def hard_sigmoid_clamp(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class ClampReLU(nn.Module):
    """ReLU written as ``torch.clamp(x, min=0)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, min=0)


class GhostSqueezeExcite(nn.Module):
    def __init__(self, in_chs: int, se_ratio: float = 0.25, gate_fn=hard_sigmoid, divisor: int = 4) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.gate_fn = gate_fn
        reduced_chs = _make_divisible(in_chs * se_ratio, divisor)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(in_chs, reduced_chs, 1, bias=True)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced_chs, in_chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_se = self.avg_pool(x)
        x_se = self.conv_reduce(x_se)
        x_se = self.act1(x_se)
        x_se = self.conv_expand(x_se)
        return x * self.gate_fn(x_se)


class GhostModule(nn.Module):
    def __init__(
        self, inp: int, oup: int, kernel_size: int = 1, ratio: int = 2, dw_size: int = 3, stride: int = 1,
        relu: bool = True, clamp_act: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.oup = oup
        init_channels = -(-oup // ratio)  # math.ceil(oup / ratio)
        new_channels = init_channels * (ratio - 1)

        def act() -> nn.Module:
            if not relu:
                return nn.Sequential()
            return ClampReLU() if clamp_act else nn.ReLU(inplace=True)

        self.primary_conv = nn.Sequential(
            nn.Conv2d(inp, init_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(init_channels),
            act(),
        )
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_channels, new_channels, dw_size, 1, dw_size // 2, groups=init_channels, bias=False),
            nn.BatchNorm2d(new_channels),
            act(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, : self.oup, :, :]


class GhostBottleneck(nn.Module):
    def __init__(
        self, in_chs: int, mid_chs: int, out_chs: int, dw_kernel_size: int = 3, stride: int = 1,
        se_ratio: float = 0.0, gate_fn=hard_sigmoid, clamp_act: bool = False,  # type: ignore[no-untyped-def]
    ) -> None:  # fmt: skip
        super().__init__()
        self.stride = stride
        self.ghost1 = GhostModule(in_chs, mid_chs, relu=True, clamp_act=clamp_act)
        if self.stride > 1:
            self.conv_dw = nn.Conv2d(
                mid_chs, mid_chs, dw_kernel_size, stride, (dw_kernel_size - 1) // 2, groups=mid_chs, bias=False
            )
            self.bn_dw = nn.BatchNorm2d(mid_chs)
        self.se = GhostSqueezeExcite(mid_chs, se_ratio, gate_fn) if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid_chs, out_chs, relu=False)
        if in_chs == out_chs and self.stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, in_chs, dw_kernel_size, stride, (dw_kernel_size - 1) // 2, groups=in_chs, bias=False),
                nn.BatchNorm2d(in_chs),
                nn.Conv2d(in_chs, out_chs, 1, 1, 0, bias=False),
                nn.BatchNorm2d(out_chs),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.ghost1(x)
        if self.stride > 1:
            x = self.bn_dw(self.conv_dw(x))
        if self.se is not None:
            x = self.se(x)
        x = self.ghost2(x)
        x += self.shortcut(residual)
        return x


class GhostNetLike(nn.Module):
    # k, exp, c, se_ratio, stride, SE gate
    CFGS: ClassVar[list[tuple[int, int, int, float, int, object]]] = [
        (3, 16, 16, 0.0, 1, None),
        (3, 48, 24, 0.0, 2, None),
        (3, 72, 24, 0.0, 1, None),
        (5, 72, 40, 0.25, 2, hard_sigmoid),
        (5, 120, 40, 0.25, 1, hard_sigmoid_inplace),
        (3, 240, 48, 0.25, 1, hard_sigmoid_clamp),
    ]

    def __init__(self, num_classes: int = 10, width: float = 0.5, dropout: float = 0.2) -> None:
        super().__init__()
        self.dropout = dropout
        output_channel = _make_divisible(16 * width, 4)
        self.conv_stem = nn.Conv2d(3, output_channel, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(output_channel)
        self.act1 = nn.ReLU(inplace=True)
        input_channel = output_channel
        stages: list[nn.Module] = []
        for i, (k, exp_size, c, se_ratio, s, gate) in enumerate(self.CFGS):
            output_channel = _make_divisible(c * width, 4)
            hidden_channel = _make_divisible(exp_size * width, 4)
            gate_fn = gate or hard_sigmoid
            block = GhostBottleneck(input_channel, hidden_channel, output_channel, k, s, se_ratio, gate_fn, i % 2 == 1)
            stages.append(block)
            input_channel = output_channel
        output_channel = _make_divisible(exp_size * width, 4)
        stages.append(
            nn.Sequential(
                nn.Conv2d(input_channel, output_channel, 1, bias=False),
                nn.BatchNorm2d(output_channel),
                nn.ReLU(inplace=True),
            )
        )
        self.blocks = nn.Sequential(*stages)
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.conv_head = nn.Conv2d(output_channel, 128, 1, 1, 0, bias=True)
        self.act2 = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        x = self.act2(self.conv_head(self.global_pool(x)))
        x = x.view(x.size(0), -1)
        if self.dropout > 0.0:
            x = F.dropout(x, p=self.dropout, training=self.training)
        return self.classifier(x)


def ghostnet_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(GhostNetLike(num_classes), seed=12)


# --- ShuffleNetV2 style: channel shuffle via torch.transpose, permute and flatten ----------------------
def channel_shuffle_transpose(x: torch.Tensor, groups: int) -> torch.Tensor:
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


def channel_shuffle_permute(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(b, c, h, w)


def channel_shuffle_flatten(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, _, h, w = x.size()
    x = x.view(b, groups, -1, h, w).transpose(2, 1)
    return torch.flatten(x, 1, 2)


SHUFFLES = {
    "transpose": channel_shuffle_transpose,
    "permute": channel_shuffle_permute,
    "flatten": channel_shuffle_flatten,
}


class ShuffleV2Block(nn.Module):
    """torchvision's ShuffleNetV2 unit. ``split=True`` is the stride-1 form (``x.chunk(2, dim=1)``, imported as
    two slice layers); ``split=False`` has both branches read the whole input, as the stride-2 form does."""

    def __init__(self, inp: int, oup: int, stride: int, shuffle: str, split: bool = False) -> None:
        super().__init__()
        self.stride = stride
        self.split = split and stride == 1
        self.shuffle = SHUFFLES[shuffle]
        branch_features = oup // 2
        if not self.split:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, 1, 1, 0, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        self.branch2 = nn.Sequential(
            nn.Conv2d(branch_features if self.split else inp, branch_features, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch_features, branch_features, 3, stride, 1, groups=branch_features, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, 1, 1, 0, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self.shuffle(out, 2)


class ShuffleNetV2Like(nn.Module):
    def __init__(self, num_classes: int = 10, split: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stage2 = nn.Sequential(
            ShuffleV2Block(24, 48, 2, "transpose", split), ShuffleV2Block(48, 48, 1, "permute", split)
        )
        self.stage3 = nn.Sequential(
            ShuffleV2Block(48, 96, 2, "flatten", split), ShuffleV2Block(96, 96, 1, "transpose", split)
        )
        self.conv5 = nn.Sequential(nn.Conv2d(96, 192, 1, bias=False), nn.BatchNorm2d(192), nn.ReLU(inplace=True))
        self.fc = nn.Linear(192, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage3(self.stage2(x)))
        x = x.mean([2, 3])
        return self.fc(x)


def shufflenet_v2_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(ShuffleNetV2Like(num_classes), seed=13)


def shufflenet_v2_split(num_classes: int = 10) -> nn.Module:
    """The torchvision form with the stride-1 channel split (``x.chunk(2, dim=1)``: two slice layers)."""
    return _randomise_bn(ShuffleNetV2Like(num_classes, split=True), seed=13)


# --- EfficientNet style: MBConv with swish written as `x * torch.sigmoid(x)`, SE with a sigmoid gate ------
class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class MBConvBlock(nn.Module):
    """lukemelas/EfficientNet-PyTorch's MBConvBlock (one Swish module reused for every activation)."""

    def __init__(self, inp: int, oup: int, expand_ratio: int, k: int, stride: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        self.expand_ratio, self.stride, self.inp, self.oup = expand_ratio, stride, inp, oup
        bn = {"momentum": 0.01, "eps": 1e-3}
        hidden = inp * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = nn.Conv2d(inp, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **bn)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **bn)
        squeezed = max(1, int(inp * se_ratio))
        self._se_reduce = nn.Conv2d(hidden, squeezed, 1)
        self._se_expand = nn.Conv2d(squeezed, hidden, 1)
        self._project_conv = nn.Conv2d(hidden, oup, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(oup, **bn)
        self._swish = Swish()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand_ratio != 1:
            x = self._swish(self._bn0(self._expand_conv(inputs)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        x_squeezed = F.adaptive_avg_pool2d(x, 1)
        x_squeezed = self._se_expand(self._swish(self._se_reduce(x_squeezed)))
        x = torch.sigmoid(x_squeezed) * x
        x = self._bn2(self._project_conv(x))
        if self.stride == 1 and self.inp == self.oup:
            x = x + inputs
        return x


class EfficientNetLike(nn.Module):
    # expand, k, stride, out channels, repeats
    BLOCKS: ClassVar[list[tuple[int, int, int, int, int]]] = [
        (1, 3, 1, 16, 1),
        (6, 3, 2, 24, 2),
        (6, 5, 2, 40, 2),
    ]

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, momentum=0.01, eps=1e-3)
        blocks: list[nn.Module] = []
        inp = 32
        for e, k, s, c, n in self.BLOCKS:
            for i in range(n):
                blocks.append(MBConvBlock(inp, c, e, k, s if i == 0 else 1))
                inp = c
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(inp, 160, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(160, momentum=0.01, eps=1e-3)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(160, num_classes)
        self._swish = Swish()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._swish(self._bn0(self._conv_stem(inputs)))
        for block in self._blocks:
            x = block(x)
        x = self._bn1(self._conv_head(x))
        x = x * x.sigmoid()
        x = self._avg_pooling(x).flatten(start_dim=1)
        return self._fc(self._dropout(x))


def efficientnet_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(EfficientNetLike(num_classes), seed=14)


# --- RegNet style (torchvision): X/Y blocks with group convs, bottleneck, SE (ReLU / Sigmoid), residual ----
class RegNetSqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation."""

    def __init__(self, input_channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.avgpool(x)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        return self.scale_activation(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._scale(x) * x


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBottleneckBlock(nn.Module):
    def __init__(
        self, width_in: int, width_out: int, stride: int, group_width: int, bottleneck_multiplier: float = 1.0,
        se_ratio: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.proj = None
        if width_in != width_out or stride != 1:
            self.proj = _conv_bn_act(width_in, width_out, 1, stride, act=False)
        w_b = round(width_out * bottleneck_multiplier)
        g = w_b // min(group_width, w_b)
        layers: list[nn.Module] = [_conv_bn_act(width_in, w_b, 1), _conv_bn_act(w_b, w_b, 3, stride, g)]
        if se_ratio:
            layers.append(RegNetSqueezeExcitation(w_b, round(se_ratio * width_in)))
        layers.append(_conv_bn_act(w_b, width_out, 1, act=False))
        self.f = nn.Sequential(*layers)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            x = self.proj(x) + self.f(x)
        else:
            x = x + self.f(x)
        return self.activation(x)


class RegNetLike(nn.Module):
    def __init__(self, num_classes: int = 10, se_ratio: float | None = 0.25) -> None:
        super().__init__()
        self.stem = _conv_bn_act(3, 16, 3, 2)
        stages: list[nn.Module] = []
        width_in = 16
        for width, depth, group_width in ((24, 1, 8), (48, 2, 8), (96, 2, 16)):
            blocks = []
            for i in range(depth):
                blocks.append(ResBottleneckBlock(width_in, width, 2 if i == 0 else 1, group_width, se_ratio=se_ratio))
                width_in = width
            stages.append(nn.Sequential(*blocks))
        self.trunk_output = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trunk_output(self.stem(x))
        x = self.avgpool(x)
        x = x.flatten(start_dim=1)
        return self.fc(x)


def regnet_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(RegNetLike(num_classes), seed=15)


#: The zoo-style models above, (factory, input shape); the ones that import are in ZOO as well.
ZOO_STYLES = {
    "mobilenet_v3_like": (mobilenet_v3_like, (2, 3, 64, 64)),
    "ghostnet_like": (ghostnet_like, (2, 3, 32, 32)),
    "shufflenet_v2_like": (shufflenet_v2_like, (2, 3, 32, 32)),
    "efficientnet_like": (efficientnet_like, (2, 3, 32, 32)),
    "regnet_like": (regnet_like, (2, 3, 32, 32)),
}
ZOO.update(ZOO_STYLES)

#: ZOO models with hand-written activations that import as one layer (h-swish from `x * relu6(x + 3) / 6`,
#: silu from `x * sigmoid(x)`), whose rounding differs from the fused torch function by float32 ulps.
FUSED_ACTIVATIONS = {"fbnet_like", "mobilenet_v3_like", "efficientnet_like"}


# =========================================================================================================
# More families, each at a small size, written as the family's reference code writes it (torchvision for
# ResNet-50, MNASNet, DenseNet and SqueezeNet; mit-han-lab/proxylessnas for ProxylessNAS).

from collections import OrderedDict  # noqa: E402  (the families' own spelling of named Sequentials)


# --- ResNet-50 style (torchvision Bottleneck): 1x1 reduce, 3x3, 1x1 expand x4, conv+BN downsample ---------
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, stride=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, kernel_size=1, stride=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)

        out = self.conv3(out)
        out = self.bn3(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class ResNetBottleneck(nn.Module):
    def __init__(self, layers: list[int], num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)

        return x


def resnet50_like(num_classes: int = 10) -> nn.Module:
    """ResNet-50's bottleneck network at width 8 with blocks (2, 2, 1, 1) instead of (3, 4, 6, 3)."""
    return _randomise_bn(ResNetBottleneck([2, 2, 1, 1], num_classes, width=8), seed=16)


# --- MnasNet-B1 style (torchvision MNASNet): depthwise-separable first block, MBConv e3/e6, k3/k5, ReLU --------
_BN_MOMENTUM = 1 - 0.9997


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    assert 0.0 < round_up_bias < 1.0
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _get_depths(alpha: float) -> list[int]:
    depths = [32, 16, 24, 40, 80, 96, 192, 320]
    return [_round_to_multiple_of(depth * alpha, 8) for depth in depths]


class _InvertedResidual(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, stride: int, expansion_factor: int, bn_momentum: float = 0.1
    ) -> None:
        super().__init__()
        assert stride in [1, 2]
        assert kernel_size in [3, 5]
        mid_ch = in_ch * expansion_factor
        self.apply_residual = in_ch == out_ch and stride == 1
        self.layers = nn.Sequential(
            # Pointwise
            nn.Conv2d(in_ch, mid_ch, 1, bias=False),
            nn.BatchNorm2d(mid_ch, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            # Depthwise
            nn.Conv2d(mid_ch, mid_ch, kernel_size, padding=kernel_size // 2, stride=stride, groups=mid_ch, bias=False),
            nn.BatchNorm2d(mid_ch, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            # Linear pointwise. Note that there's no activation.
            nn.Conv2d(mid_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=bn_momentum),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.apply_residual:
            return self.layers(input) + input
        else:
            return self.layers(input)


def _stack(
    in_ch: int, out_ch: int, kernel_size: int, stride: int, exp_factor: int, repeats: int, bn_momentum: float
) -> nn.Sequential:
    """Creates a stack of inverted residuals."""
    assert repeats >= 1
    # First one has no skip, because feature map size changes.
    first = _InvertedResidual(in_ch, out_ch, kernel_size, stride, exp_factor, bn_momentum=bn_momentum)
    remaining = []
    for _ in range(1, repeats):
        remaining.append(_InvertedResidual(out_ch, out_ch, kernel_size, 1, exp_factor, bn_momentum=bn_momentum))
    return nn.Sequential(first, *remaining)


class MNASNetLike(nn.Module):
    """torchvision's MNASNet (B1) with the stage repeats (3, 3, 3, 2, 4, 1) cut to (2, 2, 2, 1, 2, 1)."""

    def __init__(self, alpha: float, num_classes: int = 1000, dropout: float = 0.2, last: int = 1280) -> None:
        super().__init__()
        depths = _get_depths(alpha)
        layers = [
            # First layer: regular conv.
            nn.Conv2d(3, depths[0], 3, padding=1, stride=2, bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            # Depthwise separable, no skip.
            nn.Conv2d(depths[0], depths[0], 3, padding=1, stride=1, groups=depths[0], bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(depths[0], depths[1], 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(depths[1], momentum=_BN_MOMENTUM),
            # MNASNet blocks: stacks of inverted residuals.
            _stack(depths[1], depths[2], 3, 2, 3, 2, _BN_MOMENTUM),
            _stack(depths[2], depths[3], 5, 2, 3, 2, _BN_MOMENTUM),
            _stack(depths[3], depths[4], 5, 2, 6, 2, _BN_MOMENTUM),
            _stack(depths[4], depths[5], 3, 1, 6, 1, _BN_MOMENTUM),
            _stack(depths[5], depths[6], 5, 2, 6, 2, _BN_MOMENTUM),
            _stack(depths[6], depths[7], 3, 1, 6, 1, _BN_MOMENTUM),
            # Final mapping to classifier input.
            nn.Conv2d(depths[7], last, 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(last, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(x)
        # Equivalent to global avgpool and removing H and W dimensions.
        x = x.mean([2, 3])
        return self.classifier(x)


def mnasnet_b1_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(MNASNetLike(0.25, num_classes, last=128), seed=17)


# --- ProxylessNAS-Mobile style (mit-han-lab/proxylessnas): MBConv k3/k5/k7 e3/e6, ReLU6, feature mix layer ---
def get_same_padding(kernel_size: int) -> int:
    assert kernel_size % 2 > 0, "kernel size should be odd number"
    return kernel_size // 2


class ConvLayer(nn.Module):
    """weight -> bn -> act (ProxylessNAS's ConvLayer with ops_order 'weight_bn_act')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        padding = get_same_padding(kernel_size)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.bn(x)
        x = self.act(x)
        return x


class IdentityLayer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class LinearLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate, inplace=True) if dropout_rate > 0 else None
        self.linear = nn.Linear(in_features, out_features, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.linear(x)
        return x


class MBInvertedConvLayer(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, expand_ratio: int = 6
    ) -> None:
        super().__init__()
        feature_dim = round(in_channels * expand_ratio)
        if expand_ratio == 1:
            self.inverted_bottleneck = None
        else:
            self.inverted_bottleneck = nn.Sequential(
                OrderedDict(
                    [
                        ("conv", nn.Conv2d(in_channels, feature_dim, 1, 1, 0, bias=False)),
                        ("bn", nn.BatchNorm2d(feature_dim)),
                        ("act", nn.ReLU6(inplace=True)),
                    ]
                )
            )
        pad = get_same_padding(kernel_size)
        self.depth_conv = nn.Sequential(
            OrderedDict(
                [
                    (
                        "conv",
                        nn.Conv2d(feature_dim, feature_dim, kernel_size, stride, pad, groups=feature_dim, bias=False),
                    ),
                    ("bn", nn.BatchNorm2d(feature_dim)),
                    ("act", nn.ReLU6(inplace=True)),
                ]
            )
        )
        self.point_linear = nn.Sequential(
            OrderedDict(
                [
                    ("conv", nn.Conv2d(feature_dim, out_channels, 1, 1, 0, bias=False)),
                    ("bn", nn.BatchNorm2d(out_channels)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck:
            x = self.inverted_bottleneck(x)
        x = self.depth_conv(x)
        x = self.point_linear(x)
        return x


class MobileInvertedResidualBlock(nn.Module):
    def __init__(self, mobile_inverted_conv: nn.Module, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.mobile_inverted_conv = mobile_inverted_conv
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            res = self.mobile_inverted_conv(x)
        else:
            conv_x = self.mobile_inverted_conv(x)
            skip_x = self.shortcut(x)
            res = skip_x + conv_x
        return res


class ProxylessNASNetsLike(nn.Module):
    # (kernel, expand, out channels, stride) per block, after the first (k3, e1) block; the searched
    # ProxylessNAS-Mobile cell choices at a fraction of the depth and width.
    BLOCKS: ClassVar[list[tuple[int, int, int, int]]] = [
        (5, 3, 16, 2),
        (3, 3, 16, 1),
        (7, 3, 24, 2),
        (3, 3, 24, 1),
        (7, 6, 40, 2),
        (5, 3, 40, 1),
        (5, 6, 48, 1),
        (7, 6, 80, 2),
    ]

    def __init__(self, num_classes: int = 1000, dropout_rate: float = 0.1) -> None:
        super().__init__()
        input_channel, first_cell_width, last_channel = 16, 8, 160
        self.first_conv = ConvLayer(3, input_channel, kernel_size=3, stride=2)
        first_block_conv = MBInvertedConvLayer(input_channel, first_cell_width, 3, 1, 1)
        blocks = [MobileInvertedResidualBlock(first_block_conv, None)]
        input_channel = first_cell_width
        for k, e, width, stride in self.BLOCKS:
            mobile_inverted_conv = MBInvertedConvLayer(input_channel, width, k, stride, e)
            shortcut = IdentityLayer() if stride == 1 and input_channel == width else None
            blocks.append(MobileInvertedResidualBlock(mobile_inverted_conv, shortcut))
            input_channel = width
        self.blocks = nn.ModuleList(blocks)
        self.feature_mix_layer = ConvLayer(input_channel, last_channel, kernel_size=1)
        self.global_avg_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = LinearLayer(last_channel, num_classes, dropout_rate=dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        if self.feature_mix_layer:
            x = self.feature_mix_layer(x)
        x = self.global_avg_pooling(x)
        x = x.view(x.size(0), -1)  # flatten
        x = self.classifier(x)
        return x


def proxylessnas_mobile_like(num_classes: int = 10) -> nn.Module:
    return _randomise_bn(ProxylessNASNetsLike(num_classes), seed=18)


# --- DenseNet-121 style (torchvision): BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 dense layers over a features list ---
class _DenseLayer(nn.Module):
    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def bn_function(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        concated_features = torch.cat(inputs, 1)
        bottleneck_output = self.conv1(self.relu1(self.norm1(concated_features)))
        return bottleneck_output

    def forward(self, input: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        prev_features = [input] if isinstance(input, torch.Tensor) else input
        bottleneck_output = self.bn_function(prev_features)
        new_features = self.conv2(self.relu2(self.norm2(bottleneck_output)))
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class _DenseBlock(nn.ModuleDict):
    def __init__(
        self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int, drop_rate: float
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features: torch.Tensor) -> torch.Tensor:
        features = [init_features]
        for _name, layer in self.items():
            new_features = layer(features)
            features.append(new_features)
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNetLike(nn.Module):
    def __init__(
        self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16), num_init_features: int = 64,
        bn_size: int = 4, drop_rate: float = 0, num_classes: int = 1000,
    ) -> None:  # fmt: skip
        super().__init__()
        # First convolution
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ]
            )
        )
        # Each denseblock
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            block = _DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_features = num_features + num_layers * growth_rate
            if i != len(block_config) - 1:
                trans = _Transition(num_features, num_features // 2)
                self.features.add_module(f"transition{i + 1}", trans)
                num_features = num_features // 2
        # Final batch norm
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        # Linear layer
        self.classifier = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        out = F.relu(features, inplace=True)
        out = F.adaptive_avg_pool2d(out, (1, 1))
        out = torch.flatten(out, 1)
        out = self.classifier(out)
        return out


def densenet121_like(num_classes: int = 10) -> nn.Module:
    """DenseNet-121's structure with growth 8, 16 initial features and blocks (2, 3, 3, 2) for (6, 12, 24, 16)."""
    return _randomise_bn(DenseNetLike(8, (2, 3, 3, 2), 16, num_classes=num_classes), seed=19)


# --- SqueezeNet 1.1 style (torchvision): Fire modules (squeeze, expand1x1 | expand3x3 concatenated) ---------
class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNet11Like(nn.Module):
    """torchvision's SqueezeNet 1.1 with every channel count divided by 4."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(16, 4, 16, 16),
            Fire(32, 4, 16, 16),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(32, 8, 32, 32),
            Fire(64, 8, 32, 32),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 12, 48, 48),
            Fire(96, 12, 48, 48),
            Fire(96, 16, 64, 64),
            Fire(128, 16, 64, 64),
        )
        # Final convolution is initialized differently from the rest
        final_conv = nn.Conv2d(128, self.num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)


def squeezenet11_like(num_classes: int = 10) -> nn.Module:
    return SqueezeNet11Like(num_classes).eval()


#: The families above, (factory, input shape); the ones that import, map and export are in ZOO as well.
ZOO_FAMILIES = {
    "resnet50_like": (resnet50_like, (1, 3, 64, 64)),
    "mnasnet_b1_like": (mnasnet_b1_like, (1, 3, 64, 64)),
    "proxylessnas_mobile_like": (proxylessnas_mobile_like, (1, 3, 64, 64)),
    "densenet121_like": (densenet121_like, (1, 3, 64, 64)),
    "squeezenet11_like": (squeezenet11_like, (1, 3, 64, 64)),
}

ZOO.update(ZOO_FAMILIES)
ZOO["shufflenet_v2_split"] = (shufflenet_v2_split, (1, 3, 64, 64))
