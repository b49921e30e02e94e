"""The gradient monitor's cost per phase, its memory against the exact EMA state, and the
accuracy of its sketched statistics on real PINN gradients.

1. Cost per phase (``--cost [--width 20]``): soft-constrained Burgers (three terms pde, bc,
   ic; width×4 tanh, float64, 2000 + 200 + 200 fixed points, one thread; SSBroyden2 only up
   to width 64). Three trainers start from the same
   weights — no monitor, a check every step (every evaluation after Adam), a check every 16th
   — and take interleaved blocks (order rotating) of 32 Adam steps, then, after 200 shared
   Adam steps, of 16 iterations of L-BFGS and of SSBroyden2. Per repeat the ratio of the
   monitored block's time per iteration to the unmonitored one's, then the median over
   repeats.
2. Memory (``--memory``): ``SketchMonitor.memory()`` for 2 → width×4 → 1 networks at widths
   20, 64, 256 (three terms, rank 4, history 128): the EMA state as kept (auto: exact or
   sketch per layer), the shared test matrices, against the exact EMA state; secondary,
   labelled: every per-term gradient of 500 steps.
3. Accuracy (``--accuracy``): at widths 64 and 256 (depth 4) a real soft-Burgers run (300 Adam
   steps, then 100 L-BFGS iterations; 1000 + 100 + 100 points) hands every check to an
   ``auto`` monitor and an exact twin. For the sketched layers, per spectral evaluation: the
   relative error of ‖Ḡ‖_F and of σ₁, the largest error of σ₁…σ_r relative to σ₁, the
   absolute errors of the effective rank, drift, angles between terms and SNR, and the
   angle between the sketch's and the exact leading rank-r subspaces and leading singular
   directions; median and worst, per phase.

4. Adaptive rank (``--adaptive``): the same width-256 run with ``monitor.rank_tolerance``
   τ ∈ {0.05, 0.1, 0.2} (rank 4 ≤ r ≤ 16, patience 3) beside an exact twin: per spectral
   evaluation the 256×256 layers' sketch rank, the probes' estimate of the worst stream's
   ‖Ḡ − Â_r‖/‖Ḡ‖ against its true value (the twin's Ḡ against the rank-r truncation of the
   sketch's reading) and against the optimum τ_{r+1}(Ḡ)/‖Ḡ‖, and the banks' bytes against
   the fixed rank-4 sketch and the exact EMA state.

    python benchmarks/monitor.py [--cost [--width 256]] [--memory] [--accuracy] [--adaptive]
                                  [--repeats 9]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import pinnsketch
from pinnsketch.monitor import SketchMonitor
from pinnsketch.monitor.statistics import largest_angle
from pinnsketch.training.build import build_model
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
SOFT = ["model.hard_constraints=false", "model.depth=4", "train.dtype=float64",
        "sampling.resample_every=0", "sampling.lbfgs_resample_every=0", "sampling.adaptive=none",
        "output.progress=false"]


def make_trainer(overrides: list[str], monitor_every: int | None, *, method: str = "lbfgs",
                 backend: str = "auto", history: int = 128, monitor_factory=None) -> Trainer:
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    SOFT + overrides + [f"train.quasi_newton={method}"])
    problem = pinnsketch.load_problem(config)
    torch.manual_seed(0)
    model = build_model(config, problem).double()
    terms = problem.physics_terms(False)
    monitor = None
    if monitor_factory is not None:
        monitor = monitor_factory(model, terms)
    elif monitor_every:
        monitor = SketchMonitor.for_module(model, terms, every=monitor_every,
                                           quasi_newton_every=monitor_every, backend=backend,
                                           history=history)
    return Trainer(problem, model, train=config.train, sampling=config.sampling, terms=terms,
                   observations=None, device=torch.device("cpu"), dtype=torch.float64,
                   monitor=monitor)


# -- 1. cost per phase ------------------------------------------------------------------------
def _adam_block(trainer: Trainer, n: int) -> tuple[float, int]:
    tic = time.perf_counter()
    for _ in range(n):
        trainer.adam_step()
    return time.perf_counter() - tic, n


def _chunk_block(trainer: Trainer, n: int) -> tuple[float, int]:
    before = trainer.lbfgs_done
    tic = time.perf_counter()
    trainer.lbfgs_chunk(n)
    return time.perf_counter() - tic, max(trainer.lbfgs_done - before, 1)


def cost(repeats: int, width: int = 20) -> dict:
    points = [f"model.width={width}", "sampling.interior=2000", "sampling.boundary=200",
              "sampling.initial=200"]
    cadences = {"none": None, "every 1": 1, "every 16": 16}
    results = {}
    phases = (("adam", "lbfgs"), ("lbfgs", "lbfgs"))
    if width <= 64:  # a dense inverse Hessian of a wider network does not fit
        phases += (("ssbroyden2", "ssbroyden2"),)
    for phase, method in phases:
        trainers = {k: make_trainer(points, v, method=method) for k, v in cadences.items()}
        if phase == "adam":
            block, size = _adam_block, 32
            for t in trainers.values():
                _adam_block(t, 8)
        else:
            block, size = _chunk_block, 16
            for t in trainers.values():
                _adam_block(t, 200)
                _chunk_block(t, 4)
        names = list(trainers)
        per_iteration = {k: [] for k in names}
        ratios = {k: [] for k in names[1:]}
        for rep in range(repeats):
            order = names[rep % len(names):] + names[:rep % len(names)]
            times = {}
            for k in order:
                seconds, done = block(trainers[k], size)
                times[k] = seconds / done
            for k in names:
                per_iteration[k].append(1e3 * times[k])
            for k in ratios:
                ratios[k].append(times[k] / times["none"])
        results[phase] = {"ms": {k: statistics.median(v) for k, v in per_iteration.items()},
                          "ratio": {k: statistics.median(v) for k, v in ratios.items()},
                          "checks": trainers["every 1"].monitor.checks_by_phase}
        r = results[phase]
        print(f"{phase}: ms/iteration none {r['ms']['none']:.2f}; every check "
              f"{r['ratio']['every 1']:.3f}x, every 16th {r['ratio']['every 16']:.3f}x "
              f"(median of {repeats}); checks {r['checks']}", flush=True)
    return results


# -- 2. memory ---------------------------------------------------------------------------------
def memory(widths=(20, 64, 256), depth: int = 4, steps: int = 500) -> dict:
    out = {}
    for width in widths:
        layers = {f"layer{i}": shape for i, shape in enumerate(
            [(width, 2)] + [(width, width)] * (depth - 1) + [(1, width)])}
        monitor = SketchMonitor(layers, ("pde", "bc", "ic"), rank=4, history=128)
        mem = monitor.memory()
        every_gradient = steps * mem["exact_state"] * 2  # float64 gradients, every step
        out[width] = mem | {"every_gradient_500_steps": every_gradient}
        kinds = ", ".join(f"{k}:{v['bank']}" for k, v in mem["layers"].items())
        print(f"width {width}: EMA state {mem['banks']} B + test matrices {mem['tests']} B vs "
              f"exact {mem['exact_state']} B = {mem['banks'] / mem['exact_state']:.3f} "
              f"({(mem['banks'] + mem['tests']) / mem['exact_state']:.3f} with tests); total "
              f"{mem['total']} B (history {mem['history']}); [{kinds}]", flush=True)
    return out


# -- 3. accuracy -------------------------------------------------------------------------------
class Twins:
    """An ``auto`` monitor and its exact twin, fed the same checks; at every spectral
    evaluation the sketched layers' read-outs are compared."""

    def __init__(self, model, terms, history: int = 1024):
        self.auto = SketchMonitor.for_module(model, terms, every=1, quasi_newton_every=1,
                                             history=history)
        self.exact = SketchMonitor.for_module(model, terms, every=1, quasi_newton_every=1,
                                              backend="exact", history=history)
        self.every, self.quasi_newton_every = 1, 1
        self.sketched = [ly for ly in self.auto.layers if self.auto.bank_kind(ly) != "exact"]
        self.rows: list[dict] = []

    def observe(self, step, losses, grads, phase="adam", weights=None):
        self.auto.observe(step, losses, grads, phase, weights)
        self.exact.observe(step, losses, grads, phase, weights)
        if (self.auto.checks - 1) % self.auto.spectral_every:
            return
        r = self.auto.rank
        for ly in self.sketched:
            for t in self.auto.terms:
                got = self.auto.ema_spectrum(ly, t).double()
                want = self.exact.ema_spectrum(ly, t).double()
                subspaces = [(a.double(), b.double()) for a, b in zip(
                    self.auto.leading_subspaces(ly, t), self.exact.leading_subspaces(ly, t))]
                angle = max(float(largest_angle(a, b)) for a, b in subspaces)
                direction = max(float(largest_angle(a[:, :1], b[:, :1])) for a, b in subspaces)
                self.rows.append({"phase": phase, "check": self.auto.checks - 1, "layer": ly,
                                  "term": t, "sigma1": abs(float(got[0] / want[0]) - 1),
                                  "sigma_r": float((got[:r] - want[:r]).abs().max() / want[0]),
                                  "leading_subspace_deg": angle,
                                  "leading_direction_deg": direction})

    def state_dict(self):
        return {}

    def metrics(self):
        return {}


def train_twins(overrides: list[str], make, adam: int, lbfgs: int):
    """A trainer whose monitor is ``make(model, terms)`` (twin monitors), ``adam`` Adam steps
    then ``lbfgs`` L-BFGS iterations; returns the twins and the seconds taken."""
    holder = {}

    def factory(model, terms):
        holder["twins"] = make(model, terms)
        return holder["twins"]

    trainer = make_trainer(overrides, None, monitor_factory=factory)
    tic = time.perf_counter()
    for _ in range(adam):
        trainer.adam_step()
    trainer.lbfgs_chunk(lbfgs)
    return holder["twins"], time.perf_counter() - tic


def accuracy(widths=(64, 256), adam: int = 300, lbfgs: int = 100) -> dict:
    out = {}
    for width in widths:
        points = [f"model.width={width}", "sampling.interior=1000", "sampling.boundary=100",
                  "sampling.initial=100", f"train.eval_every={lbfgs}"]
        twins, seconds = train_twins(points, Twins, adam, lbfgs)
        rows = twins.rows
        auto, exact = twins.auto.history_view(), twins.exact.history_view()
        assert auto.stride == 1
        evaluations = np.arange(0, twins.auto.checks, twins.auto.spectral_every)
        phase_of = np.where(evaluations < adam, "adam", "lbfgs")
        for ly in twins.sketched:
            keys = [(s, t) for s in ("ema_norm", "erank", "snr", "drift") for t in auto.terms]
            keys += [("subspace_angle", p) for p in auto.pairs]
            for stat, key in keys:
                got = auto.series(stat, ly, key)[evaluations]
                want = exact.series(stat, ly, key)[evaluations]
                errors = np.abs(got / want - 1) if stat == "ema_norm" else np.abs(got - want)
                for e, ph, c in zip(errors, phase_of, evaluations):
                    if np.isfinite(e):
                        rows.append({"phase": str(ph), "check": int(c), "layer": ly,
                                     "term": key, stat: float(e)})
        table = {}
        for phase in ("adam", "lbfgs"):
            for stat in ("ema_norm", "sigma1", "sigma_r", "erank", "snr", "drift",
                         "subspace_angle", "leading_subspace_deg", "leading_direction_deg"):
                values = [r[stat] for r in rows if r["phase"] == phase and stat in r]
                if values:
                    table[phase, stat] = (float(np.median(values)), float(np.max(values)),
                                          len(values))
        out[width] = {"table": table, "sketched": twins.sketched,
                      "checks": dict(twins.auto.checks_by_phase),
                      "seconds": seconds}
        print(f"\nwidth {width}: sketched layers {twins.sketched}, checks "
              f"{twins.auto.checks_by_phase}, {out[width]['seconds']:.0f} s")
        print("| phase | statistic | median error | worst error | evaluations |")
        print("|---|---|---|---|---|")
        for (phase, stat), (median, worst, n) in table.items():
            print(f"| {phase} | {stat} | {median:.2e} | {worst:.2e} | {n} |", flush=True)
    return out


class AdaptiveTwins:
    """An adaptive-rank monitor (sketches on the 256×256 layers) and its exact twin."""

    def __init__(self, model, terms, tolerance: float):
        self.adaptive = SketchMonitor.for_module(model, terms, every=1, quasi_newton_every=1,
                                                 rank_tolerance=tolerance, max_rank=16)
        self.exact = SketchMonitor.for_module(model, terms, every=1, quasi_newton_every=1,
                                              backend="exact")
        self.every = self.quasi_newton_every = 1
        self.square = [ly for ly in self.adaptive.layers
                       if self.adaptive.bank_kind(ly) != "exact"
                       and self.adaptive.layers[ly][0] == self.adaptive.layers[ly][1]]
        self.rows: list[dict] = []

    def observe(self, step, losses, grads, phase="adam", weights=None):
        self.adaptive.observe(step, losses, grads, phase, weights)
        self.exact.observe(step, losses, grads, phase, weights)
        if (self.adaptive.checks - 1) % self.adaptive.spectral_every:
            return
        metrics = self.adaptive.metrics()
        (shape, rank), = metrics["monitor_rank"].items()
        truth, optimum = [], []
        for ly in self.square:
            for t in self.adaptive.terms:
                want = self.exact.ema_gradient(ly, t).double()
                u, sigma, vh = torch.linalg.svd(self.adaptive.ema_gradient(ly, t).double())
                reading = (u[:, :rank] * sigma[:rank]) @ vh[:rank]
                norm = torch.linalg.matrix_norm(want)
                truth.append(float(torch.linalg.matrix_norm(want - reading) / norm))
                best = torch.linalg.svdvals(want)
                optimum.append(float(best[rank:].square().sum().sqrt() / norm))
        banks = self.adaptive.memory()
        self.rows.append({"phase": phase, "check": self.adaptive.checks - 1, "rank": rank,
                          "estimate": metrics["monitor_rank_error"][shape],
                          "true": max(truth), "optimum": max(optimum),
                          "bank_bytes": banks["banks"] + banks["tests"],
                          "exact_bytes": banks["exact_state"]})

    def state_dict(self):
        return {}

    def metrics(self):
        return {}


def adaptive(width: int = 256, tolerances=(0.05, 0.1, 0.2), adam: int = 300,
             lbfgs: int = 100) -> dict:
    out = {}
    points = [f"model.width={width}", "sampling.interior=1000", "sampling.boundary=100",
              "sampling.initial=100", f"train.eval_every={lbfgs}"]
    for tolerance in tolerances:
        twins, seconds = train_twins(
            points, lambda model, terms: AdaptiveTwins(model, terms, tolerance), adam, lbfgs)
        rows = twins.rows
        ranks = [r["rank"] for r in rows]
        fixed = SketchMonitor(twins.adaptive.layers, twins.adaptive.terms).memory()
        out[tolerance] = {"rows": rows, "seconds": seconds}
        print(f"\nτ = {tolerance}: {len(rows)} spectral evaluations, "
              f"{out[tolerance]['seconds']:.0f} s; ranks (every 10th evaluation): "
              f"{ranks[::10]}, final {ranks[-1]}")
        print("| phase | rank min–max | true error median / worst | optimum median | "
              "estimate / true median (min–max) | bytes / fixed rank 4 | bytes / exact |")
        print("|---|---|---|---|---|---|---|")
        for phase in ("adam", "lbfgs"):
            mine = [r for r in rows if r["phase"] == phase]
            if not mine:
                continue
            ratio = [r["estimate"] / r["true"] for r in mine if r["true"] > 0
                     and np.isfinite(r["estimate"])]
            size = [r["bank_bytes"] for r in mine]
            print(f"| {phase} | {min(r['rank'] for r in mine)}–{max(r['rank'] for r in mine)}"
                  f" | {np.median([r['true'] for r in mine]):.3f} / "
                  f"{max(r['true'] for r in mine):.3f} | "
                  f"{np.median([r['optimum'] for r in mine]):.3f} | "
                  f"{np.median(ratio):.2f} ({min(ratio):.2f}–{max(ratio):.2f}) | "
                  f"{np.median(size) / (fixed['banks'] + fixed['tests']):.2f} | "
                  f"{np.median(size) / mine[0]['exact_bytes']:.3f} |", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--adaptive", action="store_true")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--width", type=int, default=20, help="--cost: the network's width")
    args = parser.parse_args()
    everything = not (args.cost or args.memory or args.accuracy or args.adaptive)
    torch.set_num_threads(1)
    if args.memory or everything:
        memory()
    if args.cost or everything:
        cost(args.repeats, args.width)
    if args.accuracy or everything:
        accuracy()
    if args.adaptive or everything:
        adaptive()


if __name__ == "__main__":
    main()
