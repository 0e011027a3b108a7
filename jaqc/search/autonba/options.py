"""Auto-NBA's options (``weight_path``, ``hardware``, ``hw_every``, ``hw_samples``) and constants: the data split,
the sampled top-k and the accelerator-sampling seed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from jaqc.core import JaqcError

#: Share of the training split the architecture steps use (Auto-NBA: 50/50; JAQ: 20%).
ARCH_FRACTION = 0.5
#: Ops and bits sampled per architecture step (Auto-NBA / ProxylessNAS: two).
TOP_K = 2
#: Offset of the accelerator-sampling seed from the run seed (its own stream, checkpointed).
HW_SEED_OFFSET = 7919


#: The weight step's paths: one sampled op per block at one sampled bitwidth per op (Auto-NBA's code,
#: ``proxy_hard``), or the Gumbel-softmax mixture of every op with β-blended bits.
WEIGHT_PATHS: tuple[str, ...] = ("single", "mixture")
#: How the accelerator is found: JAQ's hardware generation network (the same for both methods), or the best of
#: ``hw_samples`` uniformly drawn accelerators.
HARDWARE_SEARCHES: tuple[str, ...] = ("generator", "random")


@frozen(kw_only=True)
class AutoNbaOptions:
    """The method's options: the weight step's paths, the accelerator search, and for the random search its
    period (architecture steps) and samples per search."""

    weight_path: str = "single"
    hardware: str = "generator"
    hw_every: int = 100
    hw_samples: int = 64

    def to_json(self) -> dict[str, Any]:
        """Every option by name."""
        return attrs.asdict(self)


#: The options that take one of a few names, and those names.
_CHOICES: dict[str, tuple[str, ...]] = {"weight_path": WEIGHT_PATHS, "hardware": HARDWARE_SEARCHES}


def parse_options(options: Mapping[str, Any] | None) -> AutoNbaOptions:
    """The options from a mapping (missing keys take their defaults); unknown keys and bad values are errors."""
    known = [a.name for a in attrs.fields(AutoNbaOptions)]
    values: dict[str, Any] = {}
    for key, value in dict(options or {}).items():
        if key not in known:
            raise JaqcError(f"unknown autonba option {key!r}; expected one of {', '.join(known)}")
        if key in _CHOICES:
            if value not in _CHOICES[key]:
                raise JaqcError(f"autonba option {key} must be one of {', '.join(_CHOICES[key])}, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise JaqcError(f"autonba option {key} must be an integer >= 1, got {value!r}")
        values[key] = value
    return AutoNbaOptions(**values)
