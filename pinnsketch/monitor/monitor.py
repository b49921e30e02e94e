"""The gradient monitor: per-layer, per-loss-term gradient statistics in constant memory.

On its cadence (every ``every`` Adam steps, every ``quasi_newton_every`` function evaluations
of the phase after Adam) the trainer hands the monitor G = ∂L_τ/∂W_ℓ (d_out × d_in) for every
loss term τ and Linear layer ℓ. Per (layer, term) the monitor keeps

1. the bias-corrected EMA gradient Ḡ — exactly (m·n numbers) or as an EMA three-sketch
   (Tropp et al. 2019, k(m+n) + s² numbers; METHOD.md §2–3), whichever holds fewer numbers
   for that weight shape under ``backend="auto"`` (:func:`~pinnsketch.monitor.banks.choose_bank`);
2. the exact cheap scalars of each check (‖G‖_F, the EMA of ‖G‖²_F, cosines between terms,
   the alignment score, the imbalance ratio of Wang et al. 2021, the loss values);
3. a :class:`~pinnsketch.monitor.history.DecimatedHistory` of every statistic, so a whole
   run can be plotted and diagnosed from a fixed number of rows.

The statistics of Ḡ's singular values and subspaces (EMA norm, SNR, effective rank of the
leading r, drift, angles between terms' subspaces) are read every ``spectral_every`` checks —
half the EMA time constant 1/(1−β), the time scale on which Ḡ can change — and carried in
between. They mean the same for both kinds of bank; from a sketch they are estimates, whose
error on real PINN gradients ``notes/monitor.md`` states. Definitions:
:mod:`pinnsketch.monitor.statistics`.

All pairs of one weight shape form one bank, updated by a few batched GEMMs per check; the
sketched banks share one set of Gaussian test matrices (views of a single draw: any sub-block
of an i.i.d. Gaussian matrix is one).

Memory (:meth:`SketchMonitor.memory`; constant in the number of checks): the banks, the
shared test matrices, r(d_out + d_in) leading-subspace numbers per pair, and the history
``history × (columns + 1)``.

Standalone use on any module with Linear layers (:meth:`SketchMonitor.for_module`,
:func:`~pinnsketch.monitor.gradients.term_gradients`, :meth:`SketchMonitor.observe`):
``examples/monitor_standalone.py``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from pinnsketch.monitor.adaptive_rank import SketchRanks
from pinnsketch.monitor.banks import BACKENDS, BankGroup, ThreeSketchBank, choose_bank
from pinnsketch.monitor.gradients import linear_layers
from pinnsketch.monitor.history import (SPECTRAL_STATS, DecimatedHistory, MonitorHistory,
                                        history_columns)
from pinnsketch.monitor.statistics import effective_rank, imbalance_ratios, term_cosines
from pinnsketch.sketch.three_sketch import sketch_sizes

__all__ = ["SketchMonitor"]

STATE_VERSION = 4
READABLE_VERSIONS = (3, 4)
ERROR_PROBES = 4  # Gaussian probes per stream for an adaptive rank's error estimate


def _nbytes(tensors: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class SketchMonitor:
    """Constant-memory monitor of per-layer, per-term gradients (see the module docstring).

    Args:
        layers: ``{"layer<i>": (d_out, d_in)}`` of the monitored weight matrices, in order.
        terms: loss-term names, e.g. ``("pde", "bc", "ic")``. The imbalance reference is
            ``"pde"`` if present, else the first term.
        rank: rank r of the leading subspaces and spectra (clipped to min(d_out, d_in) per
            layer); sketch sizes k = 2r+1, s = 2k+1 (clipped likewise).
        beta: EMA factor per check, in [0, 1).
        every: Adam steps between checks (the trainer reads it).
        quasi_newton_every: function evaluations of the phase after Adam (L-BFGS or a dense
            quasi-Newton method) between checks; 0: that phase is not observed.
        backend: ``"auto"`` (per weight shape the exact EMA or its sketch, whichever holds
            fewer numbers), ``"exact"`` or ``"three_sketch"`` everywhere.
        history: rows of the decimated history (even, ≥ 8).
        seed: seeds the shared Gaussian test matrices.
        rank_tolerance: > 0 makes the sketched banks' rank adaptive within [rank,
            max_rank] (:mod:`pinnsketch.monitor.adaptive_rank`; 4 error probes per stream);
            0 keeps rank. rank_patience: spectral evaluations out of band before a change.
        dtype: precision of the banks and spectral work (float32 by default: monitoring
            needs no more, and it halves the memory); exact scalars use the gradients'
            precision.
        device: where the state lives (the gradients' device, so a check never syncs).

    Raises:
        ValueError: on an unknown backend, empty or repeated terms, no layers, or a value out
            of range.
    """

    def __init__(self, layers: Mapping[str, tuple[int, int]], terms: Sequence[str], *,
                 rank: int = 4, beta: float = 0.9, every: int = 10,
                 quasi_newton_every: int = 10, backend: str = "auto", history: int = 256,
                 seed: int = 0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu", rank_tolerance: float = 0.0,
                 max_rank: int | None = None, rank_patience: int = 3):
        if backend not in BACKENDS:
            raise ValueError(f"monitor backend: got {backend!r} (allowed: {', '.join(BACKENDS)})")
        if not terms or len(set(terms)) != len(terms):
            raise ValueError(f"monitor terms: got {tuple(terms)!r}, need distinct names")
        if not layers:
            raise ValueError("monitor layers: got none, need at least one Linear layer")
        for name, value, ok in (
                ("rank", rank, rank >= 1), ("every", every, every >= 1),
                ("quasi_newton_every", quasi_newton_every, quasi_newton_every >= 0),
                ("beta", beta, 0.0 <= beta < 1.0),
                ("history", history, history >= 8 and history % 2 == 0),
                ("rank_tolerance", rank_tolerance, 0.0 <= rank_tolerance < math.inf),
                ("max_rank", max_rank, max_rank is None or max_rank >= rank),
                ("rank_patience", rank_patience, rank_patience >= 1)):
            if not ok:
                raise ValueError(f"monitor {name}: got {value!r}, out of range")
        self.layers = {name: (int(m), int(n)) for name, (m, n) in layers.items()}
        self.terms = tuple(terms)
        self.rank, self.beta, self.every = rank, float(beta), every
        self.quasi_newton_every = quasi_newton_every
        self.backend, self.seed, self.dtype = backend, seed, dtype
        self.rank_tolerance, self.rank_patience = float(rank_tolerance), rank_patience
        self.max_rank = rank if not rank_tolerance else (max_rank or 4 * rank)
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
        # 1. The bank kind of every weight shape, then the shared Gaussian test matrices of
        #    the sketched shapes, drawn once from the seed (on the CPU: the same numbers on
        #    every device).
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, shape in enumerate(shapes):
            by_shape.setdefault(shape, []).append(i)
        kinds = {(m, n): choose_bank(backend, m, n, min(rank, m, n)) for m, n in by_shape}
        sketched = [shape for shape, kind in kinds.items() if kind is ThreeSketchBank]
        k_max, s_max = sketch_sizes(self.max_rank, "rol")  # room for the largest rank
        probes = ERROR_PROBES if rank_tolerance else 0
        self._tests: tuple[torch.Tensor, ...] = ()
        if sketched:
            generator = torch.Generator().manual_seed(seed)
            draw = lambda cols: torch.randn(k_max + s_max + probes, cols, generator=generator,
                                            dtype=torch.float64).to(self.device, dtype)
            self._tests = (draw(max(m for m, _ in sketched)), draw(max(n for _, n in sketched)))
        # 2. One bank per weight shape, rows ordered (layer, term).
        self._groups = []
        for (m, n), indices in by_shape.items():
            r = min(rank, m, n)
            bank = kinds[m, n](len(indices) * n_terms, m, n, r, self.beta, self._tests, k_max,
                               dtype, self.device, probes)
            self._groups.append(BankGroup((m, n), indices, bank, r, n_terms, dtype, self.device))
        self._sketch_ranks = (SketchRanks(self._groups, rank, self.max_rank, rank_tolerance,
                                          rank_patience) if rank_tolerance else None)
        # Position of layer i in the concatenation of the groups' layers.
        order = [i for group in self._groups for i in group.layers]
        self._unsort = torch.tensor([order.index(i) for i in range(len(shapes))],
                                    dtype=torch.long, device=self.device)
        # 3. Per-check state and the history.
        self.checks = 0
        self.checks_by_phase: dict[str, int] = {}
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
                grads: Mapping[str, Mapping[str, torch.Tensor]], phase: str = "adam",
                weights: Mapping[str, float] | None = None) -> None:
        """Take one check: update the banks and record this check's statistics.

        Args:
            step: the training step of these gradients.
            losses: ``{term: L_τ}`` (floats), unweighted.
            grads: ``{term: {"layer<i>": ∂L_τ/∂W_i (d_out × d_in)}}``; extra terms or layers
                are ignored, missing ones raise KeyError.
            phase: the optimizer phase taking the step (counted in ``checks_by_phase``).
            weights: ``{term: w_τ}`` in force, recorded (adaptive ones move); None: NaN.

        Cost: per weight shape, one stack of its gradients, a few batched GEMMs (a sketch
        update) or one lerp (an exact bank), and four batched reductions (Gram matrix, max
        and mean of |G|); every ``spectral_every`` checks also batched QR/SVDs. No host sync.
        """
        names, n_terms = list(self.layers), len(self.terms)
        try:
            stacks = [torch.stack([grads[t][names[i]] for i in group.layers for t in self.terms])
                      for group in self._groups]
            loss_values = [float(losses[t]) for t in self.terms]
            loss_values += [float(weights[t]) if weights is not None else math.nan
                            for t in self.terms]
        except KeyError as err:
            raise KeyError(f"observe: no gradient or loss for {err.args[0]!r} (monitored terms "
                           f"{self.terms}, layers {tuple(self.layers)})") from None
        grams, amax, amean = [], [], []
        for group, stack in zip(self._groups, stacks):
            # 1. The banks: the stored state of the gradient matrices.
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
        self.checks_by_phase[phase] = self.checks_by_phase.get(phase, 0) + 1
        self.last_step = step
        values = [torch.tensor(loss_values, dtype=torch.float64, device=self.device),
                  square.sqrt().reshape(-1)]
        if self._others:
            values += imbalance_ratios(amax_t, amean_t, self._ref, self._others, self._numel)
        if len(self._pair_a):
            values += term_cosines(gram, self._pair_a, self._pair_b)
        # 3. Spectral statistics of Ḡ, every spectral_every checks.
        if (self.checks - 1) % self.spectral_every == 0:
            self._spectral_update()
        values.append(self._spectral)
        self.history.add(step, torch.cat(values))

    def _spectral_update(self) -> None:
        """Read Ḡ's spectra: EMA norm, SNR, effective rank, drift and subspace angles."""
        n_terms, n_pairs = len(self.terms), len(self._pair_a)
        ema_norm, erank, drift, angle = [], [], [], []
        for group in self._groups:
            sigma, u, v = group.bank.spectrum()                      # batched over (layer, term)
            if self._sketch_ranks is not None:  # may resize the bank for the next checks
                self._sketch_ranks.observe(group, sigma, u, v)
            r, n_layers = group.rank, len(group.layers)
            u, v = u[..., :r], v[..., :r]
            ema_norm.append(sigma.square().sum(-1).sqrt().reshape(n_layers, n_terms))
            erank.append(effective_rank(sigma[..., :r]).reshape(n_layers, n_terms))
            moved, angles = group.move_to(u, v)
            drift.append(moved.reshape(n_layers, n_terms))
            angle.append(angles.reshape(n_layers, n_pairs))
        stack = lambda parts: torch.cat(parts).to(torch.float64)[self._unsort]
        ema_norm, erank, drift = stack(ema_norm), stack(erank), stack(drift)
        rms = (self._sq_ema / (1.0 - self.beta ** self.checks)).sqrt()
        # ‖Ḡ‖ ≤ sqrt(EMA ‖G‖²) holds exactly (Jensen); a sketch's estimate of ‖Ḡ‖ can exceed
        # it by its error, which the clip keeps out of a statistic whose range is [0, 1].
        snr = (ema_norm / rms.clamp_min(1e-300)).clamp_max(1.0)
        parts = [ema_norm, snr, erank, drift] + ([stack(angle)] if n_pairs else [])
        self._spectral = torch.cat([p.reshape(-1) for p in parts])

    # -- reading ----------------------------------------------------------------------------------
    def history_view(self) -> MonitorHistory:
        """All committed history rows (numpy float64), with column lookup."""
        steps, rows = self.history.view()
        return MonitorHistory(steps.numpy(), rows.to(torch.float64).cpu().numpy(), self.columns,
                              self.layers, self.terms, self.reference, self.history.stride)

    def _slot(self, layer: str, term: str) -> tuple[BankGroup, int]:
        index = list(self.layers).index(layer)
        group = next(g for g in self._groups if index in g.layers)
        return group, group.layers.index(index) * len(self.terms) + self.terms.index(term)

    def bank_kind(self, layer: str) -> str:
        """``"exact"`` or ``"three_sketch"``: how ``layer``'s EMA gradients are kept."""
        return self._slot(layer, self.terms[0])[0].bank.kind

    def _read(self, layer: str, term: str) -> tuple[torch.Tensor, ...]:
        group, row = self._slot(layer, term)
        sigma, u, v = group.bank.spectrum()
        return sigma[row], u[row], v[row], group.rank

    def ema_spectrum(self, layer: str, term: str) -> torch.Tensor:
        """Singular values of the bias-corrected EMA gradient Ḡ, read now: all min(m, n) of
        an exact bank, the sketch's k estimates of a sketched one."""
        return self._read(layer, term)[0]

    def ema_gradient(self, layer: str, term: str) -> torch.Tensor:
        """Ḡ (d_out × d_in) as the monitor knows it now: exact, or the sketch's estimate
        Â = U Σ Vᵀ (what every spectral statistic of a sketched layer is computed from)."""
        sigma, u, v, _ = self._read(layer, term)
        return (u * sigma) @ v.mT

    def leading_subspaces(self, layer: str, term: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Leading left (d_out × r) and right (d_in × r) singular vectors of Ḡ, read now."""
        _, u, v, r = self._read(layer, term)
        return u[:, :r], v[:, :r]

    def memory(self) -> dict[str, Any]:
        """Bytes held, by part, beside those of the exact EMA state they stand for.

        Returns:
            ``banks`` (the EMA state as kept), ``tests`` (shared test matrices),
            ``subspaces`` (leading subspaces for drift), ``history``, ``scalars``,
            ``total``; ``exact_state`` (Ḡ of every pair, at the monitor's dtype: what an
            exact monitor keeps instead of ``banks`` + ``tests``); and ``layers``:
            ``{layer: {"bank": kind, "numbers_per_pair": kept, "exact_numbers_per_pair":
            m·n}}``.
        """
        banks = sum(_nbytes(g.bank.tensors()) for g in self._groups)
        subspaces = sum(_nbytes([g.left, g.right]) for g in self._groups)
        scalars = _nbytes([self._sq_ema, self._spectral, self._numel, self._pair_a,
                           self._pair_b, self._unsort]
                          + [t for g in self._groups for t in (g.pair_a, g.pair_b)])
        parts = {"banks": banks, "tests": _nbytes(self._tests), "subspaces": subspaces,
                 "history": self.history.nbytes(), "scalars": scalars}
        element = torch.empty((), dtype=self.dtype).element_size()
        exact = sum(m * n for m, n in self.layers.values()) * len(self.terms) * element
        layers = {}
        for name, (m, n) in self.layers.items():
            group = self._slot(name, self.terms[0])[0]
            layers[name] = {"bank": group.bank.kind, "numbers_per_pair": group.bank.held(),
                            "exact_numbers_per_pair": m * n}
        return {**parts, "total": sum(parts.values()), "exact_state": exact, "layers": layers}

    def nbytes(self) -> int:
        """Bytes held (``memory()["total"]``); constant in the number of checks."""
        return self.memory()["total"]

    # -- state ------------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The constructor arguments (plain Python): enough to rebuild an empty twin."""
        return {"layers": {k: list(v) for k, v in self.layers.items()}, "terms": list(self.terms),
                "rank": self.rank, "beta": self.beta, "every": self.every,
                "quasi_newton_every": self.quasi_newton_every, "backend": self.backend,
                "history": self.history.capacity, "seed": self.seed,
                "dtype": str(self.dtype).removeprefix("torch."),
                "rank_tolerance": self.rank_tolerance, "max_rank": self.max_rank,
                "rank_patience": self.rank_patience}

    def metrics(self) -> dict[str, Any]:
        """The adaptive sketch ranks and their last error estimates (empty when fixed)."""
        return {} if self._sketch_ranks is None else self._sketch_ranks.metrics()

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (tensors cloned) and the constructor config."""
        return {
            "version": STATE_VERSION, "config": self.config_dict(),
            "checks": self.checks, "checks_by_phase": dict(self.checks_by_phase),
            "last_step": self.last_step,
            "sq_ema": self._sq_ema.clone(), "spectral": self._spectral.clone(),
            "tests": [t.clone() for t in self._tests],
            "groups": [{"bank": g.bank.state_dict(), "has_previous": g.has_previous,
                        "left": g.left.clone(), "right": g.right.clone()}
                       for g in self._groups],
            "history": self.history.state_dict(),
            "sketch_ranks": (None if self._sketch_ranks is None
                             else self._sketch_ranks.state_dict()),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a monitor with the same configuration (the
        cadences may differ).

        Raises:
            ValueError: if the saved configuration differs (layers, terms, sizes, backend).
        """
        if state.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"monitor state version {state.get('version')!r}, this pinnsketch "
                             f"reads versions {READABLE_VERSIONS} (saved by another release)")
        # Version 3 predates the adaptive rank: its monitors kept their rank.
        saved = {"rank_tolerance": 0.0, "max_rank": state["config"]["rank"],
                 "rank_patience": 3, **state["config"]}
        mine = self.config_dict()
        for cadence in ("every", "quasi_newton_every"):
            saved.pop(cadence, None)
            mine.pop(cadence)
        if saved != mine:
            diff = sorted(k for k in mine if saved.get(k) != mine[k])
            raise ValueError(f"monitor state was saved with a different configuration "
                             f"({', '.join(diff)})")
        self.checks, self.last_step = int(state["checks"]), state["last_step"]
        self.checks_by_phase = dict(state["checks_by_phase"])
        self._sq_ema.copy_(state["sq_ema"])
        self._spectral = state["spectral"].to(self.device, copy=True)
        for mine_t, saved_t in zip(self._tests, state["tests"]):
            mine_t.copy_(saved_t)  # in place: the banks hold views of these
        for group, saved_group in zip(self._groups, state["groups"]):
            group.bank.load_state_dict(saved_group["bank"])
            group.has_previous = bool(saved_group["has_previous"])
            group.left.copy_(saved_group["left"])
            group.right.copy_(saved_group["right"])
        self.history.load_state_dict(state["history"])
        if self._sketch_ranks is not None:
            self._sketch_ranks.load_state_dict(state["sketch_ranks"])

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "SketchMonitor":
        """Rebuild a monitor from its :meth:`state_dict` alone (e.g. from a checkpoint)."""
        config = dict(state["config"])
        layers = {k: tuple(v) for k, v in config.pop("layers").items()}
        config["dtype"] = getattr(torch, config["dtype"])
        monitor = cls(layers, config.pop("terms"), **config)
        monitor.load_state_dict(state)
        return monitor

