"""Steps per second of data-parallel training with 1 and 2 processes (gloo on CPU).

A compute-bound Burgers set-up: 64 × 4 tanh network, float32, soft constraints, 20,000
interior points per process count in total (each of N ranks gets 20,000 / N). Each
process count runs ``steps`` Adam steps after ``warmup``; the median step time over
``repeats`` blocks is reported, and the speed-up of 2 processes over 1. On a 2-core CPU
expect little (the ranks share the cores); the point is the path to real clusters.

    python benchmarks/ddp_scaling.py [--steps 40] [--repeats 5] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

import pinnsketch
from pinnsketch.training.build import build_trainer
from pinnsketch.training.distributed import init_from_environment

ROOT = Path(__file__).resolve().parents[1]
TOTAL_POINTS = 20000


def _overrides(world: int, device: str) -> list[str]:
    return ["model.width=64", "model.depth=4", "model.hard_constraints=false",
            "train.dtype=float32", f"train.device={device}", "sampling.adaptive=none",
            "sampling.resample_every=0", f"sampling.interior={TOTAL_POINTS // world}",
            "output.progress=false"]


def _worker(rank: int, world: int, port: int, steps: int, repeats: int, device: str,
            out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", _overrides(world, device))
    context = init_from_environment("auto", torch.device(device))
    trainer = build_trainer(config, context)
    for _ in range(5):
        trainer.adam_step()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(steps):
            trainer.adam_step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - tic) / steps)
    if rank == 0:
        Path(out).write_text(repr(statistics.median(times)))
    if context is not None:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(steps: int = 40, repeats: int = 5, device: str = "cpu") -> dict[int, float]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for world in (1, 2):
            out = str(Path(tmp) / f"world{world}.txt")
            mp.spawn(_worker, args=(world, _free_port(), steps, repeats, device, out),
                     nprocs=world, join=True)
            results[world] = float(Path(out).read_text())
            print(f"{world} process(es): {1 / results[world]:.2f} steps/s "
                  f"({1e3 * results[world]:.1f} ms/step, median of {repeats} x {steps})",
                  flush=True)
    print(f"speed-up 2 vs 1 processes: {results[1] / results[2]:.2f}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    main(args.steps, args.repeats, args.device)
