"""The actor and critic MLPs of HAQ's DDPG agent (HAQ's code: two hidden layers of 300, ReLU)."""

from __future__ import annotations

import math

import torch
from torch import nn


def seeded_linear(in_features: int, out_features: int, generator: torch.Generator) -> nn.Linear:
    """A linear layer with PyTorch's default initialisation (weights and bias uniform in ±1/√fan_in) drawn from
    ``generator``; the global random state is not used."""
    layer = torch.nn.utils.skip_init(nn.Linear, in_features, out_features)
    bound = 1.0 / math.sqrt(in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


class Actor(nn.Module):
    """state → action in (0, 1): Linear-ReLU-Linear-ReLU-Linear-sigmoid."""

    def __init__(self, state_size: int, hidden: tuple[int, int], generator: torch.Generator) -> None:
        super().__init__()
        self.fc1 = seeded_linear(state_size, hidden[0], generator)
        self.fc2 = seeded_linear(hidden[0], hidden[1], generator)
        self.fc3 = seeded_linear(hidden[1], 1, generator)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """Actions of a batch of states, shape ``(batch, 1)``."""
        hidden = torch.relu(self.fc2(torch.relu(self.fc1(state))))
        return torch.sigmoid(self.fc3(hidden))


class Critic(nn.Module):
    """(state, action) → Q: the state and the action each pass a linear layer, summed, then ReLU-Linear-ReLU-Linear."""

    def __init__(self, state_size: int, hidden: tuple[int, int], generator: torch.Generator) -> None:
        super().__init__()
        self.fc_state = seeded_linear(state_size, hidden[0], generator)
        self.fc_action = seeded_linear(1, hidden[0], generator)
        self.fc2 = seeded_linear(hidden[0], hidden[1], generator)
        self.fc3 = seeded_linear(hidden[1], 1, generator)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q-values of a batch, shape ``(batch, 1)``."""
        hidden = torch.relu(self.fc_state(state) + self.fc_action(action))
        return self.fc3(torch.relu(self.fc2(hidden)))


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target ← (1 − tau)·target + tau·source``, parameter by parameter."""
    with torch.no_grad():
        for target_param, param in zip(target.parameters(), source.parameters(), strict=True):
            target_param.mul_(1.0 - tau).add_(param, alpha=tau)


def hard_update(target: nn.Module, source: nn.Module) -> None:
    """Copy ``source``'s parameters into ``target``."""
    with torch.no_grad():
        for target_param, param in zip(target.parameters(), source.parameters(), strict=True):
            target_param.copy_(param)
