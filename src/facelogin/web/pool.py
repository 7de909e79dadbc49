"""Login decisions on every core: worker processes, each with its own engine, behind a bounded queue.

dlib decides one frame at a time per process, so `facelogin web` runs FACELOGIN_WEB_WORKERS processes
(default: one per core), each holding the bundle and the models and reloading the bundle when the
sync publishes a new one, as the in-process engine does. A login takes a slot before its body is
read; when every worker is busy and FACELOGIN_WEB_QUEUE logins wait, the next one is told at once
to come back (`Busy`, with the seconds to wait) instead of waiting behind them.

With 0 workers the decisions run in the web process itself, one at a time (tests, tiny boards).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from facelogin import login
from facelogin.imaging import PhotoError, decode_photo
from facelogin.login.burst import FRAME_HEIGHT
from facelogin.processes import start_worker
from facelogin.web.engine import BadFrames, Engine, NoBundle


class Busy(RuntimeError):
    """Every worker busy and the queue full: come back in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: try again in {retry_after} s")
        self.retry_after = retry_after


# --- in a worker process ------------------------------------------------------------------

_engine: Engine | None = None


# Decisions yield the CPU to the web process: its event loop answers pages, challenges and a full
# queue's 503 at once while the workers use every core that is left (throughput is unchanged).
WORKER_NICENESS = 5


def _start(location: str, cache_dir: Path, options: login.LoginOptions, check_seconds: float) -> None:
    """Worker start-up: lower its priority below the web process's, then load the bundle and every
    model now, not on the first login."""
    global _engine
    with contextlib.suppress(OSError):  # a platform without nice: the same, only less responsive
        os.nice(WORKER_NICENESS)
    _engine = Engine(location, cache_dir, options, check_seconds)
    _engine.status()
    _engine.load_liveness()


def _decode(jpegs: list[bytes], height: int, max_pixels: int) -> list[np.ndarray]:
    out = []
    for index, data in enumerate(jpegs):
        try:
            image = decode_photo(data, max_height=height, max_pixels=max_pixels)
        except PhotoError as exc:
            raise BadFrames(f"frame {index + 1}: {exc}") from None
        out.append(np.ascontiguousarray(np.asarray(image)))
    return out


def decide_burst(
    engine: Engine, actions: tuple[str, ...], jpegs: list[bytes], times: list[float], window: float,
    max_pixels: int,
) -> dict[str, Any]:  # fmt: skip
    """A liveness decision from encoded frames: what a worker (or the web process) runs."""
    pixels = _decode(jpegs, FRAME_HEIGHT, max_pixels)
    return engine.decide_burst(actions, pixels, times, window)


def decide_frames(engine: Engine, jpegs: list[bytes], agree: int, max_pixels: int) -> dict[str, Any]:
    """The face-only decision (liveness off) from encoded frames."""
    height = login.LoginOptions().height
    frames = [
        login.frame_from_array(f"web#{i}", pixels, height)
        for i, pixels in enumerate(_decode(jpegs, height, max_pixels))
    ]
    return engine.decide(frames, agree)


def _burst_job(*args: Any) -> dict[str, Any]:
    assert _engine is not None, "worker not started"
    return decide_burst(_engine, *args)


def _frames_job(*args: Any) -> dict[str, Any]:
    assert _engine is not None, "worker not started"
    return decide_frames(_engine, *args)


# --- in the web process ---------------------------------------------------------------------


class Deciders:
    """Where logins are decided: `workers` processes (0: here), at most `queue` waiting."""

    def __init__(self, engine: Engine, workers: int, queue: int) -> None:
        self.engine = engine  # the web process's own: status for the pages, decisions when workers=0
        self.workers = workers
        self.capacity = max(1, workers) + queue
        self._taken = 0
        self._lock = threading.Lock()
        self._seconds = 0.5  # running mean of one decision, for Retry-After
        self._executor: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker processes (each loads the bundle and models: ~1-2 s, in parallel)."""
        if self.workers and self._executor is None:
            self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        e = self.engine
        return ProcessPoolExecutor(
            max_workers=self.workers,
            # Not fork: the web process has threads (the event loop's pool) that a fork would copy mid-use.
            mp_context=multiprocessing.get_context("spawn"),
            # Watching the web process first: a pool worker holds both ends of its own call queue, so
            # a web process killed outright (SIGKILL, out of memory) never closes it for the worker,
            # which stayed behind holding the bundle and the models (~230 MB) until a restart.
            initializer=start_worker,
            initargs=(os.getpid(), partial(_start, e.location, e.cache_dir, e.options, e.check_seconds)),
        )

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def take(self) -> None:
        """A slot for one login, or Busy at once; give it back with `give_back`."""
        with self._lock:
            if self._taken >= self.capacity:
                waiting = self._taken - max(1, self.workers) + 1
                raise Busy(max(1, math.ceil(waiting * self._seconds / max(1, self.workers))))
            self._taken += 1

    def give_back(self) -> None:
        with self._lock:
            self._taken = max(0, self._taken - 1)

    async def burst(
        self, actions: tuple[str, ...], jpegs: list[bytes], times: list[float], window: float, max_pixels: int
    ) -> dict[str, Any]:
        if not self.workers:
            return await asyncio.to_thread(
                decide_burst, self.engine, actions, jpegs, times, window, max_pixels
            )
        return await self._submit(_burst_job, actions, jpegs, times, window, max_pixels)

    async def frames(self, jpegs: list[bytes], agree: int, max_pixels: int) -> dict[str, Any]:
        if not self.workers:
            return await asyncio.to_thread(decide_frames, self.engine, jpegs, agree, max_pixels)
        return await self._submit(_frames_job, jpegs, agree, max_pixels)

    async def _submit(self, job: Any, *args: Any) -> dict[str, Any]:
        if self._executor is None:
            self.start()
        assert self._executor is not None
        try:
            future: Future[dict[str, Any]] = self._executor.submit(job, *args)
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # A worker died (out of memory, a crash in native code): new workers for the next login.
            self.stop()
            raise NoBundle("the login workers stopped; they are being restarted, try again") from None
        took = float((result.get("ms") or {}).get("total") or 0.0) / 1000.0
        if took > 0:
            with self._lock:
                self._seconds = 0.8 * self._seconds + 0.2 * took
        return result
