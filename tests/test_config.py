"""Config validation: each class of bad input gives one clear line naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pinnsketch.config import ConfigError, config_to_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "problems").glob("*.yaml"))


def _write(tmp_path: Path, tree: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


BASE = {"problem": {"type": "burgers"}, "train": {"adam_steps": 10}}

BAD = [
    # (id, override, fragments that the message must contain)
    ("unknown-key", "train.adam_step=5", ["train.adam_step", "did you mean 'adam_steps'"]),
    ("unknown-section", "trian.lr=0.1", ["trian", "did you mean 'train'"]),
    ("wrong-type-int", "train.adam_steps=ten", ["train.adam_steps", "'ten'", "integer"]),
    ("wrong-type-bool", "model.hard_constraints=3", ["model.hard_constraints", "true or false"]),
    ("float-for-int", "model.width=2.5", ["model.width", "2.5", "integer"]),
    ("out-of-range", "train.lr=-1", ["train.lr", "-1", "> 0"]),
    ("negative-steps", "train.lbfgs_steps=-3", ["train.lbfgs_steps", ">= 0"]),
    ("bad-choice", "model.activation=relu6", ["model.activation", "'relu6'", "allowed: tanh"]),
    ("bad-dtype", "train.dtype=float16", ["train.dtype", "float32, float64"]),
    ("bad-problem", "problem.type=burger", ["problem.type", "did you mean 'burgers'"]),
    ("bad-problem-option", "problem.viscosity=0.1", ["problem.viscosity", "allowed: nu"]),
    ("problem-option-range", "problem.nu=0", ["problem.nu", "must be > 0"]),
    ("bad-user-class", "problem.type=math:sqrt", ["problem.type", "not a pinnsketch"]),
    ("no-equals", "train.lr", ["expected key.path=value"]),
]


@pytest.mark.parametrize("override,fragments", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_values_name_the_key(tmp_path, override, fragments):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, BASE), [override])
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_and_missing_section(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="problem: required section is missing"):
        load_config(_write(tmp_path, {"train": {"lr": 0.1}}))


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("problem:\n  type: burgers\ntrain: [1, 2\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path)


def test_overrides_parse_as_yaml_and_apply(tmp_path):
    config = load_config(_write(tmp_path, BASE),
                         ["train.adam_steps=200", "train.lbfgs_steps=0", "train.lr=3e-4",
                          "train.weights={ic: 10}", "problem.nu=0.05"])
    assert config.train.adam_steps == 200 and config.train.lbfgs_steps == 0
    assert config.train.lr == pytest.approx(3e-4)
    assert config.train.weights == {"ic": 10.0}
    assert config.problem.options.nu == pytest.approx(0.05)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_configs_load_and_round_trip(tmp_path, path):
    config = load_config(path)
    again = load_config(_write(tmp_path, config_to_dict(config)))
    assert again == config
