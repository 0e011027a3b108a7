"""The nine FBNet candidate ops (inverted residuals, skip) as leaf modules with plain structural attributes.

Every candidate exposes ``name``, ``kernel``, ``expansion``, ``groups``, ``in_channels``, ``out_channels``,
``hidden_channels``, ``stride`` and ``has_residual`` as plain Python values, so the IR importer
can describe it without tracing into it. ``forward(x, w_probs, a_probs)`` takes the candidate's β
probabilities over the weight and activation bitwidths (``None`` for a floating-point or fixed-precision
candidate).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from attrs import field, frozen
from torch import Tensor, nn

from .config import FBNET_CANDIDATES, FixedBits, QuantizerConfig, QuantSearchMode, SupernetConfig
from .csq_select import top_k_channels
from .errors import NNConfigError
from .quant_linear import QuantLinear
from .search_conv import SearchConv2d


@frozen
class CandidateSpec:
    """Structure of one candidate op: ``k{kernel}_e{expansion}[_g{groups}]`` or ``skip``."""

    name: str
    kernel: int
    expansion: int
    groups: int
    is_skip: bool = False


def candidate_spec(name: str) -> CandidateSpec:
    """The structure named by ``name`` (one of :data:`FBNET_CANDIDATES`)."""
    if name == "skip":
        return CandidateSpec("skip", kernel=1, expansion=1, groups=1, is_skip=True)
    if name not in FBNET_CANDIDATES:
        raise NNConfigError(f"unknown candidate op {name!r}; expected one of {', '.join(FBNET_CANDIDATES)}")
    parts = name.split("_")
    groups = int(parts[2][1:]) if len(parts) == 3 else 1
    return CandidateSpec(name, kernel=int(parts[0][1:]), expansion=int(parts[1][1:]), groups=groups)


@frozen
class ConvFactory:
    """How the convs of a candidate are built: quantization mode, bit candidates, quantizer settings."""

    mode: QuantSearchMode = QuantSearchMode.FLOAT
    weight_bits: tuple[int, ...] = ()
    activation_bits: tuple[int, ...] = ()
    quantizer: QuantizerConfig = field(factory=QuantizerConfig)
    hetero_top_k: int = 2

    @classmethod
    def fixed(cls, bits: FixedBits | None, quantizer: QuantizerConfig | None = None) -> ConvFactory:
        """Floating point when ``bits`` is None, otherwise a single weight and activation bitwidth."""
        if bits is None:
            return cls()
        return cls(QuantSearchMode.FIXED, (bits.weight,), (bits.activation,), quantizer or QuantizerConfig())

    def __call__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1
    ) -> SearchConv2d:
        return SearchConv2d(
            in_channels,
            out_channels,
            kernel,
            stride,
            groups,
            mode=self.mode,
            weight_bits=self.weight_bits,
            activation_bits=self.activation_bits,
            quantizer=self.quantizer,
            hetero_top_k=self.hetero_top_k,
        )


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle with ``groups`` groups: channel ``gi·c + i`` moves to ``i·g + gi``."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        """``x`` with its channels shuffled across the groups."""
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def permutation(self, channels: int) -> list[int]:
        """``perm`` with ``shuffled[:, p] = x[:, perm[p]]``."""
        per_group = channels // self.groups
        return [(p % self.groups) * per_group + p // self.groups for p in range(channels)]


class CandidateOp(nn.Module):
    """Base of the candidate ops of every search space: ``forward(x, w_probs, a_probs)`` and the hooks CSQ
    reads (which convs read the op's input, the γ ranking its output and its inner convs' inputs).

    A user's op (:mod:`jaqc.nn.space`) subclasses it, builds its convs with the ``conv`` factory it is given,
    passes ``w_probs, a_probs`` to each, and overrides :meth:`input_convs`, :meth:`output_gamma` and, when it
    has convs inside, :meth:`internal_csq_importance`.
    """

    def quant_convs(self) -> Iterator[tuple[str, SearchConv2d]]:
        """``(role, conv)`` of every quantized conv, in registration order; the role is its attribute path."""
        for role, module in self.named_modules():
            if isinstance(module, SearchConv2d):
                yield role, module

    def input_convs(self) -> list[SearchConv2d]:
        """The convs that read the candidate's input (they share the block input's Ω)."""
        if any(True for _ in self.quant_convs()):
            raise NNConfigError(
                f"{type(self).__name__} has quantized convs but does not say which read its input: override "
                "input_convs() (docs/search.md, 'Your own search space')"
            )
        return []

    def output_gamma(self) -> Tensor | None:
        """The scales γ of the batch norm that produces the candidate's output; None for the identity skip."""
        return None

    def internal_csq_importance(self) -> dict[str, Tensor]:
        """Γ (the preceding batch norm's γ, in input-channel order) for each conv inside the candidate."""
        return {}

    def update_internal_csq(self, k_percent: float) -> None:
        """Recompute Ω of the convs inside the candidate (their inputs come from its own layers)."""
        importances = self.internal_csq_importance()
        for role, conv in self.quant_convs():
            if role in importances:
                values = importances[role].detach().abs().cpu().double().numpy()
                conv.set_csq_channels(top_k_channels(values, k_percent).tolist())


class InvertedResidual(CandidateOp):
    """1x1 expand (grouped + shuffle for ``_g2``) → k×k depthwise (stride) → 1x1 project, BN after each conv.

    ReLU follows the expand and depthwise convs; the input is added back when shapes match.
    """

    def __init__(
        self, spec: CandidateSpec, in_channels: int, out_channels: int, stride: int, conv: ConvFactory
    ) -> None:
        super().__init__()
        if spec.is_skip:
            raise NNConfigError("InvertedResidual cannot build the skip candidate; use SkipOp")
        hidden = in_channels * spec.expansion
        for label, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % spec.groups:
                raise NNConfigError(f"{spec.name}: {label}={channels} is not divisible by groups={spec.groups}")
        self.name, self.kernel, self.expansion, self.groups = (
            spec.name,
            spec.kernel,
            spec.expansion,
            spec.groups,
        )
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden
        self.stride = stride
        self.has_residual = stride == 1 and in_channels == out_channels
        self.expand = conv(in_channels, hidden, 1, 1, spec.groups)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.relu1 = nn.ReLU()
        self.shuffle = ChannelShuffle(spec.groups) if spec.groups > 1 else None
        self.dw = conv(hidden, hidden, spec.kernel, stride, hidden)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.relu2 = nn.ReLU()
        self.project = conv(hidden, out_channels, 1, 1, spec.groups)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, w_probs: Tensor | None = None, a_probs: Tensor | None = None) -> Tensor:
        """The candidate's output for input ``x`` under bit probabilities ``w_probs``/``a_probs``."""
        out = self.relu1(self.bn1(self.expand(x, w_probs, a_probs)))
        if self.shuffle is not None:
            out = self.shuffle(out)
        out = self.relu2(self.bn2(self.dw(out, w_probs, a_probs)))
        out = self.bn3(self.project(out, w_probs, a_probs))
        return out + x if self.has_residual else out

    def input_convs(self) -> list[SearchConv2d]:
        """The expand conv."""
        return [self.expand]

    def output_gamma(self) -> Tensor:
        """The scales γ of the project conv's batch norm."""
        return self.bn3.weight

    def internal_csq_importance(self) -> dict[str, Tensor]:
        """Γ of the depthwise input (``bn1``'s γ, shuffled like the data) and project input (``bn2``'s γ)."""
        gamma1 = self.bn1.weight
        if self.shuffle is not None:
            perm = torch.tensor(self.shuffle.permutation(self.hidden_channels), device=gamma1.device)
            gamma1 = gamma1.index_select(0, perm)
        return {"dw": gamma1, "project": self.bn2.weight}

    def extra_repr(self) -> str:
        return (
            f"{self.name}: {self.in_channels}->{self.hidden_channels}->{self.out_channels}, "
            f"stride={self.stride}, residual={self.has_residual}"
        )


class SkipOp(CandidateOp):
    """The skip candidate: identity, or a 1x1 projection conv + BN when stride or channel count change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, conv: ConvFactory) -> None:
        super().__init__()
        self.name, self.kernel, self.expansion, self.groups = "skip", 1, 1, 1
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, in_channels
        self.stride = stride
        self.has_residual = False
        self.is_identity = stride == 1 and in_channels == out_channels
        self.proj: SearchConv2d | None = None
        self.bn: nn.BatchNorm2d | None = None
        if not self.is_identity:
            self.proj = conv(in_channels, out_channels, 1, stride, 1)
            self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, w_probs: Tensor | None = None, a_probs: Tensor | None = None) -> Tensor:
        """``x`` itself, or its projection."""
        if self.proj is None or self.bn is None:
            return x
        return self.bn(self.proj(x, w_probs, a_probs))

    def input_convs(self) -> list[SearchConv2d]:
        """The projection conv, if any."""
        return [] if self.proj is None else [self.proj]

    def output_gamma(self) -> Tensor | None:
        """The projection's batch-norm scales, or None for the identity."""
        return None if self.bn is None else self.bn.weight

    def extra_repr(self) -> str:
        shape = f"{self.in_channels}->{self.out_channels}"
        return f"skip: {shape}, stride={self.stride}, identity={self.is_identity}"


def make_candidate(name: str, in_channels: int, out_channels: int, stride: int, conv: ConvFactory) -> CandidateOp:
    """The candidate op ``name`` with convs built by ``conv``."""
    spec = candidate_spec(name)
    if stride not in (1, 2):
        raise NNConfigError(f"{name}: stride must be 1 or 2, got {stride}")
    if spec.is_skip:
        return SkipOp(in_channels, out_channels, stride, conv)
    return InvertedResidual(spec, in_channels, out_channels, stride, conv)


def build_candidate(
    name: str,
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    bits: FixedBits | None = None,
    quantizer: QuantizerConfig | None = None,
) -> CandidateOp:
    """A standalone candidate op with fixed bits (float when ``bits`` is None), for derived subnets."""
    return make_candidate(name, in_channels, out_channels, stride, ConvFactory.fixed(bits, quantizer))


def candidate_names(names: Sequence[str] = FBNET_CANDIDATES) -> list[CandidateSpec]:
    """The specs of ``names``, validated."""
    return [candidate_spec(n) for n in names]


# --- the fixed frame every network of a SupernetConfig shares (supernets and derived subnets alike) ----------


def conv_bn_relu(
    cin: int, cout: int, kernel: int, stride: int, bits: FixedBits | None, quantizer: QuantizerConfig
) -> nn.Sequential:
    """Conv + BN + ReLU, in floating point (``bits`` None) or at fixed bits."""
    conv = ConvFactory.fixed(bits, quantizer)(cin, cout, kernel, stride)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU())


def stem_module(config: SupernetConfig) -> nn.Sequential:
    """The stem: a 3x3 conv-bn-relu at ``config.stem_bits``."""
    return conv_bn_relu(
        config.in_channels, config.stem_channels, 3, config.stem_stride, config.stem_bits, config.quant.quantizer
    )


def head_module(config: SupernetConfig) -> nn.Sequential:
    """The head: a 1x1 conv-bn-relu from the last stage to ``head_channels`` at ``config.head_bits``."""
    return conv_bn_relu(config.stage_channels[-1], config.head_channels, 1, 1, config.head_bits, config.quant.quantizer)


def classifier_module(config: SupernetConfig) -> nn.Linear:
    """The classifier: a linear layer, quantized at ``config.fc_bits`` when set."""
    if config.fc_bits is None:
        return nn.Linear(config.head_channels, config.num_classes)
    return QuantLinear(config.head_channels, config.num_classes, config.fc_bits, config.quant.quantizer)
