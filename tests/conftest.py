"""Shared test settings: named tolerances per dtype, and tiny-run helpers."""
from __future__ import annotations

import pytest
import torch

# float64 round-off on O(1)..O(100) quantities built from a few autograd passes.
RESIDUAL_ATOL_F64 = 1e-9
# float32 gets the same checks only where stated; its epsilon is 1.2e-7.
RESIDUAL_ATOL_F32 = 1e-3


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # One thread: the test problems are tiny, where intra-op threads only add contention,
    # and a fixed count keeps reductions identical between compared runs.
    torch.set_num_threads(1)
    yield


def tiny_overrides(adam: int = 20, lbfgs: int = 0, eval_every: int = 10) -> list[str]:
    """Overrides that shrink any shipped config to a seconds-long run."""
    return [f"train.adam_steps={adam}", f"train.lbfgs_steps={lbfgs}",
            f"train.eval_every={eval_every}", "train.checkpoint_every=10",
            "sampling.interior=64", "sampling.boundary=16", "sampling.initial=16",
            "model.width=8", "model.depth=2", "output.progress=false"]
