"""``pinnsketch bench``: runs every (config, seed), tabulates median and worst beside the
published figure, reuses finished runs, and names a missing config with the ones there."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.bench import bench, published
from pinnsketch.cli import main
from pinnsketch.runner import session

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_overrides(6, 0, eval_every=3) + ["output.plots=false"]


def test_bench_tabulates_every_seed_and_reuses_finished_runs(tmp_path, monkeypatch):
    rows = bench(["poisson", "reaction"], [0, 1], ROOT / "problems", tmp_path, TINY)
    assert [(r["config"], r["seed"]) for r in rows] == [("poisson", 0), ("poisson", 1),
                                                       ("reaction", 0), ("reaction", 1)]
    for r in rows:  # each row is its run folder's summary
        summary = json.loads((tmp_path / f"{r['config']}-seed{r['seed']}" / "summary.json")
                             .read_text())
        assert r["rel_l2"] == summary["rel_l2"] and summary["seed"] == r["seed"]
    assert rows[0]["rel_l2"] != rows[1]["rel_l2"]  # the seeds differ
    text = (tmp_path / "bench.md").read_text()
    reaction = [r["rel_l2"] for r in rows if r["config"] == "reaction"]
    line = next(ln for ln in text.splitlines() if ln.startswith("| reaction |"))
    expected = f"{statistics.median(reaction):.2e} | {max(reaction):.2e} | {published('reaction')}"
    assert expected in line
    assert "| poisson |" in text and "none recorded" in text
    trained = []
    monkeypatch.setattr(session._Session, "run", lambda self, fresh: trained.append(1))
    again = bench(["poisson", "reaction"], [0, 1], ROOT / "problems", tmp_path, TINY)
    assert trained == [] and again == rows  # finished runs are read, not retrained


def test_a_missing_config_is_named_with_the_ones_there(tmp_path, capsys):
    with pytest.raises(pinnsketch.ConfigError, match=r"bench: no config nonesuch in .*problems "
                                                     r"\(there: .*burgers.*\)"):
        bench(["poisson", "nonesuch"], [0], ROOT / "problems", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing trained before the check
    assert main(["bench", "--problems", "poisson", "--seeds", "0", "--configs",
                 str(ROOT / "problems"), "--out", str(tmp_path / "b"),
                 *[a for o in TINY for a in ("--set", o)]]) == 0
    assert "| poisson |" in capsys.readouterr().out


def test_parallel_bench_equals_the_serial_one_and_keeps_finished_rows(tmp_path, monkeypatch):
    serial = bench(["reaction"], [0, 1], ROOT / "problems", tmp_path / "serial", TINY)
    parallel = bench(["reaction"], [0, 1], ROOT / "problems", tmp_path / "parallel", TINY,
                     jobs=2)
    assert [r["rel_l2"] for r in parallel] == [r["rel_l2"] for r in serial]
    assert (tmp_path / "parallel" / "bench.png").stat().st_size > 0
    # A failure after the first run leaves that run's row in the table.
    calls = []

    def fail_second(name, seed, config, folder):
        calls.append(seed)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"config": name, "seed": seed, "rel_l2": 0.5, "steps": 1, "wall_s": 1.0,
                "stop_reasons": {}}
    monkeypatch.setattr("pinnsketch.bench._bench_run", fail_second)
    with pytest.raises(KeyboardInterrupt):
        bench(["poisson"], [0, 1], ROOT / "problems", tmp_path / "cut", TINY)
    text = (tmp_path / "cut" / "bench.md").read_text()
    assert "| poisson | 5.00e-01 | — |" in text


def test_another_toolkits_rows_are_set_beside_ours(tmp_path, capsys):
    theirs = [{"problem": "poisson", "seed": s, "rel_l2": e, "wall_s_total": w, "label": "dde"}
              for s, e, w in ((0, 1e-3, 10.0), (1, 3e-3, 30.0), (2, 2e-3, 20.0))]
    (tmp_path / "dde.json").write_text(json.dumps(theirs))
    assert main(["bench", "--problems", "poisson", "reaction", "--seeds", "0",
                 "--configs", str(ROOT / "problems"), "--out", str(tmp_path / "b"),
                 "--beside", str(tmp_path / "dde.json"),
                 *[a for o in TINY for a in ("--set", o)]]) == 0
    text = capsys.readouterr().out
    assert "dde: median (seeds), wall s" in text
    poisson = next(ln for ln in text.splitlines() if ln.startswith("| poisson |"))
    assert poisson.endswith("2.00e-03 (3), 10–30 |")  # the median of theirs, all seeds
    reaction = next(ln for ln in text.splitlines() if ln.startswith("| reaction |"))
    assert reaction.endswith("— |")
    (tmp_path / "bad.json").write_text(json.dumps([{"problem": "poisson"}]))
    assert main(["bench", "--problems", "poisson", "--configs", str(ROOT / "problems"),
                 "--out", str(tmp_path / "c"), "--beside", str(tmp_path / "bad.json")]) == 2
    assert "rel_l2" in capsys.readouterr().err
