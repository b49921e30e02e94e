"""Config validation: each class of bad input gives one clear line naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import pinnsketch
from pinnsketch.config import config_to_dict, load_config
from pinnsketch.errors import ConfigError

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
    ("bad-user-class", "problem.type=math:sqrt", ["problem.type", "not a subclass"]),
    ("nested-options", "problem.options={nu: 0.1}", ["problem.options", "unknown key"]),
    ("no-equals", "train.lr", ["expected key.path=value"]),
    ("nan", "train.lr=.nan", ["train.lr", "finite"]),
    ("inf-weight", "train.weights={pde: .inf}", ["train.weights.pde", "finite"]),
    ("negative-weight", "train.weights={pde: -1}", ["train.weights", "-1", ">= 0"]),
    ("unknown-weight-term", "train.weights={bcc: 1}", ["train.weights.bcc", "pde, bc, ic"]),
    ("unknown-monitor-term", "monitor.terms=[bx]", ["monitor.terms.bx", "unknown loss term"]),
    ("monitor-layer", "monitor.layers=[9]", ["monitor.layers", "[0, 3]"]),
    ("candidates", "sampling.adaptive=rad", ["sampling.adaptive_candidates", ">= sampling.interior"]),
]


@pytest.mark.parametrize("override,fragments", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_values_name_the_key(tmp_path, override, fragments):
    """Schema errors come from load_config, the rest from check_config; both before
    anything is written."""
    extra = ["sampling.interior=30000"] if override.startswith("sampling.adaptive") else []
    with pytest.raises(ConfigError) as info:
        pinnsketch.check_config(load_config(_write(tmp_path, BASE), [override, *extra]))
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_and_missing_section(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="problem.type: required key is missing"):
        load_config(_write(tmp_path, {"train": {"lr": 0.1}}))


def test_unknown_keys_are_reported_before_missing_ones(tmp_path):
    path = _write(tmp_path, {"problems": {"type": "burgers"}, "train": {"adam_steps": 10}})
    with pytest.raises(ConfigError, match=r"^problems: unknown key; did you mean 'problem'\?"):
        load_config(path)


def test_integral_floats_are_accepted_for_integers(tmp_path):
    config = load_config(_write(tmp_path, BASE), ["train.adam_steps=1e3"])
    assert config.train.adam_steps == 1000 and isinstance(config.train.adam_steps, int)


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
    assert pinnsketch.load_problem(config).options.nu == pytest.approx(0.05)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_configs_load_and_round_trip(tmp_path, path):
    config = load_config(path)
    again = load_config(_write(tmp_path, config_to_dict(config)))
    assert again == config
