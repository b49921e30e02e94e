"""A user's problem in its own folder, named in YAML as "laplace:Laplace1D"."""
import numpy as np

from pinnsketch import Domain, Problem, gradient, partial


class Laplace1D(Problem):
    """u'' = 0 on [0, 1] with u(0) = 0, u(1) = 1: u = x."""

    input_names = ("x",)
    domain = Domain((0.0,), (1.0,))

    def pde_residual(self, model, points):
        u = model(points)
        return partial(gradient(u, points)[:, 0], points, 0)

    def boundary_value(self, points):
        return points[:, 0]

    def reference(self, points):
        return points[:, 0].copy()

    def evaluation_grid(self):
        return np.linspace(0.0, 1.0, 51)[:, None], (51,)
