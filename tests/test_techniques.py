"""Training techniques against their definitions: causal weighting (Wang, Sankaran &
Perdikaris 2024) and the exact periodic embedding; their wiring into the trainer, the
config checks, resume, and the monitor."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.architectures import ACTIVATIONS, INITIALIZERS, MLP
from pinnsketch.model import PINN
from pinnsketch.training.build import build_trainer
from pinnsketch.training.causal import CausalWeights
from pinnsketch.training.checks import run_terms

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# Causal training
# ------------------------------------------------------------------------------------------
def test_causal_loss_and_its_gradient_follow_the_definition():
    gen = torch.Generator().manual_seed(0)
    chunks, eps = 5, 3.0
    times = torch.rand(200, generator=gen, dtype=torch.float64) * 2.0 + 1.0   # [1, 3]
    residual = torch.randn(200, generator=gen, dtype=torch.float64).requires_grad_(True)
    causal = CausalWeights(chunks, eps, 1.0, 3.0)
    loss = causal.loss(residual, times)
    # The formula, by hand: slab means, exclusive cumulative sums, weights, their mean.
    r, t = residual.detach().numpy(), times.numpy()
    slab = np.minimum(((t - 1.0) / 2.0 * chunks).astype(int), chunks - 1)
    slab_loss = np.array([np.mean(r[slab == i] ** 2) for i in range(chunks)])
    weights = np.exp(-eps * np.concatenate([[0.0], np.cumsum(slab_loss)[:-1]]))
    assert float(loss.detach()) == pytest.approx(np.mean(weights * slab_loss), rel=1e-12)
    np.testing.assert_allclose(causal.last_weights.numpy(), weights, rtol=1e-12)
    assert causal.metrics()["causal_min_weight"] == pytest.approx(weights.min(), rel=1e-12)
    # The weights carry no gradient: ∂L/∂r_j = w_slab(j) · 2 r_j / (M · n_slab(j)).
    (grad,) = torch.autograd.grad(loss, residual)
    counts = np.bincount(slab, minlength=chunks)
    np.testing.assert_allclose(grad.numpy(), weights[slab] * 2 * r / (chunks * counts[slab]),
                               rtol=1e-12)


def test_causal_tolerance_zero_is_the_slab_averaged_plain_loss():
    gen = torch.Generator().manual_seed(1)
    times = torch.linspace(0.0, 1.0, 400, dtype=torch.float64)  # equal slabs of 100
    residual = torch.randn(400, 2, generator=gen, dtype=torch.float64)  # (N, k) residuals
    loss = CausalWeights(4, 0.0, 0.0, 1.0).loss(residual, times)
    assert float(loss) == pytest.approx(float(residual.square().mean()), rel=1e-12)


def _config(name="burgers", extra=()):
    return pinnsketch.load_config(ROOT / "problems" / f"{name}.yaml",
                                  tiny_overrides(10, 5, eval_every=5)
                                  + ["model.hard_constraints=false", "output.plots=false",
                                     "train.dtype=float64", *extra])


def test_trainer_weights_the_adam_phase_only():
    trainer = build_trainer(_config(extra=["train.causal={chunks: 4, tolerance: 10.0}"]))
    residuals = {t: r.detach() for t, r in
                 trainer.problem.residuals(trainer.model, trainer.batch).items()}
    weighted = trainer.causal.loss(residuals["pde"], trainer.batch["pde"][:, -1])
    reported, _ = trainer.adam_step()
    assert float(reported["pde"]) == pytest.approx(float(weighted), rel=1e-12)
    assert float(reported["pde"]) < float(residuals["pde"].square().mean())  # weights < 1
    assert set(trainer.metrics()) == {"causal_weights", "causal_min_weight"}
    plain = trainer.evaluate_losses()["pde"]  # evaluations report the unweighted loss
    unweighted = lambda: float(trainer.problem.residuals(trainer.model, trainer.batch)["pde"]
                               .detach().square().mean())
    assert plain == pytest.approx(unweighted(), rel=1e-12)
    before = trainer.causal.last_weights.clone()
    trainer.lbfgs_chunk(3)  # the phase after Adam: unweighted, the weights untouched
    assert torch.equal(trainer.causal.last_weights, before)
    assert trainer.last_losses["pde"] == pytest.approx(unweighted(), rel=1e-6)


def test_causal_run_resumes_exactly_and_logs_its_weights(tmp_path):
    extra = ["train.causal={chunks: 8, tolerance: 1.0}", "train.lbfgs_steps=0",
             "monitor.enabled=true", "monitor.every=2"]
    full = pinnsketch.train(_config(extra=extra + ["train.adam_steps=20"]), out=tmp_path / "a")
    pinnsketch.train(_config(extra=extra + ["train.adam_steps=10"]), out=tmp_path / "b")
    part = pinnsketch.train(_config(extra=extra + ["train.adam_steps=20"]),
                            resume=tmp_path / "b")
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        assert torch.equal(p, q)
    record = full.metrics[-1]
    assert len(record["causal_weights"]) == 8
    assert record["causal_min_weight"] == min(record["causal_weights"])
    assert 0 < record["causal_min_weight"] <= 1
    data = json.loads((tmp_path / "a" / "diagnosis.json").read_text())
    assert data["monitor"]["checks"]["adam"] == 10  # the monitor works with it on


def test_causal_config_errors():
    with pytest.raises(pinnsketch.ConfigError, match="train.causal.chunks: .*steady"):
        pinnsketch.check_config(_config("poisson", ["train.causal={chunks: 4}"]))


# ------------------------------------------------------------------------------------------
# The exact periodic embedding
# ------------------------------------------------------------------------------------------
def test_periodic_embedding_is_exactly_periodic():
    torch.set_default_dtype(torch.float64)
    try:
        mlp = MLP(3, 1, 16, 2, activation=ACTIVATIONS["tanh"],
                  init=INITIALIZERS["xavier_normal"], generator=torch.Generator().manual_seed(0))
        net = PINN(mlp, lows=(-1.0, 0.0), highs=(1.0, 1.0), periodic={0: 2.0})
    finally:
        torch.set_default_dtype(torch.float32)
    gen = torch.Generator().manual_seed(1)
    z = torch.rand(100, 2, generator=gen, dtype=torch.float64) * 2 - 1
    shifted = z.clone()
    shifted[:, 0] += 2.0 * torch.randint(-3, 4, (100,), generator=gen).double()
    torch.testing.assert_close(net(shifted), net(z), rtol=0, atol=1e-12)
    moved = z.clone()
    moved[:, 1] += 0.1  # not periodic in t
    assert (net(moved) - net(z)).abs().max() > 1e-3


def test_periodic_embedding_drops_the_periodic_term_and_is_checked():
    config = _config("convection", [f"model.periodic={{x: {2 * math.pi!r}}}"])
    problem = pinnsketch.load_problem(config)
    assert run_terms(config, problem) == ("pde", "ic")
    trainer = build_trainer(config)
    assert trainer.model.linear_layers[0].in_features == 3  # cos x, sin x, t
    trainer.adam_step()
    for bad, match in (("{x: 3.0}", "period 3.0, Convection is periodic in 'x' with period"),
                       ("{t: 1.0}", "Convection is not periodic in 't'"),
                       ("{x: -1.0}", "model.periodic")):
        with pytest.raises(pinnsketch.ConfigError, match=match):
            pinnsketch.check_config(_config("convection", [f"model.periodic={bad}"]))
    with pytest.raises(pinnsketch.ConfigError, match="Burgers is not periodic"):
        pinnsketch.check_config(_config(extra=["model.periodic={x: 2.0}"]))
