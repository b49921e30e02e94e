"""Two gloo processes on localhost train one model: identical on both ranks, and equal to a
single process whose batch is the union of the two shards."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.build import build_trainer
from pinnsketch.errors import ConfigError
from pinnsketch.training.distributed import init_from_environment
from pinnsketch.runner.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = tiny_overrides() + ["model.hard_constraints=false", "train.dtype=float64",
                                "sampling.adaptive=none", "sampling.resample_every=0",
                                "monitor.enabled=true", "monitor.every=2", "monitor.rank=2"]
ADAM_STEPS, LBFGS_CHUNKS = 6, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join_as(rank: int, world: int, port: int) -> None:
    """Describe this process as rank ``rank`` of ``world`` in the environment, as torchrun does."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)


def _leave() -> None:
    """Leave the group together, as the session does: a rank that tears its gloo pair down
    while the other still closes its own can abort that one ('terminate called without an
    active exception', seen once in CI)."""
    dist.barrier()
    dist.destroy_process_group()


def _train(trainer) -> None:
    for _ in range(ADAM_STEPS):
        trainer.adam_step()
    for _ in range(LBFGS_CHUNKS):
        trainer.lbfgs_chunk(3)


def _worker(rank: int, world: int, port: int, out: str, fail_rank: int) -> None:
    _join_as(rank, world, port)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", OVERRIDES)
    context = init_from_environment("gloo", torch.device("cpu"), timeout_s=60)
    trainer = build_trainer(config, context)
    batch = {t: p.clone() for t, p in trainer._batch64.items()}
    if rank == fail_rank:
        raise RuntimeError(f"rank {rank} fails on purpose")
    _train(trainer)
    torch.save({"batch": batch, "params": [p.detach().clone() for p in trainer.parameters],
                "monitor": trainer.monitor.state_dict()}, Path(out) / f"rank{rank}.pt")
    _leave()


def test_two_ranks_match_single_process_on_the_union(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), -1), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for a, b in zip(ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(a, b)  # same averaged gradients: bitwise identical steps
    assert not torch.equal(ranks[0]["batch"]["pde"], ranks[1]["batch"]["pde"])  # own shards

    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", OVERRIDES)
    single = build_trainer(config)
    single._batch64 = {t: torch.cat([r["batch"][t] for r in ranks]) for t in ranks[0]["batch"]}
    single._cast_batch()
    _train(single)
    for distributed_param, single_param in zip(ranks[0]["params"], single.parameters):
        # Mean of two shard means vs one mean over the union: round-off apart.
        torch.testing.assert_close(distributed_param, single_param.detach(), rtol=1e-9, atol=1e-11)
    # The monitor saw the rank-averaged per-term gradients: its sketches and histories equal
    # those of the single process to round-off.
    _assert_close_nested(ranks[0]["monitor"], single.monitor.state_dict())


def _assert_close_nested(a, b) -> None:
    if isinstance(a, torch.Tensor):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12, equal_nan=True)
        else:
            assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_close_nested(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_close_nested(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-8, abs=1e-12)
    else:
        assert a == b


def test_one_failing_rank_ends_all_without_hanging(tmp_path):
    with pytest.raises(mp.ProcessRaisedException, match="fails on purpose"):
        mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), 1), nprocs=2, join=True)
    assert not (tmp_path / "rank0.pt").exists()


def _train_worker(rank: int, world: int, port: int, overrides: list[str], out: str,
                  resume: bool) -> None:
    """One rank of ``pinnsketch.train``, joined through the environment as torchrun does it."""
    _join_as(rank, world, port)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", overrides)
    pinnsketch.train(config, out=None if resume else out, resume=out if resume else None)


def test_resume_with_two_ranks_equals_uninterrupted_and_needs_the_same_world_size(tmp_path):
    base = tiny_overrides(eval_every=5) + ["output.plots=false"]
    budget = base + ["train.adam_steps=20", "train.lbfgs_steps=6"]
    launch = lambda overrides, name, resume=False: mp.spawn(  # noqa: E731
        _train_worker, args=(2, _free_port(), overrides, str(tmp_path / name), resume),
        nprocs=2, join=True)
    launch(budget, "full")
    launch(base + ["train.adam_steps=10", "train.lbfgs_steps=0"], "part")

    # One process cannot take over the two ranks' shards: refused before anything is written.
    before = (tmp_path / "part" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"the run used 2 process\(es\), this launch has 1"):
        pinnsketch.train(pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", budget),
                         resume=tmp_path / "part")
    assert (tmp_path / "part" / "checkpoint.pt").read_bytes() == before

    launch(budget, "part", resume=True)
    full, resumed = (RunDir(tmp_path / name).load_checkpoint() for name in ("full", "part"))
    for key in full["trainer"]["model"]:
        assert torch.equal(full["trainer"]["model"][key], resumed["trainer"]["model"][key]), key
    for a, b in zip(full["ranks"], resumed["ranks"]):  # every rank's sampler state too
        _assert_close_nested(a, b)
    metrics = lambda name: RunDir(tmp_path / name).read_metrics()  # noqa: E731
    assert len(metrics("full")) >= 5  # evaluations before and after the resume point
    assert [(r["step"], r["rel_l2"]) for r in metrics("part")] == \
        [(r["step"], r["rel_l2"]) for r in metrics("full")]


def _torchrun(tmp_path: Path, *args: str) -> None:
    """``torchrun --standalone`` (a free rendezvous port, so parallel CI jobs cannot collide)
    with two CPU ranks, bounded in time; a failure shows both ranks' output."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "--max-restarts", "0", "-m", "pinnsketch", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, f"torchrun exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def test_the_command_under_torchrun_runs_and_resumes(tmp_path):
    sets = [a for o in tiny_overrides(10, 0, eval_every=5) + ["output.plots=false"]
            for a in ("--set", o)]
    _torchrun(tmp_path, "run", str(ROOT / "problems" / "burgers.yaml"), "--out", "r", *sets)
    assert RunDir(tmp_path / "r").read_summary()["steps"] == 10
    longer = [*sets, "--set", "train.adam_steps=20"]
    _torchrun(tmp_path, "run", "--resume", "r", *longer)
    summary = RunDir(tmp_path / "r").read_summary()
    assert summary["status"] == "completed" and summary["steps"] == 20
    assert [r["step"] for r in RunDir(tmp_path / "r").read_metrics()] == [0, 5, 10, 15, 20]


def _dense_worker(rank: int, world: int, port: int, out: str) -> None:
    _join_as(rank, world, port)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    OVERRIDES + ["train.quasi_newton=ssbroyden2"])
    context = init_from_environment("gloo", torch.device("cpu"), timeout_s=60)
    trainer = build_trainer(config, context)
    batch = {t: p.clone() for t, p in trainer._batch64.items()}
    _train(trainer)
    H = trainer.lbfgs.state[trainer.parameters[0]]["H"]
    torch.save({"batch": batch, "params": [p.detach().clone() for p in trainer.parameters],
                "H": H.clone()}, Path(out) / f"dense{rank}.pt")
    _leave()


def test_dense_quasi_newton_keeps_one_H_on_every_rank(tmp_path):
    """The closure averages losses and gradients over ranks, so every rank takes the same
    line search and the same update: H and the weights are bitwise equal across ranks, and
    equal to one process on the union of the shards to round-off."""
    mp.spawn(_dense_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"dense{r}.pt") for r in range(2)]
    assert torch.equal(ranks[0]["H"], ranks[1]["H"])
    for a, b in zip(ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(a, b)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    OVERRIDES + ["train.quasi_newton=ssbroyden2"])
    single = build_trainer(config)
    single._batch64 = {t: torch.cat([r["batch"][t] for r in ranks]) for t in ranks[0]["batch"]}
    single._cast_batch()
    _train(single)
    torch.testing.assert_close(ranks[0]["H"], single.lbfgs.state[single.parameters[0]]["H"],
                               rtol=1e-6, atol=1e-9)


def _balancing_worker(rank: int, world: int, port: int, out: str, scheme: str) -> None:
    _join_as(rank, world, port)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                    OVERRIDES + [f"train.balancing.scheme={scheme}",
                                                 "train.balancing.every=2"])
    context = init_from_environment("gloo", torch.device("cpu"), timeout_s=60)
    trainer = build_trainer(config, context)
    batch = {t: p.clone() for t, p in trainer._batch64.items()}
    _train(trainer)
    torch.save({"batch": batch, "weights": dict(trainer.weights),
                "params": [p.detach().clone() for p in trainer.parameters]},
               Path(out) / f"{scheme}{rank}.pt")
    _leave()


@pytest.mark.parametrize("scheme", ["grad_norm", "ntk"])
def test_adaptive_weights_are_the_same_on_every_rank(tmp_path, scheme):
    """grad_norm reads the rank-averaged per-term gradients and ntk averages its traces, so
    the weights (and the steps) are bitwise equal across ranks; grad_norm's equal those of
    one process on the union of the shards to round-off."""
    mp.spawn(_balancing_worker, args=(2, _free_port(), str(tmp_path), scheme), nprocs=2,
             join=True)
    ranks = [torch.load(tmp_path / f"{scheme}{r}.pt") for r in range(2)]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert any(abs(w - 1.0) > 1e-3 for w in ranks[0]["weights"].values())
    for a, b in zip(ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(a, b)
    if scheme == "grad_norm":
        config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                        OVERRIDES + [f"train.balancing.scheme={scheme}",
                                                     "train.balancing.every=2"])
        single = build_trainer(config)
        single._batch64 = {t: torch.cat([r["batch"][t] for r in ranks])
                           for t in ranks[0]["batch"]}
        single._cast_batch()
        _train(single)
        for t, w in ranks[0]["weights"].items():
            assert w == pytest.approx(single.weights[t], rel=1e-8)


TECHNIQUES = ["train.causal={chunks: 4, tolerance: 1.0}", "sampling.attention=rba",
              "sampling.attention_eta=0.1", "sampling.attention_gamma=0.9"]


def _techniques_worker(rank: int, world: int, port: int, out: str) -> None:
    _join_as(rank, world, port)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", OVERRIDES + TECHNIQUES)
    context = init_from_environment("gloo", torch.device("cpu"), timeout_s=60)
    trainer = build_trainer(config, context)
    batch = {t: p.clone() for t, p in trainer._batch64.items()}
    _train(trainer)
    torch.save({"batch": batch, "params": [p.detach().clone() for p in trainer.parameters],
                "causal": trainer.causal.last_weights.clone(),
                "multipliers": trainer.attention.state_dict()["multipliers"]},
               Path(out) / f"techniques{rank}.pt")
    _leave()


def test_causal_weights_and_attention_multipliers_match_one_process_on_the_union(tmp_path):
    """Causal slab losses and RBA's max |r| are reduced over ranks: the causal weights (and
    the steps) are bitwise equal on every rank, each rank's multipliers are those of its
    points in one process on the union of the shards, and so are the parameters."""
    mp.spawn(_techniques_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"techniques{r}.pt") for r in range(2)]
    assert torch.equal(ranks[0]["causal"], ranks[1]["causal"])
    assert ranks[0]["causal"].min() < 1  # the weights are not trivially one
    for a, b in zip(ranks[0]["params"], ranks[1]["params"]):
        assert torch.equal(a, b)
    config = pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", OVERRIDES + TECHNIQUES)
    single = build_trainer(config)
    single._batch64 = {t: torch.cat([r["batch"][t] for r in ranks]) for t in ranks[0]["batch"]}
    single._cast_batch()
    _train(single)  # causal weights and multipliers are of the last Adam step
    for distributed_param, single_param in zip(ranks[0]["params"], single.parameters):
        torch.testing.assert_close(distributed_param, single_param.detach(), rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(ranks[0]["causal"], single.causal.last_weights,
                               rtol=1e-10, atol=0)
    for term, union in single.attention.multipliers.items():
        torch.testing.assert_close(torch.cat([r["multipliers"][term] for r in ranks]),
                                   union, rtol=1e-9, atol=1e-12)
