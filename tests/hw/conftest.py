"""Fixtures of the hardware-model tests: the shared BitFusion reference cases (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"
PUBLIC_CASES = SHARED_DATA / "bitfusion_ref" / "public.json"


@pytest.fixture(scope="session")
def reference_cases():
    """The 40 public reference cases of shared/data/bitfusion_ref/public.json."""
    if not PUBLIC_CASES.exists():
        pytest.skip(f"BitFusion reference data not found at {PUBLIC_CASES}")
    from jaqc.hw.reference.cases import load_reference_cases

    cases = load_reference_cases(PUBLIC_CASES)
    assert len(cases) == 40
    return cases


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each hardware test on one intra-op thread (restored afterwards): the batches are small, and on a
    busy 2-core machine a second OpenMP thread mostly waits, which made these tests several times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
