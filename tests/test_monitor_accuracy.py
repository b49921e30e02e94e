"""The monitor's sketch on real PINN gradients, against the exact EMA gradient.

At width 64 ``backend="auto"`` sketches the 64×64 hidden layers and keeps the small input and
output layers exactly. Over a real training run (soft-constrained Burgers, three terms, Adam
then L-BFGS, every phase observed) the exact EMA Ḡ is recomputed in float64 NumPy from the
recorded gradients, and at every spectral evaluation the sketch's estimate Â is held to:

- Tropp, Yurtsever, Udell & Cevher 2019, Theorem 5.1: E‖Ḡ − Â‖²_F ≤ (1 + f(k, s)) ·
  min_{ρ < k−1} (1 + f(ρ, k)) τ²_{ρ+1}(Ḡ), f(a, b) = a/(b − a − 1), τ² the tail energy. It
  bounds an expectation over the test matrices; by Markov's inequality a single draw exceeds
  ten times it with probability at most 1/10 per evaluation.
- Mirsky: the singular values the monitor reports move by at most ‖Ḡ − Â‖_F.
- Wedin: the leading subspaces it reports are within arcsin(‖Ḡ − Â‖₂ / (σ̂_r − σ_{r+1}))
  of Ḡ's; so, by the triangle inequality for the largest principal angle, its drift and the
  angles between terms are within the sum of the two subspaces' bounds of the exact ones.

The statistics built from these (EMA norm, effective rank, drift, angles, SNR) are compared
with an exact twin monitor; their measured errors at widths 64 and 256 are in
``notes/monitor.md`` (``python benchmarks/monitor.py --accuracy``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from pinnsketch.monitor import SketchMonitor
from pinnsketch.sketch.three_sketch import sketch_sizes
from pinnsketch.training.build import build_model
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
WIDTH, RANK = 64, 4
# float32 banks: relative round-off of a reconstruction from float32 sketches.
FLOAT32_FLOOR = 1e-4
MARKOV = 10.0
# float32 subspaces: arcsin of round-off-sized distances, in degrees.
ANGLE_ROUNDOFF_DEG = 0.05


class Twins:
    """Hands every check to a monitor under test and an exact twin, and records the
    gradients of ``layer`` (the independent reference)."""

    def __init__(self, monitor: SketchMonitor, exact: SketchMonitor, layer: str):
        self.monitor, self.exact, self.layer = monitor, exact, layer
        self.every, self.quasi_newton_every = monitor.every, monitor.quasi_newton_every
        self.record: list[dict[str, np.ndarray]] = []
        self.estimates: list[dict] = []

    def observe(self, step, losses, grads, phase="adam", weights=None):
        self.monitor.observe(step, losses, grads, phase, weights)
        self.exact.observe(step, losses, grads, phase, weights)
        self.record.append({t: g[self.layer].double().numpy().copy() for t, g in grads.items()})
        if (self.monitor.checks - 1) % self.monitor.spectral_every == 0:
            self.estimates.append({
                t: (self.monitor.ema_gradient(self.layer, t).double().numpy(),
                    self.monitor.ema_spectrum(self.layer, t).double().numpy(),
                    [x.double().numpy() for x in self.monitor.leading_subspaces(self.layer, t)])
                for t in self.monitor.terms})

    def state_dict(self):
        return {}


def _tropp_bound(sigma: np.ndarray, k: int, s: int) -> float:
    tail = np.concatenate([np.cumsum((sigma ** 2)[::-1])[::-1], [0.0]])  # tail[j] = Σ_{i≥j} σ²
    f = lambda a, b: a / (b - a - 1)
    return (1 + f(k, s)) * min((1 + f(rho, k)) * tail[rho] for rho in range(k - 1))


@pytest.fixture(scope="module")
def run():
    overrides = ["model.hard_constraints=false", "model.width=64", "model.depth=2",
                 "train.dtype=float64", "sampling.interior=512", "sampling.boundary=64",
                 "sampling.initial=64", "sampling.resample_every=0", "sampling.adaptive=none",
                 "train.quasi_newton=lbfgs", "train.eval_every=40", "output.progress=false"]
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", overrides)
    problem = pinnsketch.load_problem(config)
    torch.manual_seed(0)
    model = build_model(config, problem).double()
    terms = problem.physics_terms(False)
    make = lambda backend: SketchMonitor.for_module(model, terms, rank=RANK, every=2,
                                                    quasi_newton_every=2, backend=backend)
    twins = Twins(make("auto"), make("exact"), "layer1")
    trainer = Trainer(problem, model, train=config.train, sampling=config.sampling,
                      terms=terms, observations=None, device=torch.device("cpu"),
                      dtype=torch.float64, monitor=twins)
    torch.set_num_threads(1)
    for _ in range(120):
        trainer.adam_step()
    trainer.lbfgs_chunk(40)
    return twins


def test_auto_sketches_only_the_wide_layers(run):
    kinds = {ly: run.monitor.bank_kind(ly) for ly in run.monitor.layers}
    assert kinds == {"layer0": "exact", "layer1": "three_sketch", "layer2": "exact"}
    phases = run.monitor.checks_by_phase
    assert phases["adam"] == 60 and phases["lbfgs"] >= 20  # both phases observed


def test_sketch_error_within_tropp_bound_and_statistics_within_perturbation_bounds(run):
    k, s = sketch_sizes(RANK, "rol", (WIDTH, WIDTH))
    beta, every = run.monitor.beta, run.monitor.spectral_every
    sketched, twin = run.monitor.history_view(), run.exact.history_view()
    assert sketched.stride == 1  # one history row per check
    ema = {t: np.zeros((WIDTH, WIDTH)) for t in run.monitor.terms}
    evaluation, ratios, bounded = 0, [], 0
    wedin: dict[str, float | None] = {}
    previous: dict[str, float | None] = {}
    for c, grads in enumerate(run.record):
        for t in ema:
            ema[t] = beta * ema[t] + (1 - beta) * grads[t]
        if c % every:
            continue
        for t, (estimate, sigma_hat, (left, right)) in run.estimates[evaluation].items():
            exact = ema[t] / (1 - beta ** (c + 1))
            u, sigma, vt = np.linalg.svd(exact)
            error = exact - estimate
            fro, spectral = np.linalg.norm(error), np.linalg.norm(error, 2)
            floor = FLOAT32_FLOOR * sigma[0]
            bound = _tropp_bound(sigma, k, s)
            ratios.append(fro ** 2 / bound)
            assert fro ** 2 <= MARKOV * bound + floor ** 2, (c, t)
            # The recorded EMA norms are those of Â (sketch) and of Ḡ (exact twin), so the
            # statistic's error is at most ‖Ḡ − Â‖_F (triangle inequality).
            assert sketched.series("ema_norm", "layer1", t)[c] == pytest.approx(
                np.linalg.norm(estimate), rel=1e-5)
            assert twin.series("ema_norm", "layer1", t)[c] == pytest.approx(
                np.linalg.norm(exact), rel=1e-5)
            p = sigma[:RANK] ** 2 / (sigma[:RANK] ** 2).sum()
            assert twin.series("erank", "layer1", t)[c] == pytest.approx(
                math.exp(-(p * np.log(p)).sum()), rel=1e-5)
            # Mirsky: singular values within the error's Frobenius norm.
            assert np.linalg.norm(sigma_hat[:k] - sigma[:k]) <= fro + floor, (c, t)
            # Wedin: leading subspaces within the error over the gap.
            gap = sigma_hat[RANK - 1] - sigma[RANK]
            wedin[t] = None
            if gap > 2 * spectral:
                sine = max(np.linalg.norm(left - u[:, :RANK] @ (u[:, :RANK].T @ left), 2),
                           np.linalg.norm(right - vt[:RANK].T @ (vt[:RANK] @ right), 2))
                assert sine <= spectral / gap + FLOAT32_FLOOR, (c, t)
                wedin[t] = math.degrees(math.asin(min(1.0, spectral / gap + FLOAT32_FLOOR)))
        # The largest principal angle is a metric on subspaces, so a drift or an angle
        # between two terms read from sketches is off by at most the two subspaces' errors.
        for t in ema:
            if previous and wedin[t] is not None and previous[t] is not None:
                error = abs(sketched.series("drift", "layer1", t)[c]
                            - twin.series("drift", "layer1", t)[c])
                assert error <= wedin[t] + previous[t] + ANGLE_ROUNDOFF_DEG, (c, t)
                bounded += 1
        for pair in sketched.pairs:
            a, b = pair.split("|")
            if wedin[a] is not None and wedin[b] is not None:
                error = abs(sketched.series("subspace_angle", "layer1", pair)[c]
                            - twin.series("subspace_angle", "layer1", pair)[c])
                assert error <= wedin[a] + wedin[b] + ANGLE_ROUNDOFF_DEG, (c, pair)
                bounded += 1
        previous = dict(wedin)
        evaluation += 1
    assert bounded >= 40  # the angle bounds applied, not skipped
    assert evaluation == len(run.estimates) >= 10
    # On these gradients the sketch does far better than its worst-case expectation.
    assert np.median(ratios) < 1.0


# Worst errors at width 64 stated in notes/monitor.md, measured on another run
# (benchmarks/monitor.py --accuracy: 1000 points, 300 Adam steps + 100 L-BFGS iterations):
# this run (512 points, 120 + 40) is held out from that measurement.
STATED_WORST = {"ema_norm": 1.73e-3, "snr": 1.70e-3, "erank": 3.86e-3}


def test_stated_errors_hold_on_a_held_out_run(run):
    sketched, exact = run.monitor.history_view(), run.exact.history_view()
    for stat, worst in STATED_WORST.items():
        for t in run.monitor.terms:
            got, want = sketched.series(stat, "layer1", t), exact.series(stat, "layer1", t)
            error = np.abs(got / want - 1) if stat == "ema_norm" else np.abs(got - want)
            assert np.nanmax(error) <= worst, (stat, t)


def test_statistic_ranges_and_exact_layers(run):
    sketched, exact = run.monitor.history_view(), run.exact.history_view()
    for t in run.monitor.terms:
        snr = sketched.series("snr", "layer1", t)
        assert np.all((snr >= 0) & (snr <= 1))
        erank = sketched.series("erank", "layer1", t)
        assert np.all((erank >= 1 - 1e-6) & (erank <= RANK + 1e-6))
    for ly in ("layer0", "layer2"):  # exact layers: the twin's numbers, to float32 round-off
        for stat in ("ema_norm", "erank", "snr"):
            for t in run.monitor.terms:
                np.testing.assert_allclose(sketched.series(stat, ly, t),
                                           exact.series(stat, ly, t), rtol=1e-6)
