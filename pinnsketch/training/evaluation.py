"""Evaluating a trained network: predictions in chunks, and the relative L2 error."""
from __future__ import annotations

import numpy as np
import torch

from pinnsketch.training.causal import slab_sums

__all__ = ["EVAL_CHUNK", "TIME_SLABS", "compared_columns", "evaluation_points",
           "last_hidden_features", "pde_residual_values", "predict", "reference_errors",
           "relative_l2", "residual_by_time"]

EVAL_CHUNK = 65536  # grid points per forward pass at evaluation
TIME_SLABS = 8  # slabs of the residual-over-time profile an evaluation records


def evaluation_points(problem) -> tuple[np.ndarray, tuple[int, ...], np.ndarray]:
    """The problem's plot grid ``(N, d)``, its shape, and which of its points lie in the
    domain ``(N,)`` bool (all of a box; a shape's grid covers its bounding box): the errors
    are measured on those."""
    grid, shape = problem.plot_grid()
    return grid, shape, problem.domain.contains(grid)


def compared_columns(problem, values: np.ndarray) -> np.ndarray:
    """The columns of model values ``(N,)``/``(N, outputs)`` that the reference gives, in
    its order: ``(N,)`` for a single-output problem, ``(N, k)`` for a system's k compared
    outputs."""
    if values.ndim == 1:
        return values
    return values[:, [problem.output_names.index(name) for name in problem.compared_outputs]]


def reference_errors(problem, prediction: np.ndarray,
                     reference: np.ndarray) -> dict[str, float | dict[str, float]]:
    """``rel_l2`` of the prediction against the reference over every compared output (the
    Frobenius norm of the error over the norm of the reference), and for a system
    ``rel_l2_outputs``: each compared output's own relative L2 error."""
    prediction = compared_columns(problem, prediction)
    errors: dict[str, float | dict[str, float]] = {"rel_l2": relative_l2(prediction, reference)}
    if reference.ndim == 2:
        errors["rel_l2_outputs"] = {
            name: relative_l2(prediction[:, i], reference[:, i])
            for i, name in enumerate(problem.compared_outputs)}
    return errors


def predict(model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """Model values ``(N,)`` (``(N, k)`` for k outputs; float64 numpy) at ``points``
    ``(N, d)``, in chunks, no graph."""
    param = next(model.parameters())
    out = []
    with torch.no_grad():
        for start in range(0, len(points), EVAL_CHUNK):
            chunk = torch.as_tensor(points[start:start + EVAL_CHUNK], dtype=param.dtype,
                                    device=param.device)
            out.append(model(chunk).to(torch.float64).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def last_hidden_features(model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """The input of the network's last Linear layer (its last hidden features) at
    ``points`` ``(N, d)``: ``(N, width)`` float64 numpy, in chunks, no graph."""
    captured = []
    hook = model.linear_layers[-1].register_forward_pre_hook(
        lambda module, inputs: captured.append(inputs[0].detach()))
    try:
        predict(model, points)
    finally:
        hook.remove()
    return torch.cat(captured).to(torch.float64).cpu().numpy()


def pde_residual_values(problem, model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """The PDE residual ``(N,)`` (float64 numpy) at ``points`` ``(N, d)``, in chunks."""
    param = next(model.parameters())
    out = []
    for start in range(0, len(points), EVAL_CHUNK // 8):
        chunk = torch.as_tensor(points[start:start + EVAL_CHUNK // 8], dtype=param.dtype,
                                device=param.device).requires_grad_(True)
        out.append(problem.pde_residual(model, chunk).detach().to(torch.float64).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def residual_by_time(problem, model: torch.nn.Module, points: torch.Tensor,
                     interval: tuple[float, float], slabs: int = TIME_SLABS) -> list[float]:
    """Mean squared PDE residual of ``points`` (N, d; time last) in ``slabs`` equal time slabs
    of ``interval``, earliest first (None for an empty slab): the causality profile (Wang,
    Sankaran & Perdikaris 2024 show failed evolution runs fitting late times first)."""
    points = points.detach().requires_grad_(True)
    square = problem.pde_residual(model, points).detach()
    square = square.reshape(len(points), -1).square().mean(dim=1).to(torch.float64).cpu()
    sums, counts = slab_sums(square, points[:, -1].cpu().to(torch.float64), *interval, slabs)
    return [float(s / c) if c else None for s, c in zip(sums.tolist(), counts.tolist())]


def relative_l2(prediction: np.ndarray, reference: np.ndarray) -> float:
    """‖prediction − reference‖₂ / ‖reference‖₂ for equal shapes (no broadcasting)."""
    if prediction.shape != reference.shape:
        raise ValueError(f"relative_l2: prediction {prediction.shape} and reference "
                         f"{reference.shape} differ in shape")
    return float(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))
