"""Independent trainings side by side: each call in its own process, torch threads shared
out among them (``compare --jobs``, ``bench --jobs``)."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Any, Callable, Iterator, Sequence

import torch

__all__ = ["in_processes"]


def _with_threads(function: Callable[..., Any], threads: int, args: tuple) -> Any:
    torch.set_num_threads(threads)
    return function(*args)


def in_processes(function: Callable[..., Any], calls: Sequence[tuple],
                 jobs: int) -> Iterator[tuple[int, Any]]:
    """``(index, function(*calls[index]))`` as each call finishes, ``jobs`` at a time.

    With ``jobs`` 1 the calls run here, in order. Otherwise each runs in a spawned process
    (not forked: a child would inherit the parent's torch thread pool) with
    ``max(1, cpu_count // jobs)`` torch threads; ``function`` and its arguments must be
    picklable. A failed call or Ctrl-C starts no further calls (the running ones had the
    SIGINT too and leave their checkpoints) and re-raises.
    """
    if jobs == 1:
        for index, args in enumerate(calls):
            yield index, function(*args)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(_with_threads, function, threads, args): index
                   for index, args in enumerate(calls)}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
