"""Each training technique on a problem that needs it, with and without, same seeds.

    python benchmarks/techniques.py [--cases helmholtz_grad_norm ...] [--seeds 0 1 2]
                                    [--out runs/techniques] [--threads 1]

A case is a shipped config, the overrides both arms share (to fit the run on a CPU) and the
technique's overrides; the "without" arm is the same config without them. Each run writes a
normal run folder under --out, named by config, overrides and seed (arms alike across cases
share their runs); a folder whose summary.json says completed is read, not rerun (a killed
benchmark resumes where it stopped). Prints a markdown table (rel L2 per
seed, median and worst) and writes it with the per-run rows to --out/techniques.{md,json}.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from pathlib import Path

import torch

import pinnsketch

ROOT = Path(__file__).resolve().parents[1]
# allen_cahn.yaml ships with the techniques its cases test; these take them off again.
ALLEN_CAHN_PLAIN = ["train.causal.chunks=0", "model.periodic={}", "model.fourier.features=0"]

# name: (config, shared overrides, technique overrides, what the technique should cure)
CASES = {
    "helmholtz_grad_norm": (
        "helmholtz2d",
        ["model.hard_constraints=false", "train.lbfgs_steps=0", "train.adam_steps=4000",
         "sampling.interior=2000", "sampling.boundary=400"],
        ["train.balancing.scheme=grad_norm", "train.balancing.every=100"],
        "soft boundary conditions with equal weights (Wang, Teng & Perdikaris 2021)"),
    "helmholtz_ntk": (
        "helmholtz2d",
        ["model.hard_constraints=false", "train.lbfgs_steps=0", "train.adam_steps=4000",
         "sampling.interior=2000", "sampling.boundary=400"],
        ["train.balancing.scheme=ntk", "train.balancing.every=100"],
        "soft boundary conditions with equal weights (Wang, Yu & Perdikaris 2022)"),
    "multiscale_fourier": (
        "poisson_multiscale",
        ["model.width=32", "model.depth=3", "sampling.interior=2048", "sampling.boundary=256",
         "train.adam_steps=2000", "train.lbfgs_steps=1000"],
        ["model.fourier.features=32", "model.fourier.scale=4.0"],
        "a sin 8πx sin 8πy component: spectral bias (Wang, Wang & Perdikaris 2021)"),
    "multiscale_modified_mlp": (
        "poisson_multiscale",
        ["model.width=32", "model.depth=3", "sampling.interior=2048", "sampling.boundary=256",
         "train.adam_steps=2000", "train.lbfgs_steps=1000"],
        ["model.type=modified_mlp"],
        "the same, with the modified MLP's gates (Wang, Teng & Perdikaris 2021)"),
    "helmholtz_rba": (
        "helmholtz2d",
        ["model.hard_constraints=false", "train.lbfgs_steps=0", "train.adam_steps=4000",
         "sampling.interior=2000", "sampling.boundary=400"],
        ["sampling.attention=rba"],
        "the same, with per-point residual attention (Anagnostopoulos et al. 2024)"),
    "multiscale_pirate": (
        "poisson_multiscale",
        ["model.width=32", "model.depth=3", "sampling.interior=2048", "sampling.boundary=256",
         "train.adam_steps=2000", "train.lbfgs_steps=1000"],
        ["model.type=pirate", "model.depth=1", "model.fourier.features=32",
         "model.fourier.scale=4.0"],
        "PirateNet, one block, on the same Fourier features (Wang et al. 2024)"),
    "multiscale_rwf": (
        "poisson_multiscale",
        ["model.width=32", "model.depth=3", "sampling.interior=2048", "sampling.boundary=256",
         "train.adam_steps=2000", "train.lbfgs_steps=1000"],
        ["model.weight_factorization.enabled=true"],
        "random weight factorisation of the plain MLP (Wang, Wang & Perdikaris 2022)"),
    "convection_curriculum": (
        "convection",
        ["train.lbfgs_steps=0", "train.adam_steps=3000"],
        ["train.curriculum.option=beta", "train.curriculum.start=1.0",
         "train.curriculum.steps=2000"],
        "β = 40 from the start (Krishnapriyan et al. 2021: curriculum from small β)"),
    "convection_marching": (
        "convection",
        ["train.lbfgs_steps=0", "train.adam_steps=3000"],
        ["train.time_marching.windows=10"],
        "β = 40 over the whole interval at once (time marching in 10 growing windows)"),
    "convection_seq2seq": (
        "convection",
        ["train.lbfgs_steps=0", "train.adam_steps=3000"],
        ["train.time_marching.windows=10", "train.time_marching.networks=per_window",
         "train.adam_steps=300"],
        "β = 40 over the whole interval at once (sequence-to-sequence: a network per window "
        "of Δt = 0.1, 300 Adam steps each, the same 3000 in all)"),
    "convection_seq2seq_long": (
        "convection",
        ["train.lbfgs_steps=0", "train.adam_steps=3000"],
        ["train.time_marching.windows=10", "train.time_marching.networks=per_window",
         "train.adam_steps=1500"],
        "the same with 1500 Adam steps per window (15,000 in all: 5× the budget)"),
    "allen_cahn_causal": (
        "allen_cahn", ALLEN_CAHN_PLAIN,
        ["train.causal.chunks=32", "train.causal.tolerance=1.0", "model.periodic.x=2.0"],
        "the soft-constrained MLP without the shipped techniques (Wang, Sankaran & "
        "Perdikaris 2024: causal training)"),
    "allen_cahn_causal_fourier": (
        "allen_cahn", ALLEN_CAHN_PLAIN,
        ["train.causal.chunks=32", "train.causal.tolerance=1.0", "model.periodic.x=2.0",
         "model.fourier.features=32", "model.fourier.scale=1.0"],
        "the same with Fourier features on the periodic embedding (PirateNets' recipe, no "
        "PirateNet: its dense H would not fit)"),
}


def run_one(config_name: str, overrides: list[str], seed: int, folder: Path) -> dict:
    summary_path = folder / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("status") == "completed":
            return summary
    config = pinnsketch.load_config(ROOT / "problems" / f"{config_name}.yaml",
                                    [f"train.seed={seed}", "output.progress=false",
                                     "output.plots=false", *overrides])
    return pinnsketch.train(config, out=folder).summary


def main(cases: list[str], seeds: list[int], out: Path) -> list[dict]:
    rows, lines = [], ["| case | arm | " + " | ".join(f"seed {s}" for s in seeds)
                       + " | median | worst | wall s (median) |",
                       "|---|---|" + "---|" * (len(seeds) + 3)]
    print("\n".join(lines), flush=True)
    for case in cases:
        config_name, shared, technique, _ = CASES[case]
        for arm, extra in (("without", []), ("with", technique)):
            errors, walls = [], []
            for seed in seeds:
                # Named by what is run: arms alike across cases share their runs.
                key = hashlib.sha256(" ".join([config_name, *shared, *extra]).encode())
                folder = out / f"{config_name}-{key.hexdigest()[:10]}-seed{seed}"
                summary = run_one(config_name, shared + extra, seed, folder)
                errors.append(summary["rel_l2"])
                walls.append(summary["wall_s"])
                rows.append({"case": case, "arm": arm, "seed": seed, "config": config_name,
                             "overrides": shared + extra, "rel_l2": summary["rel_l2"],
                             "wall_s": summary["wall_s"]})
            line = (f"| {case} | {arm} | " + " | ".join(f"{e:.2e}" for e in errors)
                    + f" | {statistics.median(errors):.2e} | {max(errors):.2e} | "
                      f"{statistics.median(walls):.0f} |")
            lines.append(line)
            print(line, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "techniques.md").write_text("\n".join(lines) + "\n")
    (out / "techniques.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/techniques"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    main(args.cases, args.seeds, args.out)
