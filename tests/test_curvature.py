"""Curvature and spectral evidence: the Hessian's top eigenvalues per term by Lanczos
against eigendecompositions (a matrix, and a PINN loss's full Hessian from
torch.autograd.functional.hessian); the residual's energy bands against DCT modes and
Parseval; both in the run record."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.monitor.curvature import lanczos_ritz_values
from pinnsketch.monitor.spectrum import band_energies, band_shares
from pinnsketch.training.build import build_trainer
from pinnsketch.training.curvature import hessian_top

ROOT = Path(__file__).resolve().parents[1]


def test_lanczos_finds_the_top_eigenvalues_and_all_of_them_at_full_size():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(60, 60, generator=generator, dtype=torch.float64)
    spectrum = torch.logspace(-2, 3, 60, dtype=torch.float64)  # condition number 1e5
    q, _ = torch.linalg.qr(a)
    h = q @ torch.diag(spectrum) @ q.mT
    few = lanczos_ritz_values(lambda v: h @ v, 60, 25, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(few[-3:], spectrum[-3:], rtol=1e-10, atol=0)
    assert few[0] > spectrum[0]  # 25 steps do not reach the bottom: the top converges first
    every = lanczos_ritz_values(lambda v: h @ v, 60, 60, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(every, spectrum, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="steps: got 61"):
        lanczos_ritz_values(lambda v: h @ v, 60, 61, generator=generator)


def test_per_term_values_equal_the_full_hessians_eigenvalues():
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    tiny_overrides(1, 0) + ["train.dtype=float64",
                                                            "model.hard_constraints=false",
                                                            "model.width=5"])
    trainer = build_trainer(config)
    params = trainer.parameters
    dim = sum(p.numel() for p in params)
    top = hessian_top(trainer.losses(), params, steps=dim, top=3, seed=0)
    shapes = [p.shape for p in params]

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    for term in ("pde", "bc", "ic"):
        def loss(theta, term=term):
            model = _Replay(trainer.model, shapes, theta)
            residual = trainer.problem.residuals(model, {term: trainer.batch[term]})[term]
            return residual.square().mean()
        exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat)).flip(0)[:3]
        torch.testing.assert_close(torch.tensor(top[term], dtype=torch.float64), exact,
                                   rtol=1e-7, atol=1e-9 * float(exact[0]))


class _Replay(torch.nn.Module):
    """The model evaluated at flat parameters θ (so a loss is a function of θ alone)."""

    def __init__(self, model, shapes, theta):
        super().__init__()
        names = [n for n, _ in model.named_parameters()]
        pieces, offset = {}, 0
        for name, shape in zip(names, shapes):
            n = torch.Size(shape).numel()
            pieces[name] = theta[offset:offset + n].view(shape)
            offset += n
        self.model, self.pieces = model, pieces

    def forward(self, points):
        return torch.func.functional_call(self.model, self.pieces, (points,))


def test_runs_record_the_curvature_and_it_needs_the_monitor(tmp_path):
    extra = ["output.plots=false", "train.dtype=float64", "monitor.enabled=true",
             "monitor.curvature_steps=8", "monitor.curvature_top=2"]
    config = pinnsketch.load_config(ROOT / "problems" / "poisson.yaml",
                                    tiny_overrides(10, 0, eval_every=5) + extra)
    run = pinnsketch.train(config, out=tmp_path / "a")
    records = run.metrics
    assert all(len(r["hessian_top"]["pde"]) == 2 for r in records)
    assert all(r["hessian_top"]["pde"][0] >= r["hessian_top"]["pde"][1] > 0 for r in records)
    report = (tmp_path / "a" / "diagnosis.md").read_text()
    last = records[-1]["hessian_top"]["pde"][0]
    assert "## Curvature" in report and "| pde | " in report and f"{last:.3g}" in report
    with pytest.raises(pinnsketch.ConfigError, match="monitor.curvature_steps: got 8, but the "
                                                     "monitor is off"):
        pinnsketch.check_config(pinnsketch.load_config(
            ROOT / "problems" / "poisson.yaml", extra + ["monitor.enabled=false"]))


# ------------------------------------------------------------------------------------------
# The residual spectrum (spectral-bias evidence)
# ------------------------------------------------------------------------------------------
def test_band_energies_put_each_dct_mode_in_its_band_and_keep_parseval():
    n = 64
    i = np.arange(n) + 0.5
    # Octave edges ρ = 1/16, 1/8, 1/4, 1/2: indices 4, 8, 16, 32 of 64 start bands 1–4.
    for k, band in ((0, 0), (3, 0), (4, 1), (7, 1), (8, 2), (16, 3), (31, 3), (32, 4), (63, 4)):
        mode = np.cos(np.pi * k * i / n)  # a DCT-II basis vector: all its energy at k
        energies = band_energies(mode)
        assert np.argmax(energies) == band and energies[band] == pytest.approx(
            np.sum(mode ** 2), rel=1e-12)
    generator = np.random.default_rng(0)
    field = generator.standard_normal((32, 48))
    energies = band_energies(field, bands=4)
    assert len(energies) == 4
    assert energies.sum() == pytest.approx(np.sum(field ** 2), rel=1e-12)  # Parseval
    # 2-D: mode (k₁, k₂) sits at ρ = ‖(k₁/32, k₂/48)‖.
    mode = np.outer(np.cos(np.pi * 8 * (np.arange(32) + 0.5) / 32),
                    np.cos(np.pi * 30 * (np.arange(48) + 0.5) / 48))
    rho = math.hypot(8 / 32, 30 / 48)  # 0.67: the top octave [1/2, ∞) of four bands
    assert rho > 0.5 and np.argmax(band_energies(mode, bands=4)) == 3
    low = np.outer(np.cos(np.pi * 5 * (np.arange(32) + 0.5) / 32), np.ones(48))
    assert np.argmax(band_energies(low, bands=4)) == 1  # ρ = 5/32 in [1/8, 1/4)
    assert band_shares(np.array([1.0, 3.0])) == [0.25, 0.75]
    assert band_shares(np.zeros(3)) == [0.0, 0.0, 0.0]


def test_monitored_runs_record_the_residual_bands(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "poisson.yaml",
                                    tiny_overrides(10, 0, eval_every=5)
                                    + ["output.plots=false", "monitor.enabled=true"])
    run = pinnsketch.train(config, out=tmp_path / "a")
    trainer = build_trainer(config)
    trainer.model.load_state_dict(run.model.state_dict())
    grid = trainer.problem.domain.grid((64, 64))
    points = grid.clone().requires_grad_(True)
    residual = trainer.problem.pde_residual(trainer.model, points).detach().numpy()
    expected = band_shares(band_energies(residual.reshape(64, 64)))
    np.testing.assert_allclose(run.metrics[-1]["residual_bands"], expected, rtol=1e-6)
    assert sum(run.metrics[-1]["residual_bands"]) == pytest.approx(1.0)
    # The last hidden features: the MLP's layers but the output one, on the same grid,
    # each feature's mean removed, energies summed over the features.
    with torch.no_grad():
        features = trainer.model.network.net[:-1](trainer.model.embed(grid)).numpy()
    fields = features.reshape(64, 64, -1)
    fields = fields - fields.mean(axis=(0, 1))
    expected = band_shares(sum(band_energies(fields[..., c]) for c in range(fields.shape[-1])))
    np.testing.assert_allclose(run.metrics[-1]["feature_bands"], expected, rtol=1e-6)
    assert run.metrics[-1]["spectrum_grid"] == [64, 64]
    assert "## Spectra" in (tmp_path / "a" / "diagnosis.md").read_text()
