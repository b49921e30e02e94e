"""The dense quasi-Newton optimiser against independent references: exact termination on a
quadratic, SciPy's BFGS update and iterations, the self-scaled authors' published formulas,
SPD and symmetry of H, bit-exact state round trips, and the memory guard."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from pinnsketch.optim import UPDATES, QuasiNewton, inverse_hessian_update


def _steps(opt: QuasiNewton, fun, x: torch.Tensor, calls: int) -> None:
    """``calls`` optimiser steps on ``fun(x)``, stopping at the first stop reason."""
    def closure():
        opt.zero_grad()
        loss = fun(x)
        loss.backward()
        return loss

    for _ in range(calls):
        opt.step(closure)
        if opt.stop_reason is not None:
            break


def _minimise(fun, x0: torch.Tensor, calls: int, **options) -> tuple[torch.Tensor, QuasiNewton]:
    x = torch.nn.Parameter(x0.clone())
    opt = QuasiNewton([x], **options)
    _steps(opt, fun, x, calls)
    return x.detach(), opt


def _rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def test_bfgs_terminates_on_a_quadratic_within_p_plus_one_iterations():
    """With exact line searches BFGS minimises a strictly convex quadratic in at most p
    iterations (Nocedal & Wright, Thm 6.4); c2 = 1e-9 makes the strong-Wolfe search exact
    here (its cubic interpolation is exact on a quadratic)."""
    p = 10
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    A = Q @ torch.diag(torch.logspace(0, 2, p, dtype=torch.float64)) @ Q.T
    b = torch.randn(p, generator=g, dtype=torch.float64)
    solution = torch.linalg.solve(A, b)
    fun = lambda x: 0.5 * x @ A @ x - b @ x  # noqa: E731
    x, opt = _minimise(fun, torch.zeros(p, dtype=torch.float64), 1, update="bfgs",
                       max_iter=p + 1, c2=1e-9, tolerance_grad=1e-9)
    assert opt.stop_reason is not None and opt.stop_reason.startswith("gradient tolerance")
    assert opt.state[next(iter(opt.state))]["n_iter"] <= p + 1
    torch.testing.assert_close(x, solution, rtol=1e-8, atol=1e-8)


def test_bfgs_update_equals_scipy_on_scipys_own_iterates():
    """Replay SciPy's BFGS iterates (s, y pairs) through our update from H = I: the
    inverse Hessian must equal the one SciPy returns."""
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.7])
    iterates = [x0]
    result = scipy.optimize.minimize(scipy.optimize.rosen, x0, jac=scipy.optimize.rosen_der,
                                     method="BFGS", options={"maxiter": 15, "gtol": 1e-30},
                                     callback=lambda xk: iterates.append(np.array(xk)))
    assert result.nit == 15 and len(iterates) == 16
    H = torch.eye(len(x0), dtype=torch.float64)
    for a, b in zip(iterates[:-1], iterates[1:]):
        s = torch.from_numpy(b - a)
        y = torch.from_numpy(scipy.optimize.rosen_der(b) - scipy.optimize.rosen_der(a))
        g = torch.from_numpy(scipy.optimize.rosen_der(a))
        assert inverse_hessian_update(H, s, y, g, 1.0, "bfgs")
    np.testing.assert_allclose(H.numpy(), result.hess_inv, rtol=1e-10,
                               atol=1e-10 * np.abs(result.hess_inv).max())


def test_rosenbrock_converges_in_as_many_iterations_as_scipy():
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    reference = scipy.optimize.minimize(scipy.optimize.rosen, x0.numpy(), method="BFGS",
                                        jac=scipy.optimize.rosen_der, options={"gtol": 1e-10})
    for update in UPDATES:
        x, opt = _minimise(_rosenbrock, x0, 10, update=update, max_iter=100,
                           tolerance_grad=1e-10)
        n_iter = opt.state[next(iter(opt.state))]["n_iter"]
        assert float((x - 1).abs().max()) < 1e-9, update
        assert n_iter <= 2 * reference.nit, (update, n_iter, reference.nit)


def _authors_update(H, s, y, g, alpha, method):
    """The authors' numpy code, transcribed (modified_optimize.py, _minimize_bfgs,
    initial_scale=False): BFGS lines 1565–1568, SSBFGS_OL 1584–1591, SSBFGS_AB 1598–1605,
    SSBroyden1 1628–1653, SSBroyden2 1668–1690. ``g`` is gfk, the gradient before the step."""
    N = len(s)
    rhok = 1.0 / np.dot(y, s)
    if method in ("bfgs", "ssbfgs_ol", "ssbfgs_ab"):
        if method != "bfgs":
            bk = -alpha * rhok * np.dot(s, g)
            tauk = 1 / bk if method == "ssbfgs_ol" else min(1, 1 / bk)
            H = H / tauk
        Hkyk = H @ y
        hk = np.dot(y, Hkyk) * rhok
        return (H - rhok * (Hkyk[:, None] * s[None, :] + s[:, None] * Hkyk[None, :])
                + rhok * (1 + hk) * s[:, None] * s[None, :])
    Hkyk = H @ y
    ykHkyk = np.dot(y, Hkyk)
    hk = ykHkyk * rhok
    bk = -alpha * rhok * np.dot(s, g)
    ak = bk * hk - 1
    rhokm = min(1, hk * (1 - np.sqrt(np.abs(ak) / (1 + ak))))
    thetakm = (rhokm - 1) / ak
    if method == "ssbroyden2":
        thetak = max(thetakm, min(1 / rhokm, (1 - bk) / bk))
    else:
        thetakp = max(1, bk * (1 + np.sqrt(np.abs(ak) / (1 + ak))))
        thetakSR1 = 1 / (1 - bk)
        thetak = (thetakm if bk == 1 else max(thetakm, thetakSR1) if bk > 1
                  else min(thetakp, thetakSR1))
    rhokk = min(1, 1 / bk)
    sigmak = 1 + thetak * ak
    sigmaknm1 = np.abs(sigmak) ** (1. / (1 - N))
    tauk = min(rhokk * sigmaknm1, sigmak) if thetak <= 0 else rhokk * min(sigmaknm1, 1 / thetak)
    vk = s * rhok - Hkyk / ykHkyk
    phik = (1 - thetak) / (1 + ak * thetak)
    return ((H - Hkyk[:, None] * Hkyk[None, :] / ykHkyk
             + phik * ykHkyk * vk[:, None] * vk[None, :]) / tauk + s[:, None] * s[None, :] * rhok)


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("case", range(4))
def test_updates_equal_the_authors_published_code(update, case):
    rng = np.random.default_rng(case)
    n = 7
    M = rng.standard_normal((n, n))
    H = M @ M.T + n * np.eye(n)
    g = rng.standard_normal(n)
    alpha = [1.0, 0.3, 2.5, 0.05][case]
    s = -alpha * H @ g  # a quasi-Newton step, as the optimiser takes
    y = rng.standard_normal(n) * 0.3 + s * rng.uniform(0.5, 3.0)  # s·y > 0
    assert s @ y > 0
    expected = _authors_update(H, s, y, g, alpha, update)
    ours = torch.from_numpy(H.copy())
    assert inverse_hessian_update(ours, torch.from_numpy(s), torch.from_numpy(y),
                                  torch.from_numpy(g), alpha, update)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-11,
                               atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("update", UPDATES)
def test_H_stays_symmetric_positive_definite(update):
    x0 = torch.linspace(-1.0, 1.5, 12, dtype=torch.float64)
    _, opt = _minimise(_rosenbrock, x0, 3, update=update, max_iter=40, tolerance_grad=0.0)
    H = opt.state[next(iter(opt.state))]["H"]
    assert torch.equal(H, H.T)  # bitwise
    assert float(torch.linalg.eigvalsh(H).min()) > 0


def test_state_dict_round_trip_resumes_bit_for_bit():
    x0 = torch.linspace(-1.0, 1.5, 8, dtype=torch.float64)
    run = lambda x, opt, calls: _steps(opt, _rosenbrock, x, calls)  # noqa: E731
    x = torch.nn.Parameter(x0.clone())
    opt = QuasiNewton([x], update="ssbroyden2", max_iter=5)
    run(x, opt, 2)
    saved_x, saved_state = x.detach().clone(), torch.utils._pytree.tree_map(
        lambda v: v.clone() if torch.is_tensor(v) else v, opt.state_dict())
    run(x, opt, 2)
    y = torch.nn.Parameter(saved_x)
    again = QuasiNewton([y], update="ssbroyden2", max_iter=5)
    again.load_state_dict(saved_state)
    run(y, again, 2)
    assert torch.equal(x.detach(), y.detach())


def test_objective_change_keeps_H_and_drops_the_cached_gradient():
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
    opt = QuasiNewton([x], update="bfgs", max_iter=5)
    closure = lambda: (opt.zero_grad(), _rosenbrock(x).backward(), _rosenbrock(x))[2]  # noqa
    opt.step(closure)
    state = opt.state[x]
    H = state["H"].clone()
    opt.objective_changed()
    assert "g" not in state and torch.equal(state["H"], H)


def test_memory_guard_names_the_parameter_count_and_points_to_lbfgs():
    big = torch.nn.Parameter(torch.zeros(5000, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"5000 parameters needs 191 MiB.*use L-BFGS"):
        QuasiNewton([big], max_hessian_bytes=100 * 2 ** 20)


def test_unknown_update_is_rejected():
    with pytest.raises(ValueError, match="allowed: bfgs"):
        QuasiNewton([torch.nn.Parameter(torch.zeros(2))], update="sr1")
