"""Wide PINNs: Adam against Sketchy in the first-order phase, same seeds, same steps.

    python benchmarks/wide.py [--width 256] [--depth 3] [--steps 600] [--rank 16]
                              [--seeds 0 1 2] [--out runs/wide] [--threads 1]

Burgers (the shipped config: hard constraints, RAD points) with a width × depth tanh MLP,
``--steps`` first-order steps and no second-order phase, so the optimisers are compared
alone. Per seed and optimiser: rel L2 at the end (equal steps), and both at the wall time
T the faster one took (equal time: the last evaluation, every 50 steps, not after T). Bytes of the optimiser state: Adam's two moments, Sketchy's (the same moments
plus two Frequent-Directions sketches per matrix) and full Shampoo's (the moments plus the
exact m² + n² factors), from the optimisers' own byte counts. Writes wide.md and wide.json.
Run folders are reused when their summary says completed (a killed benchmark resumes).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

import pinnsketch
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


def main(args: argparse.Namespace) -> None:
    rows = []
    for seed in args.seeds:
        for optimizer in ("adam", "sketchy"):
            extra = overrides(args.width, args.depth, args.steps, args.rank, seed, optimizer)
            folder = args.out / f"w{args.width}d{args.depth}-{optimizer}-r{args.rank}-seed{seed}"
            summary, metrics = run_one(folder, extra)
            rows.append({"seed": seed, "optimizer": optimizer, "rel_l2": summary["rel_l2"],
                         "train_s": summary.get("train_s", summary["wall_s"]),
                         "curve": [(m["wall_s"], m["rel_l2"]) for m in metrics]})
            print(f"seed {seed} {optimizer}: rel L2 {summary['rel_l2']:.3e}, "
                  f"{rows[-1]['train_s']:.0f} s", flush=True)
    lines = [f"Burgers, {args.width}×{args.depth} tanh, {args.steps} steps, Sketchy rank "
             f"{args.rank}; seeds {args.seeds}", "",
             "| seed | Adam, equal steps | Sketchy, equal steps | equal time T (s) | Adam at T | "
             "Sketchy at T |", "|---|---|---|---|---|---|"]
    for seed in args.seeds:
        adam, sketchy = (next(r for r in rows if r["seed"] == seed and r["optimizer"] == o)
                         for o in ("adam", "sketchy"))
        horizon = min(adam["curve"][-1][0], sketchy["curve"][-1][0])
        at = [[e for t, e in r["curve"] if t <= horizon][-1] for r in (adam, sketchy)]
        lines.append(f"| {seed} | {adam['rel_l2']:.3e} | {sketchy['rel_l2']:.3e} | "
                     f"{horizon:.0f} | {at[0]:.3e} | {at[1]:.3e} |")
    medians = {name: [r["rel_l2"] for r in rows if r["optimizer"] == name]
               for name in ("adam", "sketchy")}
    lines.append("| median / worst | " + " | ".join(
        f"{statistics.median(e):.3e} / {max(e):.3e}" for e in medians.values()) + " | | | |")
    nbytes = state_bytes(args.width, args.depth, args.rank)
    lines += ["", f"Optimiser state ({nbytes['parameters']} parameters, float64): Adam "
              f"{nbytes['adam']} B, Sketchy {nbytes['sketchy']} B "
              f"({nbytes['sketchy'] / nbytes['adam']:.3f}× Adam), full Shampoo "
              f"{nbytes['shampoo']} B ({nbytes['shampoo'] / nbytes['adam']:.3f}× Adam)."]
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
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/wide"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    main(args)
