"""Sketched weight gradients for the data-fit term (METHOD.md §5; arXiv 2510.00442).

A Linear layer ``y = A Wᵀ + b`` with inputs ``A`` (N×d_in) and output gradients ``Gy``
(N×d_out) has ``∂L/∂W = Gyᵀ A``. Exact autograd keeps ``A`` for that product. Here the
layer's forward keeps only a rank-r factorisation ``Â = L Rᵀ`` (L: N×r, R: d_in×r) of a
three-sketch of ``A`` (Tropp, Yurtsever, Udell, Cevher 2019), and the backward forms
``Gyᵀ Â = (Gyᵀ L) Rᵀ`` in O(N r d_out + d_out r d_in) without any N×d_in or N×N matrix.

What stays exact and what does not:

- the forward values (the loss is exact; only its weight gradients are approximated),
- the bias gradients ``Σ_i Gy_i``,
- ``∂L/∂A = Gy W`` given ``Gy`` (needs W, not A).

The tanh between two Linear layers is fused into the next layer: its own autograd would
keep its output, which *is* the next layer's input, so sketching that input would save
nothing. The fused backward takes tanh′ = 1 − Â² from the same factors, so for the layers
below the last one ``Gy`` — and through it the input gradients — is approximate too; all
of it is exact once rank(A) ≤ r. Other activations (sin, gelu, silu, softplus) keep their
own exact autograd, which saves their N×d input: there only the Linear input is saved in
sketched form, about half the activation memory.

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
kept between steps none (``batch``) or the ThreeSketch state (``ema``: k(N + d_in) + s²
sketches plus its test matrices; see :meth:`SketchedGradient.nbytes`). Nothing grows with
the number of steps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

if TYPE_CHECKING:
    from pinnsketch.model import PINN
    from pinnsketch.sketch.rank import RankController

__all__ = ["VARIANTS", "SketchedGradient"]

# variant name -> what it sketches (also the list shown in error messages)
VARIANTS: dict[str, str] = {
    "batch": "one-pass sketch of the current batch, no state between steps",
    "ema": "EMA sketches across steps of a fixed batch (arXiv 2510.00442)",
}

Factorize = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# ------------------------------------------------------------------------------------------
# The sketch of one activation matrix
# ------------------------------------------------------------------------------------------
def sketch_sizes(rank: int) -> tuple[int, int]:
    """Range/co-range size k = 2r+1 and core size s = 2k+1 (the "rol" preset of METHOD §2)."""
    k = 2 * rank + 1
    return k, 2 * k + 1


def _orth(y: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis (m×min(m, k)) whose span contains the columns of ``y`` (m×k)."""
    return torch.linalg.qr(y, mode="reduced").Q


def _lstsq_qr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a⁺ b for a tall, full-column-rank ``a`` through a = QR: R⁻¹ Qᵀ b (no pseudo-inverse)."""
    q, r = torch.linalg.qr(a, mode="reduced")
    return torch.linalg.solve_triangular(r, q.mT @ b, upper=True)


def core_from_sketches(q: torch.Tensor, p: torch.Tensor, z: torch.Tensor, phi: torch.Tensor,
                       psi: torch.Tensor) -> torch.Tensor:
    """C = (ΦQ)⁺ Z ((ΨP)⁺)ᵀ by two least-squares solves (Tropp et al. 2019, eq. 4.3).

    Args:
        q: range basis Q (m×k); p: co-range basis P (n×k'); z: core sketch Z = ΦAΨᵀ (s×s);
        phi: Φ (s×m); psi: Ψ (s×n).

    Returns:
        C (k×k'), with Â = Q C Pᵀ.
    """
    left = _lstsq_qr(phi @ q, z)                 # (ΦQ)⁺ Z            : k×s
    return _lstsq_qr(psi @ p, left.mT).mT        # ((ΨP)⁺ ((ΦQ)⁺Z)ᵀ)ᵀ : k×k'


def truncate(q: torch.Tensor, core: torch.Tensor, p: torch.Tensor,
             rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of Q [[C]]_r Pᵀ: ``left = Q U_r Σ_r`` (m×r), ``right = P V_r`` (n×r).

    The SVD is of the small core only (k×k), so this costs O((m + n) k r + k³).
    """
    u, sigma, vh = torch.linalg.svd(core, full_matrices=False)
    r = min(rank, sigma.shape[0])
    return q @ (u[:, :r] * sigma[:r]), p @ vh[:r].mT


def one_pass_factors(a: torch.Tensor, rank: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-r factors of the three-sketch reconstruction of ``a`` from one pass over it.

    Steps (Tropp et al. 2019, §3–4, with the "rol" sizes k = 2r+1, s = 2k+1):
      1. Draw Υ (k×N), Ω (k×d), Φ (s×N), Ψ (s×d) i.i.d. standard normal from ``generator``.
      2. Sketch: Y = AΩᵀ (N×k), X = ΥA (k×d), Z = ΦAΨᵀ (s×s).
      3. Q = orth(Y), P = orth(Xᵀ); C = (ΦQ)⁺ Z ((ΨP)⁺)ᵀ by QR solves.
      4. Truncate: Â_r = Q [[C]]_r Pᵀ = left rightᵀ.

    Exact (to round-off) when rank(a) ≤ r. Memory: transient (k + s)(N + d) test-matrix
    numbers and the sketches; the result is r(N + d) numbers.

    Args:
        a: the matrix A (N×d), any float dtype.
        rank: r ≥ 1.
        generator: source of the test matrices (advanced by (k + s)(N + d) normals).

    Returns:
        ``(left (N×r), right (d×r))`` in ``a``'s dtype and device.
    """
    n_rows, n_cols = a.shape
    k, s = sketch_sizes(rank)

    def gaussian(rows: int, cols: int) -> torch.Tensor:
        # Drawn where the generator lives, then moved: a CPU generator serves any device.
        out = torch.randn(rows, cols, generator=generator, dtype=a.dtype, device=generator.device)
        return out.to(a.device)

    upsilon, omega = gaussian(k, n_rows), gaussian(k, n_cols)
    phi, psi = gaussian(s, n_rows), gaussian(s, n_cols)
    q = _orth(a @ omega.mT)                       # Y = AΩᵀ
    p = _orth((upsilon @ a).mT)                   # X = ΥA
    core = core_from_sketches(q, p, phi @ a @ psi.mT, phi, psi)
    return truncate(q, core, p, rank)


# ------------------------------------------------------------------------------------------
# The Linear layer whose forward keeps a sketch of its input
# ------------------------------------------------------------------------------------------
class SketchedLinearFunction(torch.autograd.Function):
    """``y = act(x) Wᵀ + b`` whose backward uses a low-rank reconstruction of ``act(x)``.

    ``act`` is tanh (``fuse_tanh=True``) or the identity. The forward computes
    ``A = act(x)`` (N×d_in), keeps only ``factorize(A) = (L (N×r), R (d_in×r))`` and W, and
    returns the exact ``y`` (N×d_out). The backward returns
    ``∂/∂W = (Gyᵀ L) Rᵀ``, ``∂/∂b = Σ_i Gy_i`` (exact) and ``∂/∂x = (Gy W) ⊙ act′`` with
    act′ = 1 − (L Rᵀ)² for tanh (an N×d_in transient) and 1 for the identity.

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
                a_hat = left @ right.mT                     # transient N×d_in
                grad_x = grad_x * (1.0 - a_hat.square())
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
        model: a :class:`pinnsketch.model.PINN` whose ``mlp.net`` alternates Linear and
            activation modules; fixes the layer sizes, dtype and device of the state.
        rank: target rank r ≥ 1 of each sketched activation matrix.
        variant: ``"batch"`` (default) or ``"ema"``, see :data:`VARIANTS`.
        beta: EMA decay in [0, 1) (``ema`` only; default 0.9).
        generator: source of every test matrix (``batch`` draws from it each forward).
        n_rows: the fixed number of data rows N (required for ``ema``).
        adaptive_rank: a :class:`pinnsketch.sketch.rank.RankController` fed after every
            forward with the largest relative error ‖A − Â‖_F/‖A‖_F over the layers
            (computed exactly: A is at hand in the forward); when it changes the rank, the
            ``ema`` sketches restart from zero with fresh test matrices.

    Raises:
        ValueError: on a bad ``rank``, ``variant``, ``beta`` or ``n_rows``.
        TypeError: on a model that is not an MLP-backed PINN, or a bad ``generator``.

    Memory: :meth:`nbytes` is the state kept between steps — 0 for ``batch``; for ``ema``
    the per-layer ThreeSketch (k(N + d_in) + s² sketch numbers and its test matrices,
    k = 2r+1, s = 2k+1). It does not grow with steps. What the graph saves per sketched
    layer is r(N + d_in) numbers instead of N·d_in.
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
        self.layer_sizes = _layer_sizes(model)
        param = model.linear_layers[0].weight
        self.dtype, self.device = param.dtype, param.device
        self.rank, self.variant, self.beta = rank, variant, float(beta)
        self.generator, self.n_rows = generator, n_rows
        self.adaptive_rank = adaptive_rank
        self.steps = 0
        self.last_errors: dict[int, float] = {}  # layer -> ‖A − Â‖_F/‖A‖_F (adaptive only)
        self._sketches: dict[int, Any] = {}
        if variant == "ema":
            self._sketches = self._new_sketches(rank)

    # -- which layers are sketched ----------------------------------------------------------
    def sketched_layers(self, rank: int | None = None) -> list[int]:
        """Indices of the Linear layers whose input is sketched at ``rank`` (default: current).

        Every layer but the first with ``rank < d_in``.
        """
        rank = self.rank if rank is None else rank
        return [i for i, (d_in, _) in enumerate(self.layer_sizes) if i > 0 and rank < d_in]

    def _new_sketches(self, rank: int) -> dict[int, Any]:
        from pinnsketch.sketch.three_sketch import ThreeSketch

        return {i: ThreeSketch(self.n_rows, self.layer_sizes[i][0], rank,
                               generator=self.generator, beta=self.beta,
                               dtype=self.dtype, device=self.device)
                for i in self.sketched_layers(rank)}

    def _factorizer(self, layer: int) -> Factorize:
        """The map A (N×d_in) → (L, R) used inside layer ``layer``'s forward."""

        def factorize(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if self.variant == "batch":
                left, right = one_pass_factors(a, self.rank, self.generator)
            else:
                sketch = self._sketches[layer]
                sketch.update(a)
                q, core, p = sketch.reconstruct()
                left, right = truncate(q, core, p, self.rank)
            if self.adaptive_rank is not None:
                # Host sync, only with a controller: it needs a number to decide on.
                error = torch.linalg.matrix_norm(a - left @ right.mT) / torch.linalg.matrix_norm(a)
                self.last_errors[layer] = float(error)
            return left, right

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
        sketched = set(self.sketched_layers())
        h = points * model.scale + model.shift if model.normalize else points
        layer, pending_tanh = 0, False
        for module in model.mlp.net:
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
        if self.adaptive_rank is None or not self.last_errors:
            return
        new_rank = int(self.adaptive_rank.update(max(self.last_errors.values())))
        if new_rank != self.rank:
            self.set_rank(new_rank)

    def set_rank(self, rank: int) -> None:
        """Change r; ``ema`` sketches restart from zero with fresh test matrices (as ROL)."""
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank: got {rank!r}, must be an integer >= 1")
        self.rank = rank
        self.last_errors = {}
        if self.variant == "ema":
            self._sketches = self._new_sketches(rank)

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
        if state["rank"] != self.rank or set(self._sketches) != set(state["sketches"]):
            self.rank = int(state["rank"])
            self._sketches = self._new_sketches(self.rank) if self.variant == "ema" else {}
        for i, sketch_state in state["sketches"].items():
            self._sketches[int(i)].load_state_dict(sketch_state)
        self.generator.set_state(state["generator"])  # rebuilding sketches drew from it
        if "adaptive_rank" in state and self.adaptive_rank is not None:
            self.adaptive_rank.load_state_dict(state["adaptive_rank"])


def _layer_sizes(model: nn.Module) -> list[tuple[int, int]]:
    """``[(d_in, d_out)]`` of the Linear layers of a PINN's ``mlp.net``."""
    net = getattr(getattr(model, "mlp", None), "net", None)
    if not isinstance(net, nn.Sequential):
        raise TypeError(f"model: got {type(model).__name__}, expected a pinnsketch PINN whose "
                        f"mlp.net is an nn.Sequential of Linear and activation modules")
    return [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)]
