"""RankController: follows a stream whose true rank steps 2 → 8 → 3 through a real ThreeSketch,
stays in its bounds, and its scalar-only policy does what the module docstring says."""
from __future__ import annotations

import math

import pytest
import torch

from pinnsketch.sketch.rank import RankController
from pinnsketch.sketch.three_sketch import ThreeSketch

F64 = torch.float64
TOL = 0.05            # relative error tolerance of the controller in these tests
PATIENCE = 3
# True rank per check: three regimes of 30 checks.
SCHEDULE = [2] * 30 + [8] * 30 + [3] * 30
CHANGES = [0, 30, 60]
# Noise added to the exactly low-rank matrices, relative to their O(1) norm: far below TOL,
# so the true rank is unambiguous, but not zero, so estimates are not exactly 0.
NOISE = 1e-4


def _run(beta: float, r_max: int = 12, profile: bool = True) -> list[int]:
    """Rank in force after each check of SCHEDULE, sketch and controller in the loop."""
    m = n = 40
    gen = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(m, 8, generator=gen, dtype=F64)).Q
    v = torch.linalg.qr(torch.randn(n, 8, generator=gen, dtype=F64)).Q
    control = RankController(1, r_max, TOL, PATIENCE)
    # 8 probes: the estimate's relative s.d. is ≤ √(2/8) = 0.5 in square, small against the
    # factor ≥ 3 between the errors here and TOL.
    sketch = ThreeSketch(m, n, control.rank, generator=gen, beta=beta, error_probes=8)
    ranks = []
    for true_rank in SCHEDULE:
        d = 0.5 + 0.5 * torch.rand(true_rank, generator=gen, dtype=F64)
        a = (u[:, :true_rank] * d) @ v[:, :true_rank].T
        sketch.update(a + NOISE * torch.randn(m, n, generator=gen, dtype=F64) / math.sqrt(m * n))
        new = control.step(sketch.relative_error_estimate(sketch.rank),
                           sketch.scree() if profile else None)
        if new != sketch.rank:
            sketch.resize(new)
        ranks.append(sketch.rank)
    return ranks


def _first_move_after(ranks, start):
    before = ranks[start - 1] if start else 1
    return next(i for i in range(start, len(ranks)) if ranks[i] != before)


@pytest.mark.parametrize("beta,lag", [(0.0, 0), (0.5, 3)], ids=["latest", "ema0.5"])
def test_follows_rank_steps(beta, lag):
    """The first move comes on the ``patience``-th check of a new regime (plus the EMA's
    memory of the old one, ``lag`` checks, when lowering with β > 0); the rank that meets the
    tolerance is reached within two moves; each regime ends at its true rank."""
    ranks = _run(beta)
    assert all(1 <= r <= 12 for r in ranks)
    for start, true_rank in zip(CHANGES, (2, 8, 3)):
        allowed = lag if true_rank < SCHEDULE[start - 1] else 0
        assert _first_move_after(ranks, start) - start <= PATIENCE - 1 + allowed
        settled = start + 2 * PATIENCE - 1 + allowed
        end = start + 29
        assert ranks[settled] >= true_rank
        assert ranks[end] == true_rank


def test_never_leaves_bounds_when_true_rank_exceeds_them():
    ranks = _run(0.0, r_max=5)
    assert max(ranks) == 5 and min(ranks) >= 1
    assert all(r == 5 for r in ranks[30 + 2 * PATIENCE:60])


def test_scalar_policy_double_up_one_down_with_backoff():
    control = RankController(1, 10, TOL, 2, rank=2)
    above, inside, below, nan = 2 * TOL, 0.5 * TOL, 0.1 * TOL, math.nan
    assert [control.step(e) for e in (above, inside, above, nan, above)] == [2, 2, 2, 2, 4]
    assert [control.step(e) for e in (above, above)] == [4, 8]              # ×2 growth
    assert [control.step(e) for e in (above, above)] == [8, 10]             # capped at r_max
    assert [control.step(e) for e in (below, below)] == [10, 9]             # down by one
    # A failed probe goes back to the rank that sufficed, and lowering then needs twice the
    # patience.
    assert [control.step(e) for e in (above, above)] == [9, 10]
    assert [control.step(below) for _ in range(4)] == [10, 10, 10, 9]
    assert control.backoff == 2


def test_profile_picks_smallest_sufficient_rank():
    control = RankController(1, 20, TOL, 1, rank=3)
    # Estimated errors of ranks 1..7; target = √(1/4)·TOL = TOL/2.
    profile = [0.9, 0.5, 0.2, 0.1, 0.02, 0.01, 0.0]
    assert control.step(0.2, profile) == 5
    assert control.step(0.001, [0.9, 0.5, 0.2, 0.02, 0.0]) == 4
    # Nothing in view suffices: one past the largest rank the sketch could see.
    assert control.step(0.3, [0.9, 0.8, 0.7]) == 5


def test_state_round_trip():
    a = RankController(1, 10, TOL, 2, rank=3)
    errors = [0.2, 0.2, 0.001, 0.001, 0.2, 0.2, 0.001]
    for e in errors[:3]:
        a.step(e)
    b = RankController(2, 4, 0.5, 5)
    b.load_state_dict(a.state_dict())
    assert [a.step(e) for e in errors[3:]] == [b.step(e) for e in errors[3:]]
    assert a.state_dict() == b.state_dict()


@pytest.mark.parametrize("args,kwargs,match", [
    ((0, 5, 0.1), {}, r"r_min: got 0, must be an integer >= 1"),
    ((3, 2, 0.1), {}, r"r_max: got 2, must be an integer >= 3"),
    ((1, 5, 0.0), {}, r"tol: got 0.0, must be a finite float > 0"),
    ((1, 5, 0.1, 0), {}, r"patience: got 0"),
    ((1, 5, 0.1), {"rank": 6}, r"rank: got 6, must be an integer in \[1, 5\]"),
    ((1, 5, 0.1), {"lower": 1.0}, r"lower: got 1.0, must be a float in \(0, 1\)"),
    ((1, 5, 0.1), {"growth": 1.0}, r"growth: got 1.0"),
], ids=["r_min", "r_max", "tol", "patience", "rank", "lower", "growth"])
def test_validation(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        RankController(*args, **kwargs)
