"""Adaptive loss weights against their definitions: grad-norm weights from separately taken
autograd gradients, NTK traces from finite-difference Jacobians; the wiring into the trainer
(the step uses the weights in force, new ones from the next step), resume, the monitor's
record and the diagnosis reading it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.balancing import LossBalancer, ntk_traces, proposed_weights
from pinnsketch.training.build import build_trainer

ROOT = Path(__file__).resolve().parents[1]


def _config(scheme, extra=(), name="burgers"):
    return pinnsketch.load_config(
        ROOT / "problems" / f"{name}.yaml",
        tiny_overrides(10, 0, eval_every=5)
        + ["model.hard_constraints=false", "output.plots=false", "train.dtype=float64",
           f"train.balancing.scheme={scheme}", *extra])


def _norm(grads):
    return math.sqrt(sum(float(g.detach().square().sum()) for g in grads if g is not None))


def test_proposed_weights_are_the_sum_over_each():
    assert proposed_weights({"a": 1.0, "b": 3.0}) == {"a": 4.0, "b": 4.0 / 3.0}
    assert proposed_weights({"a": 2.0, "b": 0.0}) == {"a": 1.0, "b": None}  # kept as is


def test_grad_norm_weights_follow_the_formula_and_apply_from_the_next_step():
    ema = 0.6
    trainer = build_trainer(_config("grad_norm", [f"train.balancing.ema={ema}",
                                                  "train.balancing.every=2",
                                                  "train.weights={bc: 3.0}"]))
    params = trainer.parameters
    for step in range(4):
        before = dict(trainer.weights)
        losses = trainer.losses()
        grads = {t: torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                 for t, loss in losses.items()}
        norms = {t: _norm(g) for t, g in grads.items()}
        expected_grad = [sum(before[t] * grads[t][j] for t in grads) for j in range(len(params))]
        step_grads = {}
        original = trainer.adam.step

        def spy():
            step_grads.update({j: p.grad.clone() for j, p in enumerate(params)})
            original()

        trainer.adam.step = spy
        trainer.adam_step()
        trainer.adam.step = original
        for j, g in enumerate(expected_grad):  # the step used the weights in force
            torch.testing.assert_close(step_grads[j], g, rtol=1e-12, atol=1e-15)
        if step % 2 == 0:
            total = sum(norms.values())
            for t in norms:
                expected = ema * before[t] + (1 - ema) * total / norms[t]
                assert trainer.weights[t] == pytest.approx(expected, rel=1e-10)
        else:
            assert trainer.weights == before
    assert trainer.balancer.updates == 2
    assert trainer.metrics()["loss_weights"] == trainer.weights


def test_ntk_traces_equal_finite_difference_jacobians():
    """tr K / N = mean_n ‖∂r_n/∂θ‖², the Jacobian by central differences in θ."""
    trainer = build_trainer(_config("ntk", ["model.width=4", "model.depth=1"]))
    few = {t: p[:5].detach().requires_grad_(True) for t, p in trainer.batch.items()}
    traces = ntk_traces(trainer.problem.residuals(trainer.model, few), trainer.parameters)
    flat = torch.nn.utils.parameters_to_vector(trainer.parameters).detach()
    h = 1e-6

    def residuals_at(theta):
        torch.nn.utils.vector_to_parameters(theta, trainer.parameters)
        return {t: r.detach().reshape(-1) for t, r in
                trainer.problem.residuals(trainer.model, few).items()}

    columns = []
    for i in range(len(flat)):
        step = torch.zeros_like(flat)
        step[i] = h
        plus, minus = residuals_at(flat + step), residuals_at(flat - step)
        columns.append({t: (plus[t] - minus[t]) / (2 * h) for t in plus})
    residuals_at(flat)
    for term, trace in traces.items():
        jacobian = torch.stack([c[term] for c in columns], dim=1)   # (N·k, p)
        expected = float(jacobian.square().sum(1).mean())
        assert float(trace) == pytest.approx(expected, rel=1e-6)


def test_ntk_balancing_updates_from_the_traces_of_its_points():
    trainer = build_trainer(_config("ntk", ["train.balancing.points=6",
                                            "train.balancing.ema=0.0"]))
    few = {t: p[:6].detach().requires_grad_(True) for t, p in trainer.batch.items()}
    traces = {t: float(v) for t, v in
              ntk_traces(trainer.problem.residuals(trainer.model, few), trainer.parameters).items()}
    trainer.adam_step()
    total = sum(traces.values())
    for t, trace in traces.items():
        assert trainer.weights[t] == pytest.approx(total / trace, rel=1e-10)


def test_balanced_run_resumes_exactly_and_the_diagnosis_reads_the_weights(tmp_path):
    extra = ["train.balancing.every=5", "monitor.enabled=true", "monitor.every=2"]
    full = pinnsketch.train(_config("grad_norm", extra + ["train.adam_steps=20"]),
                            out=tmp_path / "a")
    pinnsketch.train(_config("grad_norm", extra + ["train.adam_steps=10"]), out=tmp_path / "b")
    part = pinnsketch.train(_config("grad_norm", extra + ["train.adam_steps=20"]),
                            resume=tmp_path / "b")
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        assert torch.equal(p, q)
    final = full.metrics[-1]["loss_weights"]
    assert final == part.metrics[-1]["loss_weights"]
    assert any(abs(w - 1.0) > 1e-3 for w in final.values())  # they moved
    data = json.loads((tmp_path / "a" / "diagnosis.json").read_text())
    assert data["monitor"]["checks"]["adam"] == 10
    # The diagnosis judged with the weights of the last check (step 18, under the update at
    # step 15), not train.weights (all 1): the final ones.
    for t, w in data["monitor"]["weights"].items():
        assert w == pytest.approx(final[t], rel=1e-6) and abs(w - 1.0) > 1e-3


def test_the_weights_are_fixed_after_adam():
    trainer = build_trainer(_config("grad_norm", ["train.balancing.every=1"]))
    for _ in range(3):
        trainer.adam_step()
    frozen = dict(trainer.weights)
    trainer.lbfgs_chunk(3)
    assert trainer.weights == frozen


def test_balancer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scheme 'nope'"):
        LossBalancer("nope", 1, 0.9, {"pde": 1.0})
    with pytest.raises(pinnsketch.ConfigError, match="train.balancing.scheme"):
        _config("softmax")
