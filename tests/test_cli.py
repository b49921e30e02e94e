"""The command line: an end-to-end tiny run writes every artefact; bad input exits 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_overrides
from pinnsketch.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real command in a fresh interpreter (what a user types)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pinnsketch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """The same entry point in-process (fast); returns (status, stdout, stderr)."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_run_writes_every_artefact(tmp_path):
    out = tmp_path / "run"
    result = _cli("run", str(ROOT / "problems" / "burgers.yaml"), "--out", str(out),
                  *_sets(tiny_overrides(20, 10)))
    assert result.returncode == 0, result.stderr
    assert "rel_l2 =" in result.stdout
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoint.pt",
                 "plots/solution.png", "plots/curves.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 10, 20, 30]  # a step-0 row: the initial losses
    assert metrics[-1]["rel_l2"] == summary["rel_l2"]


def test_problems_lists_builtins(capsys):
    status, out, _ = _main(capsys, "problems")
    assert status == 0
    first_words = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert first_words == ["allen_cahn", "burgers", "burgers_identification", "cavity",
                           "convection", "heat", "heat2d", "heat_varying", "helmholtz2d", "kdv",
                           "klein_gordon", "kovasznay", "poisson", "poisson_holes",
                           "reaction", "reaction_diffusion", "wave"]


BAD_INPUT = [
    ("unknown-key", ["--set", "train.adam_step=5"], "did you mean 'adam_steps'"),
    ("wrong-type", ["--set", "train.lr=fast"], "train.lr"),
    ("out-of-range", ["--set", "model.depth=0"], "model.depth"),
    ("bad-weight-term", ["--set", "train.weights={bcc: 2}"], "train.weights.bcc"),
    ("no-cuda", ["--device", "cuda"], "train.device"),
]


@pytest.mark.parametrize("args,fragment", [b[1:] for b in BAD_INPUT], ids=[b[0] for b in BAD_INPUT])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, fragment):
    import torch

    if args[0] == "--device" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "never"
    status, _, err = _main(capsys, "run", str(ROOT / "problems" / "burgers.yaml"),
                           "--out", str(out), *args)
    assert status == 2
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    result = _cli("run", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "not found" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_existing_run_folder_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    args = ("run", str(ROOT / "problems" / "poisson.yaml"), "--out", str(out),
            *_sets(tiny_overrides(10, 0)))
    assert _main(capsys, *args)[0] == 0
    before = (out / "metrics.jsonl").read_text()
    status, _, err = _main(capsys, *args)
    assert status == 2 and "already holds a run" in err
    assert (out / "metrics.jsonl").read_text() == before
