"""``pinnsketch diagnose RUN_DIR --rerun``: train a diagnosed run again with its findings'
remedies and judge them by the relative L2 error (the one place a diagnosis meets the
reference: it judges the remedy, never the finding)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pinnsketch.config import load_config
from pinnsketch.errors import ConfigError
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.runner.session import train

__all__ = ["remedy_overrides", "rerun_with_remedies"]

log = logging.getLogger(__name__)


def remedy_overrides(findings: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The ``key=value`` overrides of ``findings`` (diagnosis.json records, in report order),
    one per key: the first finding's value wins. Returns (applied, skipped); a skipped one
    names the finding whose value it lost to."""
    chosen: dict[str, tuple[str, str]] = {}
    skipped = []
    for finding in findings:
        for override in finding.get("remedy", []):
            key = override.split("=", 1)[0]
            if key in chosen and chosen[key][0] != override:
                skipped.append(f"{override} ({finding['mechanism']}; kept {chosen[key][0]} "
                               f"of {chosen[key][1]})")
            else:
                chosen.setdefault(key, (override, finding["mechanism"]))
    return [override for override, _ in chosen.values()], skipped


def rerun_with_remedies(run_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Train ``RUN_DIR``'s config with the remedies of its ``diagnosis.json`` into ``out``
    (default ``RUN_DIR-remedied``) and write ``out/remedy.json``.

    A rerun that was interrupted (``out`` holds a checkpoint but no ``remedy.json``) is
    continued from its checkpoint, as ``pinnsketch run --resume`` would; a finished one is
    never overwritten.

    Returns:
        ``{"run": RUN_DIR, "out": out, "overrides": [...], "skipped": [...],
        "findings": [mechanism, ...], "rel_l2_before", "rel_l2_after"}``.

    Raises:
        ConfigError: no diagnosis, no finding with a remedy, ``out`` holds a finished
            rerun, or ``out`` is neither empty nor an interrupted rerun of this remedy.
    """
    folder = RunDir(run_dir)
    if not folder.diagnosis_json_path.is_file():
        raise ConfigError(f"{run_dir}: no diagnosis.json (diagnose a monitored run first)")
    findings = json.loads(folder.diagnosis_json_path.read_text())["findings"]
    overrides, skipped = remedy_overrides(findings)
    if not overrides:
        kinds = ", ".join(f["mechanism"] for f in findings) or "none"
        raise ConfigError(f"{run_dir}: no finding carries a remedy the toolkit can apply "
                          f"(findings: {kinds})")
    out = Path(out) if out is not None else folder.path.with_name(folder.path.name + "-remedied")
    rerun = RunDir(out)
    if (out / "remedy.json").is_file():
        raise ConfigError(f"--out {out}: holds a finished rerun (remedy.json); choose another "
                          f"folder")
    interrupted = rerun.checkpoint_path.is_file()
    if out.exists() and any(out.iterdir()) and not interrupted:
        raise ConfigError(f"--out {out}: folder exists and is not empty")
    config = load_config(folder.config_path, overrides)
    if interrupted:
        log.info("%s: continuing the interrupted rerun from its checkpoint", out)
    # Resuming checks that the checkpoint's config is this remedy's (ConfigError otherwise).
    run = train(config, resume=out) if interrupted else train(config, out=out)
    result = {"run": str(folder.path), "out": str(out), "overrides": overrides,
              "skipped": skipped, "findings": [f["mechanism"] for f in findings],
              "rel_l2_before": folder.read_summary().get("rel_l2"),
              "rel_l2_after": run.summary.get("rel_l2")}
    (out / "remedy.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
