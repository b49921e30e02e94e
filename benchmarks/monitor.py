"""The gradient sketch monitor's cost: step-time overhead and memory.

1. Overhead, on the Burgers default config (problems/burgers.yaml: 9 Linear layers, 20 wide,
   2540 points, float64, hard constraints: one term, pde) and on the soft-constrained set-up
   of benchmarks/step_time.py (4 layers, three terms, float32). Trainers in one process
   start from the same weights: no monitor, a monitor every step, one every 16th step (and a
   fourth that takes the trainer's per-term gradient path every step but observes nothing:
   the trainer's share). Blocks of ``block`` Adam steps are interleaved (order rotating) so
   machine drift hits all alike; per repeat the ratio monitored / unmonitored, then the
   median over repeats. The
   collocation batch is fixed (``sampling.resample_every=0``): a RAD resample costs the same
   with or without the monitor but lands in some blocks and not others.
2. Memory: the monitor's bytes (its own count, and the storages of every tensor it holds)
   after 100 and after 2000 checks, Python heap growth (tracemalloc) in between, and — at 500
   epochs of the default Burgers run, every step monitored — the saving against keeping every
   per-step, per-term gradient matrix.

    python benchmarks/monitor.py [--repeats 11] [--block 32] [--skip-soft]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from pathlib import Path

import torch

import pinnsketch
from pinnsketch.config import DTYPES
from pinnsketch.training.build import build_model
from pinnsketch.monitor import SketchMonitor
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["sampling.resample_every=0"]
SOFT = ["model.width=20", "model.depth=3", "model.hard_constraints=false",
        "model.normalize_inputs=false", "sampling.interior=2540", "sampling.boundary=80",
        "sampling.initial=160", "sampling.resample_every=0", "sampling.adaptive=none",
        "train.dtype=float32"]


class NullMonitor:
    """Takes the trainer's per-term gradient path every step and does nothing with it: the
    trainer's share of the overhead (one autograd.grad per term instead of one backward)."""

    every = 1

    def observe(self, step, losses, grads):
        pass

    def state_dict(self):
        return {}


def make_trainer(overrides: list[str], every: int | None, history: int = 256,
                 null: bool = False) -> Trainer:
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", overrides)
    problem = pinnsketch.load_problem(config)
    dtype = DTYPES[config.train.dtype]
    model = build_model(config, problem).to(dtype)
    terms = problem.physics_terms(config.model.hard_constraints)
    monitor = (NullMonitor() if null else
               SketchMonitor.for_module(model, terms, rank=config.monitor.rank,
                                        beta=config.monitor.beta, every=every, history=history)
               if every else None)
    return Trainer(problem, model, train=config.train, sampling=config.sampling, terms=terms,
                   observations=None, device=torch.device("cpu"), dtype=dtype, monitor=monitor)


def _block(trainer: Trainer, n: int) -> float:
    tic = time.perf_counter()
    for _ in range(n):
        trainer.adam_step()
    return time.perf_counter() - tic


def overhead(name: str, overrides: list[str], repeats: int, block: int,
             warmup: int = 16) -> dict:
    """Median step-time ratios (every step, every 16th) against no monitor."""
    trainers = {"none": make_trainer(overrides, None), "every 1": make_trainer(overrides, 1),
                "every 16": make_trainer(overrides, 16),
                "per-term grads only": make_trainer(overrides, 1, null=True)}
    for trainer in trainers.values():
        _block(trainer, warmup)
    names = list(trainers)
    ratios = {k: [] for k in names[1:]}
    per_step = {k: [] for k in names}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]
        times = {k: _block(trainers[k], block) for k in order}
        for k in names:
            per_step[k].append(1e3 * times[k] / block)
        for k in ratios:
            ratios[k].append(times[k] / times["none"])
        print(f"  {name} repeat {rep:2d}: " + ", ".join(
            f"{k} {1e3 * times[k] / block:.2f} ms/step" for k in names))
    result = {k: statistics.median(v) for k, v in ratios.items()}
    result["ms_per_step"] = {k: statistics.median(v) for k, v in per_step.items()}
    result["monitored"] = trainers["every 1"]
    print(f"{name}: threads {torch.get_num_threads()}, {repeats} repeats x {block} steps; median "
          f"step time none {result['ms_per_step']['none']:.2f} ms; ratio every step "
          f"{result['every 1']:.3f}, every 16th {result['every 16']:.3f}, per-term gradients "
          f"without a monitor {result['per-term grads only']:.3f}")
    return result


def _held_bytes(obj, seen=None) -> int:
    """Bytes of every distinct tensor storage reachable from ``obj``."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() == 0:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, torch.Generator, type)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        return sum(_held_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_held_bytes(v, seen) for v in obj)
    return _held_bytes(vars(obj), seen) if hasattr(obj, "__dict__") else 0


def memory(history: int) -> dict:
    """Bytes after 100 and 2000 checks (default Burgers shapes, one term, random gradients)."""
    model = make_trainer(DEFAULT, None).model
    monitor = SketchMonitor.for_module(model, ("pde",), history=history)
    gen = torch.Generator().manual_seed(0)
    grads = [{"pde": {name: torch.randn(*shape, generator=gen, dtype=torch.float64)
                      for name, shape in monitor.layers.items()}} for _ in range(8)]
    out = {}
    for checks in range(2000):
        if checks == 1000:
            tracemalloc.start()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
        monitor.observe(checks, {"pde": 1.0}, grads[checks % 8])
        if checks + 1 in (100, 2000):
            out[checks + 1] = (monitor.nbytes(), _held_bytes(monitor))
    gc.collect()
    out["tracemalloc_growth_1000_2000"] = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    out["history_bytes"] = monitor.history.nbytes()
    return out


def saving(monitor: SketchMonitor, epochs: int, element_size: int) -> dict:
    """Monitor bytes vs keeping every per-step gradient matrix of every term for ``epochs``."""
    per_step = len(monitor.terms) * sum(m * n for m, n in monitor.layers.values()) * element_size
    full = epochs * per_step
    return {"full_bytes": full, "monitor_bytes": monitor.nbytes(),
            "saving": 1.0 - monitor.nbytes() / full}


def main(repeats: int = 11, block: int = 32, soft: bool = True) -> dict:
    results = {"default": overhead("burgers default", DEFAULT, repeats, block)}
    if soft:
        results["soft"] = overhead("burgers soft (3 terms, float32)", SOFT, repeats, block)
    # Memory at 500 epochs: the every-step trainer has taken 16 + repeats·block steps; bring
    # it to 500 monitored steps (its monitor's bytes do not depend on the count, see below).
    trainer = results["default"].pop("monitored")
    results.get("soft", {}).pop("monitored", None)
    _block(trainer, max(0, 500 - trainer.adam_done))
    assert trainer.monitor.checks == 500
    results["saving_256"] = saving(trainer.monitor, 500, 8)
    twin = make_trainer(DEFAULT, 1, history=128).monitor
    results["saving_128"] = saving(twin, 500, 8)
    for history in (256, 128):
        results[f"memory_{history}"] = memory(history)
    print("\n| measure | value |\n|---|---|")
    for name in ("default", "soft"):
        if name in results:
            r = results[name]
            print(f"| {name}: step ms (none / every 1 / every 16 / per-term grads only) | "
                  + " / ".join(f"{v:.2f}" for v in r["ms_per_step"].values()) + " |")
            print(f"| {name}: overhead every step / every 16th (trainer's per-term grads "
                  f"alone) | {r['every 1']:.3f}x / {r['every 16']:.3f}x "
                  f"({r['per-term grads only']:.3f}x) |")
    for history in (256, 128):
        mem = results[f"memory_{history}"]
        print(f"| history {history}: bytes after 100 / 2000 checks (nbytes; tensor storages) | "
              f"{mem[100][0]} / {mem[2000][0]}; {mem[100][1]} / {mem[2000][1]} |")
        print(f"| history {history}: of which history rows | {mem['history_bytes']} |")
        print(f"| history {history}: tracemalloc growth, checks 1000-2000 | "
              f"{mem['tracemalloc_growth_1000_2000']} B |")
        s = results[f"saving_{history}"]
        print(f"| history {history}: 500 epochs, all gradients vs monitor | {s['full_bytes']} B "
              f"vs {s['monitor_bytes']} B: saving {100 * s['saving']:.2f}% |")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--skip-soft", action="store_true")
    args = parser.parse_args()
    main(args.repeats, args.block, not args.skip_soft)
