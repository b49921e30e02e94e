"""The gradient sketch monitor: per-layer, per-loss-term gradient statistics in constant memory.

Every ``every`` training steps the trainer hands the monitor G = ∂L_τ/∂W_ℓ (d_out × d_in) for
every loss term τ and Linear layer ℓ. Per (layer, term) the monitor keeps

1. an EMA sketch of G — the three-sketch of Tropp et al. 2019 maintained as an exponential
   moving average (METHOD.md §2–3), or a Frequent Directions sketch of the second moment
   EMA(GᵀG) (``backend="fd"``, METHOD.md §6);
2. the exact cheap scalars of each check (‖G‖_F, the EMA of ‖G‖²_F, cosines between terms,
   the imbalance ratio of Wang et al. 2021, the loss values);
3. a :class:`~pinnsketch.monitor.history.DecimatedHistory` of every statistic, so a whole
   run can be plotted and diagnosed from a fixed number of rows.

The statistics that need singular subspaces (EMA norm, effective rank, drift, SNR, angles
between terms' subspaces) are read from the sketches every ``spectral_every`` checks — half
the EMA time constant 1/(1−β), the time scale on which Ḡ can change — and carried in between;
the other checks do no decomposition. Definitions: :mod:`pinnsketch.monitor.statistics`.

Three-sketch storage is batched: all (layer, term) pairs of one weight shape form a bank whose
sketches X (B×k×n), Y (B×m×k), Z (B×s×s) are updated by a few batched GEMMs per check, and all
banks share one set of Gaussian test matrices (views of a single draw: any sub-block of an
i.i.d. Gaussian matrix is one). Sizes follow :func:`pinnsketch.sketch.three_sketch.sketch_sizes`
(``rol`` preset, clipped to the layer); reconstruction is that of
:class:`~pinnsketch.sketch.three_sketch.ThreeSketch`, batched.

Memory (numbers; constant in the number of checks, :meth:`SketchMonitor.nbytes`): per (layer,
term) k(d_out + d_in) + s² sketch and r(d_out + d_in) leading-subspace numbers; the shared
test matrices (k + s)(max d_out + max d_in); the history ``history × (columns + 1)``.

Standalone use on any module with Linear layers (examples/monitor_standalone.py)::

    monitor = SketchMonitor.for_module(net, ("fit", "smooth"), rank=4, every=5)
    grads = term_gradients({"fit": l_fit, "smooth": l_smooth}, net)   # graph kept
    monitor.observe(step, {"fit": l_fit.item(), "smooth": l_smooth.item()}, grads)
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from pinnsketch.monitor.banks import BACKENDS
from pinnsketch.monitor.gradients import linear_layers
from pinnsketch.monitor.history import (SPECTRAL_STATS, DecimatedHistory, MonitorHistory,
                                        history_columns)
from pinnsketch.monitor.statistics import effective_rank, largest_angle
from pinnsketch.sketch.three_sketch import sketch_sizes

__all__ = ["SketchMonitor"]

STATE_VERSION = 1


class _Group:
    """The layers of one weight shape: their indices, bank and last leading subspaces."""

    def __init__(self, shape: tuple[int, int], layers: list[int], bank, rank: int,
                 n_terms: int, dtype: torch.dtype, device: torch.device):
        self.shape, self.layers, self.bank, self.rank = shape, layers, bank, rank
        m, n = shape
        count = len(layers) * n_terms
        # Leading subspaces at the last spectral evaluation (allocated once: constant memory).
        self.left = (torch.zeros(count, m, rank, dtype=dtype, device=device)
                     if bank.uses_mean else None)
        self.right = torch.zeros(count, n, rank, dtype=dtype, device=device)
        self.has_previous = False
        # Rows (layer, a) and (layer, b) of every pair a < b of terms, layer by layer.
        pairs = [(i * n_terms + a, i * n_terms + b) for i in range(len(layers))
                 for a in range(n_terms) for b in range(a + 1, n_terms)]
        self.pair_a = torch.tensor([a for a, _ in pairs], dtype=torch.long, device=device)
        self.pair_b = torch.tensor([b for _, b in pairs], dtype=torch.long, device=device)

    def tensors(self) -> list[torch.Tensor]:
        return self.bank.tensors() + [t for t in (self.left, self.right, self.pair_a, self.pair_b)
                                      if t is not None]


class SketchMonitor:
    """Constant-memory monitor of per-layer, per-term gradients (see the module docstring).

    Args:
        layers: ``{"layer<i>": (d_out, d_in)}`` of the monitored weight matrices, in order.
        terms: loss-term names, e.g. ``("pde", "bc", "ic")``. The imbalance reference is
            ``"pde"`` if present, else the first term.
        rank: sketch rank r (clipped to min(d_out, d_in) per layer); three-sketch sizes
            k = 2r+1, s = 2k+1 (clipped likewise), FD keeps 2r+1 rows.
        beta: EMA factor per check, in [0, 1).
        every: training steps between checks (the trainer reads it).
        backend: ``"three_sketch"`` or ``"fd"``.
        history: rows of the decimated history (even, ≥ 8).
        seed: seeds the shared Gaussian test matrices.
        dtype: precision of sketches and spectral work (float32 by default: monitoring needs
            no more, and it halves the memory); exact scalars use the gradients' precision.
        device: where the state lives (the gradients' device, so a check never syncs).

    Raises:
        ValueError: on an unknown backend, empty or repeated terms, no layers, or a value out
            of range.
    """

    def __init__(self, layers: Mapping[str, tuple[int, int]], terms: Sequence[str], *,
                 rank: int = 4, beta: float = 0.9, every: int = 10,
                 backend: str = "three_sketch", history: int = 256, seed: int = 0,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):
        if backend not in BACKENDS:
            raise ValueError(f"monitor backend: got {backend!r} (allowed: {', '.join(BACKENDS)})")
        if not terms or len(set(terms)) != len(terms):
            raise ValueError(f"monitor terms: got {tuple(terms)!r}, need distinct names")
        if not layers:
            raise ValueError("monitor layers: got none, need at least one Linear layer")
        for name, value, ok in (("rank", rank, rank >= 1), ("every", every, every >= 1),
                                ("beta", beta, 0.0 <= beta < 1.0),
                                ("history", history, history >= 8 and history % 2 == 0)):
            if not ok:
                raise ValueError(f"monitor {name}: got {value!r}, out of range")
        self.layers = {name: (int(m), int(n)) for name, (m, n) in layers.items()}
        self.terms = tuple(terms)
        self.rank, self.beta, self.every = rank, float(beta), every
        self.backend, self.seed, self.dtype = backend, seed, dtype
        self.device = torch.device(device)
        self.reference = "pde" if "pde" in self.terms else self.terms[0]
        # Ḡ changes on the time scale 1/(1−β) checks; two readings per time scale.
        self.spectral_every = max(1, round(0.5 / (1.0 - self.beta)))
        n_terms = len(self.terms)
        self._ref = self.terms.index(self.reference)
        self._others = [i for i in range(n_terms) if i != self._ref]
        pairs = [(i, j) for i in range(n_terms) for j in range(i + 1, n_terms)]
        self._pair_a = torch.tensor([i for i, _ in pairs], dtype=torch.long, device=self.device)
        self._pair_b = torch.tensor([j for _, j in pairs], dtype=torch.long, device=self.device)
        shapes = list(self.layers.values())
        self._numel = torch.tensor([m * n for m, n in shapes], dtype=torch.float64,
                                   device=self.device)
        # 1. Shared Gaussian test matrices, drawn once from the seed (on the CPU: the same
        #    numbers on every device).
        k_max, s_max = sketch_sizes(rank, "rol")
        m_max, n_max = max(m for m, _ in shapes), max(n for _, n in shapes)
        generator = torch.Generator().manual_seed(seed)
        draw = lambda cols: torch.randn(k_max + s_max, cols, generator=generator,
                                        dtype=torch.float64).to(self.device, dtype)
        self._tests = (draw(m_max), draw(n_max)) if backend == "three_sketch" else ()
        # 2. One bank per weight shape, rows ordered (layer, term).
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, shape in enumerate(shapes):
            by_shape.setdefault(shape, []).append(i)
        self._groups = []
        for (m, n), indices in by_shape.items():
            r = min(rank, m, n)
            bank = BACKENDS[backend](len(indices) * n_terms, m, n, r, self.beta, self._tests,
                                     k_max, dtype, self.device)
            self._groups.append(_Group((m, n), indices, bank, r, n_terms, dtype, self.device))
        # Position of layer i in the concatenation of the groups' layers.
        order = [i for group in self._groups for i in group.layers]
        self._unsort = torch.tensor([order.index(i) for i in range(len(shapes))],
                                    dtype=torch.long, device=self.device)
        # 3. Per-check state and the history.
        self.checks = 0
        self.last_step: int | None = None
        self._sq_ema = torch.zeros(len(shapes), n_terms, dtype=torch.float64, device=self.device)
        self.columns = history_columns(list(self.layers), self.terms, self.reference)
        spectral_names = {stat for stat, _ in SPECTRAL_STATS}
        n_spectral = sum(1 for stat, _, _ in self.columns if stat in spectral_names)
        self._spectral = torch.full((n_spectral,), math.nan, dtype=torch.float64,
                                    device=self.device)
        self.history = DecimatedHistory(history, len(self.columns), device=self.device)

    @classmethod
    def for_module(cls, module: nn.Module, terms: Sequence[str], *, layers: Sequence[int] = (),
                   **kwargs: Any) -> "SketchMonitor":
        """A monitor of ``module``'s Linear layers (all, or the indices ``layers``), on the
        module's device."""
        chosen = linear_layers(module)
        if not chosen:
            raise ValueError(f"{type(module).__name__} has no nn.Linear layers to monitor")
        indices = list(layers) or list(range(len(chosen)))
        bad = [i for i in indices if not 0 <= i < len(chosen)]
        if bad:
            raise ValueError(f"monitor layers: got {bad}, indices must be in "
                             f"[0, {len(chosen) - 1}]")
        kwargs.setdefault("device", chosen[0].weight.device)
        return cls({f"layer{i}": tuple(chosen[i].weight.shape) for i in indices}, terms,
                   **kwargs)

    # -- the check (hot path) -------------------------------------------------------------------
    def observe(self, step: int, losses: Mapping[str, float],
                grads: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Take one check: update the sketches and record this check's statistics.

        Args:
            step: the training step of these gradients.
            losses: ``{term: L_τ}`` (floats), unweighted.
            grads: ``{term: {"layer<i>": ∂L_τ/∂W_i (d_out × d_in)}}``; extra terms or layers
                are ignored, missing ones raise KeyError.

        Cost: per weight shape, one stack of its gradients, a few batched GEMMs (the sketch
        update) and four batched reductions (Gram matrix, max and mean of |G|); every
        ``spectral_every`` checks also batched QR/SVDs of the k×k cores. No host sync.
        """
        names, n_terms = list(self.layers), len(self.terms)
        try:
            stacks = [torch.stack([grads[t][names[i]] for i in group.layers for t in self.terms])
                      for group in self._groups]
            loss_values = [float(losses[t]) for t in self.terms]
        except KeyError as err:
            raise KeyError(f"observe: no gradient or loss for {err.args[0]!r} (monitored terms "
                           f"{self.terms}, layers {tuple(self.layers)})") from None
        grams, amax, amean = [], [], []
        for group, stack in zip(self._groups, stacks):
            # 1. The sketches: the stored state of the gradient matrices.
            group.bank.update(stack.to(self.dtype))
            # 2. Exact scalars: Gram matrix of the terms' flattened gradients, |G| max/mean.
            flat = stack.reshape(len(group.layers), n_terms, -1).to(torch.float64)
            grams.append(flat @ flat.mT)
            magnitude = flat.abs()
            amax.append(magnitude.amax(-1))
            amean.append(magnitude.mean(-1))
        gram = torch.cat(grams)[self._unsort]                       # (L, T, T)
        amax_t, amean_t = torch.cat(amax)[self._unsort], torch.cat(amean)[self._unsort]
        square = torch.diagonal(gram, dim1=1, dim2=2)               # ‖G‖²_F (L, T)
        self._sq_ema.lerp_(square, 1.0 - self.beta)
        self.checks += 1
        self.last_step = step
        values = [torch.tensor(loss_values, dtype=torch.float64, device=self.device),
                  square.sqrt().reshape(-1)]
        values += self._imbalance(amax_t, amean_t) + self._cosines(gram)
        # 3. Spectral statistics from the sketches, every spectral_every checks.
        if (self.checks - 1) % self.spectral_every == 0:
            self._spectral_update()
        values.append(self._spectral)
        self.history.add(step, torch.cat(values))

    def _imbalance(self, amax: torch.Tensor, amean: torch.Tensor) -> list[torch.Tensor]:
        """Wang et al. λ̂ = max|∇L_ref| / mean|∇L_τ|: per layer (L, T−1), network-wide (T−1)."""
        if not self._others:
            return []
        others = amean[:, self._others]
        per_layer = amax[:, self._ref:self._ref + 1] / others.clamp_min(1e-300)
        overall_mean = (others * self._numel[:, None]).sum(0) / self._numel.sum()
        return [per_layer.reshape(-1), amax[:, self._ref].max() / overall_mean.clamp_min(1e-300)]

    def _cosines(self, gram: torch.Tensor) -> list[torch.Tensor]:
        """cos(vec G_a, vec G_b) per layer (L, P) and over the whole network (P)."""
        if not len(self._pair_a):
            return []

        def cosine(g: torch.Tensor) -> torch.Tensor:
            norms = torch.diagonal(g, dim1=-2, dim2=-1).clamp_min(1e-300).sqrt()
            return (g[..., self._pair_a, self._pair_b]
                    / (norms[..., self._pair_a] * norms[..., self._pair_b]))

        return [cosine(gram).reshape(-1), cosine(gram.sum(0))]

    def _spectral_update(self) -> None:
        """Read the sketches: EMA norm, SNR, effective rank, drift and subspace angles."""
        n_terms, n_pairs = len(self.terms), len(self._pair_a)
        ema_norm, erank, drift, angle = [], [], [], []
        for group in self._groups:
            sigma, u, v = group.bank.spectrum()                      # batched over (layer, term)
            r, n_layers, count = group.rank, len(group.layers), sigma.shape[0]
            u = u[..., :r] if u is not None else None
            v = v[..., :r]
            ema_norm.append(sigma.square().sum(-1).sqrt().reshape(n_layers, n_terms))
            erank.append(effective_rank(sigma).reshape(n_layers, n_terms))
            # One batched angle computation per side: (previous, term a) against (current,
            # term b) — the drift of every (layer, term), then every pair of terms of a layer.
            first = (None if u is None else torch.cat([group.left, u[group.pair_a]]),
                     torch.cat([group.right, v[group.pair_a]]))
            second = (None if u is None else torch.cat([u, u[group.pair_b]]),
                      torch.cat([v, v[group.pair_b]]))
            angles = _subspace_angle(first, second)
            moved = angles[:count] if group.has_previous else torch.full_like(angles[:count],
                                                                              math.nan)
            drift.append(moved.reshape(n_layers, n_terms))
            angle.append(angles[count:].reshape(n_layers, n_pairs))
            if u is not None:
                group.left.copy_(u)
            group.right.copy_(v)
            group.has_previous = True
        stack = lambda parts: torch.cat(parts).to(torch.float64)[self._unsort]
        ema_norm, erank, drift = stack(ema_norm), stack(erank), stack(drift)
        rms = (self._sq_ema / (1.0 - self.beta ** self.checks)).sqrt()
        if BACKENDS[self.backend].uses_mean:
            snr = ema_norm / rms.clamp_min(1e-300)
        else:  # FD sketches the second moment, not the mean gradient: no ‖Ḡ‖, no SNR
            ema_norm = torch.full_like(ema_norm, math.nan)
            snr = torch.full_like(rms, math.nan)
        parts = [ema_norm, snr, erank, drift] + ([stack(angle)] if len(self._pair_a) else [])
        self._spectral = torch.cat([p.reshape(-1) for p in parts])

    # -- reading ----------------------------------------------------------------------------------
    def history_view(self) -> MonitorHistory:
        """All committed history rows (numpy float64), with column lookup."""
        steps, rows = self.history.view()
        return MonitorHistory(steps.numpy(), rows.to(torch.float64).cpu().numpy(), self.columns,
                              self.layers, self.terms, self.reference, self.history.stride)

    def _slot(self, layer: str, term: str) -> tuple[_Group, int]:
        index = list(self.layers).index(layer)
        group = next(g for g in self._groups if index in g.layers)
        return group, group.layers.index(index) * len(self.terms) + self.terms.index(term)

    def ema_spectrum(self, layer: str, term: str) -> torch.Tensor:
        """Singular values (k,) of the bias-corrected EMA gradient (three-sketch), or square
        roots of the eigenvalues of the bias-corrected EMA(GᵀG) (FD), read now."""
        group, row = self._slot(layer, term)
        return group.bank.spectrum()[0][row]

    def leading_subspaces(self, layer: str, term: str) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Leading left (d_out × r) and right (d_in × r) singular vectors of the EMA gradient
        read from the sketch now (left is None for the FD backend)."""
        group, row = self._slot(layer, term)
        _, u, v = group.bank.spectrum()
        r = group.rank
        return (u[row, :, :r] if u is not None else None), v[row, :, :r]

    def nbytes(self) -> int:
        """Bytes held: sketches, shared test matrices, leading subspaces, history and the
        per-check scalars. Constant in the number of checks."""
        tensors = [*self._tests, self._sq_ema, self._spectral, self._numel, self._pair_a,
                   self._pair_b, self._unsort]
        for group in self._groups:
            tensors += group.tensors()
        total = sum(t.numel() * t.element_size() for t in tensors)
        total += sum(g.bank.nbytes() for g in self._groups if hasattr(g.bank, "nbytes"))
        return total + self.history.nbytes()

    # -- state ------------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The constructor arguments (plain Python): enough to rebuild an empty twin."""
        return {"layers": {k: list(v) for k, v in self.layers.items()}, "terms": list(self.terms),
                "rank": self.rank, "beta": self.beta, "every": self.every,
                "backend": self.backend, "history": self.history.capacity, "seed": self.seed,
                "dtype": str(self.dtype).removeprefix("torch.")}

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (tensors cloned) and the constructor config."""
        return {
            "version": STATE_VERSION, "config": self.config_dict(),
            "checks": self.checks, "last_step": self.last_step,
            "sq_ema": self._sq_ema.clone(), "spectral": self._spectral.clone(),
            "tests": [t.clone() for t in self._tests],
            "groups": [{"bank": g.bank.state_dict(), "has_previous": g.has_previous,
                        "left": None if g.left is None else g.left.clone(),
                        "right": g.right.clone()} for g in self._groups],
            "history": self.history.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a monitor with the same configuration (``every``
        may differ).

        Raises:
            ValueError: if the saved configuration differs (layers, terms, sizes, backend).
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"monitor state version {state.get('version')!r}, "
                             f"expected {STATE_VERSION}")
        saved, mine = dict(state["config"]), self.config_dict()
        saved.pop("every", None)
        mine.pop("every")
        if saved != mine:
            diff = sorted(k for k in mine if saved.get(k) != mine[k])
            raise ValueError(f"monitor state was saved with a different configuration "
                             f"({', '.join(diff)})")
        self.checks, self.last_step = int(state["checks"]), state["last_step"]
        self._sq_ema.copy_(state["sq_ema"])
        self._spectral = state["spectral"].to(self.device, copy=True)
        for mine_t, saved_t in zip(self._tests, state["tests"]):
            mine_t.copy_(saved_t)  # in place: the banks hold views of these
        for group, saved_group in zip(self._groups, state["groups"]):
            group.bank.load_state_dict(saved_group["bank"])
            group.has_previous = bool(saved_group["has_previous"])
            if group.left is not None:
                group.left.copy_(saved_group["left"])
            group.right.copy_(saved_group["right"])
        self.history.load_state_dict(state["history"])

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "SketchMonitor":
        """Rebuild a monitor from its :meth:`state_dict` alone (e.g. from a checkpoint)."""
        config = dict(state["config"])
        layers = {k: tuple(v) for k, v in config.pop("layers").items()}
        config["dtype"] = getattr(torch, config["dtype"])
        monitor = cls(layers, config.pop("terms"), **config)
        monitor.load_state_dict(state)
        return monitor


def _subspace_angle(a: tuple[torch.Tensor | None, torch.Tensor],
                    b: tuple[torch.Tensor | None, torch.Tensor]) -> torch.Tensor:
    """Largest principal angle (degrees) over the left and right subspaces, batched:
    ``(left (..., m, r) or None, right (..., n, r))``."""
    angle = largest_angle(a[1], b[1])
    if a[0] is not None and b[0] is not None:
        angle = torch.maximum(angle, largest_angle(a[0], b[0]))
    return angle
