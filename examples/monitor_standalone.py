"""The gradient monitor on a plain PyTorch model (no PINN, no trainer, no YAML).

A small regression with two loss terms — fit noisy samples of sin(3x), and a smoothness
penalty on the outputs' differences. Every 5 steps the monitor takes each term's weight
gradients per Linear layer and keeps their EMA sketches, norms, alignment and imbalance in
constant memory; at the end it writes ``diagnosis.md`` and heat maps. The monitor's part is
the five numbered lines. (With the smoothness factor at 10 instead of 100 the diagnosis
reports the penalty outweighed by the fit — its gradient 24× smaller while its loss climbs —
and the remedy ``train.weights.smooth=24.2``.)

    python examples/monitor_standalone.py [--steps 600] [--out runs/monitor-standalone]
"""
from __future__ import annotations

import argparse

import torch

from pinnsketch.runner.diagnosis import write_report
from pinnsketch.monitor import SketchMonitor, term_gradients


def main(steps: int = 600, out: str = "runs/monitor-standalone"):
    """Train for ``steps`` Adam steps; returns the monitor and the last check's gradients."""
    torch.manual_seed(0)  # the entry point seeds: nn.Linear draws its initial weights
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-1.0, 1.0, 256)[:, None]
    y = torch.sin(3.0 * x) + 0.05 * torch.randn(x.shape, generator=gen)
    net = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    monitor = SketchMonitor.for_module(net, ("fit", "smooth"), rank=4, every=5)   # 1
    grads = {}
    for step in range(steps):
        u = net(x)
        losses = {"fit": (u - y).square().mean(), "smooth": 100.0 * u.diff(dim=0).square().mean()}
        if step % monitor.every == 0:                                              # 2
            grads = term_gradients(losses, net)                                    # 3
            monitor.observe(step, {t: v.item() for t, v in losses.items()}, grads)   # 4
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    report = write_report(out, monitor)                                            # 5
    print(report.split("## Statistics")[0])
    print(f"monitor memory: {monitor.nbytes()} bytes, constant in the number of steps")
    return monitor, grads


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default="runs/monitor-standalone")
    args = parser.parse_args()
    main(args.steps, args.out)
