"""Findings from the run's record rather than its gradients: how the phase after Adam
stopped (``summary.json``) and the pde residual over time (``metrics.jsonl``).

Neither reads the reference solution or the relative L2 error.

- *Optimizer stall* (Rathore, Lei, Frangella, Lu & Udell 2024): the phase after Adam ended
  early on a line-search failure or a step tolerance while max |∇L| was still at least
  ``Thresholds.stall_gradient`` — the search found no decrease along its direction, not a
  minimum. Remedy: the dense self-scaled Broyden phase (it keeps curvature L-BFGS's short
  history loses) when its inverse Hessian fits the default memory limit; for a dense phase,
  redrawing its points (its H carries over).
- *Causality violation* (Wang, Sankaran & Perdikaris 2024): at the last evaluation the
  earliest quarter of the time interval keeps a mean squared pde residual at least
  ``Thresholds.causality`` times the latest quarter's — later times fitted, the initial
  layer that determines them not. Remedy: causal training with ε from the measured slab
  losses (the last of 32 slabs starts at weight 10⁻³).
- *Ill-conditioning* (Rathore, Lei, Frangella, Lu & Udell 2024; Krishnapriyan et al. 2021):
  a first-order-only run whose weighted loss fell by less than ``Thresholds.slow_decades``
  decades over the second half of its evaluations while still falling (more than
  ``Thresholds.plateau``; a flat loss is stagnation's): on an ill-conditioned loss a
  first-order method makes progress only along the few stiff directions. The curvature
  (``hessian_top``, where recorded) is evidence. Remedy: a second-order phase
  (:func:`second_order_phase`).

- *Spectral bias* (Rahaman et al. 2019; Wang, Wang & Perdikaris 2021): at the last
  evaluation most of the pde residual's energy (at least ``Thresholds.spectral_share``)
  sits in one octave band of wavenumber above the lowest, while the network's last hidden
  features keep at most ``Thresholds.feature_share`` of their energy there: the features
  cannot represent what the residual still asks for, and the pde loss has stopped falling
  (less than half over the last quarter of the evaluations). Remedy: Fourier features whose
  scale σ puts the band's centre frequency ω (in the normalised inputs, [−1, 1]) at π
  standard deviations, σ = ω/π.

Remedies that call for a second-order phase name one the run can take
(:func:`second_order_phase`): the dense self-scaled Broyden method where its inverse
Hessian fits the default memory limit, else L-BFGS, with iterations where the run had none.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from pinnsketch.diagnosis.findings import SOURCES, Finding, Thresholds, fmt

__all__ = ["causality_violation", "ill_conditioning", "optimizer_stall", "second_order_phase",
           "spectral_bias"]

# Dense inverse Hessians up to this size fit the default ``train.max_hessian_mib``.
_DENSE_MIB = 1024.0
_CAUSAL_CHUNKS = 32


def second_order_phase(summary: Mapping[str, Any]) -> tuple[str, ...]:
    """Overrides that give a run a second-order phase: ``train.quasi_newton`` (ssbroyden2 if
    its dense inverse Hessian fits 1 GiB, else lbfgs) and, for a run that had no phase after
    Adam, ``train.lbfgs_steps`` (half its Adam steps, at least 500)."""
    parameters = int(summary.get("parameters", 0))
    method = "ssbroyden2" if parameters ** 2 * 8 / 2 ** 20 <= _DENSE_MIB else "lbfgs"
    overrides = (f"train.quasi_newton={method}",)
    if not summary.get("lbfgs_steps"):
        overrides += (f"train.lbfgs_steps={max(500, int(summary.get('adam_steps', 0)) // 2)}",)
    return overrides


def ill_conditioning(metrics: Sequence[Mapping[str, Any]], summary: Mapping[str, Any],
                     th: Thresholds) -> list[Finding]:
    """A first-order-only run still falling, slowly (module docstring); [] otherwise."""
    if summary.get("lbfgs_steps") or not summary.get("adam_steps"):
        return []
    losses = [(int(m["step"]), float(m["loss_total"])) for m in metrics
              if m.get("phase") == "adam" and m.get("loss_total") is not None]
    if len(losses) < 4 or not all(v > 0 and math.isfinite(v) for _, v in losses):
        return []
    (first_step, first), (last_step, last) = losses[len(losses) // 2], losses[-1]
    decades = math.log10(first / last)
    fall = 1 - last / first
    if not (fall > th.plateau and decades < th.slow_decades):
        return []
    curvature = [m["hessian_top"] for m in metrics if m.get("hessian_top")]
    top = {term: values[0] for term, values in curvature[-1].items()} if curvature else {}
    evidence = {"decades": decades, "loss_start": first, "loss_end": last,
                "steps": float(last_step - first_step),
                **{f"hessian_top_{term}": float(v) for term, v in top.items()}}
    stiff = (f"; the loss Hessian's largest eigenvalues are "
             f"{', '.join(f'{fmt(v)} ({t})' for t, v in top.items())}" if top else "")
    message = (f"over steps {first_step}–{last_step} the weighted loss fell only "
               f"{fmt(decades)} decades ({fmt(first)} → {fmt(last)}) and was still falling "
               f"when the first-order phase ended{stiff}: slow progress on an "
               f"ill-conditioned loss.")
    remedy = second_order_phase(summary)
    suggestion = (f"add a second-order phase after Adam ({', '.join(f'`{o}`' for o in remedy)}"
                  f"), which rescales the stiff and flat directions alike; or ease the "
                  f"problem in (a curriculum, `train.curriculum`).")
    return [Finding("ill_conditioning", (first_step, last_step), "all", "all", evidence,
                    message, suggestion, ("all",), (first_step, last_step), remedy,
                    SOURCES["ill_conditioning"])]


def optimizer_stall(summary: Mapping[str, Any], th: Thresholds) -> list[Finding]:
    """The phase after Adam stopped early on its line search while the gradient was not
    small (see the module docstring); [] otherwise."""
    reasons = {p: r for p, r in summary.get("stop_reasons", {}).items() if p != "adam"}
    gradient = summary.get("stop_gradient")
    if not reasons or gradient is None:
        return []
    phase, reason = next(iter(reasons.items()))
    if not reason.startswith(("line search failure", "step tolerance")):
        return []
    if not gradient >= th.stall_gradient:
        return []
    steps = summary.get("steps", 0)
    parameters = int(summary.get("parameters", 0))
    evidence = {"max_gradient": float(gradient), "iterations": float(summary.get("lbfgs_steps", 0)),
                "parameters": float(parameters)}
    message = (f"`{phase}` stopped after {summary.get('lbfgs_steps', 0)} iterations "
               f"({reason}) while max |∇L| was {fmt(gradient)}: the line search found no "
               f"decrease along its direction, not a minimum.")
    mib = parameters ** 2 * 8 / 2 ** 20
    if phase == "lbfgs" and mib <= _DENSE_MIB:
        remedy = ("train.quasi_newton=ssbroyden2",)
        suggestion = (f"use the dense self-scaled Broyden phase (`train.quasi_newton="
                      f"ssbroyden2`: {parameters} parameters, a {mib:.0f} MiB inverse Hessian), "
                      f"which keeps the curvature L-BFGS's history drops.")
    elif phase != "lbfgs":
        remedy = ("sampling.lbfgs_resample_every=500",)
        suggestion = ("redraw its points every 500 iterations (`sampling.lbfgs_resample_every"
                      "=500`; H carries over), so the line search sees a fresh objective.")
    else:
        remedy = ()
        suggestion = (f"a dense phase would need a {mib:.0f} MiB inverse Hessian; use a smaller "
                      f"network or raise `train.max_hessian_mib` with `train.quasi_newton="
                      f"ssbroyden2`.")
    return [Finding("optimizer_stall", (steps, steps), "all", "all", evidence, message,
                    suggestion, ("all",), (steps, steps), remedy, SOURCES["optimizer_stall"])]


def causality_violation(metrics: Sequence[Mapping[str, Any]], causal_chunks: int,
                        th: Thresholds) -> list[Finding]:
    """Early times unfitted while late ones are, at the last evaluation (module docstring);
    ``causal_chunks`` is the run's ``train.causal.chunks`` (0: off). [] without a profile."""
    profiled = [m for m in metrics if m.get("pde_by_time")]
    if not profiled:
        return []
    last = profiled[-1]
    profile = [v for v in last["pde_by_time"] if v is not None and math.isfinite(v)]
    quarter = max(1, len(profile) // 4)
    if len(profile) < 4:
        return []
    early = sum(profile[:quarter]) / quarter
    late = sum(profile[-quarter:]) / quarter
    if not late > 0 or early / late < th.causality:
        return []
    ratio = early / late
    total = sum(profile) / len(profile) * _CAUSAL_CHUNKS  # Σ_k L_k over 32 slabs
    tolerance = math.log(1e3) / total
    step = int(last["step"])
    evidence = {"early_residual": early, "late_residual": late, "ratio": ratio,
                "tolerance": tolerance}
    message = (f"at step {step} the pde residual of the earliest quarter of the time "
               f"interval is {fmt(ratio)}× the latest quarter's (mean square {fmt(early)} "
               f"against {fmt(late)}): later times are fitted before the earlier ones "
               f"that determine them.")
    if causal_chunks:
        remedy = (f"train.causal.tolerance={tolerance:.3g}",)
        suggestion = (f"causal training is on: raise its tolerance to {tolerance:.3g} (the last "
                      f"slab then starts at weight 1e-3 of the current residuals).")
    else:
        remedy = (f"train.causal.chunks={_CAUSAL_CHUNKS}", f"train.causal.tolerance={tolerance:.3g}")
        suggestion = (f"train causally (`train.causal.chunks={_CAUSAL_CHUNKS}`, `tolerance="
                      f"{tolerance:.3g}`: the last slab starts at weight 1e-3 of the current "
                      f"residuals).")
    return [Finding("causality", (step, step), "all", "pde", evidence, message, suggestion,
                    ("all",), (step, step), remedy, SOURCES["causality"])]


def spectral_bias(metrics: Sequence[Mapping[str, Any]], th: Thresholds) -> list[Finding]:
    """The residual's energy in a band the last hidden features do not span, the pde loss
    no longer falling (module docstring); [] without the spectra (unmonitored runs)."""
    records = [m for m in metrics if m.get("residual_bands") and m.get("feature_bands")
               and "pde" in m.get("loss", {})]
    if len(records) < 4:
        return []
    last = records[-1]
    residual, features = last["residual_bands"], last["feature_bands"]
    band = max(range(len(residual)), key=lambda b: residual[b])
    quarter = records[-max(2, len(records) // 4)]
    fall = 1 - last["loss"]["pde"] / quarter["loss"]["pde"] if quarter["loss"]["pde"] > 0 else 0
    if not (band > 0 and residual[band] >= th.spectral_share
            and features[band] <= th.feature_share and fall < 0.5):
        return []
    # Band b of B covers ρ ∈ [2^{b−B}, 2^{b+1−B}) of the grid's normalised wavenumber; its
    # geometric centre, in half-cycles per axis across the domain, is ρ·n/√d, and the
    # angular frequency in inputs normalised to [−1, 1] is π/2 times that.
    counts = last.get("spectrum_grid") or []
    centre = 2.0 ** (band + 0.5 - len(residual))
    n, d = (min(counts), len(counts)) if counts else (64, 2)
    omega = math.pi / 2 * centre * n / math.sqrt(d)
    sigma = omega / math.pi
    step = int(last["step"])
    evidence = {"band": float(band + 1), "residual_share": residual[band],
                "feature_share": features[band], "pde_loss_change": -fall,
                "frequency": omega}
    message = (f"at step {step} {residual[band]:.0%} of the pde residual's energy lies in "
               f"octave band {band + 1} of {len(residual)} (angular frequency ≈ {fmt(omega)} "
               f"in the normalised inputs), where the last hidden features hold "
               f"{features[band]:.2%} of theirs; the pde loss changed by {-fall:+.0%} over "
               f"the last quarter of the evaluations: the network does not represent the "
               f"scale the residual asks for.")
    remedy = ("model.fourier.features=32", f"model.fourier.scale={sigma:.3g}")
    suggestion = (f"give the network Fourier features at that scale (`model.fourier.features"
                  f"=32`, `model.fourier.scale={sigma:.3g}`; Tancik et al. 2020, Wang, Wang & "
                  f"Perdikaris 2021).")
    return [Finding("spectral_bias", (step, step), "all", "pde", evidence, message,
                    suggestion, ("all",), (step, step), remedy, SOURCES["spectral_bias"])]
