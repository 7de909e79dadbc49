"""Training stage: face encodings in light worker processes (dlib holds the GIL), or on a Dask cluster."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

from prefect import task

from facelogin import faces

_processes: ProcessPoolExecutor | None = None


@contextmanager
def encoder_processes(workers: int) -> Iterator[None]:
    """Worker processes for the encode tasks that run in this process, while the block runs.

    The workers import only facelogin.faces (numpy, Pillow, dlib) and load the models as they
    start, so they are ready in well under a second. Prefect's ProcessPoolTaskRunner would
    start each worker with the whole Prefect engine first (~3 s on 2 cores, ~150 MB each).
    """
    global _processes
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=faces.load_faces)
    _processes = pool
    try:
        yield
    finally:
        _processes = None
        pool.shutdown(wait=True, cancel_futures=True)


@task(task_run_name="encode-{label}")
def encode_faces(
    paths: list[str], label: str, max_side: int = 800, upsample: int = 0
) -> list[faces.FaceResult]:
    """Detect the single face in each photo and compute its 128-d encoding, or say why not."""
    pool = _processes
    if pool is None:  # a thread, or a Dask worker: encode right here
        return faces.encode_faces(paths, max_side, upsample)
    return pool.submit(faces.encode_faces, paths, max_side, upsample).result()
