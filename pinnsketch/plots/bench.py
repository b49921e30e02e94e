"""The figure of ``pinnsketch bench``: every seed's relative L2 error per config, beside the
published figure."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["bench_figure"]


def bench_figure(rows: Sequence[Mapping], anchors: Mapping[str, tuple[float, str]]) -> Figure:
    """One column per config: each seed's error (dots), their median (a bar) and the
    published figure (a star), on a log scale.

    Args:
        rows: ``{"config", "seed", "rel_l2"}`` per run.
        anchors: ``{config: (published rel L2, source)}``.
    """
    names = list(dict.fromkeys(r["config"] for r in rows))
    fig = Figure(figsize=(max(6.0, 0.8 * len(names) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    for i, name in enumerate(names):
        errors = [r["rel_l2"] for r in rows if r["config"] == name and r["rel_l2"] is not None]
        if errors:
            ax.scatter(np.full(len(errors), i), errors, color="tab:blue", s=18,
                       label="seeds" if i == 0 else None)
            ax.hlines(np.median(errors), i - 0.3, i + 0.3, color="tab:blue",
                      label="median" if i == 0 else None)
        if name in anchors:
            ax.scatter([i], [anchors[name][0]], marker="*", color="tab:red", s=90,
                       label="published" if "published" not in
                       ax.get_legend_handles_labels()[1] else None)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylabel("relative L2 error")
    ax.set_title("pinnsketch bench")
    ax.grid(True, which="both", axis="y", alpha=0.3)
    ax.legend()
    return fig
