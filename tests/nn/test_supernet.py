"""The supernet: presets, structure for the IR, parameter split, CSQ channel sets, modes, saved memory."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from jaqc.nn.config import (
    FBNET_CANDIDATES,
    FixedBits,
    GumbelConfig,
    QuantizerConfig,
    QuantSearchMode,
    SearchStep,
    SupernetConfig,
    supernet_preset,
)
from jaqc.nn.csq_select import select_csq_channels
from jaqc.nn.errors import NNConfigError, NNStateError
from jaqc.nn.memory import SavedTensorMeter, model_tensors
from jaqc.nn.supernet import Supernet


def preset(name: str, mode: str = "csq", **quant: object) -> SupernetConfig:
    config = supernet_preset(name)
    return attrs.evolve(config, quant=attrs.evolve(config.quant, mode=mode, **quant))


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "imagenet"])
def test_fbnet_presets_structure(name: str) -> None:
    config = supernet_preset(name)
    assert config.num_blocks == 22
    assert config.stage_layers == (1, 4, 4, 4, 4, 4, 1)
    assert config.stage_channels == (16, 24, 32, 64, 112, 184, 352)
    assert config.candidates == FBNET_CANDIDATES
    if name == "imagenet":
        assert (config.stem_stride, config.stage_strides, config.head_channels) == (2, (1, 2, 2, 2, 1, 2, 1), 1984)
    else:
        assert (config.stem_stride, config.stage_strides, config.head_channels) == (1, (1, 1, 2, 2, 1, 2, 1), 1504)
    specs = config.block_specs()
    assert specs[0] == (16, 16, 1) and specs[1] == (16, 24, specs[1][2]) and specs[-1] == (184, 352, 1)


@pytest.mark.parametrize(
    ("name", "size", "classes"), [("cifar10", 32, 10), ("cifar100", 32, 100), ("imagenet", 64, 1000)]
)
def test_fbnet_preset_output_shapes(name: str, size: int, classes: int) -> None:
    net = Supernet(preset(name, "float")).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, size, size)).shape == (1, classes)


@pytest.mark.parametrize("mode", [m.value for m in QuantSearchMode if m is not QuantSearchMode.FIXED])
def test_tiny_every_mode_trains_and_evaluates(mode: str) -> None:
    net = Supernet(preset("tiny", mode))
    x = torch.randn(2, 1, 16, 16)
    net(x).sum().backward()  # a weight step: the architecture draw is a constant
    assert all(p.grad is None for p in net.arch_parameters())
    assert all(p.grad is not None for p in net.weight_parameters() if p.dim() == 4)
    net.set_search_step("arch")
    net(x).sum().backward()
    trained = net.arch_parameters()[: 1 if mode == "float" else 3]  # float mode has no bits to choose
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 10)


def test_parameter_split_is_a_partition() -> None:
    net = Supernet(preset("tiny"))
    arch = {id(p) for p in net.arch_parameters()}
    weights = {id(p) for p in net.weight_parameters()}
    assert len(arch) == 3 and not arch & weights and arch | weights == {id(p) for p in net.parameters()}


def test_structure_for_the_ir() -> None:
    net = Supernet(preset("tiny"))
    entries = list(net.iter_candidates())
    assert len(entries) == 5 * 9
    block_index, name, op = entries[9 * 1 + 3]
    assert (block_index, name, op.kernel, op.expansion, op.stride) == (1, "k3_e6", 3, 6, 2)
    assert (op.in_channels, op.out_channels, op.hidden_channels) == (8, 16, 48)
    assert net.arch.alpha_probs().shape == (5, 9) and net.arch.beta_a_probs().shape == (5, 9, 3)
    assert net.block(2).output_gammas().shape == (9, 16)
    with pytest.raises(NNStateError, match="block index"):
        net.block(5)


def test_csq_channels_are_top_k_of_gamma() -> None:
    net = Supernet(preset("tiny", csq_k_percent=25.0))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.randn(module.num_features, generator=gen))
        net.arch.alpha.copy_(torch.randn(net.arch.alpha.shape, generator=gen))
    net.update_csq_channels()
    for index in range(1, 5):
        alpha = torch.softmax(net.arch.alpha[index - 1].detach(), 0).numpy()
        block = net.block(index - 1)
        gammas = np.stack(
            [
                np.zeros(block.out_channels) if op.output_gamma() is None else op.output_gamma().detach().numpy()
                for op in block.ops()
            ]
        )
        importance = alpha @ np.abs(gammas)
        count = int(np.ceil(0.25 * block.out_channels))
        want = sorted(np.argsort(-importance, kind="stable")[:count].tolist())
        assert net.csq_channels(index) == want
        assert net.csq_channels(index) == select_csq_channels(alpha, gammas, 25.0).tolist()
    stem_gamma = net.stem[1].weight.detach().abs()
    assert net.csq_channels(0) == sorted(torch.argsort(-stem_gamma, stable=True)[:2].tolist())
    op = net.block(2).candidates["k5_e6"]
    assert op.dw.csq_channels.tolist() == sorted(
        torch.argsort(-op.bn1.weight.detach().abs(), stable=True)[:24].tolist()
    )


def test_csq_channels_set_from_outside_persist_without_refresh() -> None:
    net = Supernet(preset("tiny", csq_update_every=0))
    net.set_csq_channels(1, [2, 5])
    net.set_csq_channels(1, [0, 7], candidate="k3_e6", conv="dw")
    net(torch.randn(2, 1, 16, 16))
    assert net.csq_channels(1) == [2, 5]
    assert all(conv.csq_channels.tolist() == [2, 5] for op in net.block(1).ops() for conv in op.input_convs())
    assert net.block(1).candidates["k3_e6"].dw.csq_channels.tolist() == [0, 7]
    with pytest.raises(NNStateError, match="no candidate"):
        net.set_csq_channels(1, [0], candidate="k7_e1", conv="dw")
    with pytest.raises(NNStateError, match="no quantized conv"):
        net.set_csq_channels(1, [0], candidate="k3_e6", conv="bn1")
    refreshing = Supernet(preset("tiny", csq_update_every=1))
    refreshing.set_csq_channels(1, [2, 5])
    refreshing(torch.randn(2, 1, 16, 16))
    assert refreshing.csq_channels(1) == [0]  # all γ = 1: the tie goes to channel 0


def test_channel0_mode_quantizes_the_first_channel_only() -> None:
    net = Supernet(preset("tiny", "channel0"))
    net(torch.randn(2, 1, 16, 16))
    assert all(conv.csq_channels.tolist() == [0] for _, _, op in net.iter_candidates() for _, conv in op.quant_convs())


def test_hetero_search_step_reaches_every_conv() -> None:
    net = Supernet(preset("tiny", "hetero"))
    net.set_search_step("arch")
    assert all(
        conv.search_step is SearchStep.ARCH for _, _, op in net.iter_candidates() for _, conv in op.quant_convs()
    )


def test_sampling_is_reproducible() -> None:
    def run() -> torch.Tensor:
        torch.manual_seed(0)
        net = Supernet(preset("tiny"))
        return net(torch.ones(2, 1, 16, 16))

    assert torch.equal(run(), run())


def test_quantized_stem_head_and_classifier() -> None:
    bits = FixedBits(weight=8, activation=8)
    config = attrs.evolve(supernet_preset("tiny"), stem_bits=bits, head_bits=bits, fc_bits=bits)
    net = Supernet(config)
    assert net.stem[0].mode is QuantSearchMode.FIXED and net.head[0].mode is QuantSearchMode.FIXED
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 10)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(NNConfigError, match=r"SupernetConfig\.stage_channels"):
        attrs.evolve(supernet_preset("tiny"), stage_channels=(8, 15, 24, 32))
    with pytest.raises(NNConfigError, match="differ in length"):
        attrs.evolve(supernet_preset("tiny"), stage_layers=(1, 1))
    with pytest.raises(NNConfigError, match=r"SearchQuantConfig\.csq_k_percent"):
        preset("tiny", csq_k_percent=0.0)
    with pytest.raises(NNConfigError, match="unknown supernet preset"):
        supernet_preset("mnist")
    with pytest.raises(NNStateError, match="FIXED"):
        Supernet(preset("tiny", "fixed"))


def _saved_bytes(mode: str, batch: int = 2) -> int:
    torch.manual_seed(0)
    net = Supernet(preset("tiny", mode))
    with SavedTensorMeter(model_tensors(net)) as meter:
        net(torch.randn(batch, 1, 16, 16))
    return meter.activation_bytes


def test_csq_saves_memory_against_the_multi_bit_supernet() -> None:
    fp, csq, naive, common = (_saved_bytes(m) for m in ("float", "csq", "naive", "naive_common"))
    assert csq <= 1.3 * fp
    assert naive >= 1.2 * csq
    assert common >= 3.0 * csq


def test_package_exports_are_lazy_and_complete() -> None:
    import jaqc.nn as package

    assert package.Supernet is Supernet and package.select_csq_channels is select_csq_channels
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        _ = package.NotAThing


def test_pact_clipping_and_hard_gumbel_in_the_supernet() -> None:
    config = supernet_preset("tiny")
    quant = attrs.evolve(config.quant, quantizer=QuantizerConfig(activation_clipping="pact"))
    net = Supernet(attrs.evolve(config, quant=quant, gumbel=GumbelConfig(hard=True)))
    clip_params = [p for name, p in net.named_parameters() if name.endswith(("clip_lo", "clip_hi"))]
    assert clip_params and all(any(p is q for q in net.weight_parameters()) for p in clip_params)
    x = torch.randn(2, 1, 16, 16)
    net(x)  # the first batch initialises every clip range to its min/max: nothing is clipped yet
    with torch.no_grad():
        for p in clip_params:
            p.mul_(0.5)
    net(x).sum().backward()
    assert all(p.grad is not None for p in clip_params)
    assert any(p.grad.abs().sum() > 0 for p in clip_params)
    net.set_search_step("arch")
    net(x).sum().backward()
    assert net.arch.alpha.grad is not None and net.arch.alpha.grad.abs().sum() > 0
