"""The sync flow: keep thumbnails, MongoDB and the encodings bundle in step with the images folder."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from deployments.limits import sync_lock
from deployments.names import sync_run_name
from facelogin.clients import close_mongo, open_store
from facelogin.discover import Discovery, Photo
from facelogin.embedded import embedded_mongo
from facelogin.faces import ENCODED, REJECTED, FaceResult, model_info
from facelogin.plan import collect_outcome, expected_thumbs, plan_sync, stale_keys, user_document, user_rows
from facelogin.settings import Settings
from tasks.bundle import publish_bundle
from tasks.catalog import load_encodings, load_photos, remove_users, save_encodings, upsert_users
from tasks.discover import discover_photos
from tasks.encode import encode_faces, encoder_processes
from tasks.report import publish_report
from tasks.retry import with_retries
from tasks.thumbnail import make_thumbnails
from tasks.upload import check_store, delete_objects, upload_thumbnails


class SyncError(RuntimeError):
    """The run finished what it could, but some photos could not be synced."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def encoding_runner(settings: Settings) -> TaskRunner[Any]:
    """The task runner for face encoding when it is not the default local worker processes."""
    workers = settings.encode_workers or os.cpu_count() or 1
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner  # optional extra: facelogin[dask]

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=workers)


def _batches(photos: list[Photo], workers: int) -> list[list[Photo]]:
    """Batches small enough to keep every worker busy, large enough to amortise task overhead."""
    size = max(1, min(8, math.ceil(len(photos) / (workers * 3))))
    return [photos[i : i + size] for i in range(0, len(photos), size)]


def _label(batch: list[Photo]) -> str:
    return batch[0].ref if len(batch) == 1 else f"{batch[0].ref}+{len(batch) - 1}"


def _outcome(future: PrefectFuture[Any]) -> tuple[Any, BaseException | None]:
    """A task's result, or the exception it ended with: one failure is reported, not raised."""
    future.wait()
    try:
        return future.state.result(), None
    except BaseException as exc:  # noqa: BLE001
        return None, exc


class _Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def train(settings: Settings, photos: list[Photo]) -> dict[str, FaceResult]:
    """Encode each distinct photo content once, in batches fanned out over every core (or Dask)."""
    unique = list({p.sha256: p for p in photos}.values())
    if not unique:
        return {}
    workers = settings.encode_workers or os.cpu_count() or 1
    batches = _batches(unique, workers)
    with ExitStack() as stack:
        if settings.task_runner == "process":
            # The tasks run on the flow's threads and hand their batch to local worker processes.
            stack.enter_context(encoder_processes(workers))

            def submit(params: dict[str, Any]) -> PrefectFuture[list[FaceResult]]:
                return encode_faces.submit(**params)
        else:
            runner = stack.enter_context(encoding_runner(settings))

            def submit(params: dict[str, Any]) -> PrefectFuture[list[FaceResult]]:
                return runner.submit(encode_faces, params)

        futures = [
            submit(
                {
                    "paths": [p.path for p in batch],
                    "label": _label(batch),
                    "max_side": settings.detect_max_side,
                    "upsample": settings.upsample,
                }
            )
            for batch in batches
        ]
        results: dict[str, FaceResult] = {}
        for batch, future in zip(batches, futures, strict=True):
            value, exc = _outcome(future)
            for i, photo in enumerate(batch):
                failed = FaceResult(REJECTED, reason=f"encoding failed: {exc}")
                results[photo.sha256] = failed if exc is not None else value[i]
    return results


def start_thumbnails(
    photos: list[Photo], keys: dict[str, dict[str, str]], staging: str
) -> dict[str, tuple[list[Photo], PrefectFuture[dict[str, str | None]]]]:
    """Stage thumbnails of every photo to process, per user, in threads while the encoders run.

    Thumbnails do not depend on the face check, and making them alongside it uses the time the
    encoding processes spend starting; those of photos the check rejects are dropped unused.
    """
    by_user: dict[str, list[Photo]] = {}
    for photo in photos:
        by_user.setdefault(photo.username, []).append(photo)
    return {
        user: (batch, make_thumbnails.submit(user, {p.path: keys[p.ref] for p in batch}, staging))
        for user, batch in by_user.items()
    }


def collect_thumbnails(
    started: dict[str, tuple[list[Photo], PrefectFuture[dict[str, str | None]]]],
    keys: dict[str, dict[str, str]],
    staging: str,
    verdicts: dict[str, tuple[str, str | None]],
    errors: list[dict[str, str]],
) -> dict[str, list[Photo]]:
    """Accepted photos with staged thumbnails, per user; an undecodable photo becomes a rejection."""
    staged: dict[str, list[Photo]] = {}
    for user, (batch, future) in started.items():
        problems, exc = _outcome(future)
        for photo in batch:
            if verdicts[photo.sha256][0] != ENCODED:
                for key in keys[photo.ref].values():
                    (Path(staging) / key).unlink(missing_ok=True)
                continue
            reason = problems.get(photo.path) if exc is None else f"thumbnail failed: {exc}"
            if reason is None:
                staged.setdefault(user, []).append(photo)
            elif exc is None:
                verdicts[photo.sha256] = (REJECTED, reason)
            else:
                errors.append({"file": photo.path, "error": reason})
    return staged


def upload(
    settings: Settings,
    staged: dict[str, list[Photo]],
    keys: dict[str, dict[str, str]],
    staging: str,
    errors: list[dict[str, str]],
) -> dict[str, dict[str, str]]:
    """Upload each user's staged thumbnails in parallel; returns photo ref -> keys now in the store."""
    task = with_retries(upload_thumbnails, settings)
    futures = {
        user: task.submit(settings, user, sorted(k for p in photos for k in keys[p.ref].values()), staging)
        for user, photos in staged.items()
    }
    uploaded: dict[str, dict[str, str]] = {}
    for user, future in futures.items():
        _, exc = _outcome(future)
        for photo in staged[user]:
            if exc is None:
                uploaded[photo.ref] = keys[photo.ref]
            else:
                errors.append({"file": photo.path, "error": f"upload failed: {exc}"})
    return uploaded


# Threads for the I/O stages (thumbnails release the GIL in Pillow's decoder; uploads wait on S3).
@flow(
    name="sync_faces",
    flow_run_name=sync_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=16),  # type: ignore[arg-type]
)
def sync_faces(images: str | None = None, full: bool = False) -> dict[str, Any]:
    """Sync every user folder: train encodings, upload thumbnails, upsert MongoDB, publish the bundle."""
    settings = Settings() if images is None else Settings(images=Path(images))
    with sync_lock():  # nightly and manual runs never work on the same tree at once
        if settings.mongodb_uri:
            return _sync(settings, full)
        with embedded_mongo(settings.mongo_dir) as uri:
            try:
                return _sync(settings.model_copy(update={"mongodb_uri": uri}), full)
            finally:
                close_mongo(uri)


def _sync(settings: Settings, full: bool) -> dict[str, Any]:
    logger = get_run_logger()
    stage = _Stopwatch()
    sizes, prefix = settings.thumb_sizes, settings.thumbs_prefix
    staging = str(settings.state_dir / "staging")
    errors: list[dict[str, str]] = []

    with stage("discover"):
        store_location = with_retries(check_store, settings)(settings)
        found: Discovery = discover_photos(str(settings.images))
        recorded = with_retries(load_photos, settings)(settings)
        plan = plan_sync(found.users, recorded, sizes, prefix, full=full)
        todo_shas = sorted({p.sha256 for p in plan.todo})
        cached = with_retries(load_encodings, settings)(settings, todo_shas) if todo_shas and not full else {}
    logger.info(
        "%d users, %d photos: %d to process, %d unchanged, %d rejected earlier",
        len(found.users), len(found.photos), len(plan.todo), len(plan.unchanged), len(plan.kept_rejected),
    )  # fmt: skip

    keys = {p.ref: expected_thumbs(p, sizes, prefix) for p in plan.todo}
    with stage("train"):
        thumbnails = start_thumbnails(plan.todo, keys, staging)
        results = train(settings, [p for p in plan.todo if p.sha256 not in cached])
        new_encodings = {sha: r.encoding for sha, r in results.items() if r.encoding}
        model = model_info(settings.detect_max_side, settings.upsample)
        with_retries(save_encodings, settings)(settings, new_encodings, model)
    verdicts = {sha: (ENCODED, None) for sha in cached} | {
        s: (r.status, r.reason) for s, r in results.items()
    }

    with stage("thumbnails"):  # what is left of it once the encoders are done
        staged = collect_thumbnails(thumbnails, keys, staging, verdicts, errors)

    with stage("upload"):
        uploaded = upload(settings, staged, keys, staging, errors)
        objects = sum(len(k) for k in uploaded.values())

    with stage("upsert"):
        outcome = collect_outcome(found.users, plan, recorded, verdicts, uploaded)
        store = open_store(settings)
        docs = [
            user_document(
                user,
                recs,
                settings.profile_photos.get(user),
                {k: store.stable_url(k) for r in recs for k in r["thumbs"].values()},
            )
            for user, recs in outcome.records.items()
        ]
        upserted = with_retries(upsert_users, settings)(settings, docs)
        stale = stale_keys(recorded, outcome.records)
        if stale:
            with_retries(delete_objects, settings)(settings, stale)
        removed = with_retries(remove_users, settings)(settings, plan.removed_users, outcome.encoded_shas)

    with stage("publish"):
        stored = with_retries(load_encodings, settings)(settings, outcome.encoded_shas)
        user_encodings = {
            user: [stored[r["sha256"]] for r in recs if r["status"] == ENCODED and r["sha256"] in stored]
            for user, recs in outcome.records.items()
        }
        profiles = {doc["username"]: doc["profile_image"] for doc in docs}
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        bundle = with_retries(publish_bundle, settings)(settings, user_encodings, profiles, created, model)

    rejected = [{"file": r.path, "reason": r.reason} for r in found.rejected] + outcome.rejected
    summary = {
        "users": len(found.users),
        "photos": len(found.photos),
        "encoded": len(new_encodings),
        "unchanged": len(plan.unchanged),
        "rejected": rejected,
        "uploaded": objects,
        "upserted": upserted,
        "removed_users": removed,
        "deleted_objects": len(stale),
        "errors": errors,
        "per_user": user_rows(outcome, plan, set(new_encodings), uploaded),
        "store": store_location,
        "bundle": bundle,
        "seconds": stage.seconds,
    }
    logger.info(
        "encoded %d, unchanged %d, rejected %d, uploaded %d objects, upserted %d users; bundle %s",
        summary["encoded"], summary["unchanged"], len(rejected), objects, upserted, bundle["version"],
    )  # fmt: skip
    publish_report(summary)
    if errors:
        listed = "; ".join(f"{e['file']}: {e['error']}" for e in errors[:5])
        raise SyncError(f"{len(errors)} photo(s) could not be synced: {listed}", summary)
    return summary
