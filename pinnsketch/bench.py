"""``pinnsketch bench``: the shipped benchmark configs over seeds, our rel L2 beside the
published figures.

Each (config, seed) trains into ``OUT/<config>-seed<seed>``; a folder that already holds a
run is continued from its checkpoint, or read as it is when it finished (so a killed bench
resumes where it stopped and a rerun costs nothing). Writes ``OUT/bench.md`` (the table)
and ``OUT/bench.json`` (every run's figures) and returns the rows.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Sequence

from pinnsketch.config import load_config
from pinnsketch.errors import ConfigError
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.runner.session import train

__all__ = ["BENCHMARKS", "PUBLISHED", "bench"]

# The suite, by config name (problems/<name>.yaml).
BENCHMARKS = ("burgers", "poisson", "heat", "convection", "reaction", "reaction_diffusion",
              "wave", "allen_cahn", "kdv", "klein_gordon", "helmholtz2d")

# Published rel L2 to set beside ours, with its source; only figures whose set-up matches
# the config's problem (our networks and budgets differ: the table says so).
PUBLISHED = {
    "burgers": "6.7e-4 (Raissi et al. 2019)",
    "convection": "4.2e-3 (Rathore et al. 2024, Adam + L-BFGS)",
    "reaction": "1.9e-2 (Rathore et al. 2024)",
    "wave": "5.5e-2 (Rathore et al. 2024)",
    "allen_cahn": "2.2e-5 (PirateNets, Wang et al. 2024)",
}


def bench(names: Sequence[str], seeds: Sequence[int], configs: Path, out: Path,
          overrides: Sequence[str] = ()) -> list[dict]:
    """Train (or read) every config in ``names`` for every seed; write the table.

    Args:
        names: config names, files ``configs/<name>.yaml``.
        seeds: the ``train.seed`` of each run.
        configs: the folder of the YAML configs (the repository's ``problems/``).
        out: the bench folder.
        overrides: ``key.path=value`` applied to every run (e.g. a shorter budget).

    Raises:
        ConfigError: a missing config (naming the folder and the configs it has) or an
            invalid one, before anything is trained.
    """
    paths = {name: Path(configs) / f"{name}.yaml" for name in names}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        present = sorted(p.stem for p in Path(configs).glob("*.yaml"))
        raise ConfigError(f"bench: no config {', '.join(missing)} in {configs} (there: "
                          f"{', '.join(present) or 'no YAML files'})")
    runs = {(name, seed): load_config(path, [f"train.seed={seed}", "output.progress=false",
                                             *overrides])
            for name, path in paths.items() for seed in seeds}  # every config checked first
    rows = []
    for (name, seed), config in runs.items():
        folder = Path(out) / f"{name}-seed{seed}"
        resume = RunDir(folder).checkpoint_path.is_file()
        run = train(config, resume=folder) if resume else train(config, out=folder)
        summary = run.summary
        rows.append({"config": name, "seed": seed, "rel_l2": summary["rel_l2"],
                     "steps": summary["steps"], "wall_s": summary["wall_s"],
                     "stop_reasons": summary["stop_reasons"]})
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "bench.md").write_text(table(rows, seeds))
    (Path(out) / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def table(rows: Sequence[dict], seeds: Sequence[int]) -> str:
    """Markdown: per config the rel L2 of each seed, median, worst, the published figure."""
    lines = ["| config | " + " | ".join(f"seed {s}" for s in seeds)
             + " | median | worst | published | wall s |",
             "|---|" + "---|" * (len(seeds) + 4)]
    for name in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == name]
        errors = [r["rel_l2"] for r in mine]
        walls = [r["wall_s"] for r in mine]
        lines.append(f"| {name} | " + " | ".join(f"{e:.2e}" for e in errors)
                     + f" | {statistics.median(errors):.2e} | {max(errors):.2e} | "
                       f"{PUBLISHED.get(name, 'none recorded')} | "
                       f"{min(walls):.0f}–{max(walls):.0f} |")
    return "\n".join(lines) + "\n"
