"""What a user meets: problems as objects, checks before anything is written, resume that
never destroys a result, shape errors, where problem modules are found, the CLI's words,
figures a reader can trust, and file permissions. Each test goes through the public API or
the real command."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch import ConfigError, Domain, Problem, gradient, partial
from pinnsketch.cli import main
from pinnsketch.plots import curves_figure, solution_figure

ROOT = Path(__file__).resolve().parents[1]
MYPDE = Path(__file__).resolve().parent / "data" / "mypde"
TINY = {"model": {"width": 8, "depth": 2}, "sampling": {"interior": 32, "boundary": 8},
        "train": {"adam_steps": 20, "lbfgs_steps": 0, "eval_every": 10, "dtype": "float64"},
        "output": {"progress": False, "plots": False}}


def _cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pinnsketch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


class Ramp(Problem):
    """u'' = 0 on [0, 1], u(0) = 0, u(1) = 1 (solution u = x); no Options, no reference."""

    input_names = ("x",)
    domain = Domain((0.0,), (1.0,))

    def pde_residual(self, model, points):
        return partial(gradient(model(points), points)[:, 0], points, 0)

    def boundary_value(self, points):
        return points[:, 0]


class RampWithReference(Ramp):
    def reference(self, points):
        return points[:, 0].copy()


# -- problems as objects (house issue) ----------------------------------------------------
def test_a_problem_object_trains_without_a_type_and_without_a_reference(tmp_path):
    run = pinnsketch.train(TINY, problem=Ramp(), out=tmp_path / "ramp")
    assert run.summary["rel_l2"] is None and "no reference" in run.summary["rel_l2_note"]
    assert run.summary["steps"] == 20
    source = json.loads((tmp_path / "ramp" / "problem.json").read_text())
    assert source["class"] == "Ramp" and source["module"] == "test_user_facing"
    again = pinnsketch.load_run(tmp_path / "ramp", problem=Ramp())
    x = np.linspace(0, 1, 5)[:, None]
    np.testing.assert_array_equal(again.predict(x), run.predict(x))


def test_a_problem_object_with_a_reference_reports_its_error(tmp_path):
    run = pinnsketch.train(TINY, problem=RampWithReference(), out=tmp_path / "r")
    grid = np.linspace(0, 1, 1024)[:, None]  # the default plotting grid of a 1-D problem
    expected = np.linalg.norm(run.predict(grid) - grid[:, 0]) / np.linalg.norm(grid[:, 0])
    assert run.summary["rel_l2"] == pytest.approx(expected, rel=1e-12)


def test_a_class_defined_in_main_needs_the_object_to_reopen(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import pinnsketch, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_user_facing import Ramp, TINY\n"
        "class Local(Ramp):\n    pass\n"
        f"pinnsketch.train(TINY, problem=Local(), out={str(tmp_path / 'run')!r})\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    with pytest.raises(ConfigError, match="defined in a script's __main__; pass it"):
        pinnsketch.load_run(tmp_path / "run")
    assert pinnsketch.load_run(tmp_path / "run", problem=Ramp()).summary["steps"] == 20


@pytest.mark.parametrize("broken,message", [
    ("domain", "defines no domain"),
    ("input_names", "input_names must be a tuple of 1 strings"),
    ("pde_residual", "does not define pde_residual"),
], ids=["no-domain", "no-input-names", "no-residual"])
def test_an_incomplete_problem_class_is_one_line_exit_2(tmp_path, broken, message):
    source = (MYPDE / "laplace.py").read_text()
    if broken == "pde_residual":
        source = source.replace("def pde_residual", "def residual_with_typo")
    else:
        source = re.sub(rf"\n    {broken} = [^\n]+", "", source)
    (tmp_path / "laplace.py").write_text(source)
    (tmp_path / "laplace.yaml").write_text((MYPDE / "laplace.yaml").read_text())
    result = _cli("run", str(tmp_path / "laplace.yaml"), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_misspelled_class_name_says_what_the_module_holds(tmp_path):
    result = _cli("check", str(MYPDE / "laplace.yaml"), "--set", "problem.type=laplace:Laplace2D")
    assert result.returncode == 2
    assert "has no class 'Laplace2D'; did you mean 'Laplace1D'?" in result.stderr


def test_a_problem_module_is_found_beside_its_config(tmp_path):
    result = _cli("run", str(MYPDE / "laplace.yaml"), "--out", str(tmp_path / "run"),
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pinnsketch.load_run(tmp_path / "run").summary["steps"] == 20  # reopened by name
    missing = _cli("check", str(MYPDE / "laplace.yaml"), "--set", "problem.type=nowhere:X",
                   cwd=tmp_path)
    assert missing.returncode == 2
    assert str(tmp_path / "nowhere.py") in missing.stderr
    assert str(MYPDE / "nowhere.py") in missing.stderr


def test_check_and_version(tmp_path):
    assert _cli("check", str(ROOT / "problems" / "burgers.yaml")).returncode == 0
    bad = _cli("check", str(ROOT / "problems" / "burgers.yaml"), "--set", "train.weights={x: 1}")
    assert bad.returncode == 2 and "train.weights.x: unknown loss term" in bad.stderr
    version = _cli("--version")
    assert version.stdout.strip() == f"pinnsketch {pinnsketch.__version__}"


def test_training_leaves_the_matplotlib_backend_alone(tmp_path):
    before = matplotlib.get_backend()
    pinnsketch.train({**TINY, "output": {"progress": False, "plots": True}},
                     problem=RampWithReference(), out=tmp_path / "p")
    assert matplotlib.get_backend() == before
    assert (tmp_path / "p" / "plots" / "solution.png").is_file()


def test_seed_streams_are_independent():
    from pinnsketch.training.build import seed_streams

    one, two = seed_streams(0), seed_streams(0, rank=1)
    assert len(set(one.values())) == len(one)
    assert one["sampler"] != two["sampler"] and one["model"] == two["model"]


def test_more_points_move_no_initial_weight(tmp_path):
    """Init and sampler no longer share a generator: drawing more points leaves the network."""
    from pinnsketch.training.build import build_trainer

    config = pinnsketch.RunConfig()
    few = build_trainer(_with(config, interior=16), problem=Ramp())
    many = build_trainer(_with(config, interior=512), problem=Ramp())
    for a, b in zip(few.model.parameters(), many.model.parameters()):
        assert torch.equal(a, b)


def _with(config, **sampling):
    import dataclasses

    return dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, **sampling))


# -- newcomer fixes ------------------------------------------------------------------------
def test_resuming_a_finished_run_leaves_its_results_untouched(tmp_path):
    path = tmp_path / "done"
    args = ["run", str(ROOT / "problems" / "burgers.yaml"), "--out", str(path),
            *[a for o in tiny_overrides(20, 0) for a in ("--set", o)]]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    again = _cli("run", "--resume", str(path),
                 *[a for o in tiny_overrides(20, 0) for a in ("--set", o)])
    assert again.returncode == 0, again.stderr
    assert "already finished" in again.stderr
    after = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    assert after == before
    assert json.loads(after["summary.json"])["rel_l2"] > 0


def test_extending_a_run_on_resume_reports_a_finite_error(tmp_path):
    path = tmp_path / "ext"
    pinnsketch.train(TINY, problem=RampWithReference(), out=path)
    longer = {**TINY, "train": {**TINY["train"], "adam_steps": 30}}
    run = pinnsketch.train(longer, problem=RampWithReference(), resume=path)
    assert run.summary["steps"] == 30 and np.isfinite(run.summary["rel_l2"])


class WrongShapeReference(RampWithReference):
    def reference(self, points):
        return points[:, :1].copy()  # (N, 1): would broadcast against (N,) predictions


class WrongShapeBoundary(RampWithReference):
    def boundary_value(self, points):
        return points[:, :1]


@pytest.mark.parametrize("cls,method,shape", [
    (WrongShapeReference, "reference(points)", "(4, 1)"),
    (WrongShapeBoundary, "boundary_value(points)", "(4, 1)"),
], ids=["reference", "boundary"])
def test_wrong_shapes_from_a_problem_fail_at_start_up(tmp_path, cls, method, shape):
    with pytest.raises(ConfigError) as info:
        pinnsketch.train(TINY, problem=cls(), out=tmp_path / "never")
    assert f"{method} returned shape {shape}, expected (4,)" in str(info.value)
    assert not (tmp_path / "never").exists()


def test_ctrl_c_names_the_run_folder(tmp_path):
    script = ("import os, signal, sys\n"
              "from pinnsketch.training.trainer import Trainer\n"
              "from pinnsketch.cli import main\n"
              "step = Trainer.adam_step\n"
              "def hit(self, stop=False):\n"
              "    out = step(self, stop)\n"
              "    if self.step == 12: os.kill(os.getpid(), signal.SIGINT)\n"
              "    return out\n"
              "Trainer.adam_step = hit\n"
              f"sys.exit(main(['run', {str(ROOT / 'problems' / 'burgers.yaml')!r}, '--set', "
              "'train.adam_steps=40', '--set', 'train.lbfgs_steps=0', '--set', "
              "'sampling.interior=64', '--set', 'model.width=8', '--set', 'model.depth=2', "
              "'--set', 'output.progress=false', '--set', 'output.plots=false']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 130
    folder = next((tmp_path / "runs").iterdir())
    assert f"checkpoint of step 12 saved in runs/{folder.name}" in done.stderr
    assert f"pinnsketch run --resume runs/{folder.name}" in done.stderr


def test_zero_steps_says_so(capsys, tmp_path):
    status = main(["run", str(MYPDE / "laplace.yaml"), "--out", str(tmp_path / "z"),
                   "--set", "train.adam_steps=0"])
    out = capsys.readouterr().out
    assert status == 0 and "after 0 steps" in out and "no optimiser steps" in out


def test_result_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        pinnsketch.train(TINY, problem=RampWithReference(), out=tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("config.yaml", "summary.json", "checkpoint.pt", "metrics.jsonl"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644, name


def test_help_shows_examples_and_exit_codes_without_markup():
    out = _cli("--help").stdout
    assert "examples:" in out and "exit status:" in out and "130" in out and "``" not in out


def test_problems_name_shows_options_with_defaults(capsys):
    assert main(["problems", "heat"]) == 0
    out = capsys.readouterr().out
    assert "alpha: 0.05" in out and "coefficients: (1.0, 0.0, 0.5, 0.0, 0.25)" in out


def test_compare_labels_progress_with_the_mode(tmp_path):
    result = _cli("compare", str(ROOT / "problems" / "heat_data.yaml"), "--modes", "exact",
                  "--out", str(tmp_path / "c"),
                  *[a for o in tiny_overrides(10, 0) + ["output.progress=true",
                                                        "output.plots=false"]
                    for a in ("--set", o)])
    assert result.returncode == 0, result.stderr
    assert "heat exact" in result.stderr


# -- figures -------------------------------------------------------------------------------
def test_steady_fields_put_x_across_and_share_colour_limits():
    x, y = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 2, 7), indexing="ij")
    points = np.stack([x.ravel(), y.ravel()], 1)
    fig = solution_figure(points, (5, 7), ("x", "y"), points[:, 0] * 2, reference=points[:, 0],
                          evolution=False, problem="demo", rel_l2=0.5)
    pred, ref, err = fig.axes[:3]  # the three panels; their colour bars come after them
    assert (pred.get_xlabel(), pred.get_ylabel()) == ("x", "y")
    # Cells are centred on the grid points: each axis ends half a spacing past the last one.
    assert pred.get_xlim()[1] == pytest.approx(1.0 + 0.25 / 2)
    assert pred.get_ylim()[1] == pytest.approx(2.0 + (2.0 / 6) / 2)
    assert pred.collections[0].get_clim() == ref.collections[0].get_clim() == (0.0, 2.0)
    assert "demo" in fig._suptitle.get_text() and "5.000e-01" in fig._suptitle.get_text()
    assert err.get_title() == "|error|"


def test_evolution_fields_put_time_across():
    x, t = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(0, 1, 4), indexing="ij")
    points = np.stack([x.ravel(), t.ravel()], 1)
    fig = solution_figure(points, (5, 4), ("x", "t"), points[:, 0], reference=points[:, 0],
                          evolution=True, problem="demo")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("t", "x")


def test_curves_label_the_phase_change():
    metrics = [{"step": s, "phase": p, "loss": {"pde": 1.0 / (s + 1)}, "rel_l2": 0.1}
               for s, p in ((0, "adam"), (10, "adam"), (20, "lbfgs"))]
    fig = curves_figure(metrics, problem="demo")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "adam → lbfgs" in labels and fig.axes[0].lines[-1].get_xdata()[0] == 10


# -- the README's Python example runs as written (at tiny size) -----------------------------
def test_readme_python_example(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = text.split("## Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    tiny = ", ".join(f'"{o}"' for o in tiny_overrides(10, 0))
    code = block.replace('["train.adam_steps=500", "train.lbfgs_steps=0"]', f"[{tiny}]")
    assert code != block, "the README example's override list changed: update this test"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "problems").symlink_to(ROOT / "problems")
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "burgers-short" / "summary.json").is_file()


def test_readme_config_block_is_the_shipped_burgers_yaml():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Config\n", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == (ROOT / "problems" / "burgers.yaml").read_text()


def test_ctrl_c_before_training_says_nothing_was_written(tmp_path):
    script = ("import os, signal, sys\n"
              "import pinnsketch.runner.session as session\n"
              "from pinnsketch.cli import main\n"
              "def interrupted(*args, **kwargs):\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "session.build_trainer = interrupted\n"
              f"sys.exit(main(['run', {str(MYPDE / 'laplace.yaml')!r}, '--out', 'r']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 130
    assert "interrupted before training started; nothing was written" in done.stderr
    assert "checkpoint" not in done.stderr and not (tmp_path / "r").exists()
