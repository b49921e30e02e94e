"""Evaluating a trained network: predictions in chunks, and the relative L2 error."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["EVAL_CHUNK", "pde_residual_values", "predict", "relative_l2"]

EVAL_CHUNK = 65536  # grid points per forward pass at evaluation


def predict(model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """Model values ``(N,)`` (float64 numpy) at ``points`` ``(N, d)``, in chunks, no graph."""
    param = next(model.parameters())
    out = []
    with torch.no_grad():
        for start in range(0, len(points), EVAL_CHUNK):
            chunk = torch.as_tensor(points[start:start + EVAL_CHUNK], dtype=param.dtype,
                                    device=param.device)
            out.append(model(chunk).to(torch.float64).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def pde_residual_values(problem, model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """The PDE residual ``(N,)`` (float64 numpy) at ``points`` ``(N, d)``, in chunks."""
    param = next(model.parameters())
    out = []
    for start in range(0, len(points), EVAL_CHUNK // 8):
        chunk = torch.as_tensor(points[start:start + EVAL_CHUNK // 8], dtype=param.dtype,
                                device=param.device).requires_grad_(True)
        out.append(problem.pde_residual(model, chunk).detach().to(torch.float64).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def relative_l2(prediction: np.ndarray, reference: np.ndarray) -> float:
    """‖prediction − reference‖₂ / ‖reference‖₂ for equal shapes (no broadcasting)."""
    if prediction.shape != reference.shape:
        raise ValueError(f"relative_l2: prediction {prediction.shape} and reference "
                         f"{reference.shape} differ in shape")
    return float(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))
