"""Frozen configuration of the supernet, its quantizers and the architecture sampling; the named presets."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

import attrs
from attrs import field, frozen

from .errors import NNConfigError

#: Bitwidths a BitFusion fusion unit supports; every bit candidate must be one of these.
SUPPORTED_BITS: tuple[int, ...] = (2, 4, 8)

#: ``SupernetConfig.space`` of the paper's FBNet space (any other value names a user's space, jaqc.nn.space).
FBNET_SPACE = "fbnet"

#: The nine FBNet candidate ops of every searchable block, in the order of the α vector.
FBNET_CANDIDATES: tuple[str, ...] = (
    "k3_e1",
    "k3_e1_g2",
    "k3_e3",
    "k3_e6",
    "k5_e1",
    "k5_e1_g2",
    "k5_e3",
    "k5_e6",
    "skip",
)


class QuantSearchMode(enum.StrEnum):
    """How the searchable layers quantize during the search (all share weights, α and β)."""

    #: No quantization: the floating-point supernet.
    FLOAT = "float"
    #: Eq. 5: every bit candidate quantizes every channel; mixed with β, via the fused ``jaqc::fake_quant``.
    NAIVE = "naive"
    #: Eq. 5 written the common way: element-wise torch ops with a detach-based straight-through trick.
    NAIVE_COMMON = "naive_common"
    #: Auto-NBA heterogeneous sampling: β-blend with identity backward (weight step), hard top-k (arch step).
    HETERO = "hetero"
    #: JAQ channel-wise sparse quantization (Eqs. 6-8): only the top-K% channels by Γ are quantized.
    CSQ = "csq"
    #: The "channel 0" ablation of Table 7: CSQ with Ω fixed to the first channel.
    CHANNEL0 = "channel0"
    #: Not a search mode: one weight and one activation bitwidth, all channels (a derived subnet's layers).
    FIXED = "fixed"


class Clipping(enum.StrEnum):
    """How an activation quantizer chooses its clipping range."""

    #: The range of the tensor itself (batch min/max in training, running min/max in eval), as in Eq. 2.
    MINMAX = "minmax"
    #: Learned lower/upper clip per bit candidate with PACT gradients, initialised from the first batch.
    PACT = "pact"
    #: The tensor's min/max shrunk, per bit candidate, by the factor that minimises the quantization error
    #: (mean squared) of a fixed sample of the batch; in eval the running min/max times a running factor. What
    #: lets 2-bit activations train: over min/max, 2 bits round most of a ReLU output to zero.
    MSE = "mse"


#: The values of :class:`Clipping` (what ``--clipping`` and ``retrain(clipping=...)`` accept).
CLIPPINGS: tuple[str, ...] = tuple(c.value for c in Clipping)


class SearchStep(enum.StrEnum):
    """Which half of a bi-level search iteration a forward pass belongs to.

    A weight step's forward pass takes its architecture draw as a constant (backward computes no gradient of α
    or β, which that step does not update); HETERO quantizes differently in each half.
    """

    WEIGHTS = "weights"
    ARCH = "arch"


class ScheduleKind(enum.StrEnum):
    """Shape of the Gumbel temperature schedule over epochs."""

    CONSTANT = "constant"
    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    #: Exponential from ``initial`` at epoch 0 to ``final`` at epoch ``epochs - 1``, whatever the run length.
    ANNEAL = "anneal"


def _enum_converter(enum_type: type[enum.Enum], name: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum_type)  # type: ignore[attr-defined]
            raise NNConfigError(f"{name}: {value!r} is not one of {allowed}") from None

    return convert


def _check(predicate: Callable[[Any], bool], requirement: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    def validate(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not predicate(value):
            raise NNConfigError(f"{type(inst).__name__}.{attribute.name} must be {requirement}, got {value!r}")

    return validate


def _int_tuple(value: Any) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise NNConfigError(f"expected a sequence of integers, got {value!r}") from None


def _bits_ok(value: tuple[int, ...]) -> bool:
    return bool(value) and all(b in SUPPORTED_BITS for b in value) and list(value) == sorted(set(value))


def _positive(value: Any) -> bool:
    return value > 0


@frozen
class FixedBits:
    """One weight and one activation bitwidth, for a layer outside the search or a derived subnet's op."""

    weight: int = field(validator=_check(lambda b: b in SUPPORTED_BITS, "one of 2, 4, 8"))
    activation: int = field(validator=_check(lambda b: b in SUPPORTED_BITS, "one of 2, 4, 8"))


@frozen
class QuantizerConfig:
    """Quantizer settings: activation clipping, running-range momentum, PACT initial range."""

    activation_clipping: Clipping = field(
        default=Clipping.MINMAX, converter=_enum_converter(Clipping, "QuantizerConfig.activation_clipping")
    )
    running_momentum: float = field(default=0.1, validator=_check(lambda m: 0.0 < m <= 1.0, "in (0, 1]"))


@frozen
class SearchQuantConfig:
    """How searchable layers quantize: mode, bit candidates, CSQ's K and refresh period, HETERO's top-k."""

    mode: QuantSearchMode = field(
        default=QuantSearchMode.CSQ, converter=_enum_converter(QuantSearchMode, "SearchQuantConfig.mode")
    )
    weight_bits: tuple[int, ...] = field(
        default=SUPPORTED_BITS,
        converter=_int_tuple,
        validator=_check(_bits_ok, "a sorted subset of (2, 4, 8)"),
    )
    activation_bits: tuple[int, ...] = field(
        default=SUPPORTED_BITS,
        converter=_int_tuple,
        validator=_check(_bits_ok, "a sorted subset of (2, 4, 8)"),
    )
    #: K of Eq. 8, in percent of the channels of each quantized activation (the paper uses 3).
    csq_k_percent: float = field(default=3.0, validator=_check(lambda k: 0.0 < k <= 100.0, "in (0, 100]"))
    #: Recompute Ω from live α and γ every this many training steps; 0: never (Ω set from outside).
    csq_update_every: int = field(default=1, validator=_check(lambda n: n >= 0, ">= 0"))
    #: Bit candidates kept by HETERO's architecture step (Auto-NBA samples two).
    hetero_top_k: int = field(default=2, validator=_check(lambda n: n >= 1, ">= 1"))
    quantizer: QuantizerConfig = field(factory=QuantizerConfig)


@frozen
class TemperatureSchedule:
    """Gumbel-softmax temperature per epoch: constant, ``initial·decay^epoch``, linear to ``final``, or annealed
    exponentially from ``initial`` to ``final`` over ``epochs`` (what a search run uses, scaled to its length, and
    step by step: :meth:`temperature_at_step`)."""

    initial: float = field(default=5.0, validator=_check(_positive, "> 0"))
    kind: ScheduleKind = field(
        default=ScheduleKind.EXPONENTIAL, converter=_enum_converter(ScheduleKind, "TemperatureSchedule.kind")
    )
    #: Per-epoch factor of the exponential schedule (FBNet uses 0.956).
    decay: float = field(default=0.956, validator=_check(lambda d: 0.0 < d <= 1.0, "in (0, 1]"))
    #: End temperature of the linear schedule, and the floor of every schedule.
    final: float = field(default=0.1, validator=_check(_positive, "> 0"))
    #: Number of epochs the linear and anneal schedules take to reach ``final``.
    epochs: int = field(default=90, validator=_check(lambda n: n >= 1, ">= 1"))

    def temperature(self, epoch: int) -> float:
        """The temperature for epoch ``epoch`` (0-based)."""
        if epoch < 0:
            raise NNConfigError(f"epoch must be >= 0, got {epoch}")
        if self.kind is ScheduleKind.CONSTANT:
            return self.initial
        if self.kind is ScheduleKind.EXPONENTIAL:
            value = self.initial * self.decay**epoch
        elif self.kind is ScheduleKind.ANNEAL:  # (one epoch: the initial temperature; nothing to anneal)
            fraction = min(1.0, epoch / max(1, self.epochs - 1))
            return self.initial * (self.final / self.initial) ** fraction
        else:
            fraction = min(1.0, epoch / self.epochs)
            value = self.initial + (self.final - self.initial) * fraction
        return max(self.final, value) if self.final < self.initial else value

    def temperature_at_step(self, step: int, steps: int) -> float:
        """The anneal schedule's temperature at step ``step`` (0-based) of ``steps``: ``initial`` at step 0 and
        ``final`` at step ``steps - 1``, one constant factor a step in between (so a two-epoch search anneals as
        smoothly as a 90-epoch one; a search run anneals over its steps after the warm-up)."""
        if self.kind is not ScheduleKind.ANNEAL:
            raise NNConfigError(f"per-step temperatures are the anneal schedule's, not the {self.kind.value} one's")
        if step < 0 or steps < 1:
            raise NNConfigError(f"step must be >= 0 and steps >= 1, got {step} and {steps}")
        fraction = min(1.0, step / max(1, steps - 1))
        return self.initial * (self.final / self.initial) ** fraction


@frozen
class GumbelConfig:
    """Architecture sampling: temperature schedule, straight-through hard one-hot or soft, and the seed."""

    temperature: TemperatureSchedule = field(factory=TemperatureSchedule)
    hard: bool = False
    seed: int = 0


def _candidates_ok(value: tuple[str, ...]) -> bool:
    return bool(value) and len(set(value)) == len(value) and all(isinstance(v, str) and v for v in value)


def _space_ok(value: Any) -> bool:
    return isinstance(value, str) and (value == FBNET_SPACE or ":" in value)


@frozen
class SupernetConfig:
    """A supernet: its search space (the FBNet one, shaped by the stage fields, or a user's own), candidates,
    quantization and sampling settings."""

    name: str
    num_classes: int = field(validator=_check(lambda n: n >= 2, ">= 2"))
    input_size: int = field(validator=_check(lambda n: n >= 1, ">= 1"))
    in_channels: int = field(default=3, validator=_check(_positive, ">= 1"))
    stem_channels: int = field(default=16, validator=_check(_positive, ">= 1"))
    stem_stride: int = field(default=1, validator=_check(lambda s: s in (1, 2), "1 or 2"))
    stage_layers: tuple[int, ...] = field(
        default=(1, 4, 4, 4, 4, 4, 1),
        converter=_int_tuple,
        validator=_check(lambda v: bool(v) and min(v) >= 1, "non-empty, >= 1"),
    )
    stage_channels: tuple[int, ...] = field(
        default=(16, 24, 32, 64, 112, 184, 352),
        converter=_int_tuple,
        validator=_check(lambda v: bool(v) and all(c >= 2 and c % 2 == 0 for c in v), "even and >= 2 (grouped ops)"),
    )
    stage_strides: tuple[int, ...] = field(
        default=(1, 1, 2, 2, 1, 2, 1),
        converter=_int_tuple,
        validator=_check(lambda v: all(s in (1, 2) for s in v), "1 or 2"),
    )
    head_channels: int = field(default=1504, validator=_check(_positive, ">= 1"))
    #: The ops each block chooses from, in the order of α: a subset of the space's ops.
    candidates: tuple[str, ...] = field(
        default=FBNET_CANDIDATES,
        converter=tuple,
        validator=_check(_candidates_ok, "non-empty op names without repeats"),
    )
    quant: SearchQuantConfig = field(factory=SearchQuantConfig)
    gumbel: GumbelConfig = field(factory=GumbelConfig)
    #: Bits of the stem conv, head conv and classifier; ``None`` keeps them in floating point.
    stem_bits: FixedBits | None = None
    head_bits: FixedBits | None = None
    fc_bits: FixedBits | None = None
    #: The search space (:mod:`jaqc.nn.space`): ``"fbnet"`` or a user's ``"module:attribute"`` /
    #: ``"file.py:attribute"``; the stage, stem and head fields shape the FBNet space only.
    space: str = field(default=FBNET_SPACE, validator=_check(_space_ok, "'fbnet' or 'module:attribute'"))

    def __attrs_post_init__(self) -> None:
        if self.space == FBNET_SPACE:
            unknown = [c for c in self.candidates if c not in FBNET_CANDIDATES]
            if unknown:
                raise NNConfigError(
                    f"SupernetConfig.candidates: {unknown[0]!r} is not an FBNet op; expected a subset of "
                    f"{', '.join(FBNET_CANDIDATES)}"
                )
        lengths = {len(self.stage_layers), len(self.stage_channels), len(self.stage_strides)}
        if len(lengths) != 1:
            raise NNConfigError(
                f"SupernetConfig: stage_layers, stage_channels and stage_strides differ in length: "
                f"{len(self.stage_layers)}, {len(self.stage_channels)} and {len(self.stage_strides)}"
            )
        if self.stem_channels % 2:
            raise NNConfigError(f"SupernetConfig.stem_channels must be even (grouped ops), got {self.stem_channels}")
        reduction = self.stem_stride * math.prod(self.stage_strides)
        if self.input_size < reduction:
            raise NNConfigError(
                f"SupernetConfig.input_size {self.input_size} is smaller than the total stride {reduction}"
            )

    @property
    def num_blocks(self) -> int:
        """The number of searchable blocks (22 for the FBNet presets)."""
        return len(self.block_specs())

    def block_specs(self) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, stride)`` of every searchable block of the space, in order."""
        if self.space == FBNET_SPACE:
            return self.fbnet_block_specs()
        from .space import space_of

        return [tuple(spec) for spec in space_of(self).block_specs()]  # type: ignore[misc]

    def fbnet_block_specs(self) -> list[tuple[int, int, int]]:
        """The FBNet space's blocks: the stages, one block per layer, the stage stride on its first block."""
        specs = []
        channels = self.stem_channels
        for layers, out_channels, stride in zip(
            self.stage_layers, self.stage_channels, self.stage_strides, strict=True
        ):
            for index in range(layers):
                specs.append((channels, out_channels, stride if index == 0 else 1))
                channels = out_channels
        return specs


PRESET_NAMES: tuple[str, ...] = ("cifar10", "cifar100", "imagenet", "tiny", "digits32")


def supernet_preset(name: str, **overrides: Any) -> SupernetConfig:
    """The named preset (``cifar10``, ``cifar100``, ``imagenet``, ``tiny``), fields replaced by ``overrides``.

    ``tiny`` is a 5-block, 1-channel, 16x16-input supernet for quick searches on scikit-learn's digits;
    ``digits32`` an 8-block, 1-channel, 32x32-input one with CIFAR-sized layers (16-128 channels, 96-768 inside the
    e6 ops) for the ``digits32`` data set, whose activation quantizers clip by MSE (``Clipping.MSE``).
    """
    if name == "cifar10":
        config = SupernetConfig(name="cifar10", num_classes=10, input_size=32)
    elif name == "cifar100":
        config = SupernetConfig(name="cifar100", num_classes=100, input_size=32)
    elif name == "imagenet":
        config = SupernetConfig(
            name="imagenet",
            num_classes=1000,
            input_size=224,
            stem_stride=2,
            stage_strides=(1, 2, 2, 2, 1, 2, 1),
            head_channels=1984,
        )
    elif name == "tiny":
        config = SupernetConfig(
            name="tiny",
            num_classes=10,
            input_size=16,
            in_channels=1,
            stem_channels=8,
            stage_layers=(1, 2, 1, 1),
            stage_channels=(8, 16, 24, 32),
            stage_strides=(1, 2, 2, 1),
            head_channels=64,
        )
    elif name == "digits32":
        config = SupernetConfig(
            name="digits32",
            num_classes=10,
            input_size=32,
            in_channels=1,
            stem_channels=16,
            stage_layers=(1, 2, 2, 2, 1),
            stage_channels=(16, 24, 48, 96, 128),
            stage_strides=(1, 2, 2, 2, 1),
            head_channels=256,
            # MSE clipping: over min/max, 2-bit activations round most of a ReLU output to zero and a w2a2
            # network of this depth stays at chance (docs/data.md, "digits32")
            quant=SearchQuantConfig(quantizer=QuantizerConfig(activation_clipping=Clipping.MSE)),
        )
    else:
        raise NNConfigError(f"unknown supernet preset {name!r}; expected one of {', '.join(PRESET_NAMES)}")
    try:
        return attrs.evolve(config, **overrides)
    except TypeError as error:
        raise NNConfigError(f"supernet_preset({name!r}): {error}") from None
