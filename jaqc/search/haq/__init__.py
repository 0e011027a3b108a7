"""HAQ (Wang et al., CVPR 2019): a DDPG agent that picks per-layer weight and activation bits of a fixed network
under a hardware resource budget (``--method haq``).

The search runs over any :class:`HaqEnvironment` (the real network with its fine-tune and cost model, or the
synthetic stand-in of :mod:`jaqc.search.haq.synthetic`); see docs/haq.md.
"""

from .actions import ACTION_BITS, SLICE_BOUNDARIES, action_to_bits, bits_to_action, lower_bits
from .agent import DdpgAgent, DdpgConfig, UpdateStats, truncated_normal
from .budget import (
    BUDGET_REL_TOL,
    BudgetBounds,
    ResourceBudget,
    enforce_budget,
    resolve_budget,
    searched_layers,
    uniform_config,
)
from .environment import BitConfig, HaqEnvironment, ResourceKind
from .episodes import EpisodeRunner, Rollout
from .errors import HaqError
from .layers import LayerInfo, layer_infos_from_graph
from .replay import ReplayBuffer, TransitionBatch
from .results import EpisodeRecord, HaqResult
from .search import HaqConfig, HaqSearch, ProgressCallback, random_search
from .state import STATE_FEATURES, STATE_SIZE, StateEncoder, min_max_normalise, previous_action_feature, static_features
from .synthetic import Optimum, SyntheticEnv, exact_optimum, make_synthetic_env, mobilenet_like_layers, share_better

__all__ = [
    "ACTION_BITS",
    "BUDGET_REL_TOL",
    "SLICE_BOUNDARIES",
    "STATE_FEATURES",
    "STATE_SIZE",
    "BitConfig",
    "BudgetBounds",
    "DdpgAgent",
    "DdpgConfig",
    "EpisodeRecord",
    "EpisodeRunner",
    "HaqConfig",
    "HaqEnvironment",
    "HaqError",
    "HaqResult",
    "HaqSearch",
    "LayerInfo",
    "Optimum",
    "ProgressCallback",
    "ReplayBuffer",
    "ResourceBudget",
    "ResourceKind",
    "Rollout",
    "StateEncoder",
    "SyntheticEnv",
    "TransitionBatch",
    "UpdateStats",
    "action_to_bits",
    "bits_to_action",
    "enforce_budget",
    "exact_optimum",
    "layer_infos_from_graph",
    "lower_bits",
    "make_synthetic_env",
    "min_max_normalise",
    "mobilenet_like_layers",
    "previous_action_feature",
    "random_search",
    "resolve_budget",
    "searched_layers",
    "share_better",
    "static_features",
    "truncated_normal",
    "uniform_config",
]
