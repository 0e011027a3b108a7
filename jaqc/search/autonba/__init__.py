"""Auto-NBA (Fu et al., ICML 2021) as JAQ's baseline on the same pipeline: ``jaqc search --method autonba``.

The supernet, bit candidates, cost model, BatchTile mappings, E_HW normalisation, data and run directory are
JAQ's; what differs is how the search samples and how it finds the accelerator.

**Heterogeneous sampling** (the supernet in ``QuantSearchMode.HETERO``):

* *Weight step* (a batch of the weight split, CE, SGD with momentum and a cosine learning rate): the
  supernet's own forward pass — ops mixed by the Gumbel-softmax of α, as in JAQ — whose convs quantize with
  the **β-blend** of all bitwidths (Gumbel-softmax of β_w, β_a) computed inside one autograd node whose
  backward is the identity to the input (:func:`jaqc.nn.mixing.hetero_blend`), so nothing of the blend is
  stored. (A single sampled op per block here, as Auto-NBA's code does, did not train at all within the
  ``tiny`` preset's 80 steps: docs/autonba.md.)
* *Architecture step* (a batch of the architecture split, ``CE + λ·E_HW``, Adam on α, β_w, β_a): **hard top-2
  sampling** of ops and of each op's weight and activation bits — the two largest of ``logits + Gumbel noise``
  (two draws without replacement from ``softmax(logits)``); the first is the active one. Their gates
  (:func:`pair_gates`) are ``one_hot + p - p.detach()`` with ``p`` the softmax **renormalised over the
  pair** (ProxylessNAS): the forward pass is the active op at its active bits exactly, the gradient reaches
  only the two sampled logits. After the Adam step the two logits of every sampled pair are shifted by one
  offset so that their log-sum-exp is unchanged (ProxylessNAS' rescaling, Auto-NBA's ``offset``): the step
  moves probability within the pair, not to or from it. The step leaves the supernet's buffers (batch-norm
  running statistics, activation ranges) as they were: a single hard path has other statistics than the
  weight step's mixture, and letting it move them made the supernet's eval-mode accuracy collapse to chance.
* *Hardware cost*: a straight-through estimate on the sampled path — the same per-(block, op, bits) cost
  table JAQ uses (:class:`~jaqc.search.hw_binding.ExpectedHardwareCost`) weighted by the gates; its forward
  value is exactly the sampled path's energy and latency on the current accelerator, its gradient reaches the
  sampled logits. Normalised as JAQ's E_HW (``λE·E/E_ref + λL·L/L_ref + λA·A/A_ref``).

**Accelerator search**: best-of-N random sampling (:func:`best_of_n`) instead of JAQ's generation network —
``hw_samples`` accelerators drawn uniformly from :class:`~jaqc.hw.generator.space.AcceleratorSpace`, each scored by
E_HW of the currently derived subnet (argmax α, β) at its BatchTile mappings; the best is kept. It runs
before architecture step 0 and every ``hw_every`` architecture steps (not at all while λ = 0: then the
architecture ignores the hardware), and once more for the final subnet. Data: a 50/50 stratified
weight / architecture split (JAQ: 80/20).

Options (``options=`` / ``jaqc search --method autonba``): ``hw_every`` (int, default 100), ``hw_samples``
(int, default 64). The preset's ``epochs``, ``lr``, ``arch_lr``, ``batch_size``, ``lam``, ``hw`` and
``seed`` apply; its generator settings do not.
"""

from .accelerator import HardwareSearchResult, best_of_n
from .engine import AutoNbaSearch, SampledPath, hetero_config
from .options import ARCH_FRACTION, HW_SEED_OFFSET, TOP_K, AutoNbaOptions, parse_options
from .run import AutoNbaRun
from .sampling import conv_bit_probs, gumbel_top_k, keep_pair_mass, pair_gates, pair_probs

__all__ = [
    "ARCH_FRACTION", "HW_SEED_OFFSET", "TOP_K", "AutoNbaOptions", "AutoNbaRun", "AutoNbaSearch",
    "HardwareSearchResult", "SampledPath", "best_of_n", "conv_bit_probs", "gumbel_top_k", "hetero_config",
    "keep_pair_mass", "pair_gates", "pair_probs", "parse_options",
]  # fmt: skip
