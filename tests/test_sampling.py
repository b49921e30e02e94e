"""Domains and samplers: points land on the right measures, reproducibly."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from pinnsketch.config import SamplingConfig, TrainConfig
from pinnsketch.domain import Domain
from pinnsketch.problems import Problem
from pinnsketch.sampling import UNIT_SAMPLERS, Sampler
from pinnsketch.training.adaptive import residual_adaptive_points
from pinnsketch.training.trainer import Trainer

DOMAIN = Domain((0.0, -1.0), (2.0, 1.0), time=(0.0, 0.5))


@pytest.mark.parametrize("method", sorted(UNIT_SAMPLERS))
def test_measures_and_reproducibility(method):
    sample = lambda seed: Sampler(DOMAIN, method, torch.Generator().manual_seed(seed))
    a, b = sample(3), sample(3)
    interior, boundary, initial = a.interior(300), a.boundary(300), a.initial(300)
    assert torch.equal(interior, b.interior(300)) and torch.equal(boundary, b.boundary(300))
    lows, highs = torch.tensor(DOMAIN.lows), torch.tensor(DOMAIN.highs)
    for points in (interior, boundary, initial):
        assert points.shape == (300, 3) and points.dtype == torch.float64
        assert ((points >= lows) & (points <= highs)).all()
    on_face = (boundary[:, 0] == 0) | (boundary[:, 0] == 2) | (boundary[:, 1] == -1) | (boundary[:, 1] == 1)
    assert on_face.all()
    assert (initial[:, 2] == 0).all()
    assert not torch.equal(sample(4).interior(300), interior)


def test_boundary_faces_weighted_by_length():
    # Box [0,2]×[-1,1] in space: all four faces have length 2, so each gets ~1/4.
    boundary = Sampler(DOMAIN, "uniform", torch.Generator().manual_seed(0)).boundary(8000)
    low_x = (boundary[:, 0] == 0).float().mean().item()
    assert abs(low_x - 0.25) < 0.03  # 5 binomial standard deviations at n = 8000


def test_latin_hypercube_is_stratified():
    unit = UNIT_SAMPLERS["lhs"](100, 2, torch.Generator().manual_seed(0))
    for axis in range(2):
        strata = np.sort(np.floor(unit[:, axis].numpy() * 100))
        assert np.array_equal(strata, np.arange(100))


class StepResidual(Problem):
    """Residual 100 on x > 0.5 and 0 elsewhere, independent of the model."""

    @dataclass(frozen=True)
    class Options:
        pass

    input_names = ("x",)
    domain = Domain((0.0,), (1.0,))

    def pde_residual(self, model, points):
        return 100.0 * (points[:, 0] > 0.5).to(points.dtype) + 0 * model(points)

    def reference(self, points):
        return np.zeros(len(points))

    def evaluation_grid(self):
        return np.linspace(0, 1, 11)[:, None], (11,)


class Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)

    def forward(self, points):
        return self.linear(points).squeeze(-1)


def test_residual_adaptive_points_follow_the_residual():
    # RAD weights: 100/50 + 1 = 3 on the right half, 1 on the left; drawing 2000 of 20000
    # without replacement puts close to 3/4 of the points on the right.
    trainer = Trainer(StepResidual(), Scalar().double(),
                      train=TrainConfig(adam_steps=0), sampling=SamplingConfig(
                          interior=2000, boundary=2, adaptive="rad", adaptive_candidates=20000),
                      terms=("pde",), observations=None, device=torch.device("cpu"),
                      dtype=torch.float64)
    points = residual_adaptive_points(trainer.problem, trainer.model, trainer.sampler, 2000,
                                      20000, trainer.generator)
    right = (points[:, 0] > 0.5).double().mean().item()
    assert 0.70 < right < 0.78
