"""jaqc.nn: the torch side of the search: quantizers, the FBNet supernet, architecture parameters and CSQ.

Names are imported lazily, so that ``jaqc.nn.csq_select`` (numpy only) can be used where torch is absent.
"""

from __future__ import annotations

from jaqc.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ArchParameters": "arch",
    "ArchSample": "arch",
    "CandidateOp": "candidates",
    "InvertedResidual": "candidates",
    "SkipOp": "candidates",
    "build_candidate": "candidates",
    "candidate_spec": "candidates",
    "Clipping": "config",
    "FBNET_CANDIDATES": "config",
    "FixedBits": "config",
    "GumbelConfig": "config",
    "PRESET_NAMES": "config",
    "QuantSearchMode": "config",
    "QuantizerConfig": "config",
    "ScheduleKind": "config",
    "SearchQuantConfig": "config",
    "SearchStep": "config",
    "SupernetConfig": "config",
    "TemperatureSchedule": "config",
    "supernet_preset": "config",
    "channel_importance": "csq_select",
    "select_csq_channels": "csq_select",
    "top_k_channels": "csq_select",
    "NNConfigError": "errors",
    "NNStateError": "errors",
    "fake_quant": "fake_quant",
    "fake_quant_symmetric": "fake_quant",
    "quant_params": "fake_quant",
    "gumbel_softmax": "gumbel",
    "SavedTensorMeter": "memory",
    "mixed_fake_quant": "mixed_fake_quant",
    "mixed_fake_quant_symmetric": "mixed_fake_quant",
    "ActivationQuantizer": "quantizers",
    "quantize_weight": "quantizers",
    "SearchConv2d": "search_conv",
    "FBNetSpace": "space",
    "SearchSpace": "space",
    "space_of": "space",
    "SearchBlock": "supernet",
    "Supernet": "supernet",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
