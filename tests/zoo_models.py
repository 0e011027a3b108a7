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
