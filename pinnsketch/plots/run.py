"""Figures of one run: the solution against its reference, and the training curves.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so drawing
never touches matplotlib's global state or backend (inline notebook plots keep working); the
caller saves it (``fig.savefig(path)``).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["curves_figure", "solution_figure"]


def _title(problem: str, rel_l2: float | None) -> str:
    if rel_l2 is None or not math.isfinite(rel_l2):
        return f"{problem} (no reference: relative L2 error not measured)"
    return f"{problem}: relative L2 error {rel_l2:.3e}"


def solution_figure(points: np.ndarray, shape: tuple[int, ...], names: Sequence[str],
                    prediction: np.ndarray, *, reference: np.ndarray | None = None,
                    residual: np.ndarray | None = None, evolution: bool,
                    problem: str, rel_l2: float | None = None,
                    outputs: Sequence[str] = ("u",)) -> Figure:
    """Prediction, reference and |error| (or prediction and |PDE residual| without a reference).

    Args:
        points: evaluation grid ``(N, d)``, last input varying fastest; ``N = prod(shape)``.
        shape: the grid shape.
        names: input names, e.g. ``("x", "t")``.
        prediction, reference, residual: values ``(N,)`` on the grid (reference or residual
            may be None); NaN where a point lies outside the domain (left blank). For a
            system, ``(N, k)`` with one row of panels per output, and a reference column of
            NaN for an output it does not give.
        evolution: the last input is time. Fields are drawn with time on the horizontal
            axis (space vertical, as in the PINN literature); steady 2-D fields with the
            first input horizontal and the second vertical. Three inputs: the last time slice.
        problem: the problem's name, for the title; rel_l2: the error, for the title.
        outputs: the output names, one per column of a system's values.

    Prediction and reference share one colour scale, so they compare by eye.
    """
    rows = len(outputs) if prediction.ndim == 2 else 1
    fig = Figure(figsize=(14 if len(shape) > 1 else 11, 4.2 * rows), layout="constrained")
    fig.suptitle(_title(problem, rel_l2))
    panels = fig.subfigures(rows, 1) if rows > 1 else [fig]
    note = None
    for row, panel in enumerate(np.atleast_1d(panels)):
        def column(values):
            return values if values is None or values.ndim == 1 else values[:, row]
        field_reference = column(reference)
        if field_reference is not None and np.isnan(field_reference).all():
            field_reference = None
        note = _draw_fields(panel, points, shape, names, column(prediction), field_reference,
                            column(residual) if residual is not None and residual.ndim == 2
                            else residual, evolution, outputs[row])
    if note:
        fig.suptitle(f"{_title(problem, rel_l2)}; {note}")
    return fig


def _draw_fields(fig, points, shape, names, prediction, reference, residual, evolution,
                 output) -> str | None:
    """One output's panels into ``fig`` (a Figure or SubFigure); returns the time slice
    drawn of a three-input field ("t = 1"), else None."""
    if len(shape) == 1:
        ax_u, ax_e = fig.subplots(1, 2)
        x = points[:, 0]
        if reference is not None:
            ax_u.plot(x, reference, "k-", label="reference")
        ax_u.plot(x, prediction, "r--", label="prediction")
        ax_u.set_ylabel(output)
        ax_u.legend()
        error, label = ((np.abs(prediction - reference), "|prediction − reference|")
                        if reference is not None else (np.abs(residual), "|PDE residual|"))
        ax_e.semilogy(x, error)
        ax_e.set_ylabel(label)
        ax_u.set_title("solution")
        ax_e.set_title(label)
        for ax in (ax_u, ax_e):
            ax.set_xlabel(names[0])
        return None
    fields = {f"{output}: prediction": prediction}
    if reference is not None:
        fields[f"{output}: reference"] = reference
        fields["|error|"] = np.abs(prediction - reference)
    elif residual is not None:
        fields["|PDE residual|"] = np.abs(residual)
    grids = {k: v.reshape(shape) for k, v in fields.items()}
    a, b = points[:, 0].reshape(shape), points[:, 1].reshape(shape)
    axis_names, note = list(names[:2]), None
    if len(shape) == 3:
        grids = {k: v[:, :, -1] for k, v in grids.items()}
        a, b = a[:, :, -1], b[:, :, -1]
        note = f"{names[2]} = {points.reshape(*shape, 3)[0, 0, -1, 2]:g}"
        evolution = False  # the slice is a steady (x, y) field
    if evolution:  # time (the last input) horizontal, space vertical
        horizontal, vertical = b, a
        h_name, v_name = axis_names[1], axis_names[0]
    else:  # first input horizontal, second vertical
        grids = {k: v.T for k, v in grids.items()}
        horizontal, vertical = a.T, b.T
        h_name, v_name = axis_names
    shared_names = [k for k in grids if k.endswith(("prediction", "reference"))]
    low = min(float(np.nanmin(grids[k])) for k in shared_names)
    high = max(float(np.nanmax(grids[k])) for k in shared_names)
    axes = fig.subplots(1, len(grids))
    for ax, (name, field) in zip(np.atleast_1d(axes), grids.items()):
        shared = name in shared_names
        limits = dict(vmin=low, vmax=high) if shared else {}
        mesh = ax.pcolormesh(horizontal, vertical, field, shading="auto",
                             cmap="viridis" if shared else "magma", **limits)
        fig.colorbar(mesh, ax=ax)
        ax.set_title(name)
        ax.set_xlabel(h_name)
        ax.set_ylabel(v_name)
    return note


def curves_figure(metrics: Sequence[Mapping[str, Any]], *, problem: str) -> Figure:
    """Per-term losses and the relative L2 error against step (log scale), with a labelled
    line at each change of optimiser phase."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_err = fig.subplots(1, 2)
    last = metrics[-1] if metrics else {}
    fig.suptitle(_title(problem, last.get("rel_l2")))
    steps = [m["step"] for m in metrics]
    for term in last.get("loss", {}):
        ax_loss.semilogy(steps, [m["loss"].get(term, np.nan) for m in metrics], label=term)
    ax_loss.set_ylabel("loss (unweighted)")
    ax_loss.set_title("loss per term")
    errors = [m.get("rel_l2") for m in metrics]
    if any(e is not None for e in errors):
        ax_err.semilogy(steps, [np.nan if e is None else e for e in errors], color="k")
        ax_err.set_title("relative L2 error")
    else:
        ax_err.set_title("relative L2 error: no reference")
    ax_err.set_ylabel("relative L2 error")
    phases = [(m["step"], m["phase"]) for m in metrics]
    for ax in (ax_loss, ax_err):
        for (_, phase), (step, before) in zip(phases[1:], phases[:-1]):
            if phase != before:  # the earlier phase ended at its last record
                ax.axvline(step, color="grey", ls=":", lw=1, label=f"{before} → {phase}")
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig
