"""The benchmarks compare like with like: the bare loop does exactly the trainer's maths."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import step_time  # noqa: E402


def test_bare_loop_takes_the_trainer_steps():
    trainer = step_time.make_trainer()
    bare = step_time.BareLoop(trainer)
    for _ in range(3):
        trainer.adam_step()
        bare.step()
    ours = list(trainer.model.mlp.net.parameters())
    theirs = list(bare.net.parameters())
    for a, b in zip(ours, theirs):
        # float32, same ops in the same order: equal up to a few ulps of reassociation.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b0) for a, b0 in zip(ours, step_time.make_trainer().model.parameters()))
