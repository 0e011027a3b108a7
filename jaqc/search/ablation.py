"""Figures for the ablation of JAQ's Table 7: how much of a derived architecture the search pushed to 2 bits.

Table 7 of the JAQ paper calls a search "misguided" when, without any hardware constraint, it still gives
layers 2-bit precision (the lowest, most harmful width). :func:`share_of_2bit` measures that on a derived
architecture (``architecture.json`` of any method, or ``summary["architecture"]``), and
:func:`undecided_share` how much of that choice the search left undecided (the softmax margins a JAQ or
Auto-NBA run's ``summary.json`` records): a share of 2-bit blocks means little where the search did not decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jaqc.core import JaqcError
from jaqc.nn.config import SupernetConfig


def _searchable(ops: list[str], config: SupernetConfig | None) -> list[bool]:
    """Which blocks have quantized layers: every op but the identity skip (every skip without ``config``)."""
    if config is None:
        return [op != "skip" for op in ops]
    specs = config.block_specs()
    if len(specs) != len(ops):
        raise JaqcError(f"share_of_2bit: the architecture has {len(ops)} blocks, the supernet {len(specs)}")
    return [
        op != "skip" or not (stride == 1 and cin == cout) for op, (cin, cout, stride) in zip(ops, specs, strict=True)
    ]


def share_of_2bit(arch_json: Mapping[str, Any], config: SupernetConfig | None = None) -> dict[str, Any]:
    """The share of searchable layers whose chosen weight (activation, either) bitwidth is 2.

    ``arch_json`` is ``{"ops": [...], "bits": [[w, a], ...]}`` (``DerivedArchitecture.to_json``). A block
    counts when its op has quantized convs: with ``config`` every op except an identity skip (a skip that
    changes stride or channels has a quantized 1x1 projection); without it every op except ``skip``. Returns
    ``{"layers": n, "weight_2bit": ..., "activation_2bit": ..., "any_2bit": ...}`` with shares in [0, 1]
    (NaN when no block counts).
    """
    if not isinstance(arch_json, Mapping) or "ops" not in arch_json or "bits" not in arch_json:
        raise JaqcError('share_of_2bit: expected an architecture {"ops": [...], "bits": [[w, a], ...]}')
    ops, bits = list(arch_json["ops"]), list(arch_json["bits"])
    if len(ops) != len(bits):
        raise JaqcError(f"share_of_2bit: {len(ops)} ops but {len(bits)} bit pairs")
    pairs = []
    for index, pair in enumerate(bits):
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(b, int) for b in pair):
            raise JaqcError(f"share_of_2bit: bits[{index}] must be a [w_bits, a_bits] pair of integers, got {pair!r}")
        pairs.append((int(pair[0]), int(pair[1])))
    counted = [pair for pair, keep in zip(pairs, _searchable(ops, config), strict=True) if keep]
    n = len(counted)

    def share(count: int) -> float:
        return count / n if n else math.nan

    return {
        "layers": n,
        "weight_2bit": share(sum(w == 2 for w, _ in counted)),
        "activation_2bit": share(sum(a == 2 for _, a in counted)),
        "any_2bit": share(sum(w == 2 or a == 2 for w, a in counted)),
    }


def undecided_share(summary: Mapping[str, Any], config: SupernetConfig | None = None) -> dict[str, float]:
    """The share of searchable layers (as :func:`share_of_2bit`) whose derived weight (activation) bitwidth leads
    the runner-up by less than the run's margin threshold in softmax(β) (``summary["margins"]``, written by
    :func:`jaqc.search.jaq.choice_margins`): ``{"weight_undecided": ..., "activation_undecided": ...}``, NaN
    when the summary has no margins (a method that records none) or no block counts."""
    margins = summary.get("margins")
    arch = summary.get("architecture")
    if not isinstance(arch, Mapping) or "ops" not in arch:
        raise JaqcError('undecided_share: the summary has no architecture {"ops": [...], "bits": [...]}')
    if not isinstance(margins, Mapping):
        return {"weight_undecided": math.nan, "activation_undecided": math.nan}
    ops = list(arch["ops"])
    searchable = _searchable(ops, config)
    threshold = float(margins["threshold"])
    out = {}
    for key, name in (("beta_w", "weight_undecided"), ("beta_a", "activation_undecided")):
        gaps = list(margins[key])
        if len(gaps) != len(ops):
            raise JaqcError(f"undecided_share: {len(gaps)} {key} margins for {len(ops)} blocks")
        counted = [gap for gap, keep in zip(gaps, searchable, strict=True) if keep]
        out[name] = sum(gap < threshold for gap in counted) / len(counted) if counted else math.nan
    return out
