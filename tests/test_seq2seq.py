"""Sequence-to-sequence time marching: a network per time window (``networks: per_window``)."""
from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
import pinnsketch.runner.diagnosis
from pinnsketch import ConfigError
from pinnsketch.errors import RunInterrupted
from pinnsketch.config import config_from_dict
from pinnsketch.model import StitchedModel
from pinnsketch.problems import Convection, Heat1D, TimeWindow, Wave, window_edges
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.sampling import Sampler
from pinnsketch.training.trainer import Trainer

TWO_PI = 2 * math.pi


def _tree(windows=2, **train) -> dict:
    """Convection β = 2 on two windows: seconds per window."""
    return {"problem": {"type": "convection", "beta": 2.0},
            "model": {"width": 10, "depth": 2, "hard_constraints": False,
                      "periodic": {"x": TWO_PI}},
            "sampling": {"interior": 128, "boundary": 16, "initial": 32},
            "train": {"adam_steps": 60, "lbfgs_steps": 20, "eval_every": 20,
                      "checkpoint_every": 20, "dtype": "float64", "seed": 1,
                      "time_marching": {"windows": windows, "networks": "per_window"}, **train},
            "output": {"progress": False, "plots": False}}


def _line(scale: float, bias: float) -> torch.nn.Module:
    """u(x, t) = scale·t + bias, as a module."""
    class Line(torch.nn.Module):
        def forward(self, z):
            return scale * z[:, -1] + bias
    return Line()


def test_a_window_is_the_problem_on_its_interval_with_the_previous_network_as_initial_data():
    problem = Convection(Convection.Options(beta=3.0))
    previous = _line(2.0, 0.5)
    window = TimeWindow(problem, 0.25, 0.5, initial=previous)
    assert window.domain.time == (0.25, 0.5) and window.domain.space_lows == (0.0,)
    sampler = Sampler(window.domain, "uniform", torch.Generator().manual_seed(0))
    inside, initial = sampler.interior(500), sampler.initial(50)
    assert inside[:, 1].min() >= 0.25 and inside[:, 1].max() <= 0.5
    assert torch.all(initial[:, 1] == 0.25)
    model = _line(-1.0, 0.0)
    residual = window.residuals(model, {"ic": initial})["ic"]
    torch.testing.assert_close(residual, model(initial) - (2.0 * 0.25 + 0.5), rtol=0, atol=0)
    first = TimeWindow(problem, 0.0, 0.25)  # the problem's own u₀ = sin x
    torch.testing.assert_close(first.initial_value(initial), torch.sin(initial[:, 0]))
    points = torch.rand(40, 2, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(window.pde_residual(model, points),
                               problem.pde_residual(model, points))


def test_a_window_keeps_the_reference_grid_rows_of_its_times():
    problem = Convection(Convection.Options(beta=3.0))
    full, (nx, nt) = problem.evaluation_grid()
    points, shape = TimeWindow(problem, 0.5, 1.0)._evaluation_grid()
    times = np.unique(full[:, 1])
    expected = times[(times >= 0.5 - 1e-12)]
    assert shape == (nx, len(expected)) and len(points) == nx * len(expected)
    np.testing.assert_array_equal(points.reshape(nx, len(expected), 2)[0, :, 1], expected)
    np.testing.assert_array_equal(np.unique(points[:, 0]), np.unique(full[:, 0]))


def test_windows_refuse_what_they_cannot_carry():
    with pytest.raises(ValueError, match="steady"):
        TimeWindow(pinnsketch.problems.Poisson(), 0.0, 1.0)
    with pytest.raises(ValueError, match="ic_t"):
        TimeWindow(Wave(), 0.0, 0.5)
    with pytest.raises(ValueError, match="inside the time interval"):
        TimeWindow(Heat1D(), 0.5, 1.5)
    assert window_edges((0.0, 1.0), 4) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_the_stitched_model_evaluates_each_point_with_its_windows_network():
    models = [_line(0.0, float(k)) for k in range(3)]
    stitched = StitchedModel(models, [0.0, 0.2, 0.6, 1.0])
    t = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.6, 0.99, 1.0, -0.5, 2.0], dtype=torch.float64)
    points = torch.stack([torch.zeros_like(t), t], dim=1)
    expected = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0, 2], dtype=torch.float64)
    torch.testing.assert_close(stitched(points), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="increasing edges"):
        StitchedModel(models, [0.0, 0.5, 0.4, 1.0])


def test_a_per_window_run_chains_its_windows_and_reports_the_stitched_error(tmp_path):
    run = pinnsketch.train(config_from_dict(_tree()), out=tmp_path / "s2s")
    summary = run.summary
    assert summary["status"] == "completed" and summary["windows_trained"] == 2
    assert [w["t"] for w in summary["per_window"]] == [[0.0, 0.5], [0.5, 1.0]]
    assert summary["steps"] == 160
    # Window 1's initial data are window 0's network at t = 0.5: its recorded ic loss is
    # recomputed from the two networks alone on window 1's saved ic points.
    first, second = (pinnsketch.load_run(tmp_path / "s2s").model.models[k] for k in (0, 1))
    state = RunDir(tmp_path / "s2s" / "window-1").load_checkpoint()["trainer"]
    initial = state["batch"]["ic"]
    assert torch.all(initial[:, 1] == 0.5)
    with torch.no_grad():
        ic_loss = float((second(initial) - first(initial)).square().mean())
    assert ic_loss == pytest.approx(summary["per_window"][1]["final_losses"]["ic"], rel=1e-9)
    # The stitched error, recomputed by hand: each grid point from its window's network.
    problem = Convection(Convection.Options(beta=2.0))
    points, _ = problem.evaluation_grid()
    grid = torch.as_tensor(points)
    with torch.no_grad():
        prediction = torch.where(grid[:, 1] < 0.5, first(grid), second(grid)).numpy()
    reference = np.sin(points[:, 0] - 2.0 * points[:, 1])
    expected = np.linalg.norm(prediction - reference) / np.linalg.norm(reference)
    assert summary["rel_l2"] == pytest.approx(expected, rel=1e-12)
    assert summary["rel_l2"] < 0.5  # it learned something: sin x has rel L2 1 against 0
    np.testing.assert_allclose(run.predict(points), prediction, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="sequence-to-sequence run; each window"):
        pinnsketch.runner.diagnosis.diagnose_run(tmp_path / "s2s")


def test_resume_reads_finished_windows_and_trains_the_missing_one_identically(tmp_path):
    config = config_from_dict(_tree())
    first = pinnsketch.train(config, out=tmp_path / "run").summary
    checkpoint = RunDir(tmp_path / "run" / "window-0").checkpoint_path
    before = checkpoint.stat().st_mtime_ns
    again = pinnsketch.train(config, resume=tmp_path / "run").summary
    assert again["rel_l2"] == first["rel_l2"]
    assert checkpoint.stat().st_mtime_ns == before  # read, not retrained
    for path in sorted((tmp_path / "run" / "window-1").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (tmp_path / "run" / "window-1").rmdir()
    rebuilt = pinnsketch.train(config, resume=tmp_path / "run").summary
    assert rebuilt["rel_l2"] == first["rel_l2"]  # same seed, same data: bit for bit
    assert checkpoint.stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="train.seed"):
        pinnsketch.train(config_from_dict(_tree(seed=2)), resume=tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run"):
        pinnsketch.train(config, out=tmp_path / "run")


def test_ctrl_c_in_the_second_window_names_the_run_folder_and_resumes_exactly(tmp_path,
                                                                          monkeypatch):
    config = config_from_dict(_tree())
    full = pinnsketch.train(config, out=tmp_path / "full").summary
    original = Trainer.adam_step

    def interrupted_step(self, stop=False):
        out = original(self, stop)
        if self.step == 30 and self.problem.domain.time[0] > 0:  # window 1, mid-Adam
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "adam_step", interrupted_step)
    with pytest.raises(RunInterrupted) as info:
        pinnsketch.train(config, out=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "adam_step", original)
    assert Path(info.value.folder) == tmp_path / "cut" and info.value.checkpoint_saved
    cut = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert cut["status"] == "interrupted" and cut["windows_trained"] == 1
    assert RunDir(tmp_path / "cut" / "window-1").checkpoint_path.is_file()
    resumed = pinnsketch.train(config, resume=tmp_path / "cut").summary
    assert resumed["rel_l2"] == full["rel_l2"] and resumed["steps"] == full["steps"]


@pytest.mark.parametrize("change,fragment", [
    ({"model": {"hard_constraints": True}}, "per_window cannot be used: model.hard_constraints"),
    ({"problem": {"type": "wave"}}, "per_window cannot be used: Wave has the terms .*ic_t"),
    ({"problem": {"type": "poisson"}}, "Poisson is steady"),
    ({"windows": 0}, "per_window cannot be used: train.time_marching.windows is 0"),
    ({"observations": 10}, "per_window cannot be used: problem.observations.count"),
])
def test_per_window_config_errors_name_the_reason(tmp_path, change, fragment):
    tree = _tree(windows=change.get("windows", 2))
    if "model" in change:  # heat has an output transform: the window check must refuse it
        tree["problem"] = {"type": "heat"}
        tree["model"] = {"width": 10, "depth": 2, "hard_constraints": True}
    if "problem" in change:
        tree["problem"] = change["problem"]
        tree["model"].pop("periodic")
    if "observations" in change:
        tree["problem"]["observations"] = {"count": change["observations"]}
    with pytest.raises(ConfigError, match=fragment):
        pinnsketch.train(config_from_dict(tree), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_per_window_is_refused_under_torchrun(tmp_path, monkeypatch):
    monkeypatch.setitem(os.environ, "WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="torchrun"):
        pinnsketch.check_config(config_from_dict(_tree()))
