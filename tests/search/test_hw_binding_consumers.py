"""The search's hardware cost sees each block output's consumer bits (issue #10, item 5).

* :func:`consumer_distributions` equals the distribution obtained by enumerating every joint choice of ops
  and activation bits (independent per block) and applying the derived-subnet rule
  (:meth:`SpaceCosts.derived_consumer_bits`) to each;
* the derived-subnet rule equals the IR's :func:`~jaqc.ir.metrics.consumer_a_bits` on the traced subnet;
* at one-hot α/β the expected cost equals the exact cost of that subnet (BatchTile on each layer, with its
  real consumer), so by linearity the expectation is exact.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from jaqc.ir import LayerKind
from jaqc.ir.metrics import consumer_a_bits

from jaqc.hw.generator.objective import HardwareWeights, mapped_totals
from jaqc.nn.config import supernet_preset
from jaqc.search.hw_binding import ExpectedHardwareCost, consumer_distributions
from jaqc.search.space_costs import SpaceCosts

CONFIG = supernet_preset("tiny")
SPACE = SpaceCosts.from_config(CONFIG)
BITS = (CONFIG.quant.weight_bits, CONFIG.quant.activation_bits)
A_BITS = (2, 4, 8)


def _random_probs(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.softmax(torch.randn(shape, generator=generator, dtype=torch.float64) * 2, dim=-1)


def test_consumer_distributions_equal_enumeration() -> None:
    ops = ("k3_e1", "skip", "k5_e3")
    blocks = CONFIG.num_blocks
    generator = torch.Generator().manual_seed(3)
    alpha = _random_probs((blocks, len(ops)), generator)
    beta_a = _random_probs((blocks, len(ops), len(A_BITS)), generator)
    identity = torch.tensor([[SPACE.candidate(b, op).identity for op in ops] for b in range(blocks)])
    assert bool(identity.any()) and not bool(identity.all())  # the tiny preset has identity skips and others
    got = consumer_distributions(A_BITS, alpha, beta_a, identity, SPACE.residual, SPACE.head_bits)
    expected = torch.zeros(blocks + 1, len(A_BITS), dtype=torch.float64)
    for choice in itertools.product(range(len(ops)), repeat=blocks):
        for bits in itertools.product(range(len(A_BITS)), repeat=blocks):
            p = 1.0
            for b in range(blocks):
                p *= float(alpha[b, choice[b]] * beta_a[b, choice[b], bits[b]])
            consumers = SPACE.derived_consumer_bits([ops[c] for c in choice], [(8, A_BITS[i]) for i in bits])
            for row, width in enumerate(consumers):
                expected[row, A_BITS.index(width)] += p
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
    assert torch.allclose(got.sum(-1), torch.ones(blocks + 1, dtype=torch.float64))


@pytest.mark.parametrize(
    "ops",
    [["k3_e3", "k3_e1", "skip", "k5_e6", "k3_e1_g2"], ["skip", "k5_e1", "k3_e6", "skip", "k5_e3"]],
)
def test_derived_consumer_bits_equal_the_ir(ops: list[str]) -> None:
    from jaqc.nn.subnet import DerivedSubnet
    from jaqc.nn.tracing import trace_model

    bits = [(4, 2), (8, 4), (2, 8), (4, 4), (2, 2)]
    model = DerivedSubnet(CONFIG, ops, bits).eval()
    graph = trace_model(model, model.example_input_shape)
    weighted = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    from_ir = {layer.name: consumer_a_bits(graph, layer) for layer in weighted}
    problems = SPACE.derived_problems(ops, bits)
    assert len(problems) == len(weighted)
    # Same layers in the same order: compare the widths the outputs are written at.
    assert [p.out_bits for p in problems] == [from_ir[layer.name] for layer in weighted]


def test_expected_cost_at_one_hot_choices_equals_the_subnet() -> None:
    cost = ExpectedHardwareCost(SPACE, BITS, HardwareWeights())
    names = list(CONFIG.candidates)
    blocks = CONFIG.num_blocks
    generator = torch.Generator().manual_seed(5)
    for trial in range(3):
        choice = torch.randint(len(names), (blocks,), generator=generator).tolist()
        w_index = torch.randint(3, (blocks,), generator=generator).tolist()
        a_index = torch.randint(3, (blocks,), generator=generator).tolist()
        alpha = torch.nn.functional.one_hot(torch.tensor(choice), len(names)).double()
        beta_w = torch.zeros(blocks, len(names), 3, dtype=torch.float64)
        beta_a = torch.zeros(blocks, len(names), 3, dtype=torch.float64)
        for b in range(blocks):
            beta_w[b, :, w_index[b]] = 1.0
            beta_a[b, :, a_index[b]] = 1.0
        energy, latency = cost.expected(alpha, beta_w, beta_a)
        ops = [names[c] for c in choice]
        bits = [(cost.w_bits[w], cost.a_bits[a]) for w, a in zip(w_index, a_index, strict=True)]
        exact = mapped_totals(SPACE.derived_problems(ops, bits), cost.accelerator)
        assert float(energy) == pytest.approx(exact.energy_nJ, rel=1e-12), trial
        assert float(latency) == pytest.approx(exact.latency_s, rel=1e-12), trial


def test_consumer_bits_change_the_expected_cost() -> None:
    """Lowering the next block's activation bits lowers this block's output traffic, hence its cost."""
    cost = ExpectedHardwareCost(SPACE, BITS, HardwareWeights())
    names = list(CONFIG.candidates)
    blocks = CONFIG.num_blocks
    alpha = torch.zeros(blocks, len(names), dtype=torch.float64)
    alpha[:, names.index("k3_e6")] = 1.0
    beta_w = torch.zeros(blocks, len(names), 3, dtype=torch.float64)
    beta_w[..., 2] = 1.0
    wide = torch.zeros(blocks, len(names), 3, dtype=torch.float64)
    wide[..., 2] = 1.0
    narrow_next = wide.clone()
    narrow_next[2] = 0.0
    narrow_next[2, :, 0] = 1.0  # block 2 reads its input at 2 bits: block 1 writes it at 2 bits
    e_wide, _ = cost.expected(alpha, beta_w, wide)
    e_narrow, _ = cost.expected(alpha, beta_w, narrow_next)
    assert float(e_narrow) < float(e_wide)
    # and the gradient reaches the next block's β_a
    beta = narrow_next.clone().requires_grad_(True)
    cost.expected(alpha, beta_w, beta)[0].backward()
    assert float(beta.grad[2].abs().sum()) > 0
