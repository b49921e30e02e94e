"""The network u_θ: input normalisation (and periodic embedding) → MLP → optional output
transform.

The output transform enforces initial/boundary conditions exactly ("hard constraints"):
``u(z) = transform(z, N(z))``, e.g. ``−sin(πx) + t(1−x²)·N`` for Burgers.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "INITIALIZERS", "MLP", "PINN"]


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
}


def layer_sizes(in_dim: int, out_dim: int, width: int, depth: int) -> list[int]:
    """Sizes of an :class:`MLP`'s layers, input to output: ``[in, width × depth, out]``."""
    return [in_dim] + [width] * depth + [out_dim]


def parameter_count(in_dim: int, out_dim: int, width: int, depth: int) -> int:
    """Weights and biases of an :class:`MLP` of these sizes (without building it)."""
    sizes = layer_sizes(in_dim, out_dim, width, depth)
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


class MLP(nn.Module):
    """Fully connected network ``in_dim → width × depth → out_dim``.

    Args:
        in_dim, out_dim: input and output sizes.
        width: neurons per hidden layer; depth: number of hidden layers.
        activation: module class applied after each hidden layer.
        init: in-place weight initialiser taking ``(tensor, generator=...)``; biases start at 0.
        generator: source of the initial weights.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *,
                 activation: type[nn.Module], init: Callable[..., torch.Tensor],
                 generator: torch.Generator):
        super().__init__()
        sizes = layer_sizes(in_dim, out_dim, width, depth)
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            linear = nn.Linear(fan_in, fan_out)
            init(linear.weight, generator=generator)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(activation())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PINN(nn.Module):
    """u_θ(z) for points ``z`` of shape ``(N, d)``; returns ``(N,)``.

    Args:
        mlp: the network proper, ``d + len(periodic) → 1``.
        lows, highs: domain corners; when given, inputs are mapped affinely to [−1, 1]^d.
        output_transform: ``(z (N, d), raw (N,)) → u (N,)`` enforcing constraints, or None.
        periodic: ``{axis: period}``: those inputs enter as (cos 2πz/P, sin 2πz/P) instead
            of z, so u_θ is exactly P-periodic in them (the MLP sees one more input each).
    """

    def __init__(self, mlp: MLP, lows: tuple[float, ...] | None = None,
                 highs: tuple[float, ...] | None = None,
                 output_transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 periodic: dict[int, float] | None = None):
        super().__init__()
        self.mlp = mlp
        periodic = dict(periodic or {})
        self.periodic_axes = sorted(periodic)
        # The other inputs, fixed once here rather than on every forward pass (hot path).
        in_dim = next(m for m in mlp.net if isinstance(m, nn.Linear)).in_features
        self._other_axes = [a for a in range(in_dim - len(self.periodic_axes))
                            if a not in self.periodic_axes]
        if self.periodic_axes:
            self.register_buffer("frequency", torch.tensor(
                [2 * math.pi / periodic[a] for a in self.periodic_axes],
                dtype=torch.get_default_dtype()))
        self.normalize = lows is not None
        if self.normalize:
            lows_t = torch.tensor(lows, dtype=torch.get_default_dtype())
            highs_t = torch.tensor(highs, dtype=torch.get_default_dtype())
            self.register_buffer("scale", 2.0 / (highs_t - lows_t))
            self.register_buffer("shift", -1.0 - lows_t * self.scale)
        self.output_transform = output_transform

    @property
    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers in forward order (what the monitor reports on)."""
        return [m for m in self.mlp.net if isinstance(m, nn.Linear)]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        inputs = z * self.scale + self.shift if self.normalize else z
        if self.periodic_axes:
            angles = z[:, self.periodic_axes] * self.frequency
            inputs = torch.cat([inputs[:, self._other_axes], torch.cos(angles),
                                torch.sin(angles)], dim=1)
        raw = self.mlp(inputs).squeeze(-1)
        if self.output_transform is not None:
            return self.output_transform(z, raw)
        return raw
