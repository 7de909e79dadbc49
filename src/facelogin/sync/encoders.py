"""The encoding processes of a sync: light workers (numpy, Pillow, dlib; the models loaded as they
start), and one pool started early, before the flow knows it needs it.

`facelogin sync` starts the pool while Prefect starts when the stat cache already shows new or
changed photos (`photos_changed`); the flow's encoding stage takes it (`take_pool`) instead of
starting its own once the plan is known. A run with nothing changed starts none, and no run starts
more workers than it has photos to encode (`pool_size`): one new photo after an enrolment is one
process loading the models, not one per core (each ~70 MB and ~0.4 s of CPU before its first photo).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from facelogin import faces
from facelogin.processes import start_worker
from facelogin.sync import discover, statcache

_lock = threading.Lock()
_started: tuple[int, ProcessPoolExecutor] | None = None


def pool_size(configured: int | None, photos: int | None = None) -> int:
    """Workers for `photos` photos: FACELOGIN_ENCODE_WORKERS (default: every core), never more than the
    photos (when known), never none."""
    most = configured or os.cpu_count() or 1
    return max(1, most if photos is None else min(most, photos))


def new_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` encoding processes; each exits on its own if this process is killed."""
    return ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=start_worker,
        initargs=(os.getpid(), faces.load_faces),
    )


def start_pool(workers: int) -> None:
    """Start the pool now, every worker spawned and loading its models, for `take_pool` to hand over."""
    global _started
    with _lock:
        if _started is not None:
            return
        pool = new_pool(workers)
        for _ in range(workers):  # a pool spawns a worker per task it cannot give an idle one
            pool.submit(os.getpid)
        _started = (workers, pool)


def take_pool(workers: int) -> ProcessPoolExecutor:
    """The pool `start_pool` started, when it has at least `workers` workers (its processes are up
    already: a spare one costs nothing more); else a new one.

    The caller shuts it down.
    """
    global _started
    with _lock:
        started, _started = _started, None
    if started is not None and started[0] >= workers:
        return started[1]
    if started is not None:
        started[1].shutdown(wait=False, cancel_futures=True)
    return new_pool(workers)


def stop_pool() -> None:
    """Stop a started pool no one took (the run had nothing to encode after all)."""
    global _started
    with _lock:
        started, _started = _started, None
    if started is not None:
        started[1].shutdown(wait=False, cancel_futures=True)


def photos_changed(root: Path, stat_cache: Path, most: int = 1) -> int:
    """How many photos under `root` are new or changed since the stat cache was written, up to `most`
    (see discover.photos_changed): the run has that many photos to encode, most likely. A root that
    cannot be read has none: the flow says why."""
    try:
        return discover.photos_changed(root, statcache.load(stat_cache), most)
    except OSError:
        return 0
