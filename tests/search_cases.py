"""Small search presets shared by the search tests (on sys.path through conftest)."""

from __future__ import annotations

import attrs

from jaqc.data import DataConfig
from jaqc.nn.config import supernet_preset
from jaqc.search.presets import SearchPreset, search_preset


def small_preset(**overrides: object) -> SearchPreset:
    """tiny on native 8x8 digits with 3 candidates and 2 epochs: a search of 32 steps (``overrides``: further
    search settings)."""
    preset = search_preset("tiny", epochs=2, hw_refresh_every=5, generator_steps=2, seed=3, **overrides)
    return attrs.evolve(
        preset,
        supernet=supernet_preset("tiny", input_size=8, candidates=("k3_e1", "k5_e1", "skip")),
        data=DataConfig(name="digits", resolution=8, channels=1),
        checkpoint_every=4,
        final_generator_steps=4,
    )
