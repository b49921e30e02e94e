"""The phase after Adam on Burgers: L-BFGS against the dense quasi-Newton methods.

Every method starts from the same Adam phase (same seed: same network, points and Adam
steps) and runs the same number of iterations of its phase; the run folders record rel L2
against wall time and iteration. Writes ``optimizers.png`` (rel L2 against iteration and
against wall seconds, one line per method) and ``optimizers.md`` (final figures) in --out.

    python benchmarks/optimizers.py [--methods lbfgs bfgs ssbfgs_ab ssbroyden2]
                                    [--steps 2000] [--seed 0] [--out runs/optimizers]
                                    [--set key.path=value ...]
    python benchmarks/optimizers.py --step-cost   # s per iteration against L-BFGS

Wall times include the evaluations every ``eval_every`` steps; compare them within one run
of this script (the methods run one after another under the same load).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from matplotlib.figure import Figure

import pinnsketch
from pinnsketch.training.build import build_trainer

ROOT = Path(__file__).resolve().parents[1]


def run(method: str, steps: int, seed: int, out: Path, overrides: list[str]) -> list[dict]:
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", [
        f"train.quasi_newton={method}", f"train.lbfgs_steps={steps}", f"train.seed={seed}",
        "output.progress=false", "output.plots=false", *overrides])
    return pinnsketch.train(config, out=out / method).metrics


def main(methods: list[str], steps: int, seed: int, out: Path, overrides: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    by_iteration, by_time = fig.subplots(1, 2)
    lines = ["| method | final rel L2 | phase iterations | phase wall s | s / iteration |",
             "|---|---|---|---|---|"]
    for method in methods:
        metrics = run(method, steps, seed, out, overrides)
        phase = [m for m in metrics if m["phase"] == method]
        start = [m for m in metrics if m["phase"] == "adam"][-1]
        its = [m["step"] - start["step"] for m in phase]
        wall = [m["wall_s"] - start["wall_s"] for m in phase]
        errors = [m["rel_l2"] for m in phase]
        by_iteration.semilogy([0] + its, [start["rel_l2"]] + errors, label=method)
        by_time.semilogy([0] + wall, [start["rel_l2"]] + errors, label=method)
        lines.append(f"| {method} | {errors[-1]:.2e} | {its[-1]} | {wall[-1]:.0f} | "
                     f"{wall[-1] / its[-1]:.3f} |")
        print(lines[-1], flush=True)
    for ax, name in ((by_iteration, "iterations after Adam"), (by_time, "wall seconds after Adam")):
        ax.set_xlabel(name)
        ax.set_ylabel("relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"Burgers, seed {seed}: the phase after Adam")
    fig.savefig(out / "optimizers.png", dpi=110)
    (out / "optimizers.md").write_text("\n".join(lines) + "\n")


def step_cost(methods: list[str], blocks: int, block: int, overrides: list[str]) -> None:
    """Seconds per phase iteration of each method relative to L-BFGS, measured in this
    process: every method continues from the same 200 Adam steps, blocks of ``block``
    iterations interleaved (order rotating), median of the per-block ratios."""
    trainers = {}
    for method in ["lbfgs", *[m for m in methods if m != "lbfgs"]]:
        config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", [
            f"train.quasi_newton={method}", "sampling.lbfgs_resample_every=0", *overrides])
        trainer = build_trainer(config)
        for _ in range(200):
            trainer.adam_step()
        trainers[method] = trainer
    seconds = {m: [] for m in trainers}
    names = list(trainers)
    for b in range(blocks):
        for method in names[b % len(names):] + names[:b % len(names)]:
            trainer = trainers[method]
            before, tic = trainer.lbfgs_done, time.perf_counter()
            trainer.lbfgs_chunk(block)
            seconds[method].append((time.perf_counter() - tic) / max(1, trainer.lbfgs_done - before))
    for method in names:
        ratios = [a / b for a, b in zip(seconds[method], seconds["lbfgs"])]
        print(f"{method}: {statistics.median(seconds[method]):.4f} s per iteration, "
              f"{statistics.median(ratios):.2f}x L-BFGS (median of {blocks} blocks)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["lbfgs", "bfgs", "ssbfgs_ab",
                                                         "ssbroyden2"])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/optimizers"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--step-cost", action="store_true",
                        help="only time one phase iteration of each method against L-BFGS")
    args = parser.parse_args()
    if args.step_cost:
        step_cost(args.methods, blocks=7, block=20, overrides=args.overrides)
    else:
        main(args.methods, args.steps, args.seed, args.out, args.overrides)
