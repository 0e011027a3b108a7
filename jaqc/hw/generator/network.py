"""The hardware generation network (JAQ Fig. 2): encoded subnet → accelerator, with Gumbel-softmax heads.

The operator vectors of a subnet (``encode-layers``, normalised) are embedded per layer, pooled (mean and
max over layers, so any depth works), passed through residual MLP blocks (5 by default) and mapped by seven
heads to the digits of the :class:`~jaqc.hw.generator.space.AcceleratorSpace`: PE_x (rows), PE_y (columns), weight,
activation and output buffer sizes, dataflow and tile loop order. Each head samples a straight-through
hard one-hot with Gumbel-softmax: the forward pass sees exactly one accelerator, the backward pass the soft
probabilities. :meth:`GeneratorSample.relaxed` turns the one-hots into accelerator tensors whose gradients
flow back to the heads (value = Σ one-hot·choice values), for the cost model's relaxed evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from attrs import field, frozen
from torch import Tensor, nn

from jaqc.hw.errors import HardwareError
from jaqc.hw.generator.space import DIGIT_NAMES, AcceleratorSpace, HardwarePoint
from jaqc.hw.model.orders import ALL_ORDERS
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import LoopDim
from jaqc.nn.gumbel import gumbel_softmax

#: Width of the operator encoding vector (jaqc.ir.encoding.OPERATOR_FIELDS).
OPERATOR_WIDTH = 7


def _positive(_inst: object, attribute: object, value: int) -> None:
    if value < 1:
        raise HardwareError(f"generator config field {attribute.name} must be >= 1, got {value}")  # type: ignore[attr-defined]


@frozen(kw_only=True)
class GeneratorConfig:
    """Size of the generation network: hidden width and number of residual blocks (paper: 5)."""

    hidden: int = field(default=128, validator=_positive)
    blocks: int = field(default=5, validator=_positive)


class ResidualBlock(nn.Module):
    """``x + W2·relu(W1·LayerNorm(x))``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


@frozen(eq=False)
class GeneratorSample:
    """One sampled accelerator: per head the logits and the straight-through one-hot."""

    space: AcceleratorSpace
    logits: dict[str, Tensor]
    one_hot: dict[str, Tensor]

    @property
    def digits(self) -> tuple[int, ...]:
        """The chosen digit of each head, in ``DIGIT_NAMES`` order."""
        return tuple(int(self.one_hot[name].detach().argmax()) for name in DIGIT_NAMES)

    def point(self) -> HardwarePoint:
        """The sampled accelerator and loop order."""
        return self.space.point_from_digits(self.digits)

    def accelerator(self) -> AcceleratorConfig:
        """The sampled accelerator."""
        return self.point().accelerator

    def loop_order(self) -> tuple[LoopDim, ...]:
        """The sampled tile loop order (outer to inner)."""
        return ALL_ORDERS[self.digits[6]]

    def relaxed(self, name: str) -> Tensor:
        """Σ one-hot · choice values of a numeric head (equal to the chosen value; differentiable)."""
        values = {
            "pe_rows": self.space.pe_choices,
            "pe_cols": self.space.pe_choices,
            "wbuf_kb": self.space.buffer_choices_kb,
            "ibuf_kb": self.space.buffer_choices_kb,
            "obuf_kb": self.space.buffer_choices_kb,
        }
        if name not in values:
            raise HardwareError(f"head {name!r} has no numeric value; numeric heads: {', '.join(values)}")
        one_hot = self.one_hot[name]
        return (one_hot * torch.tensor(values[name], dtype=one_hot.dtype, device=one_hot.device)).sum()


class HardwareGenerator(nn.Module):
    """Encoded subnet (L x 7 normalised operator vectors) → a sampled accelerator of ``space``."""

    def __init__(self, space: AcceleratorSpace | None = None, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.space = space or AcceleratorSpace()
        self.config = config or GeneratorConfig()
        h = self.config.hidden
        self.embed = nn.Linear(OPERATOR_WIDTH, h)
        self.pool = nn.Linear(2 * h, h)
        self.trunk = nn.Sequential(*[ResidualBlock(h) for _ in range(self.config.blocks)])
        self.heads = nn.ModuleDict({name: nn.Linear(h, radix) for name, radix in zip(DIGIT_NAMES, self.space.radices)})

    def hidden_state(self, op_vectors: Tensor) -> Tensor:
        """The trunk's output for a (L, 7) batch of operator vectors."""
        if op_vectors.dim() != 2 or op_vectors.shape[1] != OPERATOR_WIDTH or op_vectors.shape[0] == 0:
            raise HardwareError(f"generator input must be (layers, {OPERATOR_WIDTH}), got {tuple(op_vectors.shape)}")
        per_layer = torch.relu(self.embed(op_vectors))
        pooled = torch.cat([per_layer.mean(dim=0), per_layer.max(dim=0).values])
        return self.trunk(torch.relu(self.pool(pooled)))

    def forward(
        self, op_vectors: Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> GeneratorSample:
        """Sample an accelerator (straight-through hard one-hots; ``generator=None``: the argmax)."""
        state = self.hidden_state(op_vectors)
        logits = {name: head(state) for name, head in self.heads.items()}
        one_hot = {name: gumbel_softmax(lg, temperature, generator, hard=True) for name, lg in logits.items()}
        return GeneratorSample(space=self.space, logits=logits, one_hot=one_hot)


def op_vector_tensor(vectors: Sequence[Sequence[float]]) -> Tensor:
    """Stack normalised operator vectors (``OperatorVector.normalized()``) into a (L, 7) float32 tensor."""
    return torch.tensor([list(v) for v in vectors], dtype=torch.float32)
