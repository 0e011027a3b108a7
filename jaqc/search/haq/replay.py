"""A fixed-size replay buffer of agent transitions (the oldest transition is overwritten first)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from attrs import frozen

from .errors import HaqError


@frozen(eq=False)
class TransitionBatch:
    """A sampled batch: states ``(n, s)``, actions ``(n, 1)``, rewards ``(n, 1)``, next states, done flags."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    dones: np.ndarray


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions ``(state, action, reward, next_state, done)``."""

    def __init__(self, capacity: int, state_size: int) -> None:
        if capacity < 1:
            raise HaqError(f"the replay capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._states = np.zeros((capacity, state_size), dtype=np.float32)
        self._next_states = np.zeros((capacity, state_size), dtype=np.float32)
        self._actions = np.zeros((capacity, 1), dtype=np.float32)
        self._rewards = np.zeros((capacity, 1), dtype=np.float32)
        self._dones = np.zeros((capacity, 1), dtype=np.float32)
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, state: np.ndarray, action: float, reward: float, next_state: np.ndarray, done: bool) -> None:
        """Store one transition, replacing the oldest when full."""
        slot = self._next
        self._states[slot] = state
        self._actions[slot, 0] = action
        self._rewards[slot, 0] = reward
        self._next_states[slot] = next_state
        self._dones[slot, 0] = float(done)
        self._next = (slot + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def state_dict(self) -> dict[str, Any]:
        """The buffer's contents and write position, as tensors and ints (for a checkpoint)."""
        return {
            "capacity": self.capacity,
            "next": self._next,
            "size": self._size,
            "states": torch.from_numpy(self._states.copy()),
            "next_states": torch.from_numpy(self._next_states.copy()),
            "actions": torch.from_numpy(self._actions.copy()),
            "rewards": torch.from_numpy(self._rewards.copy()),
            "dones": torch.from_numpy(self._dones.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (of a buffer with the same capacity and state size)."""
        if state["capacity"] != self.capacity or tuple(state["states"].shape) != self._states.shape:
            raise HaqError(
                f"replay state of capacity {state['capacity']} and states {tuple(state['states'].shape)} does not "
                f"fit a buffer of capacity {self.capacity} and states {self._states.shape}"
            )
        for key in ("states", "next_states", "actions", "rewards", "dones"):
            getattr(self, f"_{key}")[...] = state[key].numpy()
        self._next, self._size = int(state["next"]), int(state["size"])

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """``batch_size`` transitions drawn uniformly (without replacement when the buffer holds enough)."""
        if self._size == 0:
            raise HaqError("cannot sample from an empty replay buffer")
        index = rng.choice(self._size, size=batch_size, replace=self._size < batch_size)
        return TransitionBatch(
            states=self._states[index],
            actions=self._actions[index],
            rewards=self._rewards[index],
            next_states=self._next_states[index],
            dones=self._dones[index],
        )
