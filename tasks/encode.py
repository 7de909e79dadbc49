"""Training stage: face encodings in light worker processes (dlib holds the GIL), or on a Dask cluster."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from prefect import task
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from facelogin import faces
from facelogin.settings import Settings
from facelogin.sync import encoders, progress
from facelogin.sync.discover import Photo
from facelogin.sync.plan import batch_label, batches
from facelogin.sync.stages import Trained, collect_training
from facelogin.sync.transfer import encode_and_stage
from tasks.policy import PLAIN, outcome_of


class EncoderTaskRunner(ThreadPoolTaskRunner):
    """Encode tasks on this process's threads, their work done in light worker processes.

    The workers import only facelogin.faces (numpy, Pillow, dlib) and load the models as they
    start, so they are ready in well under a second. Prefect's ProcessPoolTaskRunner would start
    each worker with the whole Prefect engine first (~3 s on 2 cores, ~150 MB each). Each task
    run is handed the pool as its `processes` parameter.

    Two task runs per worker are under way at a time, and each hands the pool its photos one by
    one: the pool always has a photo queued, so no worker waits while a task run's start or end
    is reported to the API, and the last photos spread over every worker.
    """

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=2 * workers)
        self.workers = workers
        self.processes: ProcessPoolExecutor | None = None

    def duplicate(self) -> EncoderTaskRunner:
        return type(self)(self.workers)

    def __enter__(self) -> EncoderTaskRunner:
        super().__enter__()
        # The pool `facelogin sync` started while Prefect started, or a new one. Workers exit on their
        # own if this process is killed (start_worker watches the parent).
        self.processes = encoders.take_pool(self.workers)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if self.processes is not None:
                self.processes.shutdown(wait=True, cancel_futures=True)
                self.processes = None
        finally:
            super().__exit__(*exc_info)

    def submit(self, task: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return super().submit(task, {**parameters, "processes": self.processes}, *args, **kwargs)


def encoding_runner(settings: Settings, photos: int) -> TaskRunner[Any]:
    """The task runner for face encoding `photos` photos: light local processes (no more than the
    photos), threads, or a Dask cluster."""
    workers = encoders.pool_size(settings.encode_workers)
    if settings.task_runner == "dask":
        import sys

        import cloudpickle

        # Dask workers have facelogin installed, not this checkout's flows/ and tasks/: the encode
        # task and the flow it runs in (part of the run context) travel by value; their bodies
        # call facelogin, which the workers import themselves.
        from prefect.context import FlowRunContext
        from prefect_dask import DaskTaskRunner  # optional extra: facelogin[dask]

        context = FlowRunContext.get()
        glue = [m for name, m in sys.modules.items() if name == "tasks" or name.startswith("tasks.")]
        if context is not None and context.flow is not None:
            glue.append(sys.modules[context.flow.fn.__module__])
        for module in glue:
            cloudpickle.register_pickle_by_value(module)

        if settings.dask_address:
            if not settings.dask_address.startswith("tls://"):
                _run_logger().warning(
                    "FACELOGIN_DASK_ADDRESS %s is not tls://: a Dask scheduler runs the code (pickles) "
                    "any client that reaches it sends; keep it on a private network, or turn on TLS "
                    "(README: Encoding on a Dask cluster)", settings.dask_address,
                )  # fmt: skip
            # TLS certificates and keys come from distributed's own configuration (DASK_DISTRIBUTED__
            # COMM__TLS__*), as the S3 credentials come from boto3's chain.
            return DaskTaskRunner(address=settings.dask_address)
        # A local cluster listens on loopback, where any local user could still send its scheduler
        # a pickle: mutual TLS with a throw-away certificate lets in only this run's client and workers.
        # Its dashboard (task names are user names) stays on loopback too, on a free port: the default
        # :8787 listens on every interface and warns when another cluster already holds it.
        local = {"n_workers": workers, "threads_per_worker": 1, "security": True,
                 "dashboard_address": "127.0.0.1:0"}  # fmt: skip
        return DaskTaskRunner(cluster_kwargs=local)
    if settings.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    return EncoderTaskRunner(encoders.pool_size(settings.encode_workers, photos))


def _run_logger() -> Any:
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        import logging

        return logging.getLogger(__name__)


def stages_thumbnails(settings: Settings) -> bool:
    """Whether the encoders stage the thumbnails of the photos they accept, decoding each photo
    once for both: yes on this machine (local processes or threads). Dask workers may run on other
    machines, away from the staging directory: there, thumbnail tasks on the flow's threads do it.
    """
    return settings.task_runner != "dask"


PhotoTrained = tuple[faces.FaceResult, str | None]  # a face result; None or why its thumbnails are not staged


@task(task_run_name="encode-{label}", **PLAIN)
def encode_faces(
    paths: list[str],
    label: str,
    max_side: int = 800,
    upsample: int = 0,
    processes: Executor | None = None,
    thumbnails: dict[str, list[dict[str, str]]] | None = None,
    staging: str = "",
) -> list[PhotoTrained]:
    """Detect the single face in each photo and compute its 128-d encoding, or say why not.

    With `thumbnails` (a photo's path -> the keys per size to stage it under), an accepted photo's
    thumbnails are staged from the same decode. Per photo: its face result, and None or why its
    thumbnails could not be staged.
    """
    keys = thumbnails or {}
    if processes is None:  # a thread, or a Dask worker: encode right here
        return [encode_and_stage(p, keys.get(p, []), staging, max_side, upsample) for p in paths]
    jobs = [
        processes.submit(encode_and_stage, p, keys.get(p, []), staging, max_side, upsample) for p in paths
    ]
    results = []
    for job in jobs:
        results.append(job.result())
        progress.advance(progress.ENCODED, 1)  # this process: the bar moves photo by photo
    return results


def encode_photos(
    settings: Settings,
    photos: list[Photo],
    thumbnails: dict[str, list[dict[str, str]]] | None = None,
    cached: Iterable[str] = (),
) -> Trained:
    """Encode each photo in batches fanned out over every core (or Dask): the training stage's value,
    each content's verdict (those `cached`, already stored, count as encoded) and new encodings.

    With `thumbnails` (see `encode_faces`), it also says, per content hash whose thumbnails the
    encoders staged, None or why they could not. A batch whose task failed outright gives each of
    its photos a rejection naming the error, so one failure never stops the others.
    """
    if not photos:
        return collect_training(cached, {})
    runner = encoding_runner(settings, len(photos))
    with runner:
        if isinstance(runner, EncoderTaskRunner):
            local, workers = True, runner.workers
        else:
            local, workers = False, encoders.pool_size(settings.encode_workers)
        # Through the local pool photos go one by one, whatever the batch: a few large batches
        # (every task run's API calls take CPU from the encoders on a small machine), all under
        # way at once. Elsewhere the batch is what a worker gets: small ones spread the work.
        work = batches(photos, workers, most=64, per_worker=2) if local else batches(photos, workers)
        params: dict[str, Any] = {"max_side": settings.detect_max_side, "upsample": settings.upsample}
        if thumbnails:
            params["staging"] = str(settings.staging_dir)
        futures = []
        for b in work:
            paths = [p.path for p in b]
            along = {path: thumbnails[path] for path in paths if path in thumbnails} if thumbnails else None
            futures.append(
                runner.submit(
                    encode_faces, {"paths": paths, "label": batch_label(b), "thumbnails": along, **params}
                )
            )
        results: dict[str, faces.FaceResult] = {}
        staged: dict[str, str | None] = {}
        progress.advance(progress.ENCODED, 0, len(photos))
        for batch, future in zip(work, futures, strict=True):
            value, exc = outcome_of(future)
            if not local or exc is not None:  # the local tasks told of each photo themselves
                progress.advance(progress.ENCODED, len(batch))
            for i, photo in enumerate(batch):
                if exc is not None:
                    results[photo.sha256] = faces.FaceResult(faces.REJECTED, reason=f"encoding failed: {exc}")
                    continue
                results[photo.sha256], problem = value[i]
                if thumbnails and photo.path in thumbnails and results[photo.sha256].status == faces.ENCODED:
                    staged[photo.sha256] = problem
    return collect_training(cached, results, staged)
