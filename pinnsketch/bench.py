"""``pinnsketch bench``: the shipped benchmark configs over seeds, our rel L2 beside the
published figures.

Each (config, seed) trains into ``OUT/<config>-seed<seed>``; a folder that already holds a
run is continued from its checkpoint, or read as it is when it finished (so a killed bench
resumes where it stopped and a rerun costs nothing). Writes ``OUT/bench.md`` (the table),
``OUT/bench.json`` (every run's figures) and ``OUT/bench.png`` (every seed's error beside
the published one) and returns the rows.
"""
from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Sequence

from pinnsketch.config import load_config
from pinnsketch.errors import ConfigError
from pinnsketch.plots import bench_figure
from pinnsketch.runner.parallel import in_processes
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.runner.session import train

__all__ = ["ANCHORS", "BENCHMARKS", "bench", "published", "read_beside"]

log = logging.getLogger(__name__)

# The suite, by config name (problems/<name>.yaml).
BENCHMARKS = ("burgers", "poisson", "heat", "heat2d", "convection", "reaction",
              "reaction_diffusion", "wave", "allen_cahn", "kdv", "klein_gordon", "helmholtz2d",
              "heat_varying", "poisson_holes", "kovasznay", "cavity")

# Published rel L2 to set beside ours, with its source; only figures whose set-up matches
# the config's problem (our networks and budgets differ: the table says so), or, where the
# source says so, a neighbouring problem given for scale.
ANCHORS: dict[str, tuple[float, str]] = {
    "burgers": (6.7e-4, "Raissi et al. 2019"),
    "convection": (4.2e-3, "Rathore et al. 2024, Adam + L-BFGS"),
    "reaction": (1.9e-2, "Rathore et al. 2024"),
    "wave": (5.5e-2, "Rathore et al. 2024"),
    "allen_cahn": (2.2e-5, "PirateNets, Wang et al. 2024"),
    "kdv": (4.3e-4, "PirateNets, Wang et al. 2024"),
    "poisson_holes": (1.2e-2, "PINNacle Poisson 2d-C, best method; its Laplace problem on "
                              "this geometry, for scale"),
}


def published(name: str) -> str:
    """The published figure of a config, with its source, or ``none recorded``."""
    if name not in ANCHORS:
        return "none recorded"
    value, source = ANCHORS[name]
    return f"{value:.1e} ({source})"


def read_beside(path: Path) -> tuple[str, list[dict]]:
    """Another toolkit's results to set beside ours: a JSON list of rows with ``problem``
    (a config name), ``seed``, ``rel_l2`` and ``wall_s_total`` (seconds), as
    ``benchmarks/deepxde_side_by_side.py`` writes; labelled by the file's ``label`` field of
    its first row, else its stem.

    Raises:
        ConfigError: the file is missing, not such a list, or a row lacks a field.
    """
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--beside: cannot read {path}: {err}") from None
    needed = ("problem", "seed", "rel_l2", "wall_s_total")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in needed)
                                             for r in rows):
        raise ConfigError(f"--beside: {path} must hold a JSON list of rows with "
                          f"{', '.join(needed)}")
    label = rows[0].get("label") if rows else None
    return label or Path(path).stem, rows


def bench(names: Sequence[str], seeds: Sequence[int], configs: Path, out: Path,
          overrides: Sequence[str] = (), jobs: int = 1,
          beside: tuple[str, list[dict]] | None = None) -> list[dict]:
    """Train (or read) every config in ``names`` for every seed; write the table.

    Args:
        names: config names, files ``configs/<name>.yaml``.
        seeds: the ``train.seed`` of each run.
        configs: the folder of the YAML configs (the repository's ``problems/``).
        out: the bench folder.
        overrides: ``key.path=value`` applied to every run (e.g. a shorter budget).
        jobs: runs trained at once, one process each (their wall times then include the
            contention for the cores).
        beside: ``(label, rows)`` of another toolkit (:func:`read_beside`), tabulated in a
            column of its own (median rel L2 over its seeds, and its wall times).

    ``bench.md``, ``bench.json`` and ``bench.png`` are rewritten as each run finishes, so an
    interrupted bench keeps the rows it finished (and a rerun reads their folders). One log
    line per finished run.

    Raises:
        ConfigError: a missing config (naming the folder and the configs it has) or an
            invalid one, before anything is trained.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs: got {jobs!r}, expected an integer >= 1")
    paths = {name: Path(configs) / f"{name}.yaml" for name in names}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        present = sorted(p.stem for p in Path(configs).glob("*.yaml"))
        raise ConfigError(f"bench: no config {', '.join(missing)} in {configs} (there: "
                          f"{', '.join(present) or 'no YAML files'})")
    runs = {(name, seed): load_config(path, [f"train.seed={seed}", "output.progress=false",
                                             *overrides])
            for name, path in paths.items() for seed in seeds}  # every config checked first
    calls = [(name, seed, config, Path(out) / f"{name}-seed{seed}")
             for (name, seed), config in runs.items()]
    rows: list[dict | None] = [None] * len(calls)
    Path(out).mkdir(parents=True, exist_ok=True)
    for done, (index, row) in enumerate(in_processes(_bench_run, calls, jobs), start=1):
        rows[index] = row
        log.info("bench %d/%d: %s seed %d: rel L2 %s in %.0f s", done, len(calls),
                 row["config"], row["seed"], _fmt(row["rel_l2"]), row["wall_s"])
        _write(Path(out), [r for r in rows if r is not None], seeds, beside)
    return rows


def _bench_run(name: str, seed: int, config, folder: Path) -> dict:
    """Train one (config, seed) into ``folder``, continuing or reading a run already there."""
    resume = RunDir(folder).checkpoint_path.is_file()
    summary = (train(config, resume=folder) if resume else train(config, out=folder)).summary
    return {"config": name, "seed": seed, "rel_l2": summary["rel_l2"],
            **({"rel_l2_outputs": summary["rel_l2_outputs"]}
               if "rel_l2_outputs" in summary else {}),
            "steps": summary["steps"], "wall_s": summary["wall_s"],
            "stop_reasons": summary["stop_reasons"]}


def _write(out: Path, rows: list[dict], seeds: Sequence[int],
           beside: tuple[str, list[dict]] | None) -> None:
    (out / "bench.md").write_text(table(rows, seeds, beside))
    (out / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    bench_figure(rows, ANCHORS).savefig(out / "bench.png", dpi=110)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def table(rows: Sequence[dict], seeds: Sequence[int],
          beside: tuple[str, list[dict]] | None = None) -> str:
    """Markdown: per config the rel L2 of each seed (— while not run), median and worst of
    those run, the published figure and the range of wall times; with ``beside``, the other
    toolkit's median rel L2 (and seeds) and wall times for the same config."""
    extra = f" | {beside[0]}: median (seeds), wall s" if beside else ""
    lines = ["| config | " + " | ".join(f"seed {s}" for s in seeds)
             + f" | median | worst | published | wall s{extra} |",
             "|---|" + "---|" * (len(seeds) + 4 + bool(beside))]
    for name in dict.fromkeys(r["config"] for r in rows):
        by_seed = {r["seed"]: r for r in rows if r["config"] == name}
        errors = [r["rel_l2"] for r in by_seed.values()]
        walls = [r["wall_s"] for r in by_seed.values()]
        cells = [_fmt(by_seed[s]["rel_l2"]) if s in by_seed else "—" for s in seeds]
        line = (f"| {name} | " + " | ".join(cells)
                + f" | {statistics.median(errors):.2e} | {max(errors):.2e} | "
                  f"{published(name)} | {min(walls):.0f}–{max(walls):.0f} |")
        if beside:
            theirs = [r for r in beside[1] if r["problem"] == name]
            line += (f" {statistics.median(r['rel_l2'] for r in theirs):.2e} "
                     f"({len(theirs)}), {min(r['wall_s_total'] for r in theirs):.0f}–"
                     f"{max(r['wall_s_total'] for r in theirs):.0f} |" if theirs else " — |")
        lines.append(line)
    return "\n".join(lines) + "\n"
