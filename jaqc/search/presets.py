"""Search presets: the supernet, the data and the optimisation settings of a run, by name.

``cifar10``/``cifar100``/``imagenet`` carry the paper's settings (SGD lr 0.01 cosine; 90 / 45 search epochs;
Gumbel T0 = 5; K = 3; λE = λL = λA = 0.33; retrain 600 / 180 epochs). ``tiny`` searches the ``tiny``
supernet on scikit-learn's digits (16x16, one channel) in a few minutes on 2 cores.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen

from jaqc.core import JaqcError
from jaqc.data import DataConfig
from jaqc.hw.generator.objective import HardwareWeights
from jaqc.nn.config import SupernetConfig, supernet_preset

from .jaq import JaqSearchSettings

PRESETS: tuple[str, ...] = ("tiny", "digits32", "cifar10", "cifar100", "imagenet")
#: digits32's search and retraining epochs (docs/data.md: search + retraining time on 2 cores).
DIGITS32_EPOCHS = 2
#: digits32's search learning rate: at 0.05 the 9-op supernet's loss stayed at chance for all 192 steps of a search
#: on 6 renderings per digit;
#: at 0.2 it learns in the first epoch (docs/data.md).
DIGITS32_LR = 0.2
DIGITS32_RETRAIN_EPOCHS = 8
#: digits32's retraining trains its first epochs in floating point: from scratch at 2 bits, a network of its depth
#: does not leave chance (docs/data.md).
DIGITS32_RETRAIN_FLOAT_EPOCHS = 4


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise JaqcError(f"preset field {attribute.name} must be > 0, got {value!r}")


def _nonnegative(_inst: object, attribute: Any, value: int) -> None:
    if not (isinstance(value, int) and value >= 0):
        raise JaqcError(f"preset field {attribute.name} must be an integer >= 0, got {value!r}")


@frozen(kw_only=True)
class SearchPreset:
    """Everything a search and its retraining need besides the run directory."""

    name: str
    supernet: SupernetConfig
    data: DataConfig
    settings: JaqSearchSettings
    batch_size: int = field(default=64, validator=_positive)
    checkpoint_every: int = field(default=50, validator=_positive)
    final_generator_steps: int = field(default=100, validator=_positive)
    #: ``jaqc compare`` designs an accelerator for every compared subnet: the generator for
    #: ``final_generator_steps``, then at most this many sweeps of the coordinate search (:mod:`jaqc.hw.design`).
    design_sweeps: int = field(default=10, validator=_positive)
    retrain_epochs: int = field(default=600, validator=_positive)
    retrain_lr: float = field(default=0.01, validator=_positive)
    #: The first retraining epochs train the subnet in floating point, then it trains quantized (0: quantized
    #: throughout; :func:`jaqc.search.retrain.retrain`).
    retrain_float_epochs: int = field(default=0, validator=_nonnegative)

    def scheduled(self) -> SearchPreset:
        """This preset with its supernet's temperature schedule scaled to the run: annealed from the initial
        temperature to ``settings.final_temperature`` over the epochs after the weight-only warm-up
        (:meth:`JaqSearchSettings.temperature_schedule`); what a search runs and ``config.json`` records."""
        supernet = self.supernet
        schedule = self.settings.temperature_schedule(supernet.gumbel.temperature.initial)
        gumbel = attrs.evolve(supernet.gumbel, temperature=schedule)
        return attrs.evolve(self, supernet=attrs.evolve(supernet, gumbel=gumbel))


def search_preset(name: str, data_root: str | None = None, **overrides: Any) -> SearchPreset:
    """The named preset; ``data_root`` is the CIFAR/ImageNet directory; ``overrides`` replace preset fields
    (``epochs``, ``lam``, ``seed`` and the other :class:`JaqSearchSettings` fields go to the settings;
    ``quant_mode`` sets the supernet's :class:`~jaqc.nn.config.QuantSearchMode` and ``csq_k_percent`` CSQ's K;
    ``space`` replaces the FBNet
    space by a user's, ``"module:attribute"`` or ``"file.py:attribute"`` (:mod:`jaqc.nn.space`))."""
    setting_names = {a.name for a in attrs.fields(JaqSearchSettings)}
    settings_over = {k: v for k, v in overrides.items() if k in setting_names}
    if isinstance(settings_over.get("hw"), dict):  # from a run's recipe (JSON)
        settings_over["hw"] = HardwareWeights(**settings_over["hw"])
    quant_mode = overrides.get("quant_mode")
    csq_k_percent = overrides.get("csq_k_percent")
    space = overrides.get("space")
    supernet_keys = ("quant_mode", "csq_k_percent", "space")
    preset_over = {k: v for k, v in overrides.items() if k not in setting_names and k not in supernet_keys}
    if name == "tiny":
        preset = SearchPreset(
            name="tiny",
            supernet=supernet_preset("tiny"),
            data=DataConfig(name="digits", resolution=16, channels=1),
            # λ = 0.1: under the deployment model E_HW spans ~10x across the tiny space, and λ = 0.5 lets it
            # outweigh the loss (78.0 % after retraining; λ = 0.1: 99.2 %; single seeds, docs/search.md).
            settings=JaqSearchSettings(
                epochs=8, hw_refresh_every=16, generator_steps=5, lr=0.05, arch_lr=0.01, lam=0.1
            ),
            batch_size=64,
            checkpoint_every=10,
            final_generator_steps=60,
            retrain_epochs=40,
            retrain_lr=0.05,
        )
    elif name == "digits32":
        preset = SearchPreset(
            name="digits32",
            supernet=supernet_preset("digits32"),
            data=DataConfig(name="digits32", resolution=32, channels=1),
            settings=JaqSearchSettings(
                epochs=DIGITS32_EPOCHS, hw_refresh_every=20, generator_steps=5, lr=DIGITS32_LR, arch_lr=0.01, lam=0.1
            ),
            batch_size=64,
            checkpoint_every=20,
            final_generator_steps=60,
            retrain_epochs=DIGITS32_RETRAIN_EPOCHS,
            retrain_lr=0.05,
            retrain_float_epochs=DIGITS32_RETRAIN_FLOAT_EPOCHS,
        )
    elif name in ("cifar10", "cifar100"):
        if data_root is None:
            raise JaqcError(f"preset {name}: give the data directory (--data DIR) holding the python-pickle files")
        preset = SearchPreset(
            name=name,
            supernet=supernet_preset(name),
            data=DataConfig(name=name, root=data_root, resolution=32),
            settings=JaqSearchSettings(epochs=90),
            retrain_epochs=600,
        )
    elif name == "imagenet":
        if data_root is None:
            raise JaqcError("preset imagenet: give the data directory (--data DIR) with train/ and val/ folders")
        preset = SearchPreset(
            name="imagenet",
            supernet=supernet_preset("imagenet"),
            data=DataConfig(name="imagenet", root=data_root, resolution=224),
            settings=JaqSearchSettings(epochs=45),
            retrain_epochs=180,
        )
    else:
        raise JaqcError(f"unknown search preset {name!r}; expected one of {', '.join(PRESETS)}")
    try:
        preset = attrs.evolve(preset, settings=attrs.evolve(preset.settings, **settings_over), **preset_over)
    except TypeError as exc:
        raise JaqcError(f"preset {name}: {exc}") from None
    if space is not None:  # a user's search space (jaqc.nn.space) at the preset's data, bits and settings
        from jaqc.nn.space import with_space

        preset = attrs.evolve(preset, supernet=with_space(preset.supernet, space))
    quant_over = {"mode": quant_mode, "csq_k_percent": csq_k_percent}
    quant_over = {k: v for k, v in quant_over.items() if v is not None}
    if quant_over:  # the supernet's quantization search mode (e.g. "channel0" for Table 7's ablation) and CSQ's K
        supernet = preset.supernet
        try:
            quant = attrs.evolve(supernet.quant, **quant_over)
        except (TypeError, ValueError) as exc:
            raise JaqcError(f"preset {name}: {exc}") from None
        preset = attrs.evolve(preset, supernet=attrs.evolve(supernet, quant=quant))
    return preset
