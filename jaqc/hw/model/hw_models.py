"""The two named hardware models: ``simulator`` (the original BitFusion simulator, bit for bit) and
``deployment`` (what a deployed accelerator does; the default). Torch-free.

docs/cost_model.md, sections 2-18 (simulator) and 19 (deployment), gives their equations and differences.
"""

from __future__ import annotations

from enum import Enum

from jaqc.hw.errors import HardwareError


class HardwareModel(str, Enum):  # noqa: UP042 - matches the other enums of jaqc.hw
    """Which cost model prices a (layer, accelerator, mapping)."""

    #: The BitFusion simulator's model: grouped layers as g dense groups, 32-bit outputs, automatic promotion
    #: whose whole promoted block is the exposed first fill. Checked against the simulator's outputs.
    SIMULATOR = "simulator"
    #: Requantized outputs, group-packed (depthwise) convolutions, no padding of stored data, tile-level
    #: exposed transfers. Checked against the loop-nest oracle (jaqc.hw.reference.oracle) and physical properties.
    DEPLOYMENT = "deployment"

    def __str__(self) -> str:
        return self.value


#: The model every command, pass and API call uses unless told otherwise.
DEFAULT_HW_MODEL = HardwareModel.DEPLOYMENT

#: Names accepted by ``--hw-model`` and ``hw_model=``.
HW_MODEL_NAMES: tuple[str, ...] = tuple(m.value for m in HardwareModel)


def parse_hw_model(value: HardwareModel | str | None) -> HardwareModel:
    """``HardwareModel(value)`` (None: the default), or a HardwareError listing the valid names."""
    if value is None:
        return DEFAULT_HW_MODEL
    try:
        return HardwareModel(value)
    except ValueError:
        raise HardwareError(f"unknown hardware model {value!r}; expected one of {', '.join(HW_MODEL_NAMES)}") from None
