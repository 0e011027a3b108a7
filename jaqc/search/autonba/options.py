"""Auto-NBA's options (``hw_every``, ``hw_samples``) and constants: the data split, the sampled top-k and the
accelerator-sampling seed."""

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


@frozen(kw_only=True)
class AutoNbaOptions:
    """The method's options: accelerator re-search period (architecture steps) and samples per search."""

    hw_every: int = 100
    hw_samples: int = 64

    def to_json(self) -> dict[str, int]:
        """``{"hw_every": ..., "hw_samples": ...}``."""
        return attrs.asdict(self)


def parse_options(options: Mapping[str, Any] | None) -> AutoNbaOptions:
    """The options from a mapping (missing keys take their defaults); unknown keys and bad values are errors."""
    known = [a.name for a in attrs.fields(AutoNbaOptions)]
    values: dict[str, int] = {}
    for key, value in dict(options or {}).items():
        if key not in known:
            raise JaqcError(f"unknown autonba option {key!r}; expected one of {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise JaqcError(f"autonba option {key} must be an integer >= 1, got {value!r}")
        values[key] = value
    return AutoNbaOptions(**values)
