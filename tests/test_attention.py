"""Residual-based attention against its update rule (Anagnostopoulos et al. 2024): the
multipliers, the loss they weight, what a redraw does to them, resume and the monitor."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.attention import ResidualAttention
from pinnsketch.training.build import build_trainer

ROOT = Path(__file__).resolve().parents[1]


def _config(extra=()):
    return pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                  tiny_overrides(10, 0, eval_every=5)
                                  + ["model.hard_constraints=false", "output.plots=false",
                                     "train.dtype=float64", "sampling.attention=rba",
                                     "sampling.resample_every=0", *extra])


def test_multipliers_follow_the_update_rule_and_weight_the_loss():
    eta, gamma = 0.05, 0.9
    attention = ResidualAttention(eta, gamma)
    gen = torch.Generator().manual_seed(0)
    lam = torch.zeros(40, dtype=torch.float64)
    for _ in range(5):
        r = torch.randn(40, generator=gen, dtype=torch.float64, requires_grad=True)
        loss = attention.loss("pde", r)
        lam = gamma * lam + eta * r.detach().abs() / r.detach().abs().max()
        torch.testing.assert_close(attention.multipliers["pde"], lam, rtol=1e-14, atol=0)
        assert float(loss.detach()) == pytest.approx(float((lam * r.detach()).square().mean()),
                                                     rel=1e-13)
        (grad,) = torch.autograd.grad(loss, r)  # λ is a constant: ∂/∂r = 2 λ² r / N
        torch.testing.assert_close(grad, 2 * lam.square() * r.detach() / 40, rtol=1e-13, atol=0)
    assert not attention.multipliers["pde"].requires_grad
    assert float(attention.multipliers["pde"].max()) <= eta / (1 - gamma)


def test_vector_residuals_use_the_norm_per_point():
    attention = ResidualAttention(0.1, 0.5)
    r = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    loss = attention.loss("bc", r).detach()
    lam = 0.1 * torch.tensor([5.0, 1.0], dtype=torch.float64) / 5.0
    torch.testing.assert_close(attention.multipliers["bc"], lam)
    assert float(loss) == pytest.approx(float((lam[:, None] * r).square().mean()), rel=1e-14)


def test_trainer_attends_in_adam_only_and_restarts_the_multipliers_on_a_redraw():
    trainer = build_trainer(_config(["sampling.resample_every=3"]))
    residuals = {t: r.detach() for t, r in
                 trainer.problem.residuals(trainer.model, trainer.batch).items()}
    reported, _ = trainer.adam_step()
    for term, r in residuals.items():  # first step: λ = η|r|/max|r| from λ = 0
        lam = 0.01 * r.abs() / r.abs().max()
        assert float(reported[term]) == pytest.approx(float((lam * r).square().mean()), rel=1e-12)
    trainer.adam_step()
    trainer.adam_step()
    grown = float(trainer.attention.multipliers["pde"].mean())
    trainer.adam_step()  # redraw at the 4th step: the multipliers restart from 0
    after = trainer.attention.multipliers["pde"]
    assert float(after.max()) == pytest.approx(0.01, rel=1e-12) and float(after.mean()) < grown
    assert set(trainer.metrics()) == {"rba_mean", "rba_max"}
    plain = trainer.evaluate_losses()  # evaluations and the phase after Adam: plain losses
    direct = {t: float(r.detach().square().mean()) for t, r in
              trainer.problem.residuals(trainer.model, trainer.batch).items()}
    assert plain == pytest.approx(direct, rel=1e-12)


def test_attended_run_resumes_exactly_with_its_multipliers(tmp_path):
    extra = ["monitor.enabled=true", "monitor.every=2", "train.causal.chunks=4"]
    full = pinnsketch.train(_config(extra + ["train.adam_steps=20"]), out=tmp_path / "a")
    pinnsketch.train(_config(extra + ["train.adam_steps=10"]), out=tmp_path / "b")
    part = pinnsketch.train(_config(extra + ["train.adam_steps=20"]), resume=tmp_path / "b")
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        assert torch.equal(p, q)
    assert full.metrics[-1]["rba_mean"] == part.metrics[-1]["rba_mean"]
    data = json.loads((tmp_path / "a" / "diagnosis.json").read_text())
    assert data["monitor"]["checks"]["adam"] == 10


def test_attention_config_errors():
    with pytest.raises(ValueError, match="gamma 1.0"):
        ResidualAttention(0.01, 1.0)
    with pytest.raises(pinnsketch.ConfigError, match="sampling.attention"):
        _config(["sampling.attention=softmax"])
