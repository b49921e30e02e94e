"""``train.phases`` is the shorthand schedule written out; ``train.steps_scale`` scales either."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import pinnsketch
from pinnsketch import ConfigError
from pinnsketch.config import config_from_dict, load_config
from pinnsketch.runner.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]

PHASES = [{"optimizer": "adam", "steps": 20, "lr": 3e-3, "lr_decay": 0.9, "lr_decay_every": 10,
           "redraw_every": 10},
          {"optimizer": "ssbroyden2", "steps": 15, "tolerance_grad": 0.0, "redraw_every": 5}]
SHORTHAND_TRAIN = {"adam_steps": 20, "lr": 3e-3, "lr_decay": 0.9, "lr_decay_every": 10,
                   "lbfgs_steps": 15, "quasi_newton": "ssbroyden2", "lbfgs_tolerance_grad": 0.0}
SHORTHAND_SAMPLING = {"resample_every": 10, "lbfgs_resample_every": 5}


def _tree(phases=None, train=None, sampling=None) -> dict:
    """A seconds-long soft-constrained Burgers run in either schedule form."""
    tree = {"problem": {"type": "burgers"},
            "model": {"width": 8, "depth": 2},
            "sampling": {"interior": 64, "boundary": 16, "initial": 16, **(sampling or {})},
            "train": {"eval_every": 10, "checkpoint_every": 10, "dtype": "float64", "seed": 3,
                      **(train or {})},
            "output": {"progress": False, "plots": False}}
    if phases is not None:
        tree["train"]["phases"] = phases
    return tree


def _write(path, tree):
    path.write_text(yaml.safe_dump(tree))
    return path


def test_phases_are_the_shorthand_written_out():
    assert (config_from_dict(_tree(PHASES))
            == config_from_dict(_tree(train=SHORTHAND_TRAIN, sampling=SHORTHAND_SAMPLING)))
    only_second = config_from_dict(_tree([{"optimizer": "lbfgs", "steps": 7, "history": 9}]))
    assert (only_second.train.adam_steps, only_second.train.lbfgs_steps,
            only_second.train.lbfgs_history) == (0, 7, 9)
    sketchy = config_from_dict(_tree([{"optimizer": "sketchy", "steps": 4, "rank": 3}]))
    assert (sketchy.train.first_order, sketchy.train.sketchy_rank,
            sketchy.train.lbfgs_steps) == ("sketchy", 3, 0)


def test_a_phases_run_equals_its_shorthand_run_and_records_the_shorthand(tmp_path):
    runs = {}
    for name, tree in (("phases", _tree(PHASES)),
                       ("shorthand", _tree(train=SHORTHAND_TRAIN, sampling=SHORTHAND_SAMPLING))):
        runs[name] = pinnsketch.train(config_from_dict(tree), out=tmp_path / name)
    params = {name: torch.load(RunDir(tmp_path / name).checkpoint_path,
                               weights_only=False)["trainer"]["model"] for name in runs}
    for key, value in params["shorthand"].items():
        assert torch.equal(params["phases"][key], value), key
    metrics = {name: (tmp_path / name / "metrics.jsonl").read_text().splitlines()
               for name in runs}
    assert ([json.loads(m)["rel_l2"] for m in metrics["phases"]]
            == [json.loads(m)["rel_l2"] for m in metrics["shorthand"]])
    assert runs["phases"].summary["stop_reasons"] == {
        "adam": "iterations reached (20)", "ssbroyden2": "iterations reached (15)"}
    saved = load_config(tmp_path / "phases" / "config.yaml")
    assert saved == runs["phases"].config
    written = yaml.safe_load((tmp_path / "phases" / "config.yaml").read_text())
    assert "phases" not in written["train"]


def test_resume_with_a_phases_config_extends_the_last_phase(tmp_path):
    path = _write(tmp_path / "run.yaml", _tree(PHASES))
    pinnsketch.train(load_config(path), out=tmp_path / "run")
    longer = [PHASES[0], {**PHASES[1], "steps": 25}]
    run = pinnsketch.train(load_config(_write(tmp_path / "longer.yaml", _tree(longer))),
                           resume=tmp_path / "run")
    assert run.summary["steps"] == 45
    assert run.summary["stop_reasons"]["ssbroyden2"] == "iterations reached (25)"
    rerun_adam = [{**PHASES[0], "steps": 30}, longer[1]]
    with pytest.raises(ConfigError, match="train.adam_steps"):
        pinnsketch.train(load_config(_write(tmp_path / "again.yaml", _tree(rerun_adam))),
                         resume=tmp_path / "run")


def test_resume_adds_the_quasi_newton_phase_to_an_adam_only_run_bit_for_bit(tmp_path):
    pinnsketch.train(config_from_dict(_tree([PHASES[0]])), out=tmp_path / "adam")
    added = pinnsketch.train(config_from_dict(_tree(PHASES)), resume=tmp_path / "adam")
    whole = pinnsketch.train(config_from_dict(_tree(PHASES)), out=tmp_path / "whole")
    assert added.summary["stop_reasons"] == whole.summary["stop_reasons"]
    assert added.summary["rel_l2"] == whole.summary["rel_l2"]
    # Once that phase has run, its method is fixed.
    other = [PHASES[0], {**PHASES[1], "optimizer": "bfgs", "steps": 30}]
    with pytest.raises(ConfigError, match="train.quasi_newton: got 'bfgs'"):
        pinnsketch.train(config_from_dict(_tree(other)), resume=tmp_path / "adam")


BAD = [
    ("beside-shorthand", _tree(PHASES, train={"adam_steps": 5}),
     ["train.adam_steps", "cannot be combined with train.phases"]),
    ("beside-sampling-redraw", _tree(PHASES, sampling={"resample_every": 5}),
     ["sampling.resample_every", "redraw_every in the phase"]),
    ("order", _tree([PHASES[1], PHASES[0]]),
     ["train.phases", "ssbroyden2, adam", "at most one first-order phase"]),
    ("two-first-order", _tree([PHASES[0], PHASES[0]]), ["train.phases", "adam, adam"]),
    ("empty", _tree([]), ["train.phases", "expected a list"]),
    ("not-a-list", _tree({"optimizer": "adam"}), ["train.phases", "expected a list"]),
    ("unknown-optimizer", _tree([{"optimizer": "adamw", "steps": 3}]),
     ["train.phases[0].optimizer", "did you mean 'adam'", "ssbroyden2"]),
    ("missing-steps", _tree([{"optimizer": "adam"}]), ["train.phases[0].steps", "missing"]),
    ("zero-steps", _tree([{"optimizer": "adam", "steps": 0}]), ["train.phases[0].steps", ">= 1"]),
    ("unknown-key", _tree([{"optimizer": "adam", "steps": 3, "step": 3}]),
     ["train.phases[0].step", "unknown key"]),
    ("lr-on-quasi-newton", _tree([PHASES[0], {**PHASES[1], "lr": 0.1}]),
     ["train.phases[1].lr", "does not apply to optimizer ssbroyden2", "redraw_every"]),
    ("history-on-dense", _tree([{"optimizer": "bfgs", "steps": 3, "history": 5}]),
     ["train.phases[0].history", "does not apply to optimizer bfgs"]),
    ("rank-on-adam", _tree([{"optimizer": "adam", "steps": 3, "rank": 5}]),
     ["train.phases[0].rank", "does not apply to optimizer adam"]),
    ("scale-zero", _tree(train={"steps_scale": 0}), ["train.steps_scale", "> 0"]),
    ("scale-text", _tree(train={"steps_scale": "half"}), ["train.steps_scale", "'half'"]),
]


@pytest.mark.parametrize("tree,fragments", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_schedules_name_the_key(tree, fragments):
    with pytest.raises(ConfigError) as info:
        config_from_dict(tree)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_steps_scale_scales_every_phase_in_either_form_rounding_up():
    scaled = config_from_dict(_tree(PHASES, train={"steps_scale": 0.1})).train
    assert (scaled.adam_steps, scaled.lbfgs_steps) == (2, 2)  # ceil(2.0), ceil(1.5)
    shorthand = config_from_dict(_tree(train={"adam_steps": 1000, "lbfgs_steps": 3,
                                              "steps_scale": 0.02})).train
    assert (shorthand.adam_steps, shorthand.lbfgs_steps) == (20, 1)
    default = config_from_dict(_tree(train={"steps_scale": 0.5})).train  # defaults scale too
    assert (default.adam_steps, default.lbfgs_steps) == (5000, 0)
    assert config_from_dict(_tree(train={"steps_scale": 3})).train.adam_steps == 30000


def test_steps_scale_from_the_command_line_shortens_a_shipped_config():
    config = load_config(ROOT / "problems" / "burgers.yaml", ["train.steps_scale=0.01"])
    assert (config.train.adam_steps, config.train.lbfgs_steps) == (10, 50)
