"""The comparison figure of ``pinnsketch compare``: one curve per mode, per quantity."""
from __future__ import annotations

from typing import Any, Sequence

from matplotlib.figure import Figure

__all__ = ["comparison_figure"]


def comparison_figure(rows: Sequence[dict[str, Any]], *, title: str) -> Figure:
    """Residual loss, data loss, relative L2 error (and λ errors for identification) against
    step; ``rows`` hold each mode's ``"mode"`` label and ``"metrics"`` records."""
    panels = [("residual loss", lambda m: m["loss"].get("pde")),
              ("data loss", lambda m: m["loss"].get("data")),
              ("relative L2 error", lambda m: m["rel_l2"])]
    if "lambda1_error" in rows[0]["metrics"][-1]:
        panels += [("λ₁ error", lambda m: m["lambda1_error"]),
                   ("λ₂ relative error", lambda m: m["lambda2_error"])]
    fig = Figure(figsize=(4.2 * len(panels), 4.0), layout="constrained")
    fig.suptitle(title)
    axes = fig.subplots(1, len(panels))
    for ax, (name, value) in zip(axes, panels):
        for row in rows:
            steps = [m["step"] for m in row["metrics"]]
            ax.semilogy(steps, [value(m) for m in row["metrics"]], label=row["mode"])
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    return fig
