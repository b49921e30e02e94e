"""Sketched weight gradients for the data-fit term (METHOD.md §5; arXiv 2510.00442).

A Linear layer ``y = A Wᵀ + b`` with inputs ``A`` (N×d_in) and output gradients ``Gy``
(N×d_out) has ``∂L/∂W = Gyᵀ A``. Exact autograd keeps ``A`` for that product. Here the
layer's forward keeps only a rank-r factorisation ``Â = L Rᵀ`` (L: N×r, R: d_in×r) of a
three-sketch of ``A`` (Tropp, Yurtsever, Udell, Cevher 2019), and the backward forms
``Gyᵀ Â = (Gyᵀ L) Rᵀ`` in O(N r d_out + d_out r d_in) without any N×d_in or N×N matrix.

What stays exact: the forward values (the loss itself); and, given a layer's ``Gy``, its
bias gradient ``Σ_i Gy_i`` and input gradient ``Gy W`` (they need W, not A). The output
layer's ``Gy`` is exact, so its bias gradient is exact at any rank.

The tanh between two Linear layers is fused into the next layer: its own autograd would
keep its output, which *is* the next layer's input, so sketching that input would save
nothing. The fused backward takes tanh′ = 1 − clamp(Â, −1, 1)² from the same factors, so
below the output layer ``Gy`` — and with it the bias and input gradients — carries the
sketch error too; everything is exact once rank(A) ≤ r. Other activations (sin, gelu,
silu, softplus) keep their own exact autograd, which saves their N×d input: there only
the Linear input is saved in sketched form, about half the activation memory.

The first Linear layer (its input is the d_0 normalised coordinates) and any layer with
``rank >= d_in`` keep their input exactly: a rank-r factorisation would be no smaller, and
such an input has rank ≤ d_in ≤ r anyway.

Variants (``variant=``):

- ``batch``: a one-pass three-sketch of the current batch, test matrices drawn afresh
  from the generator at every forward; nothing persists between steps.
- ``ema``: the paper's EMA sketches across steps — X, Y, Z of each layer's input are
  exponential moving averages over forward calls (a :class:`ThreeSketch` per layer, bias
  corrected), and the backward uses the reconstruction of that average. Averaging the
  N×d_in activation matrix over steps only means something when row i is the same data
  point at every step: a fixed, full-batch data set such as the trainer's observation
  rows. The batch size is therefore fixed (``n_rows``).

Memory, per sketched layer with k = 2r+1 and s = 2k+1 (the "rol" sizes):
saved by the graph r(N + d_in) numbers instead of N·d_in (both also save the weight, a
parameter); transient in forward Y (N×k) and the test matrices ((k+s)(N + d_in)); state
kept between steps none (``batch``) or the ThreeSketch (``ema``: k(N + d_in) + s² sketch
numbers plus (k + s)(N + d_in) of stored test matrices — the N-sized Υ and Φ dominate; see
:meth:`SketchedGradient.nbytes`). Nothing grows with the number of steps.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from pinnsketch.sketch.three_sketch import ThreeSketch

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pinnsketch.model import PINN
    from pinnsketch.sketch.rank import RankController

__all__ = ["VARIANTS", "SketchedGradient", "SketchedLinearFunction", "one_pass_factors",
           "truncation_errors"]

# variant name -> what it sketches (also the list shown in error messages)
VARIANTS: dict[str, str] = {
    "batch": "one-pass sketch of the current batch, no state between steps",
    "ema": "EMA sketches across steps of a fixed batch (arXiv 2510.00442)",
}

Factorize = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# ------------------------------------------------------------------------------------------
# The sketch of one activation matrix
# ------------------------------------------------------------------------------------------
def _truncate(q: torch.Tensor, core: torch.Tensor, p: torch.Tensor,
              rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of Q [[C]]_r Pᵀ: ``left = Q U_r Σ_r`` (m×r), ``right = P V_r`` (n×r).

    The SVD is of the small core only (k×k), so this costs O((m + n) k r + k³).
    """
    u, sigma, vh = torch.linalg.svd(core, full_matrices=False)
    r = min(rank, sigma.shape[0])
    return q @ (u[:, :r] * sigma[:r]), p @ vh[:r].mT


def truncation_errors(a: torch.Tensor, q: torch.Tensor, core: torch.Tensor,
                      p: torch.Tensor) -> torch.Tensor:
    """Exact ‖A − Q [[C]]_j Pᵀ‖_F / ‖A‖_F for every truncation rank j = 1..K, shape (K,).

    With Q, P orthonormal and C = U Σ Vᵀ (K singular values),
    ‖A − Q C_j Pᵀ‖² = ‖A‖² − Σ_{i≤j} σ_i (2 u_iᵀ M v_i − σ_i) with M = QᵀAP (k×k): one
    O(N d k) product, no N×d residual. Square-root of a difference: entries below ~1e-8
    are round-off. Feeds :meth:`pinnsketch.sketch.rank.RankController.step` as a profile.

    Args:
        a: A (N×d); q: Q (N×k); core: C (k×k'); p: P (d×k').
    """
    u, sigma, vh = torch.linalg.svd(core, full_matrices=False)
    m = (q.mT @ a) @ p
    gains = sigma * (2.0 * ((u.mT @ m) * vh).sum(1) - sigma)
    energy = a.square().sum()
    return ((energy - gains.cumsum(0)).clamp_min(0.0) / energy).sqrt()


def _one_pass_sketch(a: torch.Tensor, rank: int, generator: torch.Generator) -> ThreeSketch:
    """A :class:`ThreeSketch` of ``a`` alone: β = 0 keeps only the latest matrix."""
    sketch = ThreeSketch(a.shape[0], a.shape[1], rank, generator=generator, beta=0.0,
                         preset="rol", error_probes=0, dtype=a.dtype, device=a.device)
    sketch.update(a)
    return sketch


def one_pass_factors(a: torch.Tensor, rank: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-r factors of the three-sketch reconstruction of ``a`` from one pass over it.

    Steps (Tropp et al. 2019, §3–4; :class:`ThreeSketch` with β = 0, "rol" sizes
    k = 2r+1, s = 2k+1, both clipped to min(N, d)):
      1. Draw Υ (k×N), Ω (k×d), Φ (s×N), Ψ (s×d) i.i.d. standard normal from ``generator``.
      2. Sketch: Y = AΩᵀ (N×k), X = ΥA (k×d), Z = ΦAΨᵀ (s×s).
      3. Q = orth(Y), P = orth(Xᵀ); C = (ΦQ)⁺ Z ((ΨP)⁺)ᵀ by QR solves.
      4. Truncate: Â_r = Q [[C]]_r Pᵀ = left rightᵀ.

    Exact (to round-off) when rank(a) ≤ r. Memory: transient (k + s)(N + d) test-matrix
    numbers and the sketches; the result is r(N + d) numbers.

    Args:
        a: the matrix A (N×d), float32 or float64.
        rank: r in [1, min(N, d)].
        generator: source of the test matrices.

    Returns:
        ``(left (N×r), right (d×r))`` in ``a``'s dtype and device.
    """
    return _truncate(*_one_pass_sketch(a, rank, generator).reconstruct(), rank)


# ------------------------------------------------------------------------------------------
# The Linear layer whose forward keeps a sketch of its input
# ------------------------------------------------------------------------------------------
class SketchedLinearFunction(torch.autograd.Function):
    """``y = act(x) Wᵀ + b`` whose backward uses a low-rank reconstruction of ``act(x)``.

    ``act`` is tanh (``fuse_tanh=True``) or the identity. The forward computes
    ``A = act(x)`` (N×d_in), keeps only ``factorize(A) = (L (N×r), R (d_in×r))`` and W, and
    returns the exact ``y`` (N×d_out). The backward returns
    ``∂/∂W = (Gyᵀ L) Rᵀ``, ``∂/∂b = Σ_i Gy_i`` (exact) and ``∂/∂x = (Gy W) ⊙ act′`` with
    act′ = 1 − clamp(L Rᵀ, −1, 1)² for tanh (an N×d_in transient) and 1 for the identity.

    Saved: r(N + d_in) numbers plus W, instead of N·d_in plus W. First-order only.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                fuse_tanh: bool, factorize: Factorize) -> torch.Tensor:
        a = torch.tanh(x) if fuse_tanh else x
        out = a @ weight.mT if bias is None else torch.addmm(bias, a, weight.mT)
        left, right = factorize(a)
        ctx.fuse_tanh = fuse_tanh
        ctx.has_bias = bias is not None
        ctx.save_for_backward(left, right, weight if ctx.needs_input_grad[0] else None)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        left, right, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = (grad_out.mT @ left) @ right.mT        # (d_out×r)(r×d_in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight                      # exact given grad_out
            if ctx.fuse_tanh:
                # tanh values lie in [−1, 1]: clamping Â there moves every entry closer to
                # the true one and keeps tanh′ = 1 − Â² in [0, 1] (no sign flips). In place
                # on one transient N×d_in buffer.
                derivative = (left @ right.mT).clamp_(-1.0, 1.0).square_().neg_().add_(1.0)
                grad_x.mul_(derivative)
        return grad_x, grad_w, grad_b, None, None


# ------------------------------------------------------------------------------------------
# The sketch state of one network
# ------------------------------------------------------------------------------------------
class SketchedGradient:
    """Sketch state for the Linear layers of one network; torch.optim-style state.

    ``forward(model, points)`` returns the same ``u`` (N,) as ``model(points)`` — same input
    normalisation and output transform — but each hidden Linear layer's weight gradient is
    formed from a rank-r sketch of its input instead of the stored input (see the module
    docstring for what is exact). Use it for first-order terms only (the ``data`` term):
    the result cannot be differentiated twice, so PDE residuals must use ``model`` itself.
    Under ``torch.no_grad()`` it is ``model(points)`` and the state is left untouched.

    Every call with grad enabled is one step of the ``ema`` average (an L-BFGS line search
    calling it several times per iteration advances the average each time).

    Args:
        model: a :class:`pinnsketch.model.PINN` whose ``network.net`` alternates Linear and
            activation modules; fixes the layer sizes, dtype and device of the state.
        rank: target rank r ≥ 1 of each sketched activation matrix.
        variant: ``"batch"`` (default) or ``"ema"``, see :data:`VARIANTS`.
        beta: EMA decay in [0, 1) (``ema`` only; default 0.9).
        generator: source of every test matrix (``batch`` draws from it each forward).
        n_rows: the fixed number of data rows N (required for ``ema``).
        adaptive_rank: a :class:`pinnsketch.sketch.rank.RankController` at the same rank,
            stepped after every forward (its ``patience`` counts forwards) with the largest
            relative error ‖A − Â_r‖_F/‖A‖_F over the layers and, as its profile, the
            largest errors of every truncation rank 1..k — both exact, as A is at hand in
            the forward (:func:`truncation_errors`; one host sync per forward). A rank
            change resizes the ``ema`` sketches (:meth:`ThreeSketch.resize`: in place when
            lowering, re-drawn and re-warmed when raising).

    Raises:
        ValueError: on a bad ``rank``, ``variant``, ``beta`` or ``n_rows``, or an
            ``adaptive_rank`` at another rank.
        TypeError: on a model that is not an MLP-backed PINN, or a bad ``generator``.

    Memory: :meth:`nbytes` is the state kept between steps — 0 for ``batch``; for ``ema``
    the per-layer ThreeSketch, k(N + d_in) + s² sketch numbers plus (k + s)(N + d_in) test
    matrix numbers (k = 2r+1, s = 2k+1, clipped to min(N, d_in)). It does not grow with
    steps. What the graph saves per sketched layer is r(N + d_in) numbers instead of N·d_in.
    """

    def __init__(self, model: "PINN", *, rank: int, variant: str = "batch", beta: float = 0.9,
                 generator: torch.Generator, n_rows: int | None = None,
                 adaptive_rank: "RankController | None" = None):
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank: got {rank!r}, must be an integer >= 1")
        if variant not in VARIANTS:
            raise ValueError(f"variant: got {variant!r} (allowed: {', '.join(VARIANTS)})")
        if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
            raise ValueError(f"beta: got {beta!r}, must be a number in [0, 1)")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: got {type(generator).__name__}, "
                            f"expected a torch.Generator")
        if variant == "ema" and (isinstance(n_rows, bool) or not isinstance(n_rows, int)
                                 or n_rows < 1):
            raise ValueError(f"n_rows: got {n_rows!r}, variant 'ema' needs the fixed number of "
                             f"data rows (an integer >= 1)")
        if adaptive_rank is not None and getattr(adaptive_rank, "rank", rank) != rank:
            raise ValueError(f"adaptive_rank: its rank {adaptive_rank.rank} differs from "
                             f"rank={rank}; start both at the same rank")
        self.layer_sizes = _layer_sizes(model)
        param = model.linear_layers[0].weight
        self.dtype, self.device = param.dtype, param.device
        self.rank, self.variant, self.beta = rank, variant, float(beta)
        self.generator, self.n_rows = generator, n_rows
        self.adaptive_rank = adaptive_rank
        self.last_error: float | None = None  # worst layer's ‖A − Â_r‖/‖A‖ at the last forward
        self.steps = 0
        # layer -> exact relative errors of truncation ranks 1..K (only with a controller)
        self.last_profiles: dict[int, torch.Tensor] = {}
        self._sketches: dict[int, ThreeSketch] = {}
        if variant == "ema":
            self._sketches = self._fit_sketches(rank, {})

    # -- which layers are sketched ----------------------------------------------------------
    def sketched_layers(self, rank: int | None = None, n_rows: int | None = None) -> list[int]:
        """Indices of the Linear layers whose input is sketched at ``rank`` (default: current)
        for ``n_rows`` data rows (default: ``n_rows`` of ``ema``, else any).

        Every layer but the first with ``rank < d_in`` and ``rank < n_rows``; the others keep
        their input exactly (it has rank ≤ r already, and r(N + d_in) would not be smaller).
        """
        rank = self.rank if rank is None else rank
        n_rows = self.n_rows if n_rows is None else n_rows
        return [i for i, (d_in, _) in enumerate(self.layer_sizes)
                if i > 0 and rank < d_in and (n_rows is None or rank < n_rows)]

    def _fit_sketches(self, rank: int,
                      sketches: dict[int, ThreeSketch]) -> dict[int, ThreeSketch]:
        """``ema`` sketches for the layers sketched at ``rank``: existing ones resized, new
        ones drawn from the generator, those of layers no longer sketched dropped."""
        out = {}
        for i in self.sketched_layers(rank):
            if i in sketches:
                sketches[i].resize(rank)
                out[i] = sketches[i]
            else:
                # No error probes: the forward has A itself and measures ‖A − Â‖ exactly.
                out[i] = ThreeSketch(self.n_rows, self.layer_sizes[i][0], rank,
                                     generator=self.generator, beta=self.beta, preset="rol",
                                     bias_correction=True, error_probes=0,
                                     dtype=self.dtype, device=self.device)
        return out

    def _factorizer(self, layer: int) -> Factorize:
        """The map A (N×d_in) → (L, R) used inside layer ``layer``'s forward."""

        def factorize(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if self.variant == "batch":
                sketch = _one_pass_sketch(a, self.rank, self.generator)
            else:
                sketch = self._sketches[layer]
                sketch.update(a)
            q, core, p = sketch.reconstruct()
            if self.adaptive_rank is not None:
                self.last_profiles[layer] = truncation_errors(a, q, core, p)
            return _truncate(q, core, p, self.rank)

        return factorize

    # -- the forward ---------------------------------------------------------------------------
    def forward(self, model: "PINN", points: torch.Tensor) -> torch.Tensor:
        """``u`` (N,) at ``points`` (N, d), as ``model(points)``, with sketched weight gradients.

        Raises:
            ValueError: if ``model``'s layer sizes differ from the ones this state was built
                for, or (``ema``) N differs from ``n_rows``.
        """
        if not torch.is_grad_enabled():
            return model(points)
        if _layer_sizes(model) != self.layer_sizes:
            raise ValueError(f"model: layer sizes {_layer_sizes(model)} differ from the "
                             f"{self.layer_sizes} this SketchedGradient was built for")
        if self.variant == "ema" and points.shape[0] != self.n_rows:
            raise ValueError(f"points: got {points.shape[0]} rows, variant 'ema' was built for "
                             f"n_rows={self.n_rows} (the same data rows every step)")
        sketched = set(self.sketched_layers(n_rows=points.shape[0]))
        h = model.embed(points)
        layer, pending_tanh = 0, False
        for module in model.network.net:
            if isinstance(module, nn.Tanh):
                pending_tanh = True                     # fused into the next Linear
            elif isinstance(module, nn.Linear):
                if layer in sketched:
                    h = SketchedLinearFunction.apply(h, module.weight, module.bias,
                                                     pending_tanh, self._factorizer(layer))
                else:
                    h = F.linear(torch.tanh(h) if pending_tanh else h, module.weight, module.bias)
                layer, pending_tanh = layer + 1, False
            else:
                h = module(h)                           # other activations: exact autograd
        if pending_tanh:
            h = torch.tanh(h)
        raw = h.squeeze(-1)
        self.steps += 1
        self._adapt_rank()
        return model.output_transform(points, raw) if model.output_transform is not None else raw

    def _adapt_rank(self) -> None:
        if self.adaptive_rank is None or not self.last_profiles:
            return
        # Worst layer per truncation rank, over the ranks every layer's sketch resolves.
        size = min(len(e) for e in self.last_profiles.values())
        profile = torch.stack([e[:size] for e in self.last_profiles.values()]).amax(0)
        self.last_profiles = {}
        self.last_error = float(profile[min(self.rank, size) - 1])
        new_rank = int(self.adaptive_rank.step(self.last_error, profile))
        if new_rank != self.rank:
            log.info("sketched gradients: rank %d -> %d after %d forwards (relative error "
                     "%.3g at rank %d, tolerance %.3g)", self.rank, new_rank, self.steps,
                     self.last_error, self.rank, self.adaptive_rank.tol)
            self.set_rank(new_rank)

    def metrics(self) -> dict[str, float | int | None]:
        """For the metrics record: the rank in use and, adaptive, the last relative error
        of the rank-r inputs (worst layer) and the number of rank changes so far."""
        record: dict[str, float | int | None] = {"data_rank": self.rank}
        if self.adaptive_rank is not None:
            record |= {"data_rank_error": self.last_error,
                       "data_rank_changes": self.adaptive_rank.changes}
        return record

    def set_rank(self, rank: int) -> None:
        """Change r; the ``ema`` sketches are resized (:meth:`ThreeSketch.resize`)."""
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank: got {rank!r}, must be an integer >= 1")
        self.rank = rank
        if self.variant == "ema":
            self._sketches = self._fit_sketches(rank, self._sketches)

    # -- state ---------------------------------------------------------------------------------
    def nbytes(self) -> int:
        """Bytes of the state kept between steps (0 for ``batch``); constant in steps."""
        return sum(int(sketch.nbytes()) for sketch in self._sketches.values())

    def state_dict(self) -> dict[str, Any]:
        state = {"variant": self.variant, "rank": self.rank, "beta": self.beta,
                 "n_rows": self.n_rows, "steps": self.steps,
                 "generator": self.generator.get_state(),
                 "sketches": {i: s.state_dict() for i, s in self._sketches.items()}}
        if self.adaptive_rank is not None and hasattr(self.adaptive_rank, "state_dict"):
            state["adaptive_rank"] = self.adaptive_rank.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("variant", "n_rows"):
            if state[key] != getattr(self, key):
                raise ValueError(f"state['{key}']: got {state[key]!r}, this SketchedGradient "
                                 f"has {getattr(self, key)!r}")
        self.beta, self.steps = float(state["beta"]), int(state["steps"])
        self.generator.set_state(state["generator"])
        self.rank = int(state["rank"])
        if self.variant == "ema" and set(self._sketches) != set(state["sketches"]):
            self._sketches = self._fit_sketches(self.rank, self._sketches)
        for i, sketch_state in state["sketches"].items():  # any rank: ThreeSketch restores it
            self._sketches[int(i)].load_state_dict(sketch_state)
        self.generator.set_state(state["generator"])  # rebuilding sketches drew from it
        if "adaptive_rank" in state and self.adaptive_rank is not None:
            self.adaptive_rank.load_state_dict(state["adaptive_rank"])


def _layer_sizes(model: nn.Module) -> list[tuple[int, int]]:
    """``[(d_in, d_out)]`` of the Linear layers of a PINN's ``network.net``."""
    net = getattr(getattr(model, "network", None), "net", None)
    if not isinstance(net, nn.Sequential) or any(
            isinstance(m, nn.Linear) and type(m) is not nn.Linear for m in net):
        raise TypeError(f"model: got {type(model).__name__}, expected a pinnsketch PINN whose "
                        f"network.net is an nn.Sequential of plain Linear and activation "
                        f"modules (an MLP without weight factorisation)")
    return [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]
