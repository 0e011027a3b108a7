"""Gumbel-softmax sampling, temperature schedules and the architecture parameters."""

from __future__ import annotations

import pytest
import torch

from jaqc.nn.arch import ArchParameters
from jaqc.nn.config import GumbelConfig, ScheduleKind, TemperatureSchedule
from jaqc.nn.errors import NNConfigError
from jaqc.nn.gumbel import gumbel_softmax


def test_gumbel_max_frequencies_follow_softmax() -> None:
    logits = torch.tensor([0.0, 1.0, 2.0]).expand(20000, 3)
    gen = torch.Generator().manual_seed(0)
    winners = gumbel_softmax(logits, 1.0, gen, hard=True).argmax(-1)
    frequencies = torch.bincount(winners, minlength=3).float() / 20000
    # Standard error of each frequency is below 0.004; 0.015 is more than three of them.
    torch.testing.assert_close(frequencies, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), atol=0.015, rtol=0)


def test_soft_samples_are_distributions_and_sharpen_with_low_temperature() -> None:
    logits = torch.tensor([[0.0, 0.5, 1.0]]).expand(500, 3)
    hot = gumbel_softmax(logits, 5.0, torch.Generator().manual_seed(1))
    cold = gumbel_softmax(logits, 0.1, torch.Generator().manual_seed(1))
    torch.testing.assert_close(hot.sum(-1), torch.ones(500))
    assert cold.max(-1).values.mean() > 0.95 > hot.max(-1).values.mean()


def test_hard_sample_is_one_hot_with_soft_gradient() -> None:
    logits = torch.tensor([0.3, -0.2, 0.9, 0.0], requires_grad=True)
    hard = gumbel_softmax(logits, 2.0, torch.Generator().manual_seed(3), hard=True)
    assert sorted(hard.tolist()) == [0.0, 0.0, 0.0, 1.0]
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    (hard * weights).sum().backward()
    soft_logits = logits.detach().clone().requires_grad_()
    soft = gumbel_softmax(soft_logits, 2.0, torch.Generator().manual_seed(3), hard=False)
    (soft * weights).sum().backward()
    torch.testing.assert_close(logits.grad, soft_logits.grad)


def test_sampling_is_deterministic_per_seed() -> None:
    logits = torch.zeros(4, 9)
    a = gumbel_softmax(logits, 5.0, torch.Generator().manual_seed(7))
    b = gumbel_softmax(logits, 5.0, torch.Generator().manual_seed(7))
    c = gumbel_softmax(logits, 5.0, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_no_generator_means_plain_softmax() -> None:
    logits = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(gumbel_softmax(logits, 2.0, None), torch.softmax(logits / 2.0, 0))


def test_temperature_schedules() -> None:
    exponential = TemperatureSchedule(initial=5.0, decay=0.5, final=0.5)
    assert [exponential.temperature(e) for e in range(5)] == [5.0, 2.5, 1.25, 0.625, 0.5]
    linear = TemperatureSchedule(initial=5.0, kind="linear", final=1.0, epochs=4)
    assert [linear.temperature(e) for e in (0, 1, 4, 10)] == [5.0, 4.0, 1.0, 1.0]
    assert TemperatureSchedule(kind=ScheduleKind.CONSTANT).temperature(50) == 5.0
    with pytest.raises(NNConfigError, match=r"TemperatureSchedule\.decay"):
        TemperatureSchedule(decay=1.5)
    with pytest.raises(NNConfigError, match=r"TemperatureSchedule\.kind"):
        TemperatureSchedule(kind="cubic")


def test_arch_parameters_shapes_probs_and_determinism() -> None:
    arch = ArchParameters(22, 9, 3, 3, GumbelConfig(seed=5))
    assert arch.alpha.shape == (22, 9) and arch.beta_w.shape == (22, 9, 3) and arch.beta_a.shape == (22, 9, 3)
    assert arch.temperature == 5.0
    torch.testing.assert_close(arch.alpha_probs(), torch.full((22, 9), 1 / 9))
    first = arch.sample()
    arch.reseed(5)
    again = arch.sample()
    assert torch.equal(first.alpha, again.alpha) and torch.equal(first.beta_a, again.beta_a)
    assert not torch.equal(first.beta_w, first.beta_a)  # independent draws
    assert arch.set_epoch(10) == pytest.approx(5.0 * 0.956**10)
    arch.eval()
    torch.testing.assert_close(arch.sample().beta_w, arch.beta_w_probs())
