"""A healthy and a deliberately stalled Burgers run, and what the gradient monitor says of each.

``problems/burgers_healthy.yaml`` and ``problems/burgers_stalled.yaml`` are the same soft-
constrained Burgers PINN except for the loss weights: the stalled one weights the boundary and
initial terms 1e-4, so Adam slides onto u = 0 (which solves the PDE) and the initial-condition
loss never moves. Both runs are monitored (``monitor.enabled: true``) and write diagnosis.md
and heat maps; the stalled run must be flagged (a trivial-solution trap on ``ic``: the PDE
is fitted by u ≈ 0 while the initial condition stays put), the healthy one must get no
finding from its gradients (its report may add, from its record, that the Adam-only run is
still converging slowly: an ill-conditioning finding with a second-order phase as remedy).

    python examples/diagnose_stall.py [--steps 3000] [--out runs/diagnose-stall]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pinnsketch
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.diagnosis import diagnose
from pinnsketch.monitor import SketchMonitor

PROBLEMS = Path(__file__).resolve().parents[1] / "problems"


def main(steps: int = 3000, out: str | Path = "runs/diagnose-stall",
         overrides: tuple[str, ...] = ()) -> dict[str, dict]:
    """Train both runs for ``steps`` Adam steps; returns {name: {rel_l2, findings, report}}."""
    results = {}
    for name in ("healthy", "stalled"):
        config = pinnsketch.load_config(PROBLEMS / f"burgers_{name}.yaml",
                                        [f"train.adam_steps={steps}", "output.progress=false",
                                         *overrides])
        folder = Path(out) / name
        run = pinnsketch.train(config, out=folder)
        state = RunDir(folder).load_checkpoint()["trainer"]["monitor"]
        findings = diagnose(SketchMonitor.from_state_dict(state).history_view(),
                            config.train.weights)
        results[name] = {"rel_l2": run.summary["rel_l2"], "findings": findings,
                         "report": (folder / "diagnosis.md").read_text()}
        print(f"== {name}: relative L2 error {run.summary['rel_l2']:.3g}, "
              f"{len(findings)} finding(s); full report: {folder / 'diagnosis.md'}")
        for f in findings:
            print(f"  - {f.kind}: term {f.term}, layer {f.layer}, steps {f.steps[0]}-{f.steps[1]}"
                  f"\n    {f.message}\n    suggestion: {f.suggestion}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", default="runs/diagnose-stall")
    args = parser.parse_args()
    main(args.steps, args.out)
