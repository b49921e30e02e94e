"""Sketch core figures: cost, accuracy and memory of the EMA three-sketch per size, rank, preset.

For m = n ∈ {20, 64, 256, 512}, r ∈ {2, 8} and each preset, prints a Markdown table of
  - update / matmul: median over interleaved repeats of the time of one ``ThreeSketch.update``
    divided by that of one dense m×n @ n×n matmul (float32, the monitor's precision; blocks of
    calls of the two alternate, order flipping each repeat, so drift hits both alike);
    "FD / matmul" likewise for a FrequentDirections update with ℓ = 2r+1 and a batch of m rows;
  - err_r / opt: mean over seeds of ‖A − Â_r‖_F / τ_{r+1}(A) (float64, A = U diag(σ) Vᵀ with
    Haar U, V; σ_j = 0.8^j ("exp") or 1/j ("1/j"); τ from numpy.linalg.svd);
  - bytes / mn: sketch bytes (X, Y, Z, W with q = 4) and total bytes (with the test matrices)
    over the m·n numbers of the matrix itself, same dtype.

    python benchmarks/sketch_core.py [--repeats 15] [--seeds 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from pinnsketch.sketch import PRESETS, FrequentDirections, ThreeSketch

SIZES = (20, 64, 256, 512)
RANKS = (2, 8)
SPECTRA = {"exp": lambda j: 0.8 ** (j - 1), "1/j": lambda j: 1.0 / j}
BLOCK_SECONDS = 0.02     # each timed block of calls lasts about this long


def _calls_per_block(fn) -> int:
    start = time.perf_counter()
    for _ in range(5):
        fn()
    per_call = (time.perf_counter() - start) / 5
    return max(3, int(BLOCK_SECONDS / per_call))


def _block_time(fn, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def relative_time(fn, reference, repeats: int) -> float:
    """Median over interleaved repeats of time(fn) / time(reference), per call."""
    calls_fn, calls_ref = _calls_per_block(fn), _calls_per_block(reference)
    ratios = []
    for i in range(repeats):
        if i % 2:
            t_ref, t_fn = _block_time(reference, calls_ref), _block_time(fn, calls_fn)
        else:
            t_fn, t_ref = _block_time(fn, calls_fn), _block_time(reference, calls_ref)
        ratios.append(t_fn / t_ref)
    return statistics.median(ratios)


def _test_matrix(m: int, kind: str) -> tuple[torch.Tensor, np.ndarray]:
    gen = torch.Generator().manual_seed(1000 + m)
    sigma = SPECTRA[kind](torch.arange(1, m + 1, dtype=torch.float64))
    u, v = (torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=torch.float64)).Q
            for _ in range(2))
    a = (u * sigma) @ v.T
    return a, np.linalg.svd(a.numpy(), compute_uv=False)


def error_ratio(a: torch.Tensor, sigma: np.ndarray, rank: int, preset: str, seeds: int) -> float:
    """Mean over seeds of ‖A − Â_r‖_F / τ_{r+1}(A), the sketch fed A in one update."""
    optimum = float(np.sqrt((sigma[rank:] ** 2).sum()))
    errors = []
    for seed in range(seeds):
        sketch = ThreeSketch(*a.shape, rank, generator=torch.Generator().manual_seed(seed),
                             beta=0.0, preset=preset)
        sketch.update(a)
        errors.append(float(torch.linalg.matrix_norm(a - sketch.matrix(rank))))
    return float(np.mean(errors)) / optimum


def run(sizes=SIZES, ranks=RANKS, repeats: int = 15, seeds: int = 5) -> list[dict]:
    rows = []
    for m in sizes:
        gen = torch.Generator().manual_seed(m)
        a32 = torch.randn(m, m, generator=gen)
        w32 = torch.randn(m, m, generator=gen)
        matmul = lambda: a32 @ w32                                   # noqa: E731
        tests = {kind: _test_matrix(m, kind) for kind in SPECTRA}
        for rank in ranks:
            if rank > m:
                continue
            fd = FrequentDirections(m, min(2 * rank + 1, m), beta=0.9, dtype=torch.float32)
            fd_ratio = relative_time(lambda: fd.update(a32), matmul, repeats)
            for preset in PRESETS:
                sketch = ThreeSketch(m, m, rank, generator=torch.Generator().manual_seed(0),
                                     preset=preset, dtype=torch.float32)
                update_ratio = relative_time(lambda: sketch.update(a32), matmul, repeats)
                numbers = m * m * 4
                rows.append({
                    "m": m, "r": rank, "preset": preset, "k": sketch.k, "s": sketch.s,
                    "update": update_ratio, "fd": fd_ratio,
                    **{f"err {kind}": error_ratio(*tests[kind], rank, preset, seeds)
                       for kind in SPECTRA},
                    "sketch_bytes": sketch.sketch_nbytes() / numbers,
                    "total_bytes": sketch.nbytes() / numbers})
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| m = n | r | preset | k | s | update / matmul | FD / matmul | "
            "err_r / opt (exp) | err_r / opt (1/j) | sketch bytes / mn | with test mats / mn |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for row in rows:
        lines.append(f"| {row['m']} | {row['r']} | {row['preset']} | {row['k']} | {row['s']} | "
                     f"{row['update']:.3g} | {row['fd']:.3g} | {row['err exp']:.3g} | "
                     f"{row['err 1/j']:.3g} | {row['sketch_bytes']:.3g} | "
                     f"{row['total_bytes']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(repeats=args.repeats, seeds=args.seeds)
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {args.threads} thread(s), {cpu}, "
          f"repeats={args.repeats}, seeds={args.seeds}")
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
