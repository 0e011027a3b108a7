"""Search spaces: the family of networks a supernet is built from, the built-in FBNet one or a user's own.

Every network of a space has the same frame: ``stem → searchable blocks → head → global average pool →
classifier``. A :class:`SearchSpace` says what goes in it:

- :meth:`~SearchSpace.block_specs`: ``(in_channels, out_channels, stride)`` of every searchable block;
- :attr:`~SearchSpace.ops` and :meth:`~SearchSpace.candidate`: the candidate ops a block chooses from, each a
  :class:`~jaqc.nn.candidates.CandidateOp` whose quantized convs come from the ``conv`` factory it is given
  (so the same class serves the supernet, with searchable bits, and a derived subnet, at fixed bits);
- :meth:`~SearchSpace.stem`, :meth:`~SearchSpace.head`, :meth:`~SearchSpace.classifier`: the fixed layers.

A :class:`~jaqc.nn.config.SupernetConfig` names its space in ``space``: ``"fbnet"`` (the default, the paper's
space, shaped by the config's stage fields) or ``"module:attribute"`` / ``"path/to/file.py:attribute"``, a
subclass of :class:`SearchSpace` (or any callable) that :func:`space_of` calls with the config. The search
traces whatever the space builds into the IR and prices it there, so a user's space gets the same bits, CSQ,
hardware cost and outputs as the built-in one (docs/search.md, "Your own search space").
"""

from __future__ import annotations

import functools
from pathlib import Path

from torch import nn

from jaqc.frontend.loader import load_callable

from .candidates import CandidateOp, ConvFactory, classifier_module, head_module, make_candidate, stem_module
from .config import FBNET_CANDIDATES, FBNET_SPACE, SupernetConfig
from .errors import NNConfigError
from .search_conv import SearchConv2d


class SearchSpace:
    """The networks a supernet is built from (see the module docstring). Subclass it for your own space; the
    constructor receives the :class:`~jaqc.nn.config.SupernetConfig` (input size and channels, classes, the
    bits of the fixed layers, the quantizer settings) as ``self.config``."""

    #: The candidate op names, in the order of α. A config's ``candidates`` may pick a subset.
    ops: tuple[str, ...] = ()

    def __init__(self, config: SupernetConfig) -> None:
        self.config = config

    def block_specs(self) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, stride)`` of every searchable block, in order."""
        raise NotImplementedError(f"{type(self).__name__}.block_specs")

    def candidate(self, op: str, in_channels: int, out_channels: int, stride: int, conv: ConvFactory) -> CandidateOp:
        """Candidate ``op`` of a block, its quantized convs made by ``conv(in, out, kernel, stride, groups)``."""
        raise NotImplementedError(f"{type(self).__name__}.candidate")

    def stem(self) -> nn.Module:
        """The layers before the first block; CSQ ranks block 0's input channels by its last batch norm's γ."""
        raise NotImplementedError(f"{type(self).__name__}.stem")

    def head(self) -> nn.Module:
        """The layers between the last block and the global average pool."""
        raise NotImplementedError(f"{type(self).__name__}.head")

    def classifier(self) -> nn.Module:
        """The layer from the pooled head output to the class logits."""
        raise NotImplementedError(f"{type(self).__name__}.classifier")


class FBNetSpace(SearchSpace):
    """The paper's FBNet space: the nine inverted-residual / skip candidates over the config's stages."""

    ops = FBNET_CANDIDATES

    def block_specs(self) -> list[tuple[int, int, int]]:
        """The stages of the config, one block per layer, the stage stride on its first block."""
        return self.config.fbnet_block_specs()

    def candidate(self, op: str, in_channels: int, out_channels: int, stride: int, conv: ConvFactory) -> CandidateOp:
        """An inverted residual ``k{kernel}_e{expansion}[_g2]`` or the skip."""
        return make_candidate(op, in_channels, out_channels, stride, conv)

    def stem(self) -> nn.Module:
        """A 3x3 conv-bn-relu at the config's ``stem_bits``."""
        return stem_module(self.config)

    def head(self) -> nn.Module:
        """A 1x1 conv-bn-relu to ``head_channels`` at ``head_bits``."""
        return head_module(self.config)

    def classifier(self) -> nn.Module:
        """A linear layer, at ``fc_bits`` when set."""
        return classifier_module(self.config)


def space_of(config: SupernetConfig) -> SearchSpace:
    """The search space ``config.space`` names, built for ``config`` (cached: one instance per config)."""
    return _space_of(config)


@functools.lru_cache(maxsize=32)
def _space_of(config: SupernetConfig) -> SearchSpace:
    factory = FBNetSpace if config.space == FBNET_SPACE else load_callable(config.space, "search space")
    try:
        space = factory(config)
    except Exception as error:
        problem = f"{type(error).__name__}: {error}"
        raise NNConfigError(f"search space {config.space!r}: building it failed: {problem}") from error
    if not isinstance(space, SearchSpace):
        raise NNConfigError(
            f"search space {config.space!r}: got a {type(space).__name__}, not a jaqc.nn.space.SearchSpace"
        )
    ops = tuple(space.ops)
    if not ops or len(set(ops)) != len(ops) or not all(isinstance(op, str) and op for op in ops):
        raise NNConfigError(f"search space {config.space!r}: ops must be distinct non-empty names, got {ops!r}")
    specs = space.block_specs()
    if not specs:
        raise NNConfigError(f"search space {config.space!r}: block_specs() is empty")
    for index, spec in enumerate(specs):
        if len(spec) != 3 or not all(isinstance(v, int) and v >= 1 for v in spec):
            raise NNConfigError(
                f"search space {config.space!r}: block {index}'s spec must be (in_channels, out_channels, stride) "
                f"positive integers, got {spec!r}"
            )
    return space


def check_candidates(config: SupernetConfig) -> SearchSpace:
    """The config's space, after checking that ``config.candidates`` are ops of it (the error names the first
    that is not)."""
    space = space_of(config)
    unknown = [op for op in config.candidates if op not in space.ops]
    if unknown:
        raise NNConfigError(
            f"search space {config.space!r} has no op {unknown[0]!r} (SupernetConfig.candidates); it has "
            f"{', '.join(space.ops)}"
        )
    return space


def with_space(config: SupernetConfig, spec: str) -> SupernetConfig:
    """``config`` searching the space ``spec`` names (a file path made absolute), over all of its ops."""
    import attrs

    spec = resolve_space_spec(spec)
    if spec == FBNET_SPACE:
        return attrs.evolve(config, space=spec, candidates=FBNET_CANDIDATES)
    user = attrs.evolve(config, space=spec)  # (a user space's candidates are checked against it when built)
    return attrs.evolve(user, candidates=space_of(user).ops)


def space_candidate(
    space: SearchSpace, op: str, block: int, in_channels: int, out_channels: int, stride: int, conv: ConvFactory
) -> CandidateOp:
    """``space.candidate(...)`` for block ``block``, checked to be a :class:`CandidateOp`; errors name both."""
    made = space.candidate(op, in_channels, out_channels, stride, conv)
    where = f"search space {space.config.space!r}: candidate {op!r} of block {block}"
    if not isinstance(made, CandidateOp):
        raise NNConfigError(f"{where} is a {type(made).__name__}, not a jaqc.nn.CandidateOp")
    for path, module in made.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not isinstance(module, SearchConv2d):
            raise NNConfigError(
                f"{where} has a plain {type(module).__name__} at {path!r}; build every conv of an op with the conv "
                "factory it is given (the search prices all of an op's layers at the op's bits)"
            )
    return made


def resolve_space_spec(spec: str) -> str:
    """``spec`` as a config records it: a file path made absolute (a resumed run may start elsewhere)."""
    where, sep, attribute = spec.rpartition(":")
    if sep and where.endswith(".py"):
        return f"{Path(where).expanduser().resolve()}:{attribute}"
    return spec
