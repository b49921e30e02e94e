"""The ``pinnsketch`` command: run, problems, compare, diagnose.

Exit status: 0 success; 1 the run diverged or failed; 2 bad input (one line, no traceback,
nothing written); 130 interrupted (checkpoint saved).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pinnsketch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="solve a problem from a YAML config")
    run.add_argument("config", nargs="?", help="YAML config (optional with --resume)")
    run.add_argument("--out", help="run folder (default runs/<problem>-<timestamp>)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    run.add_argument("--device", choices=("cpu", "cuda"),
                     help="shorthand for --set train.device=...")

    commands.add_parser("problems", help="list the built-in problems")

    compare = commands.add_parser(
        "compare", help="run exact and sketched data-term gradients side by side")
    compare.add_argument("config", help="YAML config with a data term")
    compare.add_argument("--modes", default="exact,sketched",
                         help="comma-separated: exact, sketched, sketched-batch, sketched-ema")
    compare.add_argument("--ranks", help="comma-separated sketch ranks (default: the config's)")
    compare.add_argument("--out", help="folder for the runs and the comparison "
                                       "(default runs/compare-<timestamp>)")
    compare.add_argument("--jobs", type=int, default=1,
                         help="modes trained at once, one process each (default 1)")
    compare.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")

    diagnose = commands.add_parser("diagnose", help="stall diagnosis of a monitored run")
    diagnose.add_argument("run_dir", metavar="RUN_DIR")
    return parser


def _run(args: argparse.Namespace) -> int:
    from pinnsketch.api import train
    from pinnsketch.config import ConfigError, load_config
    from pinnsketch.trainer import NonFiniteLoss

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
    except KeyboardInterrupt:
        where = args.resume or args.out or "the run folder"
        print(f"pinnsketch: interrupted; checkpoint saved, continue with "
              f"`pinnsketch run --resume {where}`", file=sys.stderr)
        return 130
    summary = run.summary
    if not summary:  # a non-zero rank of a distributed run: rank 0 reports
        return 0
    reasons = "; ".join(f"{phase}: {why}" for phase, why in summary["stop_reasons"].items())
    print(f"{run.path}: rel_l2 = {summary['rel_l2']:.3e} after {summary['steps']} steps "
          f"({summary['wall_s']:.1f} s); stopped: {reasons}")
    return 0


def _problems(args: argparse.Namespace) -> int:
    from pinnsketch.problems import BUILTIN_PROBLEMS

    for name, cls in BUILTIN_PROBLEMS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:10s} inputs ({', '.join(cls.input_names)})  {doc}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import datetime

    from pinnsketch.compare import compare, parse_modes
    from pinnsketch.config import ConfigError, load_config

    modes = parse_modes(args.modes, args.ranks)
    config = load_config(args.config, args.overrides)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/compare-{stamp}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: folder exists and is not empty")
    compare(config, modes, out, jobs=args.jobs)
    print((out / "comparison.md").read_text(), end="")
    print(f"figure: {out / 'comparison.png'}")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from pinnsketch.config import ConfigError
    from pinnsketch.sketch.diagnosis import diagnose_run

    folder = Path(args.run_dir)
    if not (folder / "checkpoint.pt").is_file():
        raise ConfigError(f"{folder}: not a run folder (no checkpoint.pt)")
    print(diagnose_run(folder))
    return 0


COMMANDS = {"run": _run, "problems": _problems, "compare": _compare, "diagnose": _diagnose}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from pinnsketch.config import ConfigError

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"pinnsketch: error: {err}", file=sys.stderr)
        return 2
