"""Figures of a run (matplotlib, Agg backend): solution, reference, error, curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

__all__ = ["plot_curves", "plot_fields", "plot_run"]


def plot_fields(points: np.ndarray, shape: tuple[int, ...], prediction: np.ndarray,
                reference: np.ndarray, names: tuple[str, ...], path: Path) -> None:
    """Prediction, reference and |error| as heat maps over the first two inputs.

    For three inputs (e.g. x, y, t) the last slice of the third axis is shown; for one
    input, curves.
    """
    if len(shape) == 1:
        fig, (ax_u, ax_e) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        x = points[:, 0]
        ax_u.plot(x, reference, "k-", label="reference")
        ax_u.plot(x, prediction, "r--", label="prediction")
        ax_u.legend()
        ax_e.semilogy(x, np.abs(prediction - reference))
        ax_e.set_title("|error|")
        for ax in (ax_u, ax_e):
            ax.set_xlabel(names[0])
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    grids = [a.reshape(shape) for a in (points[:, 0], points[:, 1], prediction, reference)]
    if len(shape) == 3:
        grids = [g[:, :, -1] for g in grids]
        names = (*names[:2], f"{names[2]} = {points.reshape(*shape, 3)[0, 0, -1, 2]:g}")
    a, b, pred, ref = grids
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    panels = [("prediction", pred, "viridis"), ("reference", ref, "viridis"),
              ("|error|", np.abs(pred - ref), "magma")]
    for ax, (title, field, cmap) in zip(axes, panels):
        # Put the last input (time for evolution problems) on the horizontal axis.
        mesh = ax.pcolormesh(b, a, field, shading="auto", cmap=cmap)
        fig.colorbar(mesh, ax=ax)
        ax.set_title(title)
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
    if len(shape) == 3:
        fig.suptitle(names[2])
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(metrics: list[dict], path: Path) -> None:
    """Per-term loss and relative L2 error against step (log scale)."""
    if not metrics:
        return
    steps = [m["step"] for m in metrics]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for term in metrics[-1]["loss"]:
        ax_loss.semilogy(steps, [m["loss"].get(term, np.nan) for m in metrics], label=term)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_err.semilogy(steps, [m["rel_l2"] for m in metrics])
    ax_err.set_xlabel("step")
    ax_err.set_ylabel("relative L2 error")
    lbfgs = [m["step"] for m in metrics if m["phase"] == "lbfgs"]
    for ax in (ax_loss, ax_err):
        if lbfgs and len(lbfgs) < len(steps):
            ax.axvline(steps[len(steps) - len(lbfgs) - 1], color="grey", ls=":", lw=1)
        ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(folder, problem, model) -> None:
    """Write ``plots/solution.png`` and ``plots/curves.png`` for a run folder."""
    from pinnsketch.api import predict

    folder.plots_path.mkdir(exist_ok=True)
    points, shape = problem.evaluation_grid()
    plot_fields(points, shape, predict(model, points), problem.reference(points),
                problem.input_names, folder.plots_path / "solution.png")
    plot_curves(folder.read_metrics(), folder.plots_path / "curves.png")
