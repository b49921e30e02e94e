"""Exact against sketched data-term gradients on Burgers parameter identification.

    python benchmarks/identification.py [--noise 0 0.01] [--ranks 2 4 8 16]
        [--variants batch ema] [--jobs 2] [--out runs/identification] [--set key.path=value ...]

For each noise level, one ``pinnsketch compare`` of ``problems/burgers_identification.yaml``
(exact, then every sketched variant at every rank, all from the same seed, network,
observations and collocation points) in ``--out/noise-<level>``, with its figure and tables.
Prints one Markdown table over all noise levels: rel L2 of u on the 256 × 100 Cole–Hopf grid
and the λ₁ and λ₂ errors in percent (Raissi et al. 2019: 0.09/0.12 clean, 0.04/0.84 at 1%)
at the end of the Adam phase and at the end, the final losses, the steps taken and why
L-BFGS stopped, and the data term's saved-tensor bytes (with the saving against exact).
Wall times with ``--jobs`` > 1 include the runs' contention for the cores.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pinnsketch
from pinnsketch.compare import compare, parse_modes

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "problems" / "burgers_identification.yaml"


def main(noises: list[float], ranks: list[int], variants: list[str], jobs: int, out: Path,
         overrides: list[str]) -> list[dict]:
    names = ",".join(["exact"] + [f"sketched-{v}" for v in variants])
    modes = parse_modes(names, ",".join(map(str, ranks)))
    table = []
    for noise in noises:
        config = pinnsketch.load_config(CONFIG, [f"problem.observations.noise={noise}", *overrides])
        rows = compare(config, modes, out / f"noise-{noise:g}", jobs=jobs)
        table += [{"noise": noise, **_after_adam(row["metrics"], config.train.adam_steps),
                   **{k: v for k, v in row.items() if k != "metrics"}} for row in rows]
    (out / "identification.json").write_text(json.dumps(table, indent=2) + "\n")
    print(format_table(table))
    return table


def _after_adam(metrics: list[dict], adam_steps: int) -> dict:
    """rel L2 and λ errors at the last evaluation of the Adam phase."""
    adam = [m for m in metrics if m["step"] <= adam_steps] or metrics[:1]
    last = adam[-1]
    return {"adam_rel_l2": last["rel_l2"], "adam_lambda1_error": last["lambda1_error"],
            "adam_lambda2_error": last["lambda2_error"]}


def format_table(table: list[dict]) -> str:
    """The rows as one Markdown table (saved memory relative to the exact row of its noise)."""
    exact = {row["noise"]: row["saved_bytes"] for row in table if row["mode"] == "exact"}
    lines = ["| noise | mode | after Adam: rel L2 | λ₁ % | λ₂ % | final: rel L2 | λ₁ % | λ₂ % | "
             "pde loss | data loss | steps | L-BFGS stop | graph MiB | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table:
        saved = f"{row['saved_bytes'] / 2 ** 20:.2f}"
        if row["mode"] != "exact" and row["noise"] in exact:
            saved += f" (−{100 * (1 - row['saved_bytes'] / exact[row['noise']]):.0f}%)"
        lines.append(
            f"| {100 * row['noise']:g}% | {row['mode']} | {row['adam_rel_l2']:.2e} | "
            f"{100 * row['adam_lambda1_error']:.3g} | {100 * row['adam_lambda2_error']:.3g} | "
            f"{row['rel_l2']:.2e} | "
            f"{100 * row['lambda1_error']:.3g} | {100 * row['lambda2_error']:.3g} | "
            f"{row['pde_loss']:.1e} | {row['data_loss']:.1e} | {row['steps']} | "
            f"{_short_stop(row['lbfgs_stop'])} | {saved} | {row['wall_s']:.0f} |")
    return "\n".join(lines)


def _short_stop(reason: str) -> str:
    """"step tolerance: … at iteration 4; …" → "step tolerance, it. 4"; the budget → "budget"."""
    if not reason:
        return "-"
    if reason.startswith("iterations reached"):
        return "budget"
    match = re.search(r"at iteration (\d+)", reason)
    return reason.split(":")[0] + (f", it. {match.group(1)}" if match else "")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--variants", nargs="+", default=["batch", "ema"], choices=["batch", "ema"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/identification"))
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY.PATH=VALUE")
    args = parser.parse_args()
    main(args.noise, args.ranks, args.variants, args.jobs, args.out, args.overrides)
