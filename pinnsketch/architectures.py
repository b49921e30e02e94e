"""The networks u_θ can be built from: the plain MLP, the modified MLP and PirateNet, with
plain or randomly factorised Linear layers.

Every network maps ``(N, in_dim) → (N, out_dim)`` and lists its Linear layers in forward
order as ``linear_layers`` (what the monitor reports on and sketched gradients replay):

- ``mlp``: ``in → width × depth → out``, activation after each hidden layer.
- ``modified_mlp`` (Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient flow
  pathologies in physics-informed neural networks", SISC 43; the form of jaxpi's
  ``ModifiedMlp``): gates U = σ(W_u x + b_u), V = σ(W_v x + b_v); ``depth`` times
  h ← σ(W h + b), h ← h ⊙ U + (1 − h) ⊙ V; then the output layer. Layers: U, V, the
  ``depth`` hidden ones, the output.
- ``pirate`` (Wang, Li, Chen & Perdikaris 2024, "PirateNets: physics-informed deep learning
  with residual adaptive networks", JMLR 25): on the embedding x of width E, gates U, V as
  above (E → width); ``depth`` residual blocks of three layers
  f = σ(W₁x + b₁), z₁ = f ⊙ U + (1 − f) ⊙ V, g = σ(W₂z₁ + b₂), z₂ = g ⊙ U + (1 − g) ⊙ V,
  h = σ(W₃z₂ + b₃) (width → E), x ← α h + (1 − α) x with a trainable α per block that starts
  at 0 (every block starts as the identity); then the output layer (E → out). Layers: U, V,
  the blocks' three in order, the output.

Random weight factorisation (Wang, Wang & Perdikaris 2022, "Random weight factorization
improves the training of continuous neural representations"): each Linear layer's
W = diag(exp s) V with s ~ N(mean, std²) per output neuron and V = W₀ / exp s, so the
factorised network equals the plain one at initialisation and trains s and V. The s are
drawn from a generator of their own, so the W₀ are those of the plain network.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "INITIALIZERS", "FactorizedLinear", "MLP",
           "ModifiedMLP", "PirateNet", "build_network"]


class Sine(nn.Module):
    """sin(z), the SIREN-style activation."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "sin": Sine,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}

INITIALIZERS: dict[str, Callable[..., torch.Tensor]] = {
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "kaiming_normal": functools.partial(nn.init.kaiming_normal_, nonlinearity="tanh"),
    "kaiming_uniform": functools.partial(nn.init.kaiming_uniform_, nonlinearity="tanh"),
    # U(−1/√fan_in, 1/√fan_in): nn.Linear's own default, Glorot & Bengio's (2010) "standard"
    # initialisation, whose variance 1/(3 fan_in) shrinks a tanh network's signals and
    # gradients layer by layer (their vanishing-gradient set-up).
    "standard_uniform": functools.partial(nn.init.kaiming_uniform_, a=math.sqrt(5)),
}


class FactorizedLinear(nn.Linear):
    """A Linear layer trained as W = diag(exp(scale)) · weight.

    ``weight`` (d_out × d_in) holds V, ``scale`` (d_out,) holds s; ``effective_weight()`` is
    W. Gradients (and a monitor's statistics) are those of V: ∂L/∂V = diag(exp s) ∂L/∂W.
    """

    def __init__(self, linear: nn.Linear, mean: float, std: float, generator: torch.Generator):
        """Factorise ``linear`` (W₀); s drawn from ``generator``."""
        super().__init__(linear.in_features, linear.out_features)
        scale = mean + std * torch.randn(linear.out_features, generator=generator,
                                         dtype=linear.weight.dtype)
        self.scale = nn.Parameter(scale)
        with torch.no_grad():
            self.weight.copy_(linear.weight / scale.exp()[:, None])
            self.bias.copy_(linear.bias)

    def effective_weight(self) -> torch.Tensor:
        return self.scale.exp()[:, None] * self.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(z, self.effective_weight(), self.bias)


# (mean, std, generator) of random weight factorisation.
Factorization = tuple[float, float, torch.Generator]


class _Layers:
    """Makes a network's Linear layers: initialised, biases 0, factorised if asked."""

    def __init__(self, init: Callable[..., torch.Tensor], generator: torch.Generator,
                 factorization: Factorization | None):
        self.init, self.generator, self.factorization = init, generator, factorization

    def __call__(self, fan_in: int, fan_out: int) -> nn.Linear:
        linear = nn.Linear(fan_in, fan_out)
        self.init(linear.weight, generator=self.generator)
        nn.init.zeros_(linear.bias)
        if self.factorization is None:
            return linear
        mean, std, scales = self.factorization
        return FactorizedLinear(linear, mean, std, generator=scales)


class MLP(nn.Module):
    """Fully connected network ``in_dim → width × depth → out_dim``.

    Args:
        in_dim, out_dim: input and output sizes.
        width: neurons per hidden layer; depth: number of hidden layers.
        activation: module class applied after each hidden layer.
        init: in-place weight initialiser taking ``(tensor, generator=...)``; biases start at 0.
        generator: source of the initial weights.
        factorization: ``(mean, std, generator of the s)`` of random weight factorisation,
            or None.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *,
                 activation: type[nn.Module], init: Callable[..., torch.Tensor],
                 generator: torch.Generator, factorization: Factorization | None = None):
        super().__init__()
        make = _Layers(init, generator, factorization)
        sizes = [in_dim] + [width] * depth + [out_dim]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(make(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    @property
    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _Gated(nn.Module):
    """The gates U = σ(W_u x + b_u), V = σ(W_v x + b_v) both gated networks share, made by
    ``make`` (the subclass's layer maker, which then builds the rest)."""

    def __init__(self, make: _Layers, in_dim: int, width: int, activation: type[nn.Module]):
        super().__init__()
        self.gate_u, self.gate_v = make(in_dim, width), make(in_dim, width)
        self.activation = activation()

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.activation(self.gate_u(x)), self.activation(self.gate_v(x))


class ModifiedMLP(_Gated):
    """The modified MLP (module docstring); arguments as :class:`MLP`."""

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *,
                 activation: type[nn.Module], init: Callable[..., torch.Tensor],
                 generator: torch.Generator, factorization: Factorization | None = None):
        make = _Layers(init, generator, factorization)
        super().__init__(make, in_dim, width, activation)
        self.hidden = nn.ModuleList([make(in_dim if i == 0 else width, width)
                                     for i in range(depth)])
        self.output = make(width, out_dim)

    @property
    def linear_layers(self) -> list[nn.Linear]:
        return [self.gate_u, self.gate_v, *self.hidden, self.output]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u, v = self.gates(z)
        h = z
        for layer in self.hidden:
            h = self.activation(layer(h))
            h = h * u + (1 - h) * v
        return self.output(h)


class PirateNet(_Gated):
    """PirateNet (module docstring) on an embedding of width ``in_dim``; ``depth`` blocks;
    other arguments as :class:`MLP`.

    ``alpha`` (depth,) holds the blocks' residual weights, 0 at initialisation.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *,
                 activation: type[nn.Module], init: Callable[..., torch.Tensor],
                 generator: torch.Generator, factorization: Factorization | None = None):
        make = _Layers(init, generator, factorization)
        super().__init__(make, in_dim, width, activation)
        self.blocks = nn.ModuleList([nn.ModuleList([make(in_dim, width), make(width, width),
                                                    make(width, in_dim)])
                                     for _ in range(depth)])
        self.alpha = nn.Parameter(torch.zeros(depth))
        self.output = make(in_dim, out_dim)

    @property
    def linear_layers(self) -> list[nn.Linear]:
        return [self.gate_u, self.gate_v, *(layer for block in self.blocks for layer in block),
                self.output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.activation
        u, v = self.gates(x)
        for (first, second, third), alpha in zip(self.blocks, self.alpha):
            f = act(first(x))
            z = f * u + (1 - f) * v
            g = act(second(z))
            z = g * u + (1 - g) * v
            x = alpha * act(third(z)) + (1 - alpha) * x
        return self.output(x)


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp": MLP, "modified_mlp": ModifiedMLP,
                                             "pirate": PirateNet}


def build_network(architecture: str, in_dim: int, out_dim: int, width: int, depth: int, *,
                  activation: str, init: str, generator: torch.Generator,
                  factorization: Factorization | None = None) -> nn.Module:
    """The network named ``architecture`` (a key of :data:`ARCHITECTURES`); ``activation``
    and ``init`` are keys of :data:`ACTIVATIONS` and :data:`INITIALIZERS`."""
    return ARCHITECTURES[architecture](in_dim, out_dim, width, depth,
                                       activation=ACTIVATIONS[activation],
                                       init=INITIALIZERS[init], generator=generator,
                                       factorization=factorization)
