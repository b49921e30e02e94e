"""Monitor heat maps: one figure per statistic, layers × steps, a panel per term.

Each figure reads a :class:`pinnsketch.monitor.MonitorHistory` only, so it can be drawn
during a run, at its end, or later from a checkpoint. Figures are built without pyplot
(:class:`matplotlib.figure.Figure`): no global state, no backend switch.
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

__all__ = ["STATISTIC_PLOTS", "monitor_figures"]

# statistic -> (title, colour scale, colour map); "log" scales use the positive values' range.
STATISTIC_PLOTS = {
    "norm": ("gradient norm ‖G‖_F (exact)", "log", "viridis"),
    "ema_norm": ("EMA gradient norm ‖Ḡ‖_F", "log", "viridis"),
    "snr": ("signal-to-noise ‖Ḡ‖ / √EMA‖G‖²", (0.0, 1.0), "magma"),
    "erank": ("effective rank of Ḡ's leading r singular values", "linear", "cividis"),
    "drift": ("subspace drift between spectral checks [°] (stability)", (0.0, 90.0), "inferno"),
    "imbalance": ("imbalance λ̂ = max|∇L_ref| / mean|∇L_τ| (Wang et al. 2021)", "log", "viridis"),
    "cosine": ("cosine between terms' gradients", (-1.0, 1.0), "RdBu"),
    "alignment": ("alignment score of all terms (Wang et al. 2025)", (-1.0, 1.0), "RdBu"),
    "subspace_angle": ("largest principal angle between terms' subspaces [°]", (0.0, 90.0),
                       "inferno"),
}


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around the row steps (each row ends at its step)."""
    if len(steps) == 1:
        return np.array([steps[0] - 0.5, steps[0] + 0.5])
    gaps = np.diff(steps)
    return np.concatenate([[steps[0] - gaps[0]], steps]).astype(float)


def _norm(scale, data: np.ndarray):
    if isinstance(scale, tuple):
        return Normalize(*scale)
    finite = data[np.isfinite(data)]
    if scale == "log":
        positive = finite[finite > 0]
        if positive.size == 0:
            return Normalize(0.0, 1.0)
        low, high = positive.min(), positive.max()
        return LogNorm(low, high if high > low else low * 10)
    if finite.size == 0:
        return Normalize(0.0, 1.0)
    return Normalize(finite.min(), max(finite.max(), finite.min() + 1e-12))


def monitor_figures(history, *, title: str = "") -> dict[str, Figure]:
    """``{"monitor_<statistic>": Figure}`` heat maps and ``"monitor_losses"``.

    Args:
        history: the monitor's history view.
        title: prefix of every figure's title (e.g. the run's name).

    Statistics with no column (cosines of a one-term run) or no finite value are skipped;
    an empty history gives no figures.
    """
    figures: dict[str, Figure] = {}
    if len(history.steps) == 0:
        return figures
    prefix = f"{title}: " if title else ""
    edges = _edges(history.steps)
    layers = history.layers
    for stat, (name, scale, cmap) in STATISTIC_PLOTS.items():
        keys = [k for k in (*history.terms, *history.pairs, "all")
                if history.has(stat, layers[0], k)]
        if not keys:
            continue
        panels = {k: np.stack([history.series(stat, layer, k) for layer in layers]) for k in keys}
        data = np.concatenate([p.ravel() for p in panels.values()])
        if not np.isfinite(data).any():
            continue
        norm = _norm(scale, data)
        fig = Figure(figsize=(4.2 * len(keys) + 1.2, 0.35 * len(layers) + 2.2),
                     layout="constrained")
        axes = fig.subplots(1, len(keys), squeeze=False)
        for ax, key in zip(axes[0], keys):
            mesh = ax.pcolormesh(edges, np.arange(len(layers) + 1) - 0.5,
                                 np.ma.masked_invalid(panels[key]), norm=norm, cmap=cmap,
                                 shading="flat")
            ax.set_yticks(range(len(layers)), layers)
            ax.invert_yaxis()
            ax.set_xlabel("step")
            ax.set_ylabel("layer")
            ax.set_title("all terms" if key == "all" else key.replace("|", " vs "))
        fig.colorbar(mesh, ax=axes[0].tolist())
        fig.suptitle(prefix + name)
        figures[f"monitor_{stat}"] = fig
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    for term in history.terms:
        ax.semilogy(history.steps, np.abs(history.series("loss", "", term)), label=term)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (unweighted)")
    ax.set_title(prefix + "losses at the monitor's checks")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    figures["monitor_losses"] = fig
    return figures
