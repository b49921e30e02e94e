"""Trainer Adam step vs a bare hand-written PyTorch loop of the same maths.

Burgers set-up of DeepXDE's example: 3 hidden layers × 20 tanh, 2540 interior + 80
boundary + 160 initial points, float32, soft constraints, no input normalisation. Blocks
of iterations of the two loops are interleaved (order alternating) so machine drift hits
both alike; the last line printed is the median ratio trainer / bare.

    python benchmarks/step_time.py [--repeats 15] [--block 50]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch

import pinnsketch
from pinnsketch.training.build import build_model
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
SETUP = ["model.width=20", "model.depth=3", "model.hard_constraints=false",
         "model.normalize_inputs=false", "sampling.interior=2540", "sampling.boundary=80",
         "sampling.initial=160", "sampling.resample_every=0", "train.dtype=float32",
         "train.lr=1e-3"]


def make_trainer(overrides: list[str] = ()) -> Trainer:
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", SETUP + list(overrides))
    problem = pinnsketch.load_problem(config)
    model = build_model(config, problem)
    return Trainer(problem, model, train=config.train, sampling=config.sampling,
                   terms=problem.physics_terms(False), observations=None,
                   device=torch.device("cpu"), dtype=torch.float32)


class BareLoop:
    """The same network, points and loss written out by hand with plain torch."""

    def __init__(self, trainer: Trainer):
        layers = [m for m in trainer.model.network.net]
        self.net = torch.nn.Sequential(*[type(m)() if not isinstance(m, torch.nn.Linear)
                                         else torch.nn.Linear(m.in_features, m.out_features)
                                         for m in layers])
        self.net.load_state_dict(trainer.model.network.net.state_dict())
        self.nu = trainer.problem.options.nu
        self.x_pde = trainer.batch["pde"].detach().clone().requires_grad_(True)
        self.x_bc = trainer.batch["bc"].detach().clone().requires_grad_(True)
        self.x_ic = trainer.batch["ic"].detach().clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=trainer.config.lr)

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        x = self.x_pde
        u = self.net(x).squeeze(-1)
        du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
        u_x, u_t = du[:, 0], du[:, 1]
        u_xx = torch.autograd.grad(u_x.sum(), x, create_graph=True)[0][:, 0]
        pde = (u_t + u * u_x - self.nu * u_xx).square().mean()
        bc = self.net(self.x_bc).squeeze(-1).square().mean()
        ic = (self.net(self.x_ic).squeeze(-1) + torch.sin(math.pi * self.x_ic[:, 0])).square().mean()
        (pde + bc + ic).backward()
        self.optimizer.step()


def _time_block(step, n: int) -> float:
    tic = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - tic


def main(repeats: int = 15, block: int = 50, warmup: int = 20) -> float:
    """Print per-repeat times and return the median ratio trainer / bare."""
    trainer = make_trainer()
    bare = BareLoop(trainer)
    _time_block(trainer.adam_step, warmup)
    _time_block(bare.step, warmup)
    ratios = []
    for rep in range(repeats):
        if rep % 2 == 0:
            ours, theirs = _time_block(trainer.adam_step, block), _time_block(bare.step, block)
        else:
            theirs, ours = _time_block(bare.step, block), _time_block(trainer.adam_step, block)
        ratios.append(ours / theirs)
        print(f"repeat {rep:2d}: trainer {1e3 * ours / block:.3f} ms/step, "
              f"bare {1e3 * theirs / block:.3f} ms/step, ratio {ratios[-1]:.3f}")
    median = statistics.median(ratios)
    print(f"threads {torch.get_num_threads()}, {repeats} repeats x {block} steps; "
          f"median ratio trainer/bare = {median:.3f}")
    return median


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--block", type=int, default=50)
    args = parser.parse_args()
    main(args.repeats, args.block)
