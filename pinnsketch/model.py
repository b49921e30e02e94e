"""The network u_θ: input embedding → network → optional output transform.

The embedding, in order: the affine map of the domain to [−1, 1]^d; the exact periodic
embedding of chosen inputs, z ↦ (cos 2πz/P, sin 2πz/P); random Fourier features
γ(x) = [cos(xB), sin(xB)] with B (d × m) ~ N(0, σ²) fixed at initialisation (Tancik et al.
2020; Wang, Wang & Perdikaris 2021, "On the eigenvector bias of Fourier feature networks",
CMAME 384 — their form, without 2π). The networks are those of
:mod:`pinnsketch.architectures`.

The output transform enforces initial/boundary conditions exactly ("hard constraints"):
``u(z) = transform(z, N(z))``, e.g. ``−sin(πx) + t(1−x²)·N`` for Burgers.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

__all__ = ["FourierFeatures", "PINN", "StitchedModel", "embedding_width"]


def embedding_width(dim: int, periodic: int, fourier: int) -> int:
    """Width of the embedding of ``dim`` inputs, ``periodic`` of them embedded periodically,
    followed by ``fourier`` Fourier frequencies (0: none)."""
    return 2 * fourier if fourier else dim + periodic


class FourierFeatures(nn.Module):
    """γ(x) = [cos(xB), sin(xB)], ``(N, d) → (N, 2m)``; B (d × m) a buffer (not trained).

    Args:
        in_dim: d; features: m; scale: σ, the standard deviation of B's entries.
        generator: source of B.
    """

    def __init__(self, in_dim: int, features: int, scale: float, generator: torch.Generator):
        super().__init__()
        self.register_buffer("frequencies", scale * torch.randn(
            in_dim, features, generator=generator, dtype=torch.get_default_dtype()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x @ self.frequencies
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def _rename_mlp_keys(state: dict, prefix: str, *args) -> None:
    """Checkpoints written before the networks moved to ``architectures`` name the network
    ``mlp``; read them as ``network`` (their runs stay loadable)."""
    for key in [k for k in state if k.startswith(prefix + "mlp.")]:
        state[prefix + "network." + key[len(prefix) + 4:]] = state.pop(key)


class PINN(nn.Module):
    """u_θ(z) for points ``z`` of shape ``(N, d)``; returns ``(N,)``.

    Args:
        network: the network proper, embedding width → 1, listing ``linear_layers``.
        lows, highs: domain corners; when given, inputs are mapped affinely to [−1, 1]^d.
        output_transform: ``(z (N, d), raw (N,)) → u (N,)`` enforcing constraints, or None.
        periodic: ``{axis: period}``: those inputs enter as (cos 2πz/P, sin 2πz/P) instead
            of z, so u_θ is exactly P-periodic in them (one more input each).
        fourier: random Fourier features applied after the above, or None.
        dim: d (needed with ``periodic`` and no ``lows``; else taken from them).
    """

    def __init__(self, network: nn.Module, lows: tuple[float, ...] | None = None,
                 highs: tuple[float, ...] | None = None,
                 output_transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 periodic: dict[int, float] | None = None,
                 fourier: FourierFeatures | None = None, dim: int | None = None):
        super().__init__()
        self.network = network
        self.fourier = fourier
        periodic = dict(periodic or {})
        self.periodic_axes = sorted(periodic)
        dim = dim if dim is not None else (len(lows) if lows is not None else None)
        if self.periodic_axes and dim is None:
            raise ValueError("PINN: give dim (or lows/highs) with a periodic embedding")
        # The other inputs, fixed once here rather than on every forward pass (hot path).
        self._other_axes = [a for a in range(dim or 0) if a not in self.periodic_axes]
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
        self._register_load_state_dict_pre_hook(_rename_mlp_keys)

    @property
    def linear_layers(self) -> list[nn.Linear]:
        """The Linear layers in forward order (what the monitor reports on)."""
        return self.network.linear_layers

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        """The network's input for points ``z`` (N, d): ``(N, embedding width)``."""
        inputs = z * self.scale + self.shift if self.normalize else z
        if self.periodic_axes:
            angles = z[:, self.periodic_axes] * self.frequency
            inputs = torch.cat([inputs[:, self._other_axes], torch.cos(angles),
                                torch.sin(angles)], dim=1)
        return self.fourier(inputs) if self.fourier is not None else inputs

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        raw = self.network(self.embed(z)).squeeze(-1)
        if self.output_transform is not None:
            return self.output_transform(z, raw)
        return raw


class StitchedModel(nn.Module):
    """A network per time window, as one function: u(z) is ``models[k](z)`` for the window
    ``edges[k] <= t < edges[k+1]`` of the point's time t (the last input; the last window
    also takes t = edges[-1], and times outside go to the nearest window).

    Args:
        models: K networks, each ``(N, d) -> (N,)``.
        edges: K + 1 increasing times.
    """

    def __init__(self, models: list[nn.Module], edges: list[float]):
        super().__init__()
        if len(edges) != len(models) + 1 or any(a >= b for a, b in zip(edges, edges[1:])):
            raise ValueError(f"StitchedModel: {len(models)} models need {len(models) + 1} "
                             f"increasing edges, got {edges}")
        self.models = nn.ModuleList(models)
        self.register_buffer("inner_edges", torch.tensor(edges[1:-1], dtype=torch.float64),
                             persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        window = torch.searchsorted(self.inner_edges.to(z.device),
                                    z[:, -1].detach().to(torch.float64).contiguous(),
                                    right=True)
        out = z.new_empty(z.shape[0])
        for k, model in enumerate(self.models):
            rows = window == k
            if rows.any():
                out[rows] = model(z[rows])
        return out
