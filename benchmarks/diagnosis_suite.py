"""The diagnosis validated on runs it was not tuned on: failure scenarios from the
literature and healthy runs, thresholds calibrated on some seeds and judged on others.

    python benchmarks/diagnosis_suite.py train     [--seeds 0 1 2 3 4] [--only NAME ...] [--jobs 2]
    python benchmarks/diagnosis_suite.py calibrate [--seeds 0 1]      # writes thresholds.json
    python benchmarks/diagnosis_suite.py evaluate  [--seeds 2 3 4] [--thresholds FILE]
    python benchmarks/diagnosis_suite.py loso      [--calibrate 0 1] [--seeds 2 3 4]
    python benchmarks/diagnosis_suite.py remedy    [--seeds 2] [--jobs 2]
    python benchmarks/diagnosis_suite.py ablate    [--seeds 2] [--jobs 2]

``train`` runs every scenario and healthy run (monitored) into ``--out`` (default
``runs/diagnosis``, one folder per run, finished ones reused). The diagnosis never sees the
reference solution; rel L2 only labels a run (a failure scenario must fail, a healthy run
must not) and judges remedies.

Calibration (``calibrate``): each mechanism has its decision thresholds (:data:`PARAMETERS`:
fields of :class:`pinnsketch.diagnosis.Thresholds`, one for most mechanisms, two for
imbalance, vanishing and conflict) and a grid of their values ordered from least to most
sensitive. Each run is re-diagnosed at every grid value from its record, read once (the
monitor's history, metrics and summary). A value is *feasible* when no healthy calibration
run gets a finding of that mechanism; among the feasible values those detecting the most
calibration runs of the mechanism's scenarios win, and of those the middle one (a margin
on both sides). The other thresholds stay at their defaults while one is calibrated.
``thresholds.json`` records the values, the seeds, the git commit and every count.

``evaluate`` re-diagnoses held-out runs under the frozen thresholds: per mechanism the
scenario runs where it was detected, missed, and the healthy runs where it fired (false
positives); ``loso`` calibrates without one scenario's runs and tests on them;
``remedy`` trains each detected held-out scenario run again with its remedies
(:func:`pinnsketch.runner.remedy.rerun_with_remedies`) and reports rel L2 before and after;
``ablate`` trains each remedy's quasi-Newton phase and its other overrides apart, to tell
which part of a remedy's gain the mechanism-specific part earns.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

import pinnsketch
from pinnsketch.diagnosis import Thresholds, diagnose
from pinnsketch.runner.diagnosis import diagnose_run, read_thresholds, run_record
from pinnsketch.runner.parallel import in_processes
from pinnsketch.runner.remedy import rerun_with_remedies
from pinnsketch.runner.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]
MONITOR = ["monitor.enabled=true", "monitor.every=10", "monitor.history=128",
           "output.progress=false", "output.plots=false"]


@dataclasses.dataclass(frozen=True)
class Case:
    """A run of the suite: a shipped config, its overrides, the mechanism it exhibits (None:
    healthy) and where that failure is described."""

    config: str
    overrides: tuple[str, ...]
    mechanism: str | None
    source: str = ""


ADAM_ONLY = ("train.lbfgs_steps=0",)
# The failure scenarios, one mechanism each (set-ups after the cited papers).
SCENARIOS = {
    "helmholtz_soft": Case("helmholtz2d", ADAM_ONLY + (
        "model.hard_constraints=false", "train.adam_steps=3000", "sampling.interior=1000",
        "sampling.boundary=200"), "imbalance",
        "Wang, Teng & Perdikaris 2021: soft boundary conditions, equal weights"),
    "burgers_weighted_out": Case("burgers_stalled", (), "trivial_solution",
                                 "Rohrhofer et al. 2023: constraints weighted 1e-4"),
    "convection_adam": Case("convection", ADAM_ONLY + ("train.adam_steps=3000",),
                            "ill_conditioning", "Krishnapriyan et al. 2021, Rathore et al. "
                                                "2024: β = 40 by first-order training"),
    # Without the shipped allen_cahn.yaml's causal weights and embeddings (they are remedies).
    "allen_cahn_adam": Case("allen_cahn", ADAM_ONLY + (
        "train.adam_steps=3000", "train.causal.chunks=0", "model.periodic={}",
        "model.fourier.features=0"), "causality", "Wang, Sankaran & Perdikaris 2024"),
    "deep_tanh": Case("burgers_healthy", ("model.depth=24", "model.width=16",
                                          "model.init=standard_uniform",
                                          "train.adam_steps=2000"),
                      "vanishing", "Glorot & Bengio 2010: a 24-deep tanh network with their "
                                   "'standard' initialisation U(±1/√fan_in)"),
    "poisson_lbfgs_float32": Case("poisson", (
        "train.dtype=float32", "train.quasi_newton=lbfgs", "train.lbfgs_steps=3000"),
        "optimizer_stall", "Rathore et al. 2024: L-BFGS line searches stop early (here in "
                           "float32, as DeepXDE trains)"),
    # Equal weights: the shipped wave.yaml's NTK weights are a remedy, not the scenario.
    "wave_soft": Case("wave", ADAM_ONLY + ("train.adam_steps=3000",
                                           "train.balancing.scheme=none"), "conflict",
                      "Wang, Bhartari, Li & Perdikaris 2025: opposed pde and ic_t gradients"),
    "poisson_multiscale": Case("poisson_multiscale", ADAM_ONLY + (
        "model.width=32", "model.depth=3", "sampling.interior=2048", "sampling.boundary=256",
        "train.adam_steps=2000"), "spectral_bias",
        "Rahaman et al. 2019; Wang, Wang & Perdikaris 2021: a sin 8πx sin 8πy part"),
}
# Healthy runs: shipped configs, at a quarter of their budget where that still converges
# (measured: Burgers 5e-5, Poisson 2e-7, heat 2e-5 on seeds 0-1); convection and reaction
# fail at a quarter (0.72, 0.21) and run their whole budget.
QUARTER = ("train.steps_scale=0.25",)
HEALTHY = {name: Case(name, QUARTER if name not in ("convection", "reaction") else (), None)
           for name in ("burgers", "poisson", "heat", "convection", "reaction", "helmholtz2d",
                        "kovasznay", "poisson_holes")}
# Held-out variants of every case, as functions of its config (after the case's overrides):
# another width, and one more hidden layer than the case has (a fixed depth would make the
# 24-deep tanh scenario shallow, and so no longer that scenario).
VARIANTS = {"": lambda config: (),
            "w48": lambda config: ("model.width=48",),
            "deeper": lambda config: (f"model.depth={config.model.depth + 1}",)}


def case_overrides(case: Case, variant: str) -> list[str]:
    """The overrides of ``case`` in ``variant`` (before the monitor's and the seed)."""
    config = pinnsketch.load_config(ROOT / "problems" / f"{case.config}.yaml",
                                    list(case.overrides))
    return [*case.overrides, *VARIANTS[variant](config)]



def _one(field: str, values) -> tuple[tuple[str, ...], tuple[tuple[float, ...], ...]]:
    return (field,), tuple((float(v),) for v in values)


# mechanism -> (Thresholds fields, grid of their values from least to most sensitive).
# Three have two: imbalance (how much larger the other term's weighted gradient must be,
# and how little the neglected term may fall per window), vanishing (the whole network's
# elasticity, and the layer-to-median gradient ratio: both rules name it) and conflict (the
# cosine, and how little each opposed loss may fall per window); outer loop first.
PARAMETERS = {
    "imbalance": (("dominance", "stuck"), tuple(
        (float(d), s) for d in np.geomspace(30.0, 2.0, 7) for s in (0.05, 0.1, 0.2, 0.5, 0.9))),
    "trivial_solution": _one("trivial_stuck", np.geomspace(0.01, 0.9, 15)),
    "vanishing": (("elasticity", "layer_ratio"), tuple(
        (float(e), float(r)) for e in np.geomspace(1e-6, 1e-1, 11)
        for r in np.geomspace(1e4, 30.0, 6))),
    "stagnation": _one("collapse", np.geomspace(1e-5, 1e-1, 13)),
    "conflict": (("conflict", "conflict_stall"), tuple(
        (float(c), s) for c in np.linspace(-0.95, 0.0, 20) for s in (0.01, 0.02, 0.05, 0.1))),
    "causality": _one("causality", np.geomspace(100, 1.5, 15)),
    "optimizer_stall": _one("stall_gradient", np.geomspace(1e-2, 1e-9, 15)),
    "ill_conditioning": _one("slow_decades", np.geomspace(0.1, 4.0, 14)),
    "spectral_bias": _one("feature_share", np.geomspace(1e-4, 0.2, 12)),
}


def at(fields: Sequence[str], values: Sequence[float] | None,
       base: Thresholds = Thresholds()) -> Thresholds:
    """``base`` with ``fields`` set to ``values`` (None: unchanged)."""
    return base if values is None else dataclasses.replace(base, **dict(zip(fields, values)))


def _show(fields: Sequence[str], values: Sequence[float] | None) -> str:
    if values is None:
        return "none feasible"
    return ", ".join(f"{f} = {v:.3g}" for f, v in zip(fields, values))


def runs(seeds: Sequence[int], only: Sequence[str] = (), variants: Sequence[str] = ("",)
         ) -> dict[str, tuple[Case, int, str]]:
    """``{folder name: (case, seed, variant)}`` of the suite (``only``: those cases)."""
    cases = {**SCENARIOS, **HEALTHY}
    chosen = {name: case for name, case in cases.items() if not only or name in only}
    return {f"{name}{'-' + v if v else ''}-s{seed}": (case, seed, v)
            for name, case in chosen.items() for v in variants for seed in seeds}


def _train_one(case: Case, seed: int, variant: str, folder: Path) -> dict:
    overrides = [*case_overrides(case, variant), *MONITOR, f"train.seed={seed}"]
    config = pinnsketch.load_config(ROOT / "problems" / f"{case.config}.yaml", overrides)
    resume = RunDir(folder).checkpoint_path.is_file()
    run = pinnsketch.train(config, resume=folder) if resume else pinnsketch.train(config,
                                                                                   out=folder)
    return {"folder": str(folder), "rel_l2": run.summary.get("rel_l2")}


def train(args: argparse.Namespace) -> None:
    chosen = runs(args.seeds, args.only, args.variants)
    calls = [(case, seed, v, args.out / name) for name, (case, seed, v) in chosen.items()]
    for _, row in in_processes(_train_one, calls, args.jobs):
        print(f"{Path(row['folder']).name}: rel L2 {row['rel_l2']:.3g}", flush=True)


@functools.lru_cache(maxsize=None)
def _record(folder: Path) -> dict:
    return run_record(folder)


def _kinds(folder: Path, thresholds: Thresholds) -> set[str]:
    return {f.kind for f in diagnose(thresholds=thresholds, **_record(folder))}


def decisions(folders: dict[str, Path], mechanism: str) -> dict[str, list[bool]]:
    """For each run, whether ``mechanism`` is found at each value of its grid."""
    fields, grid = PARAMETERS[mechanism]
    return {name: [mechanism in _kinds(folder, at(fields, values)) for values in grid]
            for name, folder in folders.items()}


def choose(found: dict[str, list[bool]], positives: Sequence[str], negatives: Sequence[str],
           grid: Sequence) -> tuple[object | None, int]:
    """The grid value detecting the most ``positives`` with no ``negatives`` (the middle of
    the best feasible values), and how many it detects; (None, 0) if no value is feasible.

    ``found[run][i]``: the mechanism is found in ``run`` at ``grid[i]``.
    """
    feasible = [i for i in range(len(grid)) if not any(found[n][i] for n in negatives)]
    if not feasible:
        return None, 0
    hits = {i: sum(found[p][i] for p in positives) for i in feasible}
    best = max(hits.values())
    tied = [i for i in feasible if hits[i] == best]
    return grid[tied[len(tied) // 2]], best


def calibrate_on(folders: dict[str, Path], labels: dict[str, str | None],
                 skip: str | None = None, mechanisms: Sequence[str] = tuple(PARAMETERS)
                 ) -> dict[str, dict]:
    """Per mechanism (of ``mechanisms``): the chosen threshold and its counts on these runs
    (``skip``: leave out that scenario's runs)."""
    out = {}
    for mechanism in mechanisms:
        fields, grid = PARAMETERS[mechanism]
        kept = {n: f for n, f in folders.items() if not skip or not n.startswith(skip + "-")}
        found = decisions(kept, mechanism)
        positives = [n for n in kept if labels[n] == mechanism]
        negatives = [n for n in kept if labels[n] is None]
        value, hits = choose(found, positives, negatives, grid)
        out[mechanism] = {"fields": list(fields), "value": None if value is None else list(value),
                          "default": [getattr(Thresholds(), f) for f in fields],
                          "detected": hits, "scenario_runs": len(positives),
                          "healthy_runs": len(negatives)}
    return out


def _collect(args: argparse.Namespace, seeds: Sequence[int]) -> tuple[dict, dict]:
    chosen = runs(seeds, args.only, args.variants)
    folders = {n: args.out / n for n in chosen if (args.out / n / "summary.json").is_file()}
    labels = {n: chosen[n][0].mechanism for n in folders}
    missing = sorted(set(chosen) - set(folders))
    if missing:
        print(f"not trained yet (left out): {', '.join(missing)}")
    return folders, labels


def calibrate(args: argparse.Namespace) -> None:
    folders, labels = _collect(args, args.seeds)
    table = calibrate_on(folders, labels)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    record = {"commit": commit, "seeds": list(args.seeds), "mechanisms": table}
    args.thresholds.write_text(json.dumps(record, indent=2) + "\n")
    print("| mechanism | default | calibrated | detected / scenario runs | "
          "healthy runs |\n|---|---|---|---|---|")
    for mechanism, row in table.items():
        print(f"| {mechanism} | {_show(row['fields'], row['default'])} | "
              f"{_show(row['fields'], row['value'])} | "
              f"{row['detected']} / {row['scenario_runs']} | {row['healthy_runs']} |")


def confusion(found: dict[str, set[str]], labels: dict[str, str | None]) -> dict[str, dict]:
    """Per mechanism: scenario runs detected and missed, healthy runs it fired on, and the
    other scenarios' runs it fired on."""
    table = {}
    for mechanism in PARAMETERS:
        mine = [n for n, label in labels.items() if label == mechanism]
        table[mechanism] = {
            "detected": sum(mechanism in found[n] for n in mine),
            "missed": sum(mechanism not in found[n] for n in mine),
            "false_positives": sum(mechanism in found[n] for n, lb in labels.items()
                                   if lb is None),
            "in_other_scenarios": sum(mechanism in found[n] for n, lb in labels.items()
                                      if lb not in (None, mechanism))}
    return table


def evaluate(args: argparse.Namespace) -> None:
    folders, labels = _collect(args, args.seeds)
    thresholds = read_thresholds(args.thresholds)
    found = {n: _kinds(f, thresholds) for n, f in folders.items()}
    for name in sorted(found):
        summary = json.loads((folders[name] / "summary.json").read_text())
        print(f"{name}: rel L2 {summary['rel_l2']:.3g}, expected {labels[name]}, found "
              f"{', '.join(sorted(found[name])) or 'nothing'}")
    _print_confusion(confusion(found, labels))
    healthy = [n for n in found if labels[n] is None]
    flagged = [f"{n} ({', '.join(sorted(found[n]))})" for n in healthy if found[n]]
    print(f"healthy runs with any finding (every kind, calibrated or not): {len(flagged)} / "
          f"{len(healthy)}{': ' + '; '.join(flagged) if flagged else ''}")


def _print_confusion(table: dict[str, dict]) -> None:
    print("| mechanism | detected | missed | false positives (healthy) | "
          "fired on other scenarios |\n|---|---|---|---|---|")
    for mechanism, row in table.items():
        print(f"| {mechanism} | {row['detected']} | {row['missed']} | "
              f"{row['false_positives']} | {row['in_other_scenarios']} |")


def loso(args: argparse.Namespace) -> None:
    calibration, labels_c = _collect(args, args.calibrate)
    held, labels_h = _collect(args, args.seeds)
    print("| left out | mechanism | threshold without it | detected on its held-out runs |"
          "\n|---|---|---|---|")
    for name, case in SCENARIOS.items():
        table = calibrate_on(calibration, labels_c, skip=name, mechanisms=[case.mechanism])
        row = table[case.mechanism]
        thresholds = at(row["fields"], row["value"])
        mine = [n for n in held if n.startswith(name + "-")]
        detected = sum(case.mechanism in _kinds(held[n], thresholds) for n in mine)
        print(f"| {name} | {case.mechanism} | {_show(row['fields'], row['value'])} | "
              f"{detected} / {len(mine)} |")


def _remedied(folder: Path) -> dict:
    """The remedy rerun of ``folder`` (``folder-remedied``): trained unless finished."""
    out = folder.with_name(folder.name + "-remedied")
    done = out / "remedy.json"
    return json.loads(done.read_text()) if done.is_file() else rerun_with_remedies(folder, out)


def _remedy_candidates(args: argparse.Namespace) -> dict[str, Path]:
    """Held-out scenario runs whose own mechanism the frozen thresholds detect, each with its
    diagnosis.json written under those thresholds (as `pinnsketch diagnose RUN --thresholds
    FILE` writes it)."""
    folders, labels = _collect(args, args.seeds)
    thresholds = read_thresholds(args.thresholds)
    chosen = {}
    for name, folder in sorted(folders.items()):
        if labels[name] is not None and labels[name] in _kinds(folder, thresholds):
            diagnose_run(folder, thresholds)
            chosen[name] = folder
    return chosen


def remedy(args: argparse.Namespace) -> None:
    chosen = _remedy_candidates(args)
    results = dict(in_processes(_remedied, [(f,) for f in chosen.values()], args.jobs))
    print("| run | found | remedy | rel L2 before | after | ratio |\n|---|---|---|---|---|---|")
    for index, name in enumerate(chosen):
        result = results[index]
        before, after = result["rel_l2_before"], result["rel_l2_after"]
        print(f"| {name} | {', '.join(result['findings'])} | {' '.join(result['overrides'])} "
              f"| {before:.3g} | {after:.3g} | {before / after:.3g} |")


# The overrides that add or change the quasi-Newton phase (the ill-conditioning, stagnation,
# conflict and optimizer-stall remedies); the ablation trains them and the rest apart.
SECOND_ORDER_KEYS = ("train.quasi_newton", "train.lbfgs_steps")


def split_remedy(overrides: Sequence[str]) -> dict[str, list[str]]:
    """``{"second_order": [...], "rest": [...]}``: ``overrides`` split by key into the
    quasi-Newton phase's and every other finding's."""
    second = [o for o in overrides if o.split("=", 1)[0] in SECOND_ORDER_KEYS]
    return {"second_order": second, "rest": [o for o in overrides if o not in second]}


def _train_arm(folder: Path, overrides: Sequence[str], out: Path) -> dict:
    """``folder``'s config with ``overrides``, trained into ``out`` (finished: read back;
    interrupted: continued)."""
    if (out / "summary.json").is_file():
        return RunDir(out).read_summary()
    config = pinnsketch.load_config(RunDir(folder).config_path, list(overrides))
    resume = RunDir(out).checkpoint_path.is_file()
    run = pinnsketch.train(config, resume=out) if resume else pinnsketch.train(config, out=out)
    return run.summary


def ablate(args: argparse.Namespace) -> None:
    """Each remedy (``remedy`` must have run) split into its quasi-Newton phase and the rest
    (:func:`split_remedy`), each arm trained alone from the scenario's config; an empty arm
    is not trained."""
    chosen = _remedy_candidates(args)
    full = {name: _remedied(folder) for name, folder in chosen.items()}
    calls, where = [], []
    for name, folder in chosen.items():
        for arm, overrides in split_remedy(full[name]["overrides"]).items():
            if overrides:
                calls.append((folder, overrides, folder.with_name(f"{folder.name}-{arm}")))
                where.append((name, arm))
    summaries = {where[i]: s for i, s in in_processes(_train_arm, calls, args.jobs)}
    print("| run | rel L2 before | full remedy | quasi-Newton phase only | the rest only | "
          "the rest |\n|---|---|---|---|---|---|")
    for name in chosen:
        arms = {arm: summaries.get((name, arm), {}).get("rel_l2") for arm in
                ("second_order", "rest")}
        cells = " | ".join("-" if v is None else f"{v:.3g}" for v in arms.values())
        rest = " ".join(split_remedy(full[name]["overrides"])["rest"]) or "-"
        print(f"| {name} | {full[name]['rel_l2_before']:.3g} | "
              f"{full[name]['rel_l2_after']:.3g} | {cells} | `{rest}` |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("train", "calibrate", "evaluate", "loso", "remedy",
                                                  "ablate"))
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--calibrate", nargs="+", type=int, default=[0, 1],
                        help="loso: the calibration seeds")
    parser.add_argument("--only", nargs="+", default=(), help="these cases only")
    parser.add_argument("--variants", nargs="+", default=[""], choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "diagnosis")
    parser.add_argument("--thresholds", type=Path, default=ROOT / "runs" / "diagnosis" /
                        "thresholds.json")
    args = parser.parse_args()
    defaults = {"train": [0, 1, 2, 3, 4], "calibrate": [0, 1], "evaluate": [2, 3, 4],
                "loso": [2, 3, 4], "remedy": [2], "ablate": [2]}
    args.seeds = args.seeds or defaults[args.command]
    {"train": train, "calibrate": calibrate, "evaluate": evaluate, "loso": loso,
     "remedy": remedy, "ablate": ablate}[args.command](args)


if __name__ == "__main__":
    main()
