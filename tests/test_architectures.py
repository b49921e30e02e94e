"""Networks and embeddings against their definitions: Fourier features, the modified MLP,
PirateNet (α = 0: every block the identity), random weight factorisation (the plain weights
at initialisation); their config checks, parameter counts, the monitor and resume."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.architectures import ACTIVATIONS, INITIALIZERS, FactorizedLinear, build_network
from pinnsketch.config.schema import ModelConfig
from pinnsketch.model import PINN, FourierFeatures
from pinnsketch.sketch.sketched_grad import SketchedGradient
from pinnsketch.training.build import build_trainer
from pinnsketch.training.checks import parameter_count

ROOT = Path(__file__).resolve().parents[1]


def _net(kind, in_dim=3, width=8, depth=2, seed=0, factorization=None):
    """Built in float64 (built in float32 and cast, V = W₀/exp s is rounded in float32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return build_network(kind, in_dim, 1, width, depth, activation="tanh",
                             init="xavier_normal", generator=torch.Generator().manual_seed(seed),
                             factorization=factorization)
    finally:
        torch.set_default_dtype(previous)


def _points(n=50, d=3, seed=1):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_fourier_features_are_cos_and_sin_of_xB_and_not_trained():
    features = FourierFeatures(2, 5, 3.0, torch.Generator().manual_seed(0)).double()
    x = _points(d=2)
    B = features.frequencies
    expected = torch.cat([torch.cos(x @ B), torch.sin(x @ B)], dim=1)
    assert torch.equal(features(x), expected) and features(x).shape == (50, 10)
    assert list(features.parameters()) == [] and "frequencies" in features.state_dict()
    # B's entries are N(0, 3²): a loose check on 10⁴ draws of a second, larger draw.
    big = FourierFeatures(100, 100, 3.0, torch.Generator().manual_seed(1)).frequencies
    assert float(big.std()) == pytest.approx(3.0, rel=0.05)


def test_modified_mlp_follows_its_gating_formula():
    net = _net("modified_mlp")
    x = _points()
    u = torch.tanh(net.gate_u(x))
    v = torch.tanh(net.gate_v(x))
    h = x
    for layer in net.hidden:
        z = torch.tanh(h @ layer.weight.T + layer.bias)
        h = z * u + (1 - z) * v
    expected = h @ net.output.weight.T + net.output.bias
    torch.testing.assert_close(net(x), expected, rtol=1e-14, atol=1e-14)
    assert [tuple(m.weight.shape) for m in net.linear_layers] == [(8, 3), (8, 3), (8, 3),
                                                                   (8, 8), (1, 8)]


def test_pirate_net_with_alpha_zero_is_the_output_layer_on_the_embedding():
    net = _net("pirate", in_dim=6, depth=3)
    x = _points(d=6)
    assert torch.equal(net.alpha.detach(), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(net(x), net.output(x), rtol=0, atol=0)
    with torch.no_grad():
        net.alpha.fill_(0.5)  # now the blocks act: x ← ½ σ(W₃ z₂) + ½ x
    assert not torch.allclose(net(x), net.output(x))
    assert len(net.linear_layers) == 2 + 3 * 3 + 1
    # α gets a gradient at 0 (it can leave the identity).
    with torch.no_grad():
        net.alpha.zero_()
    net(x).sum().backward()
    assert float(net.alpha.grad.abs().min()) > 0


@pytest.mark.parametrize("kind", ["mlp", "modified_mlp", "pirate"])
def test_weight_factorisation_reproduces_the_plain_network_at_initialisation(kind):
    plain = _net(kind, seed=3)
    factored = _net(kind, seed=3, factorization=(1.0, 0.1, torch.Generator().manual_seed(4)))
    x = _points()
    torch.testing.assert_close(factored(x), plain(x), rtol=1e-12, atol=1e-13)
    layers = factored.linear_layers
    assert all(isinstance(m, FactorizedLinear) for m in layers)
    for f, p in zip(layers, plain.linear_layers):
        torch.testing.assert_close(f.effective_weight(), p.weight, rtol=1e-13, atol=1e-15)
    scales = torch.cat([f.scale.detach() for f in layers])  # s ~ N(1, 0.1²)
    assert float(scales.mean()) == pytest.approx(1.0, abs=0.1) and 0.03 < float(scales.std()) < 0.3


def _config(name="burgers", extra=()):
    return pinnsketch.load_config(ROOT / "problems" / f"{name}.yaml",
                                  tiny_overrides(10, 4, eval_every=5)
                                  + ["model.hard_constraints=false", "output.plots=false",
                                     "train.dtype=float64", *extra])


ARCH_CASES = {
    "mlp+fourier": ["model.fourier.features=8", "model.fourier.scale=2.0"],
    "modified_mlp": ["model.type=modified_mlp"],
    "pirate": ["model.type=pirate", "model.fourier.features=6"],
    "pirate+rwf": ["model.type=pirate", "model.fourier.features=6",
                   "model.weight_factorization.enabled=true"],
    "mlp+rwf+periodic": ["model.weight_factorization.enabled=true",
                         f"model.periodic.x={2 * math.pi!r}"],
}


@pytest.mark.parametrize("case", ARCH_CASES)
def test_each_network_trains_resumes_exactly_and_is_monitored(tmp_path, case):
    name = "convection" if "periodic" in case else "burgers"
    extra = ARCH_CASES[case] + ["monitor.enabled=true", "monitor.every=2",
                                "train.quasi_newton=ssbroyden2"]
    config = _config(name, extra)
    trainer = build_trainer(config)
    assert parameter_count(config, trainer.problem) == sum(p.numel() for p in trainer.parameters)
    full = pinnsketch.train(_config(name, extra), out=tmp_path / "a")
    pinnsketch.train(_config(name, extra + ["train.lbfgs_steps=0", "train.adam_steps=5"]),
                     out=tmp_path / "b")
    part = pinnsketch.train(_config(name, extra), resume=tmp_path / "b")
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        assert torch.equal(p, q)
    data = json.loads((tmp_path / "a" / "diagnosis.json").read_text())
    layers = len(trainer.model.linear_layers)
    assert len(data["monitor"]["layers"]) == layers
    assert math.isfinite(full.summary["rel_l2"])


def test_network_config_errors():
    with pytest.raises(pinnsketch.ConfigError, match="model.type: 'pirate' .*fourier"):
        pinnsketch.check_config(_config(extra=["model.type=pirate"]))
    with pytest.raises(pinnsketch.ConfigError, match="model.type: unknown|model.type: got"):
        pinnsketch.check_config(_config(extra=["model.type=resnet"]))
    with pytest.raises(pinnsketch.ConfigError, match="monitor.layers: .*modified_mlp .*5 Linear"):
        pinnsketch.check_config(_config(extra=["model.type=modified_mlp",
                                               "monitor.layers=[5]"]))
    pinnsketch.check_config(_config(extra=["model.type=modified_mlp", "monitor.layers=[4]"]))
    sketched = ["problem.observations.count=16", "terms.data.gradient=sketched"]
    with pytest.raises(pinnsketch.ConfigError, match="terms.data.gradient: 'sketched' replays"):
        pinnsketch.check_config(_config("burgers_identification",
                                        sketched + ["model.type=modified_mlp"]))


def test_sketched_data_forward_sees_the_embeddings():
    """The sketched forward replays the layers on ``model.embed(z)``: with Fourier features
    and a periodic embedding it gives model(z)."""
    generator = torch.Generator().manual_seed(0)
    network = build_network("mlp", 8, 1, 16, 2, activation="tanh", init="xavier_normal",
                            generator=generator)
    model = PINN(network, lows=(-1.0, 0.0), highs=(1.0, 1.0), periodic={0: 2.0},
                 fourier=FourierFeatures(3, 4, 1.0, generator)).double()
    sketched = SketchedGradient(model, rank=4, variant="batch",
                                generator=torch.Generator().manual_seed(1))
    z = _points(d=2) * torch.tensor([2.0, 1.0], dtype=torch.float64) - torch.tensor(
        [1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(sketched.forward(model, z), model(z), rtol=1e-13, atol=1e-14)


def test_activation_and_init_registries_are_those_of_the_schema():
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    assert fields["activation"].metadata["choices"] == tuple(ACTIVATIONS)
    assert fields["init"].metadata["choices"] == tuple(INITIALIZERS)
    assert fields["type"].metadata["choices"] == ("mlp", "modified_mlp", "pirate")


def test_standard_uniform_init_is_glorot_and_bengios_standard_and_vanishes_with_depth():
    """U(−1/√n, 1/√n) with n = fan_in (Glorot & Bengio 2010, eq. 1): bounds and variance
    1/(3n); through 24 tanh layers of width 16 the signal dies out, and with it every
    weight gradient of a unit-target fit: orders of magnitude below Xavier's, on any seed."""
    weight = torch.empty(400, 100, dtype=torch.float64)
    INITIALIZERS["standard_uniform"](weight, generator=torch.Generator().manual_seed(0))
    assert weight.abs().max() <= 1 / math.sqrt(100)
    assert weight.var().item() == pytest.approx(1 / 300, rel=0.02)

    def weight_gradient_norm(init: str, seed: int) -> float:
        net = build_network("mlp", 2, 1, 16, 24, activation="tanh", init=init,
                            generator=torch.Generator().manual_seed(seed)).double()
        z = torch.rand(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
        (net(z) - 1).pow(2).mean().backward()
        return math.sqrt(sum(m.weight.grad.norm().item() ** 2 for m in net.modules()
                             if isinstance(m, torch.nn.Linear)))

    for seed in range(3):
        assert weight_gradient_norm("standard_uniform", seed) < 1e-3 * weight_gradient_norm(
            "xavier_normal", seed)


def test_checkpoints_that_name_the_network_mlp_still_load():
    config = _config()
    trainer = build_trainer(config)
    old = {k.replace("network.", "mlp.", 1): v.clone() for k, v in
           trainer.model.state_dict().items()}
    fresh = build_trainer(_config(extra=["train.seed=5"])).model
    fresh.load_state_dict(old)
    for p, q in zip(fresh.parameters(), trainer.model.parameters()):
        assert torch.equal(p, q)
