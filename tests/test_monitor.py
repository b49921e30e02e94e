"""The sketch monitor: what it receives, its statistics against the full gradient history,
constant memory, exact resume, and the statistics' definitions against independent formulas."""
from __future__ import annotations

import gc
import io
import math
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.build import build_model
from pinnsketch.config import MonitorConfig
from pinnsketch.monitor import SketchMonitor, term_gradients
from pinnsketch.training.build import build_monitor
from pinnsketch.monitor.history import DecimatedHistory
from pinnsketch.monitor.statistics import alignment_score, effective_rank, largest_angle
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
BURGERS = ROOT / "problems" / "burgers.yaml"
SOFT = ["model.hard_constraints=false", "train.dtype=float64", "sampling.resample_every=0",
        "sampling.adaptive=none"]

# History rows are float32 (7 digits); exact statistics computed in float64 land there.
EXACT_RTOL = 1e-6
# Sketch read-outs are float32 reconstructions; at exact rank (k ≥ true rank) only
# round-off separates them from the SVD of the exact EMA.
SKETCH_EXACT_RTOL = 1e-3
SKETCH_EXACT_DEG = 0.5
# Real PINN gradients are full rank; at rank 2 (k = 5 of 16 directions) the EMA gradient's
# tail beyond k is what the sketch misses: the 5% on norms and a few degrees on the
# leading direction.
SKETCH_APPROX_RTOL = 0.05
SKETCH_APPROX_DEG = 3.0


class RecordingMonitor(SketchMonitor):
    """A monitor that also keeps every gradient it is handed: the full history to check
    the sketches against (what the monitor exists to avoid storing)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record: list[tuple[int, dict, dict]] = []

    def observe(self, step, losses, grads, phase="adam", weights=None):
        self.record.append((step, dict(losses), {t: {k: g.detach().clone() for k, g in d.items()}
                                                 for t, d in grads.items()}))
        super().observe(step, losses, grads, phase, weights)


def _trainer(width: int = 8, monitor_kwargs: dict | None = None, extra: tuple = ()) -> Trainer:
    overrides = tiny_overrides() + SOFT + [f"model.width={width}", "model.depth=2", *extra]
    config = pinnsketch.load_config(BURGERS, overrides)
    problem = pinnsketch.load_problem(config)
    model = build_model(config, problem).double()
    terms = problem.physics_terms(False)
    monitor = (RecordingMonitor.for_module(model, terms, **monitor_kwargs)
               if monitor_kwargs is not None else None)
    return Trainer(problem, model, train=config.train, sampling=config.sampling, terms=terms,
                   observations=None, device=torch.device("cpu"), dtype=torch.float64,
                   monitor=monitor)


# ------------------------------------------------------------------------------------------
# What the monitor receives
# ------------------------------------------------------------------------------------------
def test_monitor_receives_direct_autograd_gradients():
    trainer = _trainer(monitor_kwargs={"every": 2})
    weights = [layer.weight for layer in trainer.model.linear_layers]
    expected = []
    for _ in range(5):
        if trainer.step % 2 == 0:
            losses = trainer.losses()  # the batch and parameters adam_step will use
            expected.append({t: torch.autograd.grad(losses[t], weights, retain_graph=True)
                             for t in trainer.terms})
        trainer.adam_step()
    record = trainer.monitor.record
    assert [r[0] for r in record] == [0, 2, 4]
    for (_, _, grads), direct in zip(record, expected):
        for term in trainer.terms:
            for i, g in enumerate(direct[term]):
                torch.testing.assert_close(grads[term][f"layer{i}"], g, rtol=1e-12, atol=0)


def test_monitoring_leaves_the_update_unchanged():
    # Per-term gradients summed with weights equal total.backward() up to round-off.
    plain, monitored = _trainer(), _trainer(monitor_kwargs={"every": 1})
    for _ in range(8):
        plain.adam_step()
        monitored.adam_step()
    for p, q in zip(plain.model.parameters(), monitored.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["lbfgs", "ssbroyden2"])
def test_phase_after_adam_is_observed_and_unchanged_by_it(method):
    # Every quasi_newton_every-th objective evaluation is a check; the iterates are those of
    # an unmonitored twin (the per-term gradients sum to the same gradient, up to round-off).
    extra = (f"train.quasi_newton={method}",)
    plain = _trainer(extra=extra)
    monitored = _trainer(monitor_kwargs={"every": 5, "quasi_newton_every": 2}, extra=extra)
    for trainer in (plain, monitored):
        for _ in range(10):
            trainer.adam_step()
        trainer.lbfgs_chunk(12)
    for p, q in zip(plain.model.parameters(), monitored.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)
    evaluations = monitored.quasi_newton_evaluations
    assert evaluations >= 12 and evaluations == plain.quasi_newton_evaluations
    assert monitored.monitor.checks_by_phase == {"adam": 2, method: (evaluations + 1) // 2}
    steps = [r[0] for r in monitored.monitor.record]
    assert steps[:2] == [0, 5] and steps[2] == 10 and all(10 <= s <= 22 for s in steps[2:])
    assert steps[2:] == sorted(steps[2:])


def test_quasi_newton_every_zero_leaves_that_phase_unobserved():
    trainer = _trainer(monitor_kwargs={"every": 5, "quasi_newton_every": 0})
    for _ in range(10):
        trainer.adam_step()
    trainer.lbfgs_chunk(5)
    assert trainer.monitor.checks_by_phase == {"adam": 2}


def test_term_gradients_match_autograd_and_keep_the_graph():
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
    net = net.double()
    x = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = net(x).squeeze(-1)
    losses = {"fit": (out - 1).square().mean(), "small": out.square().mean()}
    grads = term_gradients(losses, net)
    for term, loss in losses.items():
        direct = torch.autograd.grad(loss, [net[0].weight, net[2].weight], retain_graph=True)
        torch.testing.assert_close(grads[term]["layer0"], direct[0], rtol=1e-14, atol=0)
        torch.testing.assert_close(grads[term]["layer1"], direct[1], rtol=1e-14, atol=0)
    (losses["fit"] + losses["small"]).backward()  # the graph survived
    assert net[0].weight.grad is not None


# ------------------------------------------------------------------------------------------
# Statistics against the full gradient history
# ------------------------------------------------------------------------------------------
def _reference(record, monitor: SketchMonitor) -> dict:
    """Every statistic recomputed in float64 numpy from the stored gradients.

    Returns per check index c (0-based) the values the history row c must hold; spectral
    statistics are carried from the latest evaluation (checks 0, g, 2g, …).
    """
    beta, g = monitor.beta, monitor.spectral_every
    layers, terms = list(monitor.layers), monitor.terms
    ema = {(ly, t): 0.0 for ly in layers for t in terms}
    sq = dict(ema)
    previous, carried, rows = {}, {}, []
    for c, (_, losses, grads) in enumerate(record):
        row = {("loss", "", t): losses[t] for t in terms}
        correction = 1.0 - beta ** (c + 1)
        for ly in layers:
            for t in terms:
                G = grads[t][ly].double().numpy()
                ema[ly, t] = beta * ema[ly, t] + (1 - beta) * G
                sq[ly, t] = beta * sq[ly, t] + (1 - beta) * float((G ** 2).sum())
                row["norm", ly, t] = float(np.linalg.norm(G))
            for i, a in enumerate(terms):
                for b in terms[i + 1:]:
                    Ga, Gb = grads[a][ly].numpy().ravel(), grads[b][ly].numpy().ravel()
                    cosine = Ga @ Gb / np.linalg.norm(Ga) / np.linalg.norm(Gb)
                    row["cosine", ly, f"{a}|{b}"] = cosine
            for t in terms:
                if t != monitor.reference:
                    row["imbalance", ly, t] = (np.abs(grads[monitor.reference][ly].numpy()).max()
                                               / np.abs(grads[t][ly].numpy()).mean())
        if c % g == 0:
            subspaces = {}
            for li, ly in enumerate(layers):
                r = min(monitor.rank, *monitor.layers[ly])
                for t in terms:
                    U, s, Vt = np.linalg.svd(ema[ly, t] / correction)
                    p = s[:r] ** 2 / (s[:r] ** 2).sum()
                    carried["ema_norm", ly, t] = float(np.sqrt((s ** 2).sum()))
                    carried["erank", ly, t] = float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))
                    rms = math.sqrt(sq[ly, t] / correction)
                    carried["snr", ly, t] = min(1.0, carried["ema_norm", ly, t] / rms)
                    subspaces[ly, t] = (U[:, :r], Vt[:r].T)
                    if (ly, t) in previous:
                        carried["drift", ly, t] = _max_angle(previous[ly, t], subspaces[ly, t])
            previous = subspaces
        rows.append({**row, **carried})
    return rows


def _max_angle(a, b) -> float:
    return max(float(np.degrees(scipy.linalg.subspace_angles(x, y)).max()) for x, y in zip(a, b))


def _synthetic_gradients(layers, terms, checks, true_rank, seed=0):
    """G_t = U_t diag(a) V_tᵀ per (layer, term): rank ``true_rank``, subspaces rotating by
    about a degree per check, so Ḡ is numerically rank ``true_rank`` and drifts."""
    gen = np.random.default_rng(seed)
    out = [dict() for _ in range(checks)]
    for t in terms:
        for ly, (m, n) in layers.items():
            r = min(true_rank, m, n)
            U0, _ = np.linalg.qr(gen.standard_normal((m, r)))
            V0, _ = np.linalg.qr(gen.standard_normal((n, r)))
            dU, dV = gen.standard_normal((m, r)), gen.standard_normal((n, r))
            amplitude = np.array([3.0, 2.0, 1.0, 0.7][:r])
            for c in range(checks):
                U, _ = np.linalg.qr(U0 + 0.02 * c * dU)
                V, _ = np.linalg.qr(V0 + 0.02 * c * dV)
                out[c].setdefault(t, {})[ly] = torch.from_numpy(U @ np.diag(amplitude) @ V.T)
    return out


def _check_history(monitor, reference, stats_tol: dict[str, float]):
    history = monitor.history_view()
    assert len(history.steps) == len(reference)  # stride 1: one row per check
    for stat, rtol in stats_tol.items():
        keys = [k for k in reference[-1] if k[0] == stat]
        assert keys, stat
        for key in keys:
            got = history.series(*key)
            want = np.array([row.get(key, np.nan) for row in reference])
            np.testing.assert_allclose(got, want, rtol=rtol, atol=0, equal_nan=True,
                                       err_msg=str(key))


@pytest.mark.parametrize("backend", ["three_sketch", "exact"])
@pytest.mark.parametrize("rank", [3, 5], ids=["rank=true-rank", "rank>true-rank"])
def test_sketch_statistics_match_full_history_at_exact_rank(rank, backend):
    layers = {"layer0": (12, 3), "layer1": (12, 12), "layer2": (1, 12)}
    terms = ("pde", "bc")
    monitor = SketchMonitor(layers, terms, rank=rank, beta=0.9, history=64, seed=1,
                            backend=backend)
    assert {monitor.bank_kind(ly) for ly in layers} == {backend}
    grads = _synthetic_gradients(layers, terms, checks=40, true_rank=3)
    record = []
    for c, g in enumerate(grads):
        losses = {"pde": 1.0 / (c + 1), "bc": 0.5}
        monitor.observe(10 * c, losses, g)
        record.append((10 * c, losses, g))
    reference = _reference(record, monitor)
    _check_history(monitor, reference, {"loss": EXACT_RTOL, "norm": EXACT_RTOL,
                                        "cosine": EXACT_RTOL, "imbalance": EXACT_RTOL,
                                        "ema_norm": SKETCH_EXACT_RTOL, "snr": SKETCH_EXACT_RTOL,
                                        "erank": SKETCH_EXACT_RTOL})
    history = monitor.history_view()
    for ly in layers:
        for t in terms:
            # Leading subspaces of the true rank: the sketch's vs the exact EMA's SVD.
            r = min(3, *layers[ly])
            U, _, Vt = np.linalg.svd(_exact_ema(record, ly, t, monitor.beta))
            left, right = monitor.leading_subspaces(ly, t)
            assert _max_angle((left[:, :r].double().numpy(), right[:, :r].double().numpy()),
                              (U[:, :r], Vt[:r].T)) < SKETCH_EXACT_DEG
            if rank == 3:  # drift of the rank-r subspace is defined when r = true rank
                want = np.array([row.get(("drift", ly, t), np.nan) for row in reference])
                np.testing.assert_allclose(history.series("drift", ly, t), want,
                                           atol=SKETCH_EXACT_DEG, rtol=0, equal_nan=True)


def _exact_ema(record, layer, term, beta):
    ema = 0.0
    for _, _, grads in record:
        ema = beta * ema + (1 - beta) * grads[term][layer].double().numpy()
    return ema / (1 - beta ** len(record))


def test_sketch_statistics_match_full_history_of_pinn_gradients():
    # A real (tiny) PINN run: 16-wide layers, monitor rank 2 (k = 5 < 16): approximate.
    trainer = _trainer(width=16, monitor_kwargs={"every": 1, "rank": 2, "history": 64,
                                                 "backend": "three_sketch"})
    for _ in range(40):
        trainer.adam_step()
    monitor = trainer.monitor
    reference = _reference(monitor.record, monitor)
    _check_history(monitor, reference, {"loss": EXACT_RTOL, "norm": EXACT_RTOL,
                                        "cosine": EXACT_RTOL, "imbalance": EXACT_RTOL,
                                        "ema_norm": SKETCH_APPROX_RTOL,
                                        "snr": SKETCH_APPROX_RTOL})
    checked = 0
    for ly in monitor.layers:
        for t in monitor.terms:
            U, s, Vt = np.linalg.svd(_exact_ema(monitor.record, ly, t, monitor.beta))
            if len(s) > 1 and s[0] < 2 * s[1]:
                continue  # no spectral gap: the leading direction itself is ill-defined
            left, right = monitor.leading_subspaces(ly, t)
            assert _max_angle((left[:, :1].double().numpy(), right[:, :1].double().numpy()),
                              (U[:, :1], Vt[:1].T)) < SKETCH_APPROX_DEG, (ly, t)
            checked += 1
    assert checked >= 6  # of 9 (layer, term) pairs


# ------------------------------------------------------------------------------------------
# Constant memory and exact resume
# ------------------------------------------------------------------------------------------
def _held_tensor_bytes(obj, seen=None) -> int:
    """Bytes of every distinct tensor storage reachable from ``obj`` (the monitor)."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        key = storage.data_ptr()
        if key in seen or storage.nbytes() == 0:
            return 0
        seen.add(key)
        return storage.nbytes()
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, torch.Generator, type)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, dict):
        return sum(_held_tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_held_tensor_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return _held_tensor_bytes(vars(obj), seen)
    return 0


def _random_grads(layers, terms, gen):
    return {t: {ly: torch.randn(*shape, generator=gen, dtype=torch.float64)
                for ly, shape in layers.items()} for t in terms}


@pytest.mark.parametrize("backend", ["auto", "exact", "three_sketch"])
def test_memory_is_identical_after_100_and_2000_checks(backend):
    layers = {"layer0": (10, 2), "layer1": (10, 10), "layer2": (1, 10)}
    terms = ("pde", "bc")
    monitor = SketchMonitor(layers, terms, rank=2, history=32, backend=backend)
    gen = torch.Generator().manual_seed(0)
    grads = [_random_grads(layers, terms, gen) for _ in range(8)]
    for c in range(100):
        monitor.observe(c, {"pde": 1.0, "bc": 1.0}, grads[c % 8])
    reported, held = monitor.nbytes(), _held_tensor_bytes(monitor)
    for c in range(100, 1000):
        monitor.observe(c, {"pde": 1.0, "bc": 1.0}, grads[c % 8])
    # Python-side allocations over checks 1000-2000. Torch's operator caches keep growing
    # sub-linearly for a while (a bare loop of the same torch ops: 5 kB in its first 1000
    # calls, 6 kB after 7000; the monitor: 17 kB, then 3 kB per further 1000); a leak of
    # one gradient matrix per check would be 1.6 MB here.
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for c in range(1000, 2000):
        monitor.observe(c, {"pde": 1.0, "bc": 1.0}, grads[c % 8])
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert monitor.nbytes() == reported
    assert _held_tensor_bytes(monitor) == held
    assert held == reported  # nbytes counts every tensor the monitor holds
    assert growth < 100_000
    assert monitor.history.stride == 64  # 2000 checks in 32-row capacity: decimated


@pytest.mark.parametrize("width", [20, 64, 256])
def test_auto_keeps_whichever_is_smaller_and_counts_it(width):
    # Per layer the kept numbers are min(m·n, k(m+n) + s²) (k, s clipped to the layer); the
    # bank bytes are their sum over (layer, term) at float32, test matrices only if sketched.
    layers = {"layer0": (width, 2), **{f"layer{i}": (width, width) for i in (1, 2, 3)},
              "layer4": (1, width)}
    terms = ("pde", "bc", "ic")
    monitor = SketchMonitor(layers, terms, rank=4)
    memory = monitor.memory()
    kept = 0
    for name, (m, n) in layers.items():
        r = min(4, m, n)
        k, s = min(2 * r + 1, m, n), min(2 * (2 * r + 1) + 1, m, n)
        sketch, exact = k * (m + n) + s * s, m * n
        entry = memory["layers"][name]
        assert entry["numbers_per_pair"] == min(sketch, exact)
        assert entry["bank"] == ("exact" if exact <= sketch else "three_sketch")
        kept += min(sketch, exact) * len(terms)
    assert memory["banks"] == 4 * kept
    assert memory["exact_state"] == 4 * len(terms) * sum(m * n for m, n in layers.values())
    sketched = any(v["bank"] == "three_sketch" for v in memory["layers"].values())
    assert (memory["tests"] > 0) == sketched == (width > 20)
    if width == 20:  # nothing beyond the exact state
        assert memory["banks"] + memory["tests"] == memory["exact_state"]
    if width == 256:  # the sketch of a 256×256 layer: 4969 of 65536 numbers
        assert memory["layers"]["layer1"]["numbers_per_pair"] / 65536 < 0.1


@pytest.mark.parametrize("backend", ["auto", "exact", "three_sketch"])
def test_state_dict_round_trip_continues_exactly(backend):
    layers = {"layer0": (6, 2), "layer1": (6, 6), "layer2": (1, 6)}
    terms = ("pde", "bc", "ic")
    gen = torch.Generator().manual_seed(3)
    grads = [_random_grads(layers, terms, gen) for _ in range(50)]
    losses = [{t: float(i + j) for j, t in enumerate(terms)} for i in range(50)]
    make = lambda: SketchMonitor(layers, terms, rank=2, history=16, backend=backend, seed=5)
    full, first = make(), make()
    for i in range(50):
        full.observe(i, losses[i], grads[i])
    for i in range(23):
        first.observe(i, losses[i], grads[i])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = SketchMonitor.from_state_dict(torch.load(buffer, weights_only=False))
    for i in range(23, 50):
        resumed.observe(i, losses[i], grads[i])
    _assert_same_state(full.state_dict(), resumed.state_dict())


def _assert_same_state(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same_state(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.parametrize("budget", ["train.adam_steps", "train.lbfgs_steps"],
                         ids=["inside-adam", "inside-the-phase-after-adam"])
def test_resumed_monitored_run_equals_uninterrupted(tmp_path, budget):
    # Stopped after 20 of 30 Adam steps, or after 10 of 20 SSBroyden2 iterations (Adam 20):
    # the resumed run's monitor state, evaluation counter and diagnosis are the full run's.
    overrides = tiny_overrides(20, 0) + SOFT + ["monitor.enabled=true", "monitor.every=2",
                                                "monitor.quasi_newton_every=3",
                                                "monitor.history=8", "output.plots=false",
                                                "train.eval_every=5"]
    full_budget = 30 if budget == "train.adam_steps" else 20
    config = lambda n: pinnsketch.load_config(BURGERS, overrides + [f"{budget}={n}"])
    pinnsketch.train(config(full_budget), out=tmp_path / "full")
    pinnsketch.train(config(full_budget - 10), out=tmp_path / "part")
    pinnsketch.train(config(full_budget), resume=tmp_path / "part")
    load = lambda name: torch.load(tmp_path / name / "checkpoint.pt",
                                   weights_only=False)["trainer"]
    full, part = load("full"), load("part")
    if budget == "train.lbfgs_steps":
        assert full["monitor"]["checks_by_phase"]["ssbroyden2"] >= 6
    _assert_same_state(full["monitor"], part["monitor"])
    assert full["quasi_newton_evaluations"] == part["quasi_newton_evaluations"]
    assert (tmp_path / "full" / "diagnosis.md").read_text().split("\n", 1)[1] == \
        (tmp_path / "part" / "diagnosis.md").read_text().split("\n", 1)[1]


# ------------------------------------------------------------------------------------------
# The history buffer and the statistics' definitions
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("checks", [5, 8, 9, 37, 100], ids=lambda n: f"{n}-checks")
def test_decimated_history_holds_block_means(checks):
    history = DecimatedHistory(8, 2)
    values = np.stack([np.arange(checks, dtype=float) ** 1.5, np.cos(np.arange(checks))], 1)
    for i in range(checks):
        history.add(10 * i, torch.from_numpy(values[i]))
    s = history.stride
    n = checks // s
    steps, rows = history.view()
    assert 4 <= n <= 7 or checks < 8
    np.testing.assert_allclose(rows.numpy(), values[:n * s].reshape(n, s, 2).mean(1), rtol=1e-6)
    np.testing.assert_array_equal(steps.numpy(), 10 * (np.arange(1, n + 1) * s - 1))


@pytest.mark.parametrize("spectrum, expected", [
    ([1.0, 0.0, 0.0], 1.0), ([1.0, 1.0, 1.0, 1.0], 4.0),
    ([2.0, 1.0], math.exp(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2))))],
    ids=["rank-one", "flat", "two-values"])
def test_effective_rank(spectrum, expected):
    sigma = torch.tensor(spectrum, dtype=torch.float64)
    assert float(effective_rank(sigma)) == pytest.approx(expected, rel=1e-12)


def test_largest_angle_matches_scipy():
    gen = torch.Generator().manual_seed(0)
    a = torch.linalg.qr(torch.randn(9, 3, generator=gen, dtype=torch.float64)).Q
    b = torch.linalg.qr(a + 0.3 * torch.randn(9, 3, generator=gen, dtype=torch.float64)).Q
    want = np.degrees(scipy.linalg.subspace_angles(a.numpy(), b.numpy()))
    assert float(largest_angle(a, b)) == pytest.approx(want.max(), rel=1e-10)
    tiny = torch.linalg.qr(a + 1e-9 * torch.randn(9, 3, generator=gen, dtype=torch.float64)).Q
    assert 0 < float(largest_angle(a, tiny)) < 1e-6  # no arccos round-off floor


def test_alignment_score_of_two_terms_is_their_cosine():
    cos = torch.tensor([[1.0, -0.3], [-0.3, 1.0]], dtype=torch.float64)
    assert float(alignment_score(cos)) == pytest.approx(-0.3, rel=1e-12)


def test_recorded_alignment_score_matches_its_definition():
    # Three terms: A = 2‖mean_τ G_τ/‖G_τ‖‖² − 1 from the gradients directly, per layer and
    # over the concatenated network gradient.
    layers = {"layer0": (5, 2), "layer1": (1, 5)}
    terms = ("pde", "bc", "ic")
    gen = torch.Generator().manual_seed(4)
    grads = _random_grads(layers, terms, gen)
    monitor = SketchMonitor(layers, terms, rank=1, history=8)
    monitor.observe(0, {t: 1.0 for t in terms}, grads)
    history = monitor.history_view()

    def score(vectors):
        mean = np.mean([v / np.linalg.norm(v) for v in vectors], axis=0)
        return 2 * mean @ mean - 1

    for ly in layers:
        want = score([grads[t][ly].numpy().ravel() for t in terms])
        assert history.series("alignment", ly, "all")[-1] == pytest.approx(want, rel=1e-6)
    network = [np.concatenate([grads[t][ly].numpy().ravel() for ly in layers]) for t in terms]
    assert history.series("alignment", "all", "all")[-1] == pytest.approx(score(network),
                                                                           rel=1e-6)


# ------------------------------------------------------------------------------------------
# Construction and errors
# ------------------------------------------------------------------------------------------
def test_build_monitor_from_config_selects_terms_and_layers():
    trainer = _trainer()
    config = MonitorConfig(enabled=True, rank=2, every=3, terms=("pde", "ic"), layers=(0, 2),
                           history=9)
    monitor = build_monitor(config, trainer.model, trainer.terms, seed=0)
    assert monitor.terms == ("pde", "ic") and list(monitor.layers) == ["layer0", "layer2"]
    assert monitor.every == 3 and monitor.history.capacity == 10
    assert monitor.layers["layer0"] == (8, 2) and monitor.layers["layer2"] == (1, 8)


@pytest.mark.parametrize("make, error, match", [
    (lambda: SketchMonitor({"layer0": (2, 2)}, ("pde",), backend="svd"), ValueError,
     "allowed: auto, exact, three_sketch"),
    (lambda: SketchMonitor({"layer0": (2, 2)}, ("pde", "pde")), ValueError, "distinct"),
    (lambda: SketchMonitor({"layer0": (2, 2)}, ("pde",), beta=1.0), ValueError, "beta"),
    (lambda: SketchMonitor({"layer0": (2, 2)}, ("pde",)).observe(
        0, {"pde": 1.0}, {"bc": {"layer0": torch.zeros(2, 2)}}), KeyError, "monitored terms"),
], ids=["backend", "duplicate-term", "beta", "missing-term"])
def test_bad_input_fails_loudly(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_load_state_dict_rejects_another_configuration():
    state = SketchMonitor({"layer0": (3, 3)}, ("pde",), rank=2).state_dict()
    with pytest.raises(ValueError, match="rank"):
        SketchMonitor({"layer0": (3, 3)}, ("pde",), rank=1).load_state_dict(state)


# ------------------------------------------------------------------------------------------
# The standalone example
# ------------------------------------------------------------------------------------------
def test_standalone_example(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import monitor_standalone
    finally:
        sys.path.pop(0)
    monitor, grads = monitor_standalone.main(steps=30, out=str(tmp_path))
    history = monitor.history_view()
    assert history.steps[-1] == 25 and (tmp_path / "diagnosis.md").is_file()
    # The last row holds the last check's exact statistics: recompute them in numpy.
    for layer in monitor.layers:
        fit, smooth = (grads[t][layer].double().numpy().ravel() for t in ("fit", "smooth"))
        assert history.series("norm", layer, "fit")[-1] == pytest.approx(
            np.linalg.norm(fit), rel=EXACT_RTOL)
        assert history.series("cosine", layer, "fit|smooth")[-1] == pytest.approx(
            fit @ smooth / np.linalg.norm(fit) / np.linalg.norm(smooth), rel=1e-5)
