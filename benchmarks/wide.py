"""Wide PINNs: Adam, Sketchy and low-rank layers in the first-order phase, same seeds and steps.

    python benchmarks/wide.py [--width 256] [--depth 3] [--steps 600] [--rank 16]
                              [--low-rank 8 --max-rank 16 --tolerance 0.1 --substeps 10]
                              [--arms adam sketchy low_rank] [--seeds 0 1 2]
                              [--out runs/wide] [--threads 1]
    python benchmarks/wide.py --step-cost [--repeats 5]   # s/step of each arm, one process

Burgers (the shipped config: hard constraints, RAD points) with a width × depth tanh MLP,
``--steps`` first-order steps and no second-order phase, so the optimisers are compared
alone; the low-rank arm is Adam on a network whose hidden width × width layers are
dynamical low-rank layers (abc-PSI, ``model.low_rank``). Per seed and arm: rel L2 at the
end (equal steps), and at the wall time T the fastest one took (equal time: the last
evaluation, every 50 steps, not after T). Bytes of the optimiser state: Adam's two moments,
Sketchy's (the same moments plus two Frequent-Directions sketches per matrix) and full
Shampoo's (the moments plus the exact m² + n² factors), from the optimisers' own byte
counts; for the low-rank arm, its rank trajectory and parameter count (at the final rank)
and its allocated bytes.
Writes wide.md and wide.json. ``--step-cost`` times interleaved blocks of 10 steps of every
arm in one process (rotating order) and prints the median ratio to Adam's.
Run folders are reused when their summary says completed (a killed benchmark resumes).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import pinnsketch
from pinnsketch.low_rank import low_rank_layers
from pinnsketch.optim import Sketchy
from pinnsketch.training.build import build_trainer

ROOT = Path(__file__).resolve().parents[1]


def overrides(width: int, depth: int, steps: int, rank: int, seed: int,
              optimizer: str) -> list[str]:
    return [f"model.width={width}", f"model.depth={depth}", f"train.adam_steps={steps}",
            "train.lbfgs_steps=0", "train.quasi_newton=lbfgs", "train.eval_every=50",
            f"train.checkpoint_every={steps}",
            f"train.first_order={optimizer}", f"train.sketchy_rank={rank}",
            "sampling.interior=2000", "sampling.adaptive_candidates=20000",
            f"train.seed={seed}", "output.progress=false", "output.plots=false"]


def arm_overrides(arm: str, args: argparse.Namespace, seed: int) -> list[str]:
    """The overrides of one arm: adam, sketchy, or low_rank (Adam on low-rank layers)."""
    base = overrides(args.width, args.depth, args.steps, args.rank, seed,
                     "sketchy" if arm == "sketchy" else "adam")
    if arm != "low_rank":
        return base
    return base + [f"model.low_rank.rank={args.low_rank}",
                   f"model.low_rank.max_rank={args.max_rank}",
                   f"model.low_rank.tolerance={args.tolerance}",
                   f"model.low_rank.substeps={args.substeps}"]


def arm_folder(arm: str, args: argparse.Namespace, seed: int) -> Path:
    name = f"w{args.width}d{args.depth}-{arm}-r{args.rank}"
    if arm == "low_rank":
        name = (f"w{args.width}d{args.depth}-low_rank-r{args.low_rank}-{args.max_rank}"
                f"-t{args.tolerance:g}-s{args.substeps}")
    return args.out / f"{name}-seed{seed}"


def run_one(folder: Path, extra: list[str]) -> tuple[dict, list[dict]]:
    summary = folder / "summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("status") == "completed":
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        metrics = [json.loads(line) for line in lines]
        return json.loads(summary.read_text()), metrics
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", extra)
    run = pinnsketch.train(config, out=folder)
    return run.summary, run.metrics


def state_bytes(width: int, depth: int, rank: int) -> dict[str, int]:
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    overrides(width, depth, 1, rank, 0, "adam"))
    parameters = build_trainer(config).parameters
    moments = 2 * sum(p.numel() * p.element_size() for p in parameters)
    statistics_ = Sketchy(parameters, rank=rank).statistics_nbytes()
    return {"parameters": sum(p.numel() for p in parameters), "adam": moments,
            "sketchy": moments + statistics_["sketchy"], "shampoo": moments + statistics_["shampoo"]}


def low_rank_numbers(args: argparse.Namespace, metrics: list[dict]) -> dict:
    """Rank trajectory (every evaluation), parameters at the final rank, allocated bytes."""
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    arm_overrides("low_rank", args, 0))
    model = build_trainer(config).model
    layers = low_rank_layers(model)
    final = metrics[-1]["low_rank"]
    dense = sum(p.numel() for p in model.parameters()) - sum(
        l.K.numel() + l.L.numel() + l.bias.numel() for l in layers) + sum(
        l.out_features * (l.in_features + 1) for l in layers)
    effective = dense - sum(l.out_features * l.in_features for l in layers) + sum(
        r * (l.in_features + l.out_features) + r * r for r, l in zip(final, layers))
    allocated = sum(t.numel() * t.element_size() for l in layers
                    for t in (l.K, l.L, l.U, l.V, l.S))
    return {"ranks": [(m["step"], m["low_rank"]) for m in metrics], "parameters": effective,
            "dense_parameters": dense, "layer_bytes": allocated,
            "dense_layer_bytes": sum(l.out_features * l.in_features * 8 for l in layers)}


def step_cost(args: argparse.Namespace) -> None:
    """Seconds per first-order step of each arm, interleaved blocks in one process."""
    trainers = {arm: build_trainer(pinnsketch.load_config(
        ROOT / "problems" / "burgers.yaml", arm_overrides(arm, args, 0))) for arm in args.arms}
    times = {arm: [] for arm in args.arms}
    for repeat in range(args.repeats):
        order = args.arms[repeat % len(args.arms):] + args.arms[:repeat % len(args.arms)]
        for arm in order:
            tic = time.perf_counter()
            for _ in range(10):
                trainers[arm].adam_step()
            times[arm].append((time.perf_counter() - tic) / 10)
    for arm in args.arms:
        ratios = [t / a for t, a in zip(times[arm], times[args.arms[0]])]
        print(f"{arm}: {statistics.median(times[arm]):.3f} s/step, "
              f"{statistics.median(ratios):.2f}× {args.arms[0]} (median of {args.repeats})")


def main(args: argparse.Namespace) -> None:
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            summary, metrics = run_one(arm_folder(arm, args, seed), arm_overrides(arm, args, seed))
            rows.append({"seed": seed, "optimizer": arm, "rel_l2": summary["rel_l2"],
                         "train_s": summary.get("train_s", summary["wall_s"]),
                         "curve": [(m["wall_s"], m["rel_l2"]) for m in metrics]})
            if arm == "low_rank":
                rows[-1]["low_rank"] = low_rank_numbers(args, metrics)
            print(f"seed {seed} {arm}: rel L2 {summary['rel_l2']:.3e}, "
                  f"{rows[-1]['train_s']:.0f} s", flush=True)
    arms = args.arms
    lines = [f"Burgers, {args.width}×{args.depth} tanh, {args.steps} steps, Sketchy rank "
             f"{args.rank}, low-rank r0 {args.low_rank} ≤ {args.max_rank}, τ {args.tolerance}, "
             f"{args.substeps} steps a phase; seeds {args.seeds}", "",
             "| seed | " + " | ".join(f"{a}, equal steps" for a in arms) + " | equal time T (s) | "
             + " | ".join(f"{a} at T" for a in arms) + " |",
             "|---|" + "---|" * (2 * len(arms) + 1)]
    for seed in args.seeds:
        runs = [next(r for r in rows if r["seed"] == seed and r["optimizer"] == a) for a in arms]
        horizon = min(r["curve"][-1][0] for r in runs)
        at = [[e for t, e in r["curve"] if t <= horizon][-1] for r in runs]
        lines.append(f"| {seed} | " + " | ".join(f"{r['rel_l2']:.3e}" for r in runs)
                     + f" | {horizon:.0f} | " + " | ".join(f"{e:.3e}" for e in at) + " |")
    medians = {a: [r["rel_l2"] for r in rows if r["optimizer"] == a] for a in arms}
    lines.append("| median / worst | " + " | ".join(
        f"{statistics.median(e):.3e} / {max(e):.3e}" for e in medians.values())
        + " |" * (len(arms) + 1))
    nbytes = state_bytes(args.width, args.depth, args.rank)
    lines += ["", f"Optimiser state ({nbytes['parameters']} parameters, float64): Adam "
              f"{nbytes['adam']} B, Sketchy {nbytes['sketchy']} B "
              f"({nbytes['sketchy'] / nbytes['adam']:.3f}× Adam), full Shampoo "
              f"{nbytes['shampoo']} B ({nbytes['shampoo'] / nbytes['adam']:.3f}× Adam)."]
    for row in rows:
        if "low_rank" in row:
            low = row["low_rank"]
            lines.append(f"Low-rank seed {row['seed']}: ranks {low['ranks'][0][1]} → "
                         f"{low['ranks'][-1][1]}; {low['parameters']} parameters at the final "
                         f"rank against {low['dense_parameters']} dense; the low-rank layers "
                         f"allocate {low['layer_bytes']} B against {low['dense_layer_bytes']} B "
                         f"for their dense weights.")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "wide.md").write_text("\n".join(lines) + "\n")
    (args.out / "wide.json").write_text(json.dumps({"rows": rows, "bytes": nbytes}, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--low-rank", type=int, default=8)
    parser.add_argument("--max-rank", type=int, default=16)
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--substeps", type=int, default=10)
    parser.add_argument("--arms", nargs="+", default=["adam", "sketchy", "low_rank"],
                        choices=["adam", "sketchy", "low_rank"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/wide"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--step-cost", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.step_cost:
        step_cost(args)
    else:
        main(args)
