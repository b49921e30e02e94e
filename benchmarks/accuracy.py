"""Accuracy of the shipped configs over seeds: rel L2, steps, wall seconds; median and worst.

    python benchmarks/accuracy.py [--problems burgers poisson heat] [--seeds 0 1 2]
                                  [--out runs/accuracy] [--set key.path=value ...]

PINN accuracy swings by an order of magnitude between seeds, so the table reports the
median and the worst seed per problem. Each run writes a normal run folder under --out.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pinnsketch

ROOT = Path(__file__).resolve().parents[1]


def run_one(problem: str, seed: int, out: Path, overrides: list[str]) -> dict:
    config = pinnsketch.load_config(ROOT / "problems" / f"{problem}.yaml",
                                    [f"train.seed={seed}", "output.progress=false", *overrides])
    run = pinnsketch.train(config, out=out / f"{problem}-seed{seed}")
    return run.summary


def main(problems: list[str], seeds: list[int], out: Path, overrides: list[str]) -> list[dict]:
    rows = []
    print("| problem | seed | rel L2 | steps | wall s | why the last phase stopped |")
    print("|---|---|---|---|---|---|")
    for problem in problems:
        errors = []
        for seed in seeds:
            summary = run_one(problem, seed, out, overrides)
            errors.append(summary["rel_l2"])
            rows.append({"problem": problem, "seed": seed, **summary})
            last_stop = list(summary["stop_reasons"].values())[-1:] or ["-"]
            print(f"| {problem} | {seed} | {summary['rel_l2']:.2e} | {summary['steps']} | "
                  f"{summary['wall_s']:.0f} | {last_stop[0]} |", flush=True)
        print(f"| {problem} | median | {statistics.median(errors):.2e} | | | |")
        print(f"| {problem} | worst | {max(errors):.2e} | | | |", flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["burgers", "poisson", "heat"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/accuracy"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    main(args.problems, args.seeds, args.out, args.overrides)
