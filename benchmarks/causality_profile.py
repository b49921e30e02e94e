"""The causality statistic on finished runs: the pde residual over time at the final
network, and whether the causality-violation finding fires.

    python benchmarks/causality_profile.py RUN_DIR [RUN_DIR ...] [--points 20000] [--seed 0]

For each run folder of an evolution problem: ``points`` uniform interior points (seeded),
the mean squared pde residual in 8 time slabs (:func:`residual_by_time`), the early/late
ratio the rule compares with ``Thresholds.causality`` and the rule's verdict, beside the run's
rel L2 (the reference judges the verdict afterwards; the rule never sees it).
"""
from __future__ import annotations

import argparse

import torch

import pinnsketch
from pinnsketch.diagnosis.findings import Thresholds
from pinnsketch.diagnosis.run_rules import causality_violation
from pinnsketch.sampling import Sampler
from pinnsketch.training.evaluation import residual_by_time


def profile(run_dir: str, points: int, seed: int) -> dict:
    run = pinnsketch.load_run(run_dir)
    domain = run.problem.domain
    sampler = Sampler(domain, "uniform", torch.Generator().manual_seed(seed))
    param = next(run.model.parameters())
    z = sampler.interior(points).to(param.device, param.dtype)
    values = residual_by_time(run.problem, run.model, z, domain.time)
    found = causality_violation([{"step": run.summary.get("steps", 0), "pde_by_time": values}],
                                run.config.train.causal.chunks, Thresholds())
    quarter = len(values) // 4
    ratio = sum(values[:quarter]) / sum(values[-quarter:])
    return {"run": run_dir, "rel_l2": run.summary.get("rel_l2"), "profile": values,
            "ratio": ratio, "finding": bool(found)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| run | rel L2 | early/late residual | causality finding |")
    print("|---|---|---|---|")
    for run_dir in args.runs:
        row = profile(run_dir, args.points, args.seed)
        print(f"| {row['run']} | {row['rel_l2']:.2e} | {row['ratio']:.3g} | "
              f"{'yes' if row['finding'] else 'no'} |", flush=True)
