"""Sketched data-term weight gradients: saved memory against exact autograd, and gradient error.

    OMP_NUM_THREADS=1 python benchmarks/sketched_grad.py [--n 10000] [--depth 3]
        [--widths 32 64 128 256] [--ranks 2 4 8 16] [--error-ranks 1 2 4 8 16]
        [--stages 200 2000] [--track-steps 40] [--seed 0]

Prints Markdown tables:

1. Saved-tensor bytes of the data loss's graph (``saved_tensors_hooks``, distinct storages)
   for a tanh MLP 2 → width × depth → 1 on N points, exact against the sketched forward,
   per width and rank (float32; the ratios do not depend on the dtype), plus the ``ema``
   state kept between steps and the time of one forward + backward.
2. Relative error of the data term's weight gradient against exact autograd, both variants,
   on Burgers networks fitted to Cole–Hopf observations by Adam with exact gradients, at
   an early and a "trained-ish" snapshot (``--stages``): from each, ``track-steps`` more
   exact-gradient Adam steps feed both sketches (the ``ema`` one accumulates); errors are
   means over the second half. For scale: the output-layer error the best rank-r (SVD)
   input would give, and the relative error of the sketched activations and of their SVD
   optimum. Near a fit the residual is nearly orthogonal to the leading singular vectors
   of the activations, so the gradient lives in the tail a rank-r sketch drops.
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time

import torch

from pinnsketch.memory import saved_tensor_bytes
from pinnsketch.architectures import ACTIVATIONS, INITIALIZERS, MLP
from pinnsketch.model import PINN
from pinnsketch.references.cole_hopf import burgers_cole_hopf
from pinnsketch.sketch.sketched_grad import SketchedGradient, one_pass_factors

NU = 0.01 / math.pi


def _pinn(width: int, depth: int, dtype: torch.dtype, seed: int) -> PINN:
    mlp = MLP(2, 1, width, depth, activation=ACTIVATIONS["tanh"],
              init=INITIALIZERS["xavier_normal"], generator=torch.Generator().manual_seed(seed))
    return PINN(mlp, lows=(-1.0, 0.0), highs=(1.0, 1.0)).to(dtype)


def _observations(n: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n uniform points of [−1, 1]×[0, 1] and the Cole–Hopf u there (ν = 0.01/π)."""
    unit = torch.rand(n, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    points = torch.stack([2 * unit[:, 0] - 1, unit[:, 1]], 1)
    values = torch.from_numpy(burgers_cole_hopf(points[:, 0].numpy(), points[:, 1].numpy(), NU))
    return points.to(dtype), values.to(dtype)


def _data_loss(forward, points, values) -> torch.Tensor:
    return (forward(points) - values).square().mean()


def saved_bytes(forward, points, values) -> int:
    """Bytes of the distinct storages autograd keeps for the data loss's backward."""
    return saved_tensor_bytes(lambda: _data_loss(forward, points, values))


def _step_ms(model, forward, points, values, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        tic = time.perf_counter()
        _data_loss(forward, points, values).backward()
        times.append(time.perf_counter() - tic)
    return 1e3 * statistics.median(times)


def memory_table(n: int, depth: int, widths: list[int], ranks: list[int], seed: int) -> None:
    points, values = _observations(n, torch.float32, seed)
    print(f"### Saved bytes of the data term's graph: N = {n}, tanh MLP 2 → w × {depth} → 1, "
          f"float32\n")
    print("| width | exact MB | " + " | ".join(f"r={r} MB (saved)" for r in ranks)
          + " | ema state MB, r=8 | exact ms | r=8 ms |")
    print("|---|---|" + "---|" * len(ranks) + "---|---|---|")
    for width in widths:
        model = _pinn(width, depth, torch.float32, seed)
        exact = saved_bytes(model, points, values)
        cells = []
        for rank in ranks:
            sketch = SketchedGradient(model, rank=rank,
                                      generator=torch.Generator().manual_seed(seed))
            got = saved_bytes(lambda z: sketch.forward(model, z), points, values)
            cells.append(f"{got / 1e6:.2f} ({100 * (1 - got / exact):.1f}%)")
        ema = SketchedGradient(model, rank=8, variant="ema", n_rows=n,
                               generator=torch.Generator().manual_seed(seed))
        batch = SketchedGradient(model, rank=8, generator=torch.Generator().manual_seed(seed))
        exact_ms = _step_ms(model, model, points, values)
        sketch_ms = _step_ms(model, lambda z: batch.forward(model, z), points, values)
        print(f"| {width} | {exact / 1e6:.2f} | " + " | ".join(cells)
              + f" | {ema.nbytes() / 1e6:.2f} | {exact_ms:.1f} | {sketch_ms:.1f} |")
    print()


def _flat_grad(model, forward, points, values) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    _data_loss(forward, points, values).backward()
    return [p.grad.clone() for p in model.parameters()]


def _relative(got: list[torch.Tensor], exact: list[torch.Tensor], which) -> float:
    num = sum(float((got[i] - exact[i]).square().sum()) for i in which)
    den = sum(float(exact[i].square().sum()) for i in which)
    return math.sqrt(num / den)


def _hidden_activations(model: PINN, points: torch.Tensor) -> list[torch.Tensor]:
    """The tanh outputs (N×w) of ``model`` at ``points``: the sketched Linear inputs."""
    captured: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: captured.append(out))
             for m in model.network.net if isinstance(m, torch.nn.Tanh)]
    with torch.no_grad():
        model(points)
    for hook in hooks:
        hook.remove()
    return captured


def _activation_errors(model: PINN, points: torch.Tensor, rank: int,
                       seed: int) -> tuple[float, float]:
    """Mean over hidden layers of ‖A − Â_r‖_F/‖A‖_F: one-pass sketch and SVD optimum."""
    generator = torch.Generator().manual_seed(seed)
    sketch, optimum = [], []
    for a in _hidden_activations(model, points):
        left, right = one_pass_factors(a, rank, generator)
        sigma = torch.linalg.svdvals(a)
        sketch.append(float(torch.linalg.norm(a - left @ right.mT) / torch.linalg.norm(a)))
        optimum.append(float(torch.linalg.norm(sigma[rank:]) / torch.linalg.norm(sigma)))
    return statistics.mean(sketch), statistics.mean(optimum)


def _svd_output_error(model: PINN, points: torch.Tensor, values: torch.Tensor,
                      rank: int) -> float:
    """Output-layer gradient error if its input were replaced by its best rank-r (SVD)
    approximation: ‖ρᵀ(A − A_r)‖/‖ρᵀA‖ with ρ the residual — the floor for any sketch."""
    a = _hidden_activations(model, points)[-1]
    with torch.no_grad():
        residual = model(points) - values
    u, sigma, vh = torch.linalg.svd(a, full_matrices=False)
    a_r = (u[:, :rank] * sigma[:rank]) @ vh[:rank]
    return float(torch.linalg.norm(residual @ (a - a_r)) / torch.linalg.norm(residual @ a))


def _track(model: PINN, adam_state: dict, points, values, rank: int, steps: int,
           seed: int) -> dict[str, float]:
    """Follow ``steps`` exact-gradient Adam steps from the given state, feeding both sketches;
    mean relative errors over the second half of the steps."""
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    adam.load_state_dict(copy.deepcopy(adam_state))  # Adam mutates its state in place
    batch = SketchedGradient(model, rank=rank, generator=torch.Generator().manual_seed(seed))
    ema = SketchedGradient(model, rank=rank, variant="ema", n_rows=len(points),
                           generator=torch.Generator().manual_seed(seed))
    n_params = len(list(model.parameters()))
    weights, last = list(range(0, n_params, 2)), [n_params - 2]   # all W; output-layer W
    errors: dict[str, list[float]] = {}
    for step in range(steps):
        exact = _flat_grad(model, model, points, values)
        got = {"batch": _flat_grad(model, lambda z: batch.forward(model, z), points, values),
               "ema": _flat_grad(model, lambda z: ema.forward(model, z), points, values)}
        if step >= steps // 2:
            for name, grads in got.items():
                errors.setdefault(name, []).append(_relative(grads, exact, weights))
                errors.setdefault(name + "-out", []).append(_relative(grads, exact, last))
            errors.setdefault("out-svd", []).append(
                _svd_output_error(model, points, values, rank))
        for p, g in zip(model.parameters(), exact):  # the trajectory follows exact Adam
            p.grad = g
        adam.step()
    summary = {key: statistics.mean(v) for key, v in errors.items()}
    summary["A"], summary["A-svd"] = _activation_errors(model, points, rank, seed)
    return summary


def error_table(width: int, depth: int, n: int, ranks: list[int], stages: tuple[int, int],
                track_steps: int, seed: int) -> None:
    model = _pinn(width, depth, torch.float64, seed)
    points, values = _observations(n, torch.float64, seed)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    snapshots, done = [], 0
    for stage in stages:  # "early" and "trained-ish": Adam on the data loss, exact gradients
        for _ in range(stage - done):
            adam.zero_grad(set_to_none=True)
            _data_loss(model, points, values).backward()
            adam.step()
        done = stage
        snapshots.append((stage, float(_data_loss(model, points, values).detach()),
                          copy.deepcopy(model.state_dict()), copy.deepcopy(adam.state_dict())))
    results = {}
    for stage, _, weights, adam_state in snapshots:
        for rank in ranks:
            model.load_state_dict(weights)
            results[stage, rank] = _track(model, adam_state, points, values, rank,
                                          track_steps, seed)
    (early, early_loss, *_), (late, late_loss, *_) = snapshots
    print(f"### Weight-gradient relative error, Burgers data fit: tanh 2 → {width} × {depth} → 1, "
          f"N = {n} Cole–Hopf points, float64\n")
    print(f"Adam (lr 1e-3, exact gradients) to step {early} (data loss {early_loss:.1e}) and "
          f"{late} ({late_loss:.1e}); then {track_steps} more exact steps feeding both "
          f"sketches, errors averaged over the last {track_steps - track_steps // 2}. "
          f"\"all W\": ‖ΔG‖/‖G‖ over every weight matrix; \"out W\": the output layer only "
          f"(its Gy is exact, so only Â of its input counts); \"SVD floor\": out-W error if "
          f"that input were its best rank-r approximation; last two columns: ‖A−Â‖/‖A‖ "
          f"(mean over hidden layers) of the batch sketch and of the SVD optimum, step {late}."
          f"\n")
    print(f"| rank | all W, step {early}: batch | ema | all W, step {late}: batch | ema "
          f"| out W, step {late}: batch | ema | SVD floor | ‖A−Â‖/‖A‖ | SVD |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rank in ranks:
        e, t = results[early, rank], results[late, rank]
        print(f"| {rank} | {e['batch']:.2e} | {e['ema']:.2e} | {t['batch']:.2e} | "
              f"{t['ema']:.2e} | {t['batch-out']:.2e} | {t['ema-out']:.2e} | "
              f"{t['out-svd']:.2e} | {t['A']:.2e} | {t['A-svd']:.2e} |")
    print()


def main(n: int = 10_000, depth: int = 3, widths: tuple[int, ...] = (32, 64, 128, 256),
         ranks: tuple[int, ...] = (2, 4, 8, 16), error_ranks: tuple[int, ...] = (1, 2, 4, 8, 16),
         stages: tuple[int, int] = (200, 2000), track_steps: int = 40, seed: int = 0) -> None:
    print("Command: `OMP_NUM_THREADS=1 python " + " ".join(["benchmarks/sketched_grad.py",
                                                          *sys.argv[1:]]) + "`\n")
    memory_table(n, depth, list(widths), list(ranks), seed)
    error_table(20, 8, 2000, list(error_ranks), stages, track_steps, seed)  # shipped net
    error_table(64, 4, 2000, list(error_ranks), stages, track_steps, seed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--error-ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--stages", type=int, nargs=2, default=[200, 2000],
                        help="Adam steps of the early and the trained-ish snapshot")
    parser.add_argument("--track-steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    main(args.n, args.depth, tuple(args.widths), tuple(args.ranks), tuple(args.error_ranks),
         tuple(args.stages), args.track_steps, args.seed)
