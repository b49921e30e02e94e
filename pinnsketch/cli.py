"""The pinnsketch command: solve PDEs from YAML configs, check them, compare, diagnose."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import shutil
import sys
import textwrap
from pathlib import Path

from pinnsketch.version import __version__
from pinnsketch.api import check_config, train
from pinnsketch.bench import BENCHMARKS, bench, read_beside
from pinnsketch.compare import compare, parse_modes
from pinnsketch.config import load_config
from pinnsketch.diagnosis import Thresholds
from pinnsketch.errors import ConfigError, NonFiniteLoss, RunInterrupted, suggest
from pinnsketch.problems import BUILTIN_PROBLEMS
from pinnsketch.runner.diagnosis import diagnose_run, read_thresholds
from pinnsketch.runner.remedy import rerun_with_remedies

__all__ = ["main"]

EPILOG = """\
examples:
  pinnsketch run problems/burgers.yaml
  pinnsketch run problems/burgers.yaml --set train.adam_steps=200 --set train.lbfgs_steps=0
  pinnsketch run --resume runs/burgers-20261202-101500
  pinnsketch check problems/heat.yaml
  pinnsketch problems heat
  pinnsketch compare problems/heat_data.yaml --modes exact,sketched --ranks 2,8
  pinnsketch diagnose runs/burgers-20261202-101500
  pinnsketch bench --problems convection reaction --seeds 0 1 2

exit status:
  0    done (also: a resumed run that had already finished)
  1    the run diverged (non-finite loss; the last good checkpoint is kept)
  2    bad input: one line naming the key, the value and what is allowed; nothing written
  130  interrupted (Ctrl-C); the message says what was saved and how to continue
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinnsketch", description=__doc__.splitlines()[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pinnsketch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="solve a problem from a YAML config")
    run.add_argument("config", nargs="?", help="YAML config (optional with --resume)")
    run.add_argument("--out", help="run folder (default runs/<problem>-<timestamp>)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    run.add_argument("--device", choices=("cpu", "cuda"),
                     help="shorthand for --set train.device=...")

    check = commands.add_parser("check", help="check a config (and its problem) without "
                                              "training; exit 0 or 2")
    check.add_argument("config", help="YAML config")
    check.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")

    problems = commands.add_parser("problems", help="list the built-in problems, or show one "
                                                    "problem's options")
    problems.add_argument("name", nargs="?", help="a built-in problem name")

    comp = commands.add_parser(
        "compare", help="run exact and sketched data-term gradients side by side")
    comp.add_argument("config", help="YAML config with a data term")
    comp.add_argument("--modes", default="exact,sketched",
                      help="comma-separated: exact, sketched, sketched-batch, sketched-ema")
    comp.add_argument("--ranks", help="comma-separated sketch ranks (default: the config's)")
    comp.add_argument("--out", help="folder for the runs and the comparison "
                                    "(default runs/compare-<timestamp>)")
    comp.add_argument("--jobs", type=int, default=1,
                      help="modes trained at once, one process each (default 1)")
    comp.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")

    suite = commands.add_parser(
        "bench", help="the benchmark configs over seeds, beside the published figures")
    suite.add_argument("--problems", nargs="+", default=list(BENCHMARKS), metavar="NAME",
                       help="config names in --configs (default: the whole suite)")
    suite.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    suite.add_argument("--configs", default="problems", help="folder of the YAML configs "
                                                             "(default problems/)")
    suite.add_argument("--out", default="runs/bench", help="bench folder (default runs/bench; "
                                                           "finished runs there are reused)")
    suite.add_argument("--jobs", type=int, default=1,
                       help="runs trained at once, one process each (default 1)")
    suite.add_argument("--beside", metavar="FILE",
                       help="another toolkit's results (JSON rows: problem, seed, rel_l2, "
                            "wall_s_total), set beside ours")
    suite.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY.PATH=VALUE", help="override a value in every run")

    diagnose = commands.add_parser("diagnose", help="stall diagnosis of a monitored run")
    diagnose.add_argument("run_dir", metavar="RUN_DIR")
    diagnose.add_argument("--rerun", action="store_true",
                          help="train the run again with its findings' remedies and report "
                               "rel L2 before and after")
    diagnose.add_argument("--out", metavar="DIR",
                          help="run folder of the rerun (default RUN_DIR-remedied)")
    diagnose.add_argument("--thresholds", metavar="FILE",
                          help="decision thresholds from a calibration record (e.g. "
                               "benchmarks/diagnosis_thresholds.json); default: the built-in "
                               "ones")
    return parser


def _run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.resume and args.out:
        raise ConfigError("--out: cannot be combined with --resume (the run folder is kept)")
    if args.config is None and args.resume is None:
        raise ConfigError("run: give a CONFIG file, or --resume RUN_DIR")
    config_path = args.config or Path(args.resume) / "config.yaml"
    if args.resume and not Path(config_path).exists():
        raise ConfigError(f"--resume {args.resume}: no config.yaml in that folder")
    config = load_config(config_path, overrides)
    try:
        run = train(config, out=args.out, resume=args.resume)
    except NonFiniteLoss as err:
        print(f"pinnsketch: error: {err}; stopped, the last good checkpoint is kept",
              file=sys.stderr)
        return 1
    except RunInterrupted as err:
        folder = Path(err.folder)
        if err.checkpoint_saved:
            said = f"checkpoint of step {err.step} saved in {folder}"
        elif (folder / "checkpoint.pt").exists():
            said = f"the last periodic checkpoint in {folder} is kept"
        else:
            print(f"pinnsketch: interrupted at step {err.step} before any checkpoint was "
                  f"written; nothing to resume (metrics so far, if any, are in {folder})",
                  file=sys.stderr)
            return 130
        print(f"pinnsketch: interrupted; {said}; continue with "
              f"`pinnsketch run --resume {folder}`", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("pinnsketch: interrupted before training started; nothing was written",
              file=sys.stderr)
        return 130
    summary = run.summary
    if not summary:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    rel = summary["rel_l2"]
    error = f"rel_l2 = {rel:.3e}" if rel is not None else "rel_l2 not measured (no reference)"
    reasons = "; ".join(f"{phase}: {why}" for phase, why in summary["stop_reasons"].items())
    print(f"{run.path}: {error} after {summary['steps']} steps ({summary['wall_s']:.1f} s); "
          f"{'stopped: ' + reasons if reasons else 'no optimiser steps in the schedule'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    check_config(config)
    print(f"{args.config}: ok")
    return 0


def _problems(args: argparse.Namespace) -> int:
    width = shutil.get_terminal_size((100, 20)).columns
    if args.name is None:
        column = max(len(n) for n in BUILTIN_PROBLEMS) + 2
        for name, cls in BUILTIN_PROBLEMS.items():
            doc = " ".join((cls.__doc__ or "").split())
            first = doc.split(". ")[0].rstrip(".") + "."
            outputs = (f" → ({', '.join(cls.output_names)})" if len(cls.output_names) > 1
                       else "")
            lines = textwrap.wrap(f"({', '.join(cls.input_names)}){outputs} {first}",
                                  max(40, width - column))
            print(f"{name:<{column}}{lines[0]}")
            for line in lines[1:]:
                print(" " * column + line)
        return 0
    if args.name not in BUILTIN_PROBLEMS:
        raise ConfigError(f"problems: got {args.name!r}{suggest(args.name, BUILTIN_PROBLEMS)} "
                          f"(allowed: {', '.join(BUILTIN_PROBLEMS)})")
    cls = BUILTIN_PROBLEMS[args.name]
    print(f"{args.name}: {' '.join((cls.__doc__ or '').split())}")
    print(f"inputs: {', '.join(cls.input_names)}")
    if len(cls.output_names) > 1:
        print(f"outputs: {', '.join(cls.output_names)}; loss terms of the PDE: "
              f"{', '.join(cls.equations)}")
    fields = dataclasses.fields(cls.Options)
    print("options (YAML keys beside `type`, with defaults):" if fields else "options: none")
    for f in fields:
        print(f"  {f.name}: {f.default!r}")
    doc = " ".join((cls.Options.__doc__ or "").split())
    if fields and doc:
        print(textwrap.fill(doc, width - 2, initial_indent="  ", subsequent_indent="  "))
    return 0


def _compare(args: argparse.Namespace) -> int:
    modes = parse_modes(args.modes, args.ranks)
    config = load_config(args.config, args.overrides)
    check_config(config)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/compare-{stamp}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: folder exists and is not empty")
    compare(config, modes, out, jobs=args.jobs)
    print((out / "comparison.md").read_text(), end="")
    print(f"figure: {out / 'comparison.png'}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    beside = read_beside(Path(args.beside)) if args.beside else None
    bench(args.problems, args.seeds, Path(args.configs), Path(args.out), args.overrides,
          jobs=args.jobs, beside=beside)
    print((Path(args.out) / "bench.md").read_text(), end="")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    if args.out and not args.rerun:
        raise ConfigError("--out: only with --rerun (the diagnosis is written in RUN_DIR)")
    thresholds = read_thresholds(args.thresholds) if args.thresholds else Thresholds()
    print(diagnose_run(Path(args.run_dir), thresholds))
    if args.rerun:
        result = rerun_with_remedies(args.run_dir, args.out)
        before, after = result["rel_l2_before"], result["rel_l2_after"]
        print(f"remedy: --set {' --set '.join(result['overrides'])}")
        for lost in result["skipped"]:
            print(f"not applied (another finding set the key): {lost}")
        if before is not None and after is not None:
            print(f"rel L2: {before:.3e} before, {after:.3e} after ({before / after:.3g}× "
                  f"better)" if after < before else
                  f"rel L2: {before:.3e} before, {after:.3e} after (no improvement)")
        print(f"rerun: {result['out']}")
    return 0


COMMANDS = {"run": _run, "check": _check, "problems": _problems, "compare": _compare,
            "bench": _bench, "diagnose": _diagnose}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    # Only rank 0 of a distributed run logs progress; the others report warnings only.
    level = logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"pinnsketch: error: {err}", file=sys.stderr)
        return 2
