"""An on-disk cache for reference solutions that take seconds to compute.

Files live in ``$PINNSKETCH_CACHE`` if set, else ``$XDG_CACHE_HOME/pinnsketch``, else
``~/.cache/pinnsketch``. A file's name is a hash of every parameter that determines its
content; it stores a SHA-256 of its arrays, so a truncated or corrupt file is detected (and
recomputed, with a warning), and it is written atomically (a crash leaves no half file).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["cache_dir", "cached_arrays"]

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The folder of cached references (not created here)."""
    if os.environ.get("PINNSKETCH_CACHE"):
        return Path(os.environ["PINNSKETCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pinnsketch"


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def cached_arrays(name: str, key: Mapping[str, Any],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, from the cache when a valid file for ``key`` exists.

    Args:
        name: what is cached (the file name's prefix), e.g. ``"allen_cahn"``.
        key: every parameter the arrays depend on (JSON-serialisable); part of the hash.
        compute: makes the arrays ``{name: ndarray}`` when the cache has none.
    """
    text = json.dumps({"name": name, **key}, sort_keys=True)
    path = cache_dir() / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.npz"
    if path.is_file():
        try:
            with path.open("rb") as f, np.load(f, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files if k != "sha256"}
                if str(stored["sha256"]) == _digest(arrays):
                    return arrays
        except Exception as err:  # any unreadable file is recomputed, never trusted
            log.warning("cached reference %s unreadable (%s); recomputing", path, err)
        else:
            log.warning("cached reference %s fails its checksum; recomputing", path)
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, sha256=np.array(_digest(arrays)), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays
