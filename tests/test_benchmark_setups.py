"""The benchmarks compare like with like: the bare loop does exactly the trainer's maths, and
the identification table reports what the runs wrote."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import identification  # noqa: E402
import step_time  # noqa: E402
from conftest import tiny_overrides  # noqa: E402
from pinnsketch.runner.run_dir import RunDir  # noqa: E402


def test_bare_loop_takes_the_trainer_steps():
    trainer = step_time.make_trainer()
    bare = step_time.BareLoop(trainer)
    for _ in range(3):
        trainer.adam_step()
        bare.step()
    ours = list(trainer.model.network.net.parameters())
    theirs = list(bare.net.parameters())
    for a, b in zip(ours, theirs):
        # float32, same ops in the same order: equal up to a few ulps of reassociation.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b0) for a, b0 in zip(ours, step_time.make_trainer().model.parameters()))


def test_identification_table_reports_each_run(tmp_path, capsys):
    overrides = tiny_overrides(10, 5) + ["problem.observations.count=200", "output.plots=false"]
    table = identification.main([0.0], [2], ["batch"], jobs=1, out=tmp_path, overrides=overrides)
    printed = capsys.readouterr().out.splitlines()
    assert [row["mode"] for row in table] == ["exact", "sketched-batch-r2"]
    assert len(printed) == 2 + len(table)
    for row, line in zip(table, printed[2:]):
        folder = RunDir(tmp_path / "noise-0" / row["mode"])
        summary = folder.read_summary()
        assert row["lambda1_error"] == summary["lambda1_error"]
        final = (f"| {summary['rel_l2']:.2e} | {100 * summary['lambda1_error']:.3g} | "
                 f"{100 * summary['lambda2_error']:.3g} |")
        assert line.startswith(f"| 0% | {row['mode']} |") and final in line
        metrics = folder.read_metrics()
        end_of_adam = next(m for m in metrics if m["step"] == 10)
        assert row["adam_rel_l2"] == end_of_adam["rel_l2"] != summary["rel_l2"]
    assert "(−" in printed[3]  # the sketched row states its saving against exact
