"""Shared test settings: named tolerances per dtype, and tiny-run helpers."""
from __future__ import annotations

import os

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


@pytest.fixture(autouse=True, scope="session")
def _reference_cache(tmp_path_factory):
    # Cached references (Allen–Cahn) go to a per-session folder, never the user's cache.
    folder = tmp_path_factory.mktemp("reference-cache")
    previous = os.environ.get("PINNSKETCH_CACHE")
    os.environ["PINNSKETCH_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("PINNSKETCH_CACHE", None)
    else:
        os.environ["PINNSKETCH_CACHE"] = previous
