"""DeepXDE's own published examples, trained on pinnsketch's problems (optional benchmark).

DeepXDE is never a dependency of pinnsketch: run this script with a Python that has
DeepXDE, e.g. a virtual environment of its own (torch first, pinned to the CPU build, so
that pip does not pull a CUDA build):

    python -m venv /work/dde-venv && . /work/dde-venv/bin/activate
    pip install torch==2.13.0 && pip install deepxde && pip install -e /work/main
    DDE_BACKEND=pytorch OMP_NUM_THREADS=1 python benchmarks/deepxde_side_by_side.py \\
        --problems burgers poisson heat allen_cahn helmholtz2d kovasznay --seeds 0 \\
        --out runs/deepxde

Each case follows one script of DeepXDE's ``examples/pinn_forward/`` (the file and commit
are in ``CASES``): its network, initialiser, point counts and sampling, Adam learning rate
and steps, then L-BFGS with DeepXDE's default options where the example has it, float32.
The PDE, domain, boundary/initial data and reference are pinnsketch's (the problem class
built from ``problems/NAME.yaml``), so both libraries solve the same problem:

- burgers     ``Burgers.py``: the same problem (viscous Burgers, ν = 0.01/π).
- poisson     ``Poisson_Lshape.py`` (the 2-D Dirichlet Poisson example) on pinnsketch's
              −Δu = 2π² sin πx sin πy, unit square, u = 0 on the boundary.
- heat        ``heat.py`` on pinnsketch's heat (α = 0.05, three sine modes).
- allen_cahn  ``Allen_Cahn.py`` on pinnsketch's Allen–Cahn (ε = 1e-4, periodic).
- helmholtz2d ``Helmholtz_Dirichlet_2d.py`` on pinnsketch's Helmholtz (k = 1,
              u = sin πx sin 4πy on [−1, 1]²).
- kovasznay   ``Kovasznay_flow.py``: the same flow (Re = 20), pinnsketch's boundary data.

Each case's comment lists every deviation from its example. Budgets are the examples' own
except Kovasznay's (4000 Adam steps and at most 6000 L-BFGS iterations for 30000 and
15000: the example's takes ~75 minutes on one thread here); ``--adam-steps`` and
``--lbfgs-steps`` override them, and every row records what it ran. Each seed is set by
``dde.config.set_random_seed`` before the points are drawn and the net initialised;
torch runs on ``--threads`` threads (default 1). The rel L2 error is taken on
the problem's ``evaluation_grid()`` against its ``reference``, as pinnsketch reports it;
for Kovasznay it is ‖pred − ref‖_F / ‖ref‖_F over (u, v, p), with each output's as well.
Writes ``OUT/deepxde.json`` and ``OUT/deepxde.md``; rows already in ``OUT/deepxde.json``
with the same problem, seed and budget are kept, not retrained.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("DDE_BACKEND", "pytorch")
try:
    import deepxde as dde
    import torch
except ImportError:  # reported by main(), so that --help works without DeepXDE
    dde = None

import pinnsketch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = "https://github.com/lululxvi/deepxde/blob/{commit}/examples/pinn_forward/{file}"
MISSING = "this benchmark needs DeepXDE: pip install deepxde (see the docstring)"


@dataclass(frozen=True)
class Case:
    """One DeepXDE example set on a pinnsketch problem.

    Attributes:
        example: the example's file name in ``examples/pinn_forward/``.
        commit: the commit of that file read (its last change in lululxvi/deepxde).
        build: ``problem -> (data, net)`` with DeepXDE objects.
        lr: Adam learning rate of the example.
        example_adam_steps: Adam steps of the example.
        adam_steps: Adam steps run here (fewer only where the example's budget would take
            more than ~20 minutes on this machine).
        lbfgs: whether the example runs L-BFGS after Adam (DeepXDE's default options).
        deviations: the differences from the example, in short (in full: the comment
            above each case's builder).
        lbfgs_cap: L-BFGS iterations at most, where cut (None: DeepXDE's 15000).
        budget_note: why the budget was cut, with the measured cost per step.
    """

    example: str
    commit: str
    build: Callable
    lr: float
    example_adam_steps: int
    adam_steps: int
    lbfgs: bool
    deviations: str
    lbfgs_cap: int | None = None
    budget_note: str = ""


def on_boundary(_, on_boundary):  # DeepXDE's selector of every boundary point
    return on_boundary


def as_column(problem_function):
    """A pinnsketch data function (torch ``(N, d)`` → ``(N,)``) as DeepXDE's NumPy
    ``(N, d)`` → ``(N, 1)``."""
    return lambda x: problem_function(torch.from_numpy(np.asarray(x, np.float64))).numpy()[:, None]


def time_geometry(problem):
    """DeepXDE's space × time geometry of a 1-D evolution problem's domain."""
    domain = problem.domain
    space = dde.geometry.Interval(domain.space_lows[0], domain.space_highs[0])
    return dde.geometry.GeometryXTime(space, dde.geometry.TimeDomain(*domain.time))


def rectangle(problem):
    return dde.geometry.Rectangle(list(problem.domain.lows), list(problem.domain.highs))


# Burgers.py (lululxvi/deepxde 8275aeb6): 3×20 tanh, Glorot normal, 2540 domain + 80
# boundary + 160 initial points, soft BC and IC, Adam 15000 steps at lr 1e-3, then L-BFGS.
# Deviation: the time domain is pinnsketch's [0, 1], not the example's [0, 0.99] (the span
# of the evaluation grid, on which the error is taken in both).
def burgers(problem):
    geometry = time_geometry(problem)
    nu = problem.options.nu

    def pde(x, y):
        y_x = dde.grad.jacobian(y, x, i=0, j=0)
        y_t = dde.grad.jacobian(y, x, i=0, j=1)
        y_xx = dde.grad.hessian(y, x, i=0, j=0)
        return y_t + y * y_x - nu * y_xx

    conditions = [dde.icbc.DirichletBC(geometry, lambda x: 0, on_boundary),
                  dde.icbc.IC(geometry, as_column(problem.initial_value),
                              lambda _, on_initial: on_initial)]
    data = dde.data.TimePDE(geometry, pde, conditions, num_domain=2540, num_boundary=80,
                            num_initial=160)
    return data, dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")


# Poisson_Lshape.py (9d9d0b0f), the 2-D Dirichlet Poisson example: 4×50 tanh, Glorot
# uniform, 1200 domain + 120 boundary points, 1500 test points, soft BC, Adam 50000 steps
# at lr 1e-3, then L-BFGS. Deviation: pinnsketch's problem (unit square, f = 2π² sin sin,
# not the L-shape with f = 1). (Poisson_Dirichlet_1d.py is 1-D: 3×50, 16 points, Adam only.)
def poisson(problem):
    def pde(x, y):
        laplacian = dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1)
        return -laplacian - problem.source(x)[:, None]

    geometry = rectangle(problem)
    bc = dde.icbc.DirichletBC(geometry, lambda x: 0, on_boundary)
    data = dde.data.PDE(geometry, pde, bc, num_domain=1200, num_boundary=120, num_test=1500)
    return data, dde.nn.FNN([2] + [50] * 4 + [1], "tanh", "Glorot uniform")


# heat.py (8bc91414): 3×20 tanh, Glorot normal, 2540 domain + 80 boundary + 160 initial
# points, 2540 test points, soft BC and IC, Adam 20000 steps at lr 1e-3, then L-BFGS.
# Deviation: pinnsketch's problem (α = 0.05 and three modes, not α = 0.4 and one mode).
def heat(problem):
    geometry = time_geometry(problem)
    alpha = problem.options.alpha

    def pde(x, y):
        return dde.grad.jacobian(y, x, i=0, j=1) - alpha * dde.grad.hessian(y, x, i=0, j=0)

    conditions = [dde.icbc.DirichletBC(geometry, lambda x: 0, on_boundary),
                  dde.icbc.IC(geometry, as_column(problem.initial_value),
                              lambda _, on_initial: on_initial)]
    data = dde.data.TimePDE(geometry, pde, conditions, num_domain=2540, num_boundary=80,
                            num_initial=160, num_test=2540)
    return data, dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")


# Allen_Cahn.py (d1c4edb5): 3×20 tanh, Glorot normal, 8000 domain + 400 boundary + 800
# initial points, the IC as a hard constraint, Adam 40000 steps at lr 1e-3, then L-BFGS.
# Deviations: pinnsketch's problem, ε = 1e-4 (the example has d = 1e-3) and periodic in x.
# The example's transform x² cos πx + t (1 − x²) N also pins u(±1, t) = −1, which the
# periodic reference misses by up to 2.7e-3; here u = x² cos πx + t N keeps the hard IC and
# periodicity of u and u_x is two soft PeriodicBC terms on the example's 400 boundary points.
def allen_cahn(problem):
    geometry = time_geometry(problem)
    epsilon, gamma = problem.options.epsilon, problem.options.gamma

    def pde(x, y):
        y_t = dde.grad.jacobian(y, x, i=0, j=1)
        return y_t - epsilon * dde.grad.hessian(y, x, i=0, j=0) - gamma * (y - y ** 3)

    def transform(x, y):
        return problem.initial_value(x)[:, None] + x[:, 1:2] * y

    conditions = [dde.icbc.PeriodicBC(geometry, 0, on_boundary, derivative_order=order)
                  for order in (0, 1)]
    data = dde.data.TimePDE(geometry, pde, conditions, num_domain=8000, num_boundary=400,
                            num_initial=800)
    net = dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")
    net.apply_output_transform(transform)
    return data, net


# Helmholtz_Dirichlet_2d.py (862b67f6): 3×150 sin, Glorot uniform, hard constraint
# (a polynomial vanishing on the boundary times N), 10 Hammersley points per wavelength per
# axis for training and 30 for testing, Adam 5000 steps at lr 1e-3, no L-BFGS.
# Deviations: pinnsketch's problem (k = 1, u = sin πx sin 4πy on [−1, 1]², not k0 = 4π,
# sin 4πx sin 4πy on [0, 1]²), so the transform is (1 − x²)(1 − y²) N and the example's
# rule (side / (shortest wavelength / 10))² gives 40² = 1600 domain, 160 boundary and
# 120² = 14400 test points where the example's [0, 1]² has 400, 80 and 3600.
def helmholtz2d(problem):
    o = problem.options
    wavelength = 2.0 / max(o.a1, o.a2)
    side = problem.domain.highs[0] - problem.domain.lows[0]
    n_train, n_test = int(side / (wavelength / 10)), int(side / (wavelength / 30))

    def pde(x, y):
        laplacian = dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1)
        solution = torch.sin(o.a1 * math.pi * x[:, 0:1]) * torch.sin(o.a2 * math.pi * x[:, 1:2])
        source = (o.k ** 2 - (o.a1 ** 2 + o.a2 ** 2) * math.pi ** 2) * solution
        return laplacian + o.k ** 2 * y - source

    def transform(x, y):
        return (1 - x[:, 0:1] ** 2) * (1 - x[:, 1:2] ** 2) * y

    data = dde.data.PDE(rectangle(problem), pde, [], num_domain=n_train ** 2,
                        num_boundary=4 * n_train, num_test=n_test ** 2)
    net = dde.nn.FNN([2] + [150] * 3 + [1], "sin", "Glorot uniform")
    net.apply_output_transform(transform)
    return data, net


# Kovasznay_flow.py (8a644fe2): 4×50 tanh, Glorot normal, 2601 domain + 400 boundary
# points, soft Dirichlet BCs, Adam 30000 steps at lr 1e-3, then L-BFGS.
# Deviations: pinnsketch's boundary data, p on the whole boundary (the example gives p on
# the outflow x = 1 only; the same exact solution either way); 2601 test points (the
# training points) instead of 100000, since DeepXDE evaluates the test loss, with the
# second derivatives, every 1000 steps and the error here is taken on pinnsketch's grid.
def kovasznay(problem):
    reynolds = problem.options.reynolds

    def pde(x, y):
        u, v = y[:, 0:1], y[:, 1:2]
        u_x, u_y = dde.grad.jacobian(y, x, i=0, j=0), dde.grad.jacobian(y, x, i=0, j=1)
        v_x, v_y = dde.grad.jacobian(y, x, i=1, j=0), dde.grad.jacobian(y, x, i=1, j=1)
        p_x, p_y = dde.grad.jacobian(y, x, i=2, j=0), dde.grad.jacobian(y, x, i=2, j=1)
        u_lap = (dde.grad.hessian(y, x, component=0, i=0, j=0)
                 + dde.grad.hessian(y, x, component=0, i=1, j=1))
        v_lap = (dde.grad.hessian(y, x, component=1, i=0, j=0)
                 + dde.grad.hessian(y, x, component=1, i=1, j=1))
        return [u * u_x + v * u_y + p_x - u_lap / reynolds,
                u * v_x + v * v_y + p_y - v_lap / reynolds,
                u_x + v_y]

    geometry = rectangle(problem)
    def exact(i):  # one argument: DeepXDE passes auxiliary variables to a two-argument one
        return lambda x: problem.reference(np.asarray(x, np.float64))[:, i:i + 1]

    bcs = [dde.icbc.DirichletBC(geometry, exact(i), on_boundary, component=i) for i in range(3)]
    data = dde.data.PDE(geometry, pde, bcs, num_domain=2601, num_boundary=400)
    return data, dde.nn.FNN([2] + [50] * 4 + [3], "tanh", "Glorot normal")


CASES = {
    "burgers": Case("Burgers.py", "8275aeb6792709f51c9ebc3a7655cc0f20623c1c", burgers,
                    1e-3, 15000, 15000, True, "time domain [0, 1] (example: [0, 0.99])"),
    "poisson": Case("Poisson_Lshape.py", "9d9d0b0f7b3384887e36c7811248480d0bcc8aa6", poisson,
                    1e-3, 50000, 50000, True, "unit square, f = 2π² sin πx sin πy"),
    "heat": Case("heat.py", "8bc914143e813b8c4e0cd3856e8fe98df420aade", heat,
                 1e-3, 20000, 20000, True, "α = 0.05, three modes (example: 0.4, one)"),
    "allen_cahn": Case("Allen_Cahn.py", "d1c4edb5a0aa3d1de31e45e3098259ee91b255e7",
                       allen_cahn, 1e-3, 40000, 40000, True,
                       "ε = 1e-4, periodic BC soft (example: d = 1e-3, u(±1) = −1 hard)"),
    "helmholtz2d": Case("Helmholtz_Dirichlet_2d.py",
                        "862b67f671fcdb661a97feb0b087eba906137da9", helmholtz2d,
                        1e-3, 5000, 5000, False,
                        "k = 1, sin πx sin 4πy on [−1, 1]²; 1600 points by the example's rule"),
    "kovasznay": Case("Kovasznay_flow.py", "8a644fe265dc77f693853a76295d140c6b21fccc",
                      kovasznay, 1e-3, 30000, 4000, True,
                      "p data on the whole boundary; 2601 test points (example: 100000)",
                      lbfgs_cap=6000,
                      budget_note="the example's budget takes ~75 min here (0.10 s per Adam "
                                  "step, 0.11 s per L-BFGS iteration, seed 0)"),
}


def relative_errors(problem, model) -> dict[str, float]:
    """rel L2 on the problem's evaluation grid: ``rel_l2`` (Frobenius over all outputs) and,
    for a system, one entry per output."""
    points, _ = problem.evaluation_grid()
    reference = problem.reference(points).reshape(len(points), -1)
    prediction = model.predict(points.astype(np.float32)).astype(np.float64)
    prediction = prediction.reshape(reference.shape)
    errors = {"rel_l2": float(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))}
    if reference.shape[1] > 1:
        for i, name in enumerate(problem.compared_outputs):
            errors[f"rel_l2_{name}"] = float(np.linalg.norm(prediction[:, i] - reference[:, i])
                                             / np.linalg.norm(reference[:, i]))
    return errors


def set_lbfgs_cap(iterations: int) -> None:
    """Cap L-BFGS at ``iterations`` (15000 restores DeepXDE's defaults).

    ``set_LBFGS_options(maxiter=...)`` alone does not, on the pytorch backend: the
    iterations per torch.optim.LBFGS call (min(1000, maxiter)) are computed once, at
    import, so a cap under 1000 would still run 1000. As with DeepXDE's own cap, a call cut
    short by its evaluation budget (1.25 per iteration) is followed by another, so the last
    may pass the cap by fewer than 1000 iterations."""
    dde.optimizers.set_LBFGS_options(maxiter=iterations)
    options = dde.optimizers.config.LBFGS_options
    options["iter_per_step"] = min(1000, iterations)
    options["fun_per_step"] = options["maxfun"] * options["iter_per_step"] // iterations


def run_case(name: str, seed: int, adam_steps: int, lbfgs_steps: int | None) -> dict:
    """Train one case on one seed with ``adam_steps`` Adam steps and at most
    ``lbfgs_steps`` L-BFGS iterations (None: DeepXDE's default, 15000); returns its row
    (errors, steps, wall seconds, set-up)."""
    case = CASES[name]
    problem = pinnsketch.load_problem(ROOT / "problems" / f"{name}.yaml")
    dde.config.set_random_seed(seed)  # before the points are drawn and the net initialised
    data, net = case.build(problem)
    model = dde.Model(data, net)
    steps, walls = {}, {}
    start = time.perf_counter()
    model.compile("adam", lr=case.lr)
    model.train(iterations=adam_steps)
    steps["adam"], walls["adam"] = model.train_state.step, time.perf_counter() - start
    if case.lbfgs:
        set_lbfgs_cap(15000 if lbfgs_steps is None else lbfgs_steps)  # options are global
        start = time.perf_counter()
        model.compile("L-BFGS")
        model.train()
        steps["lbfgs"] = model.train_state.step - steps["adam"]
        walls["lbfgs"] = time.perf_counter() - start
    deviation = []
    if adam_steps != case.example_adam_steps:
        deviation.append(f"Adam {adam_steps} steps (example: {case.example_adam_steps})")
    if case.lbfgs and lbfgs_steps is not None:
        deviation.append(f"L-BFGS at most {lbfgs_steps} iterations (DeepXDE's default: 15000)")
    if deviation and case.budget_note and (adam_steps, lbfgs_steps) == (case.adam_steps,
                                                                        case.lbfgs_cap):
        deviation.append(case.budget_note)
    return {"problem": name, "seed": seed, **relative_errors(problem, model),
            "steps": steps, "wall_s": walls, "wall_s_total": sum(walls.values()),
            "threads": torch.get_num_threads(), "deepxde": dde.__version__,
            "torch": torch.__version__, "dtype": f"float{dde.config.real.precision}",
            "example": case.example, "example_url": EXAMPLES.format(commit=case.commit,
                                                                    file=case.example),
            "problem_differences": case.deviations, "deviation": "; ".join(deviation),
            "lbfgs_limit": lbfgs_steps if case.lbfgs else None,
            "machine": platform.platform()}


def markdown(rows: list[dict]) -> str:
    lines = [f"DeepXDE {rows[0]['deepxde']} (torch {rows[0]['torch']}, {rows[0]['dtype']}, "
             f"{rows[0]['threads']} thread), each example on pinnsketch's problem; rel L2 on "
             f"pinnsketch's evaluation grid (`benchmarks/deepxde_side_by_side.py`).", "",
             "| problem | seed | rel L2 | steps (Adam + L-BFGS) | wall s | example | "
             "problem set-up | deviation |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        error = f"{r['rel_l2']:.2e}"
        if "rel_l2_u" in r:
            error += " (u {rel_l2_u:.1e}, v {rel_l2_v:.1e}, p {rel_l2_p:.1e})".format(**r)
        steps = " + ".join(str(s) for s in r["steps"].values())
        lines.append(f"| {r['problem']} | {r['seed']} | {error} | {steps} | "
                     f"{r['wall_s_total']:.0f} | [{r['example']}]({r['example_url']}) | "
                     f"{r['problem_differences']} | {r['deviation'] or '-'} |")
    errors: dict[str, list[float]] = {}
    for r in rows:
        errors.setdefault(r["problem"], []).append(r["rel_l2"])
    lines += ["", "| problem | seeds | median rel L2 | worst |", "|---|---|---|---|"]
    lines += [f"| {name} | {len(e)} | {statistics.median(e):.2e} | {max(e):.2e} |"
              for name, e in errors.items()]
    return "\n".join(lines) + "\n"


def main(problems: list[str], seeds: list[int], out: Path, adam_steps: int | None,
         lbfgs_steps: int | None, threads: int) -> list[dict]:
    if dde is None:
        raise SystemExit(MISSING)
    if dde.backend.backend_name != "pytorch":
        raise SystemExit(f"run with DDE_BACKEND=pytorch (DeepXDE chose "
                         f"{dde.backend.backend_name!r})")
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "deepxde.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for name in problems:
        case = CASES[name]
        adam = adam_steps if adam_steps is not None else case.adam_steps
        lbfgs = lbfgs_steps if lbfgs_steps is not None else case.lbfgs_cap
        lbfgs = lbfgs if case.lbfgs else None
        for seed in seeds:
            key = (name, seed, adam, lbfgs)
            if any((r["problem"], r["seed"], r["steps"]["adam"], r["lbfgs_limit"]) == key
                   for r in rows):
                continue  # measured before with the same budget: kept, not retrained
            row = run_case(name, seed, adam, lbfgs)
            rows.append(row)
            path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
            (out / "deepxde.md").write_text(markdown(rows))
            print(f"{name} seed {seed}: rel L2 {row['rel_l2']:.3e}, steps {row['steps']}, "
                  f"{row['wall_s_total']:.0f} s", flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", type=Path, default=Path("runs/deepxde"))
    parser.add_argument("--adam-steps", type=int, default=None,
                        help="Adam steps of every case (default: each case's own)")
    parser.add_argument("--lbfgs-steps", type=int, default=None,
                        help="cap on L-BFGS iterations (default: each case's own, else "
                             "DeepXDE's 15000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    main(args.problems, args.seeds, args.out, args.adam_steps, args.lbfgs_steps, args.threads)
