"""The run configuration: frozen dataclasses, one per YAML section.

A YAML file has the sections ``problem``, ``model``, ``sampling``, ``train``, ``monitor``,
``output`` and ``terms``. Allowed names come from the registries that turn them into objects
(activations, initialisers, samplers), so validation and the error message use one list.
Reading and checking live in :mod:`pinnsketch.config.load`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from pinnsketch.config.fields import option as _option
from pinnsketch.architectures import ACTIVATIONS, ARCHITECTURES, INITIALIZERS
from pinnsketch.monitor.banks import BACKENDS as MONITOR_BACKENDS
from pinnsketch.optim import UPDATES as QUASI_NEWTON_UPDATES
from pinnsketch.sampling import UNIT_SAMPLERS

# The phase after Adam: torch's L-BFGS or one of the dense updates of pinnsketch.optim.
QUASI_NEWTON_METHODS = ("lbfgs",) + QUASI_NEWTON_UPDATES
# The optimiser of the first-order phase (recorded as the adam phase).
FIRST_ORDER_METHODS = ("adam", "sketchy")

__all__ = ["BalancingConfig", "CausalConfig", "DISTRIBUTED_BACKENDS", "DTYPES", "ModelConfig", "MonitorConfig", "ObservationConfig",
           "OutputConfig", "PhaseConfig", "ProblemConfig", "RunConfig", "SamplingConfig", "TermGradientConfig",
           "TrainConfig"]

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
# Process-group backends under torchrun; ``auto`` is nccl on CUDA and gloo on CPU.
DISTRIBUTED_BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class ObservationConfig:
    """Observation data drawn from the reference solution for a data-fit term.

    Attributes:
        count: number of observation points; 0 means no data term.
        noise: standard deviation of Gaussian noise relative to the std of the observed
            values (0.01 = 1% noise, as in Raissi et al. 2019).
    """

    count: int = _option(0, low=0)
    noise: float = _option(0.0, low=0.0)


@dataclass(frozen=True)
class ProblemConfig:
    """Which PDE to solve.

    In YAML the problem's options stand beside ``type`` (``{type: heat, alpha: 0.05}``);
    here they are collected in ``options``, a plain mapping that
    :func:`pinnsketch.check_config` validates against the problem's ``Options`` dataclass
    (the schema layer knows no problems).

    Attributes:
        type: a built-in problem name (see ``pinnsketch problems``) or ``"module:Class"``
            (the module is looked up on ``sys.path``, then beside the config file). ``None``
            only when the problem is passed as an object (``train(config, problem=...)``).
        options: problem-specific options (unvalidated here).
        observations: optional observation data for a ``data`` term.
    """

    type: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    observations: ObservationConfig = field(default_factory=ObservationConfig)


@dataclass(frozen=True)
class FourierConfig:
    """Random Fourier features γ(x) = [cos(xB), sin(xB)], B (inputs × ``features``) with
    N(0, ``scale``²) entries, fixed (:mod:`pinnsketch.model`); ``features`` 0 turns them off."""

    features: int = _option(0, low=0)
    scale: float = _option(1.0, low=0.0, strict_low=True)


@dataclass(frozen=True)
class FactorizationConfig:
    """Random weight factorisation of every Linear layer, W = diag(exp s) V with
    s ~ N(``mean``, ``std``²) (:mod:`pinnsketch.architectures`); off unless ``enabled``."""

    enabled: bool = False
    mean: float = 1.0
    std: float = _option(0.1, low=0.0)


@dataclass(frozen=True)
class LowRankConfig:
    """Dynamical low-rank hidden layers (:mod:`pinnsketch.low_rank`, abc-PSI): each
    width × width Linear layer of an MLP as U S Vᵀ, starting at rank ``rank`` (0: off) from
    the dense initial weight's truncated SVD, its rank adapted to the relative tolerance
    ``tolerance`` within [``min_rank``, ``max_rank``] (0: width // 2); the K and L phases
    alternate every ``substeps`` Adam steps."""

    rank: int = _option(0, low=0)
    max_rank: int = _option(0, low=0)
    min_rank: int = _option(1, low=1)
    tolerance: float = _option(0.1, low=0.0, high=1.0)
    substeps: int = _option(10, low=1)


@dataclass(frozen=True)
class ModelConfig:
    """The network u_θ: inputs → embedding → ``type`` network of ``depth`` hidden layers
    (PirateNet: residual blocks) of ``width`` → 1 (:mod:`pinnsketch.architectures`).

    ``periodic`` (``{input name: period}``) feeds those inputs as (cos 2πz/P, sin 2πz/P): the
    network is then exactly periodic in them and the problem's periodic ``bc`` term is
    dropped, as hard constraints drop theirs. Only for inputs, and with the periods, that
    the problem declares (``Problem.periodic_inputs``).
    """

    type: str = _option("mlp", choices=ARCHITECTURES)
    width: int = _option(20, low=1)
    depth: int = _option(3, low=1)
    activation: str = _option("tanh", choices=ACTIVATIONS)
    init: str = _option("xavier_normal", choices=INITIALIZERS)
    normalize_inputs: bool = True
    hard_constraints: bool = False
    periodic: Mapping[str, float] = _option(low=0.0, strict_low=True, default_factory=dict)
    fourier: FourierConfig = field(default_factory=FourierConfig)
    weight_factorization: FactorizationConfig = field(default_factory=FactorizationConfig)
    low_rank: LowRankConfig = field(default_factory=LowRankConfig)


@dataclass(frozen=True)
class SamplingConfig:
    """Collocation points per measure and how they are drawn.

    Attributes:
        method: ``uniform`` random, Latin hypercube ``lhs`` or scrambled ``sobol``.
        interior: points for the PDE residual.
        boundary: points on the spatial boundary (× time for evolution problems).
        initial: points on the initial time slice (evolution problems only).
        resample_every: draw fresh points every this many Adam steps; 0 never.
        adaptive: ``none``, or ``rad``: residual-based adaptive distribution (Wu et al.
            2023, k = 1, c = 1) — interior points drawn from ``adaptive_candidates``
            uniform candidates with probability ∝ |r|/mean|r| + 1, at every resample and
            once more before L-BFGS.
        adaptive_candidates: size of the candidate pool for ``rad``.
        lbfgs_resample_every: draw fresh points every this many L-BFGS iterations and
            restart its curvature history (pairs from other points would mislead it); 0 never.
        attention: ``none``, or ``rba``: residual-based attention (Anagnostopoulos et al.
            2024), per-point multipliers λ ← γλ + η|r|/max|r| on every physics term, loss
            mean((λr)²), in the Adam phase (the phase after Adam minimises the plain loss);
            the multipliers restart from 0 when the points are redrawn.
        attention_eta, attention_gamma: η and γ of ``rba``.
    """

    method: str = _option("lhs", choices=UNIT_SAMPLERS)
    interior: int = _option(2000, low=1)
    boundary: int = _option(100, low=1)
    initial: int = _option(100, low=1)
    resample_every: int = _option(0, low=0)
    adaptive: str = _option("none", choices=("none", "rad"))
    adaptive_candidates: int = _option(20000, low=1)
    lbfgs_resample_every: int = _option(0, low=0)
    attention: str = _option("none", choices=("none", "rba"))
    attention_eta: float = _option(0.01, low=0.0, strict_low=True)
    attention_gamma: float = _option(0.999, low=0.0, high=0.999999)


@dataclass(frozen=True)
class CausalConfig:
    """Causal training of evolution problems (Wang, Sankaran & Perdikaris 2024): the pde
    loss split into ``chunks`` time slabs weighted w_i = exp(−tolerance Σ_{k<i} L_k), the
    weights not back-propagated; ``chunks`` 0 turns it off. It weights the Adam phase; the
    phase after Adam minimises the unweighted loss (a line search needs one fixed
    objective, and the weights move with every evaluation)."""

    chunks: int = _option(0, low=0)
    tolerance: float = _option(1.0, low=0.0)


@dataclass(frozen=True)
class BalancingConfig:
    """Adaptive loss weights (:mod:`pinnsketch.training.balancing`): ``grad_norm`` (Wang,
    Wang, Bhartari & Perdikaris 2023) sets λ_τ ∝ Σ_σ‖∇L_σ‖ / ‖∇L_τ‖, ``ntk`` (Wang, Yu &
    Perdikaris 2022) λ_τ ∝ Σ_σ tr K_σ / tr K_τ from ``points`` points per term; updated
    every ``every`` Adam steps as a moving average with ``ema`` (the weight of the old
    value), starting from ``train.weights``. Fixed in the phase after Adam."""

    scheme: str = _option("none", choices=("none", "grad_norm", "ntk"))
    every: int = _option(100, low=1)
    ema: float = _option(0.9, low=0.0, high=0.999999)
    points: int = _option(32, low=1)


@dataclass(frozen=True)
class CurriculumConfig:
    """Curriculum regularisation (Krishnapriyan et al. 2021; :mod:`pinnsketch.training.
    curriculum`): the problem option ``option`` ramps linearly from ``start`` to its
    configured value over the first ``steps`` Adam steps; ``option`` empty turns it off.
    Evaluations after the ramp, the reference and the phase after Adam use the target (also
    when ``steps`` exceeds ``train.adam_steps``: a run extended later continues the ramp)."""

    option: str = ""
    start: float = 0.0
    steps: int = _option(1, low=1)


@dataclass(frozen=True)
class TimeMarchingConfig:
    """Time marching of evolution problems over ``windows`` equal time windows (0: off).

    ``networks: shared`` (:mod:`pinnsketch.training.marching`): one network, the Adam phase
    split into ``windows`` stages, stage k drawing its pde and bc points in the first
    (k+1)/windows of the time interval (points redrawn at each stage); the phase after Adam
    uses the whole interval. ``networks: per_window`` (sequence-to-sequence learning,
    :mod:`pinnsketch.runner.windows`): a network per window, trained in turn with the whole
    schedule, each window's initial condition the previous network at its start time."""

    windows: int = _option(0, low=0)
    networks: str = _option("shared", choices=("shared", "per_window"))


@dataclass(frozen=True)
class PhaseConfig:
    """One entry of ``train.phases`` (:mod:`pinnsketch.config.phases`): an optimiser and its
    steps; keys left out keep the shorthand's defaults.

    Attributes:
        optimizer: ``adam`` or ``sketchy`` (a first-order phase), or ``lbfgs`` or a dense
            method (the quasi-Newton phase).
        steps: steps (first order) or iterations (quasi-Newton) of the phase.
        lr, lr_decay, lr_decay_every: first-order phases: as ``train.lr`` etc.
        rank: Sketchy's rows per factor (``train.sketchy_rank``).
        history: L-BFGS's history size (``train.lbfgs_history``).
        tolerance_grad, tolerance_change: quasi-Newton stopping tolerances.
        redraw_every: draw fresh collocation points every this many steps of the phase.
    """

    optimizer: str = _option(choices=FIRST_ORDER_METHODS + QUASI_NEWTON_METHODS)
    steps: int = _option(low=1)
    lr: float | None = _option(None, low=0.0, strict_low=True)
    lr_decay: float | None = _option(None, low=0.0, high=1.0, strict_low=True)
    lr_decay_every: int | None = _option(None, low=1)
    rank: int | None = _option(None, low=1)
    history: int | None = _option(None, low=1)
    tolerance_grad: float | None = _option(None, low=0.0)
    tolerance_change: float | None = _option(None, low=0.0)
    redraw_every: int = _option(0, low=0)

    @property
    def given(self) -> tuple[str, ...]:
        """The keys this phase sets (optimizer and steps always; the rest when given)."""
        return tuple(name for name, value in vars(self).items()
                     if value is not None and not (name == "redraw_every" and value == 0))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule: Adam for ``adam_steps``, then L-BFGS for ``lbfgs_steps``
    (the shorthand; ``train.phases`` writes the same schedule out phase by phase and
    ``train.steps_scale`` scales it: :mod:`pinnsketch.config.phases`).

    Attributes:
        lr: learning rate of the first-order phase.
        first_order: the optimiser of that phase (named adam in the record): ``adam``, or
            ``sketchy`` (Shampoo on Frequent-Directions sketches with ``sketchy_rank`` rows
            per factor, grafted onto RMSprop's step length; :mod:`pinnsketch.optim.sketchy`).
        lr_decay: multiplicative decay of the learning rate applied every ``lr_decay_every``
            Adam steps (1.0 keeps it constant).
        eval_every: steps between evaluations (losses, rel L2) and L-BFGS chunk length.
        checkpoint_every: steps between checkpoints (rounded up to an evaluation).
        weights: per-term loss weights; unnamed terms weigh 1.
        quasi_newton: the optimiser of the phase after Adam (``lbfgs_steps`` iterations):
            ``lbfgs`` (torch's, O(p) memory) or a dense inverse-Hessian method — ``bfgs``,
            ``ssbfgs_ol``, ``ssbfgs_ab``, ``ssbroyden1``, ``ssbroyden2`` (O(p²) memory;
            :mod:`pinnsketch.optim`), whose H is kept across point redraws.
        max_hessian_mib: the largest dense inverse Hessian a dense method may allocate.
        lbfgs_history: L-BFGS history size.
        lbfgs_tolerance_grad / lbfgs_tolerance_change: stopping tolerances of that phase.
        distributed_backend: process-group backend under torchrun; ``auto`` is nccl on
            CUDA and gloo on CPU.
        causal: causal weighting of the pde loss in the Adam phase (:class:`CausalConfig`).
        balancing: adaptive loss weights (:class:`BalancingConfig`).
        curriculum: a problem option ramped over the first Adam steps (:class:`CurriculumConfig`).
        time_marching: growing time windows over the Adam phase (:class:`TimeMarchingConfig`).
    """

    adam_steps: int = _option(10000, low=0)
    lbfgs_steps: int = _option(0, low=0)
    lr: float = _option(1e-3, low=0.0, strict_low=True)
    first_order: str = _option("adam", choices=FIRST_ORDER_METHODS)
    sketchy_rank: int = _option(16, low=1)
    lr_decay: float = _option(1.0, low=0.0, high=1.0, strict_low=True)
    lr_decay_every: int = _option(1000, low=1)
    eval_every: int = _option(500, low=1)
    checkpoint_every: int = _option(2000, low=1)
    seed: int = _option(0, low=0)
    dtype: str = _option("float32", choices=DTYPES)
    device: str = _option("cpu", choices=("cpu", "cuda"))
    weights: Mapping[str, float] = _option(low=0.0, default_factory=dict)
    quasi_newton: str = _option("lbfgs", choices=QUASI_NEWTON_METHODS)
    max_hessian_mib: float = _option(1024.0, low=0.0, strict_low=True)
    lbfgs_history: int = _option(50, low=1)
    lbfgs_tolerance_grad: float = _option(1e-9, low=0.0)
    lbfgs_tolerance_change: float = _option(1e-12, low=0.0)
    distributed_backend: str = _option("auto", choices=DISTRIBUTED_BACKENDS)
    causal: CausalConfig = field(default_factory=CausalConfig)
    balancing: BalancingConfig = field(default_factory=BalancingConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    time_marching: TimeMarchingConfig = field(default_factory=TimeMarchingConfig)


@dataclass(frozen=True)
class TermGradientConfig:
    """How the weight gradients of one loss term are formed (see sketched_grad).

    ``rank_tolerance`` > 0 makes the rank adaptive (:class:`pinnsketch.sketch.RankController`
    within [1, ``max_rank``], 0: 4·rank, ``rank_patience`` forwards out of band before a
    change), its signal the exact relative error of the rank-r input ‖A − Â_r‖/‖A‖ that
    the forward has at hand (cheaper than a probe estimate, and exact); 0 keeps it fixed."""

    gradient: str = _option("exact", choices=("exact", "sketched"))
    rank: int = _option(8, low=1)
    variant: str = _option("batch", choices=("batch", "ema"))
    rank_tolerance: float = _option(0.0, low=0.0)
    max_rank: int = _option(0, low=0)
    rank_patience: int = _option(3, low=1)


@dataclass(frozen=True)
class MonitorConfig:
    """The gradient monitor (off unless ``enabled``): a check every ``every`` Adam steps and
    every ``quasi_newton_every`` function evaluations of the phase after Adam (0: none);
    ``backend`` ``auto`` keeps each layer's EMA gradient exactly or sketched, whichever is
    smaller. ``curvature_steps`` > 0 adds, at every evaluation, the ``curvature_top``
    largest eigenvalues of each term's loss Hessian by that many Lanczos steps
    (:mod:`pinnsketch.training.curvature`; metrics key ``hessian_top``).
    ``rank_tolerance`` > 0 makes the sketched layers' rank adaptive within [``rank``,
    ``max_rank``] (0: 4·rank), steered by the sketches' error probes
    (:mod:`pinnsketch.monitor.adaptive_rank`; metrics keys ``monitor_rank``,
    ``monitor_rank_error``), ``rank_patience`` spectral evaluations out of band before a
    change."""

    enabled: bool = False
    rank: int = _option(4, low=1)
    beta: float = _option(0.9, low=0.0, high=0.999999)
    every: int = _option(10, low=1)
    quasi_newton_every: int = _option(10, low=0)
    backend: str = _option("auto", choices=MONITOR_BACKENDS)
    terms: tuple[str, ...] = ()
    layers: tuple[int, ...] = ()
    history: int = _option(128, low=8)
    curvature_steps: int = _option(0, low=0)
    curvature_top: int = _option(3, low=1)
    rank_tolerance: float = _option(0.0, low=0.0)
    max_rank: int = _option(0, low=0)
    rank_patience: int = _option(3, low=1)


@dataclass(frozen=True)
class OutputConfig:
    """Where and what a run writes. ``dir`` defaults to ``runs/<problem>-<timestamp>``;
    ``label`` names the run on its progress bar (default: the problem's name)."""

    dir: str | None = None
    label: str | None = None
    plots: bool = True
    progress: bool = True


@dataclass(frozen=True)
class RunConfig:
    """A complete, schema-checked run description.

    ``base_dir`` is not a YAML key: :func:`~pinnsketch.config.load.load_config` sets it to
    the folder of the file, where ``"module:Class"`` problems are also looked for.
    """

    problem: ProblemConfig = field(default_factory=ProblemConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    terms: Mapping[str, TermGradientConfig] = field(default_factory=dict)
    base_dir: str | None = field(default=None, compare=False, metadata={"yaml": False})

