"""Monitor heat maps (matplotlib, Agg): one figure per statistic, layers × steps, a panel per term.

Each figure reads a :class:`pinnsketch.sketch.statistics.MonitorHistory` only, so it can be drawn
during a run, at its end, or later from a checkpoint.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

__all__ = ["STATISTIC_PLOTS", "plot_monitor"]

# statistic -> (title, colour scale, colour map); "log" scales use the positive values' range.
STATISTIC_PLOTS = {
    "norm": ("gradient norm ‖G‖_F (exact)", "log", "viridis"),
    "ema_norm": ("EMA gradient norm ‖Ḡ‖_F (sketch)", "log", "viridis"),
    "snr": ("signal-to-noise ‖Ḡ‖ / √EMA‖G‖²", (0.0, 1.0), "magma"),
    "erank": ("effective rank of Ḡ (diversity)", "linear", "cividis"),
    "drift": ("subspace drift between spectral checks [°] (stability)", (0.0, 90.0), "inferno"),
    "imbalance": ("imbalance λ̂ = max|∇L_ref| / mean|∇L_τ| (Wang et al. 2021)", "log", "viridis"),
    "cosine": ("cosine between terms' gradients (alignment)", (-1.0, 1.0), "RdBu"),
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


def plot_monitor(history, folder: Path) -> list[Path]:
    """Write ``monitor_<statistic>.png`` heat maps and ``monitor_losses.png`` into ``folder``.

    Args:
        history: the monitor's history view.
        folder: output folder (created).

    Returns:
        The paths written (statistics with no column, e.g. cosines of a one-term run, are
        skipped).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if len(history.steps) == 0:
        return written
    edges = _edges(history.steps)
    layers = history.layers
    for stat, (title, scale, cmap) in STATISTIC_PLOTS.items():
        keys = [k for k in (*history.terms, *history.pairs) if history.has(stat, layers[0], k)]
        if not keys:
            continue
        panels = {k: np.stack([history.series(stat, layer, k) for layer in layers]) for k in keys}
        data = np.concatenate([p.ravel() for p in panels.values()])
        if not np.isfinite(data).any():
            continue
        norm = _norm(scale, data)
        size = (4.2 * len(keys) + 1.2, 0.35 * len(layers) + 2.2)
        fig, axes = plt.subplots(1, len(keys), figsize=size, squeeze=False,
                                 constrained_layout=True)
        for ax, key in zip(axes[0], keys):
            mesh = ax.pcolormesh(edges, np.arange(len(layers) + 1) - 0.5,
                                 np.ma.masked_invalid(panels[key]), norm=norm, cmap=cmap,
                                 shading="flat")
            ax.set_yticks(range(len(layers)), layers)
            ax.invert_yaxis()
            ax.set_xlabel("step")
            ax.set_title(key.replace("|", " vs "))
        fig.colorbar(mesh, ax=axes[0].tolist())
        fig.suptitle(title)
        path = folder / f"monitor_{stat}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    for term in history.terms:
        ax.semilogy(history.steps, np.abs(history.series("loss", "", term)), label=term)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (unweighted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path = folder / "monitor_losses.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
