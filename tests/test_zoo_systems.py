"""Systems of PDEs and shaped domains: Kovasznay and the lid-driven cavity (three outputs,
one loss term per equation), Poisson on a plate with holes (a CSG domain, Neumann data by
outward normals), and what a run of each records."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import RESIDUAL_ATOL_F64, tiny_overrides
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.plots import solution_figure
from pinnsketch.problems import Kovasznay, LidDrivenCavity, PoissonHoles
from pinnsketch.sampling import Sampler
from pinnsketch.training.evaluation import reference_errors

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


class Fields(torch.nn.Module):
    """A 'network' returning closed-form fields ``(N, k)`` (or ``(N,)``) of the points."""

    def __init__(self, formula):
        super().__init__()
        self.formula = formula

    def forward(self, points):
        return self.formula(points[:, 0], points[:, 1])


def _kovasznay(re):
    """Kovasznay's flow, written here independently of the problem class."""
    lam = re / 2 - math.sqrt(re ** 2 / 4 + 4 * math.pi ** 2)

    def fields(x, y):
        e = torch.exp(lam * x)
        return torch.stack([1 - e * torch.cos(2 * math.pi * y),
                            lam / (2 * math.pi) * e * torch.sin(2 * math.pi * y),
                            0.5 * (1 - torch.exp(2 * lam * x))], dim=1)
    return fields


def _points(problem, measure, n=64, seed=0):
    sampler = Sampler(problem.domain, "uniform", torch.Generator().manual_seed(seed))
    return getattr(sampler, measure)(n).requires_grad_(True)


# -- systems --------------------------------------------------------------------------------
def test_kovasznay_exact_flow_has_zero_residual_in_every_equation():
    problem = Kovasznay()
    assert problem.physics_terms(False) == ("momentum_x", "momentum_y", "continuity", "bc")
    batch = {"pde": _points(problem, "interior"), "bc": _points(problem, "boundary")}
    residuals = problem.residuals(Fields(_kovasznay(20.0)), batch)
    assert list(residuals) == ["momentum_x", "momentum_y", "continuity", "bc"]
    for term, r in residuals.items():
        assert r.shape[0] == 64
        assert float(r.detach().abs().max()) < RESIDUAL_ATOL_F64 * 100, term
    grid, _ = problem.evaluation_grid()
    expected = _kovasznay(20.0)(*torch.from_numpy(grid).T).numpy()
    np.testing.assert_allclose(problem.reference(grid), expected, rtol=0, atol=1e-13)


def test_navier_stokes_residual_against_hand_derivatives():
    # u = x²y, v = −xy², p = x + y: continuity 2xy − 2xy = 0; momentum by hand.
    problem = Kovasznay(Kovasznay.Options(reynolds=4.0))
    fields = Fields(lambda x, y: torch.stack([x * x * y, -x * y * y, x + y], dim=1))
    points = _points(problem, "interior")
    r = problem.pde_residual(fields, points).detach()
    x, y = points[:, 0].detach(), points[:, 1].detach()
    u, v = x * x * y, -x * y * y
    expected_x = u * 2 * x * y + v * x * x + 1 - (2 * y) / 4.0
    expected_y = u * (-y * y) + v * (-2 * x * y) + 1 - (-2 * x) / 4.0
    torch.testing.assert_close(r[:, 0], expected_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r[:, 1], expected_y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r[:, 2], torch.zeros_like(x), rtol=0, atol=1e-12)


def test_cavity_walls_and_lid():
    problem = LidDrivenCavity(LidDrivenCavity.Options(cells=32))
    points = _points(problem, "boundary", n=400)
    lid = Fields(lambda x, y: torch.stack([(y >= 1.0).double(), 0 * x, x + 3], dim=1))
    r = problem.boundary_residual(lid, points)
    assert r.shape == (400, 2)  # velocities only: no pressure data
    assert float(r.detach().abs().max()) == 0.0
    still = Fields(lambda x, y: torch.stack([0 * x, 0 * x, 0 * x], dim=1))
    on_lid = points[:, 1].detach() == 1.0
    assert on_lid.any() and (~on_lid).any()
    torch.testing.assert_close(problem.boundary_residual(still, points)[:, 0].detach(),
                               -on_lid.double())
    grid, _ = problem.evaluation_grid()
    values = problem.reference(grid)
    assert values.shape == (len(grid), 2)  # (u, v): the pressure is not compared
    top = grid[:, 1] == 1.0
    np.testing.assert_allclose(values[top & (grid[:, 0] > 0) & (grid[:, 0] < 1), 0], 1.0,
                               atol=1e-12)


def test_errors_per_output_and_combined():
    problem = LidDrivenCavity(LidDrivenCavity.Options(cells=32))
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50, 2))
    prediction = np.column_stack([reference[:, 0] * 1.1, reference[:, 1], rng.normal(size=50)])
    errors = reference_errors(problem, prediction, reference)
    assert errors["rel_l2_outputs"]["u"] == pytest.approx(0.1, rel=1e-12)
    assert errors["rel_l2_outputs"]["v"] == 0.0
    assert set(errors["rel_l2_outputs"]) == {"u", "v"}  # p has no reference
    combined = 0.1 * np.linalg.norm(reference[:, 0]) / np.linalg.norm(reference)
    assert errors["rel_l2"] == pytest.approx(combined, rel=1e-12)


def test_a_system_run_records_every_equation_and_output(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "kovasznay.yaml", [
        *tiny_overrides(adam=20, lbfgs=10), "train.weights.continuity=10.0",
        "monitor.enabled=true", "monitor.every=5", "problem.observations.count=8"])
    run = pinnsketch.train(config, out=tmp_path / "run")
    summary = run.summary
    assert set(summary["final_losses"]) == {"momentum_x", "momentum_y", "continuity", "bc",
                                            "data"}
    assert set(summary["rel_l2_outputs"]) == {"u", "v", "p"}
    problem = Kovasznay()
    grid, _ = problem.evaluation_grid()
    prediction = run.predict(grid)
    assert prediction.shape == (len(grid), 3)
    reference = problem.reference(grid)
    assert summary["rel_l2"] == pytest.approx(
        np.linalg.norm(prediction - reference) / np.linalg.norm(reference), rel=1e-10)
    assert summary["rel_l2_outputs"]["v"] == pytest.approx(
        np.linalg.norm(prediction[:, 1] - reference[:, 1]) / np.linalg.norm(reference[:, 1]),
        rel=1e-10)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(record["rel_l2_outputs"]) == {"u", "v", "p"}
    report = json.loads((tmp_path / "run" / "diagnosis.json").read_text())
    assert "continuity" in json.dumps(report)
    # The continuation equals the uninterrupted run bit for bit, as for scalar problems.
    short = pinnsketch.load_config(ROOT / "problems" / "kovasznay.yaml", [
        *tiny_overrides(adam=10, lbfgs=0), "train.weights.continuity=10.0",
        "monitor.enabled=true", "monitor.every=5", "problem.observations.count=8"])
    pinnsketch.train(short, out=tmp_path / "resumed")
    resumed = pinnsketch.train(config, resume=tmp_path / "resumed")
    for a, b in zip(run.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("override, key", [
    ("train.causal.chunks=4", "train.causal.chunks"),
    ("problem.observations.count=10", "problem.observations.count"),
], ids=["causal", "observations-without-pressure"])
def test_what_a_system_cannot_use_is_a_config_error(override, key, tmp_path):
    name = "cavity" if "observations" in override else "kovasznay"
    config = pinnsketch.load_config(ROOT / "problems" / f"{name}.yaml",
                                    [*tiny_overrides(), "problem.cells=32", override]
                                    if name == "cavity" else [*tiny_overrides(), override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        pinnsketch.train(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_system_figure_has_a_row_per_output():
    x, y = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 6), indexing="ij")
    points = np.stack([x.ravel(), y.ravel()], 1)
    prediction = np.column_stack([points[:, 0], points[:, 1], points[:, 0] * points[:, 1]])
    reference = prediction.copy()
    reference[:, 2] = np.nan  # no pressure reference
    fig = solution_figure(points, (5, 6), ("x", "y"), prediction, reference=reference,
                          evolution=False, problem="demo", outputs=("u", "v", "p"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:3] == ["u: prediction", "u: reference", "|error|"]
    assert "p: prediction" in titles and "p: reference" not in titles


# -- shaped domains -------------------------------------------------------------------------
@pytest.mark.parametrize("holes", ["dirichlet", "neumann"])
def test_poisson_with_holes_exact_solution_has_zero_residuals(holes):
    problem = PoissonHoles(PoissonHoles.Options(holes=holes))
    exact = Fields(lambda x, y: torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y)
                   + (x * x + y * y) / 2)
    interior = _points(problem, "interior", n=500)
    boundary = _points(problem, "boundary", n=500)
    residuals = problem.residuals(exact, {"pde": interior, "bc": boundary})
    assert float(residuals["pde"].detach().abs().max()) < RESIDUAL_ATOL_F64 * 100
    assert float(residuals["bc"].detach().abs().max()) < RESIDUAL_ATOL_F64
    centres = torch.tensor([[0.3, 0.3], [-0.3, 0.3], [0.3, -0.3], [-0.3, -0.3]],
                           dtype=torch.float64)
    distance = torch.cdist(interior.detach(), centres).min(dim=1).values
    assert float(distance.min()) > 0.1  # no interior point in a hole
    on_circle = torch.cdist(boundary.detach(), centres).min(dim=1).values
    on_square = boundary.detach().abs().amax(dim=1)
    on_either = torch.minimum((on_circle - 0.1).abs(), (on_square - 0.5).abs())
    assert float(on_either.max()) < 1e-12
    # Both parts are sampled, in proportion to their lengths (4 · 2π · 0.1 against 4).
    fraction = float(((on_circle - 0.1).abs() < 1e-12).double().mean())
    expected = 0.8 * math.pi / (0.8 * math.pi + 4)
    assert abs(fraction - expected) < 4 * math.sqrt(expected * (1 - expected) / 500)


def test_neumann_data_on_the_holes_are_checked():
    # u + c satisfies the Dirichlet-free flux condition on the holes but not the outer data;
    # a flux of the wrong sign fails on the holes only.
    problem = PoissonHoles(PoissonHoles.Options(holes="neumann"))
    shifted = Fields(lambda x, y: torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y)
                     + (x * x + y * y) / 2 + 0.25)
    boundary = _points(problem, "boundary", n=300)
    r = problem.boundary_residual(shifted, boundary).detach()
    on_hole = boundary.detach().abs().amax(dim=1) < 0.5 - 1e-9
    assert float(r[on_hole].abs().max()) < 1e-10
    torch.testing.assert_close(r[~on_hole], torch.full_like(r[~on_hole], 0.25))


def test_box_outward_normals():
    domain = Domain((0.0, -1.0), (2.0, 1.0), time=(0.0, 1.0))
    points = torch.tensor([[0.0, 0.3, 0.5], [2.0, -0.2, 0.1], [1.0, -1.0, 0.9],
                           [0.5, 1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [0, -1.0, 0], [0, 1.0, 0]],
                            dtype=torch.float64)
    assert torch.equal(domain.outward_normal(points), expected)


def test_a_holed_run_measures_its_error_inside_the_domain(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "poisson_holes.yaml",
                                    tiny_overrides(adam=10))
    run = pinnsketch.train(config, out=tmp_path / "run")
    problem = PoissonHoles()
    grid, _ = problem.evaluation_grid()
    inside = problem.domain.contains(grid)
    hole_area = 4 * math.pi * 0.01
    assert abs((~inside).mean() - hole_area) < 0.01  # the grid's share in the holes
    prediction, reference = run.predict(grid[inside]), problem.reference(grid[inside])
    assert run.summary["rel_l2"] == pytest.approx(
        np.linalg.norm(prediction - reference) / np.linalg.norm(reference), rel=1e-10)
    assert (tmp_path / "run" / "plots" / "solution.png").is_file()


def test_a_cavity_run_compares_the_velocities_only(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "cavity.yaml",
                                    [*tiny_overrides(adam=10), "problem.cells=32"])
    run = pinnsketch.train(config, out=tmp_path / "run")
    assert set(run.summary["rel_l2_outputs"]) == {"u", "v"}
    problem = LidDrivenCavity(LidDrivenCavity.Options(cells=32))
    grid, _ = problem.evaluation_grid()
    prediction, reference = run.predict(grid), problem.reference(grid)
    assert run.summary["rel_l2"] == pytest.approx(
        np.linalg.norm(prediction[:, :2] - reference) / np.linalg.norm(reference), rel=1e-10)
    assert (tmp_path / "run" / "plots" / "solution.png").is_file()
