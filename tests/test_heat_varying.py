"""The varying-conductivity heat problem: its manufactured solution through the library's
residual code, against a flux-form divergence taken by autograd here."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import RESIDUAL_ATOL_F64
from pinnsketch import ConfigError
from pinnsketch.config import config_from_dict
from pinnsketch.problems import HeatVarying
from pinnsketch.sampling import Sampler

ROOT = Path(__file__).resolve().parents[1]
PI = math.pi


def _u(points):
    x, y, t = points[:, 0], points[:, 1], points[:, 2]
    return torch.exp(-t) * torch.sin(PI * x) * torch.sin(PI * y)


def _a(points, eps, k):
    x, y = points[:, 0], points[:, 1]
    return 1 + eps * torch.sin(k * PI * x) * torch.sin(k * PI * y)


class Exact(torch.nn.Module):
    def forward(self, points):
        return _u(points)


def _points(problem, measure, n=200):
    sampler = Sampler(problem.domain, "uniform", torch.Generator().manual_seed(0))
    return getattr(sampler, measure)(n).requires_grad_(True)


@pytest.mark.parametrize("eps,k", [(0.5, 4), (0.9, 1), (0.0, 3)])
def test_the_manufactured_solution_has_zero_residuals(eps, k):
    problem = HeatVarying(HeatVarying.Options(epsilon=eps, k=k))
    batch = {t: _points(problem, problem.term_measures[t]) for t in ("pde", "bc", "ic")}
    residuals = problem.residuals(Exact(), batch)
    scale = 2 * PI ** 2 * (1 + eps * k)
    for term, r in residuals.items():
        assert float(r.detach().abs().max()) < RESIDUAL_ATOL_F64 * scale, term


def test_the_source_is_the_flux_form_divergence():
    """f = u_t − ∇·(a∇u) with the flux a∇u and its divergence both taken by autograd."""
    problem = HeatVarying()
    points = _points(problem, "interior")
    u = _u(points)
    (du,) = torch.autograd.grad(u.sum(), points, create_graph=True)
    flux = _a(points, 0.5, 4)[:, None] * du[:, :2]
    divergence = sum(torch.autograd.grad(flux[:, i].sum(), points, create_graph=True)[0][:, i]
                     for i in range(2))
    expected = du[:, 2] - divergence
    x, y, t = points[:, 0], points[:, 1], points[:, 2]
    torch.testing.assert_close(problem.source(x, y, t), expected, rtol=1e-12, atol=1e-12)
    # A constant conductivity is the plain heat equation: f = (2π² − 1) u.
    plain = HeatVarying(HeatVarying.Options(epsilon=0.0))
    torch.testing.assert_close(plain.source(x, y, t), (2 * PI ** 2 - 1) * u,
                               rtol=1e-12, atol=1e-12)


def test_the_hard_constraint_holds_the_initial_and_boundary_data():
    problem = HeatVarying()

    def raw(p):  # any network output
        return torch.cos(3 * p.sum(dim=1))
    initial = _points(problem, "initial").detach()
    boundary = _points(problem, "boundary").detach()
    torch.testing.assert_close(problem.output_transform(initial, raw(initial)), _u(initial),
                               rtol=0, atol=1e-15)
    torch.testing.assert_close(problem.output_transform(boundary, raw(boundary)),
                               torch.zeros(len(boundary), dtype=torch.float64),
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("options,fragment", [({"epsilon": 1.0}, "problem.epsilon"),
                                              ({"k": 0}, "problem.k"),
                                              ({"k": 2.5}, "problem.k")])
def test_bad_options_name_the_key(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        pinnsketch.load_problem({"problem": {"type": "heat_varying", **options}})


def test_the_shipped_config_runs(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "heat_varying.yaml", [
        "train.steps_scale=0.01", "train.eval_every=5", "sampling.interior=64",
        "model.width=8", "model.depth=2", "output.progress=false", "output.plots=false"])
    run = pinnsketch.train(config, out=tmp_path / "run")
    assert run.summary["steps"] == 30 and math.isfinite(run.summary["rel_l2"])
