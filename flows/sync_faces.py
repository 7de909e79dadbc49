"""The sync flow: keep thumbnails, MongoDB and the encodings bundle in step with the images folder.

A table of contents: each stage is a task (tasks/) or a pure call into facelogin.sync; the
merging of results lives in facelogin.sync.outcome, the refusals in facelogin.sync.guard.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.runtime import deployment, flow_run
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from facelogin.adapters.connect import catalog_server, failure_message, where
from facelogin.faces import model_info
from facelogin.orchestration.blocks import settings_with_blocks
from facelogin.settings import TEMPORARY_API_ENV, Settings, load_settings
from facelogin.sync.discover import Discovery
from facelogin.sync.guard import SyncRefused, check_images_root, check_remote, check_removals
from facelogin.sync.identity import IdentityCheck, check_identities
from facelogin.sync.outcome import Summary, SyncError, collect_outcome, summarize
from facelogin.sync.plan import Plan, plan_for
from facelogin.sync.preview import preview
from facelogin.sync.stages import Jobs, Thumbnailed, Trained, Uploaded
from facelogin.sync.transfer import clear_staging
from tasks.bundle import publish_bundle
from tasks.catalog import (
    check_catalog,
    load_catalog,
    load_encodings,
    remove_users,
    save_encodings,
    upsert_users,
)
from tasks.discover import discover_photos
from tasks.encode import encode_photos, stages_thumbnails
from tasks.lock import sync_lock
from tasks.policy import bulk
from tasks.report import publish_report
from tasks.thumbnail import finish_thumbnails, start_thumbnails
from tasks.upload import check_store, delete_objects, upload_all


def sync_run_name() -> str:
    """`nightly-sync-2026-11-27-0200`, `sync-now-2026-11-26-1432`, or `local-...` outside a deployment."""
    name = deployment.name if _in_deployment() else None
    return f"{name or 'local'}-{flow_run.scheduled_start_time:%Y-%m-%d-%H%M}"


def _in_deployment() -> bool:
    """Whether this run is a deployment's, from the run in context (`prefect.runtime.deployment.id`
    reads the flow run from the API again when it is not: a request per call for a local run)."""
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    return run is not None and run.deployment_id is not None


@flow(name="sync_faces", flow_run_name=sync_run_name, task_runner=ThreadPoolTaskRunner(max_workers=16))  # type: ignore[arg-type]
def sync_faces(
    images: str | None = None,
    full: bool = False,
    dry_run: bool = False,
    allow_removals: int = 0,
    prune: bool = False,
    state_dir: str | None = None,
) -> Summary:
    """Sync every user folder: train encodings, upload thumbnails, upsert MongoDB, publish the bundle.

    `dry_run` only says what would be done. A run that would remove more than one user and more
    than FACELOGIN_MAX_REMOVAL_SHARE of them stops unless `allow_removals` covers them or `prune`.
    `images` and `state_dir` default to FACELOGIN_IMAGES and FACELOGIN_STATE_DIR; every other setting
    comes from the environment and the blocks it names (secrets are never parameters).
    """
    paths = {"images": images, "state_dir": state_dir}
    settings = settings_with_blocks(load_settings(**{k: Path(v) for k, v in paths.items() if v is not None}))
    logger = get_run_logger()
    for message in settings.deprecations:
        logger.warning(message)
    try:
        check_images_root(settings.images, allow_empty=prune)  # a vanished root is not "everyone left"
        local = check_remote(settings.embedded_store, settings.embedded_catalog, settings.require_remote,
                             _in_deployment(), where(settings))  # fmt: skip
        for message in local:
            logger.warning(message)
        if dry_run:
            with catalog_server(settings) as settings:
                return Summary(_preview(settings, full))

        def waiting(pid: int | None) -> None:
            logger.warning("another sync (pid %s) is running with %s: waiting for it", pid,
                           settings.state_dir)  # fmt: skip

        with sync_lock(settings.state_dir, on_wait=waiting), catalog_server(settings) as settings:
            return Summary(_sync(settings, full, allow_removals, prune, local))
    except (SyncRefused, SyncError) as exc:
        # Expected outcomes, not bugs: the run fails with the reason as its message, and the log
        # says it in one line (raised, the engine would log a traceback before it).
        logger.error("%s", exc)
        return Failed(message=str(exc), data=exc)  # type: ignore[return-value]


def _sync(
    settings: Settings, full: bool, allow_removals: int, prune: bool, warnings: list[str]
) -> dict[str, Any]:
    stage = _Stopwatch()
    done = _Done(store=where(settings)["store"])
    try:
        return _stages(settings, full, allow_removals, prune, warnings, stage, done)
    except (SyncRefused, SyncError):
        raise
    except Exception as exc:  # a server that went away mid-run: say which, and what was done
        raise done.stopped(exc, settings, stage, warnings) from exc


def _stages(
    settings: Settings, full: bool, allow_removals: int, prune: bool, warnings: list[str],
    stage: _Stopwatch, done: _Done,
) -> dict[str, Any]:  # fmt: skip
    logger = get_run_logger()
    staging = str(settings.staging_dir)
    model = model_info(settings.detect_max_side, settings.upsample)

    with stage("discover"):
        store = done.store = check_store(settings)
        check_catalog(settings)
        clear_staging(settings.staging_dir)
        found = done.found = discover_photos(str(settings.images), str(settings.stat_cache))
        catalog = load_catalog(settings)
        recorded = done.recorded = catalog.photos
        plan = plan_for(found, recorded, settings.thumb_sizes, settings.thumbs_prefix, full=full)
        check_removals(len(recorded), plan.removed_users, allow_removals, prune, settings.max_removal_share)
        done.plan = plan
        jobs = Jobs.for_plan(plan, settings.thumb_sizes, settings.thumbs_prefix)
        cached = load_encodings(settings, bulk(jobs.shas_to_encode())) if plan.todo and not full else {}
    logger.info(
        "%d users, %d photos: %d to process, %d unchanged, %d rejected earlier",
        len(found.users), len(found.photos), len(plan.todo), len(plan.unchanged), len(plan.kept_rejected),
    )  # fmt: skip

    with stage("train"):  # the local encoders stage the thumbnails of the photos they accept
        photos = jobs.to_encode(cached)
        along = jobs.thumbnails_along(photos) if stages_thumbnails(settings) else {}
        thumbnails = start_thumbnails(jobs.thumbnail_jobs(along), staging, settings.detect_max_side)
        trained = done.trained = encode_photos(settings, photos, along, cached)
        if trained.encodings:
            save_encodings(settings, bulk(dict(trained.encodings)), model)

    identity: IdentityCheck | None = None
    with stage("identity"):
        if plan.todo:  # one person per user, one user per person: checked whenever photos changed
            known = cached | load_encodings(settings, bulk(jobs.identity_shas(cached, trained)))
            identity = done.identity = check_identities(jobs.identity_candidates(known, trained))

    with stage("thumbnails"):  # what is left of it once the encoders are done
        thumbnailed = done.thumbnailed = finish_thumbnails(thumbnails, jobs, trained, identity, staging)

    with stage("upload"):
        failed = upload_all(settings, jobs.upload_jobs(thumbnailed), staging)
        uploaded = done.uploaded = jobs.uploaded(thumbnailed, failed)

    with stage("upsert"):
        outcome = collect_outcome(plan, found.users, recorded, trained, thumbnailed, identity, uploaded)
        upserted = done.upserted = upsert_users(settings, bulk(outcome), bulk(catalog.digests))
        stale = outcome.stale_keys(recorded)
        deleted = done.deleted = delete_objects(settings, bulk(stale)) if stale else 0
        changed = plan.todo or plan.removed_users or stale  # the identity checks run only with plan.todo
        removed = done.removed = (
            remove_users(settings, plan.removed_users, bulk(outcome.kept_shas)) if changed else 0
        )

    with stage("publish"):
        created = datetime.now(UTC).isoformat(timespec="seconds")
        bundle = publish_bundle(settings, bulk(outcome), created, model)

    summary = summarize(
        found, plan, outcome, upserted=upserted, removed_users=removed, deleted_objects=deleted,
        store=store, bundle=bundle, seconds=stage.seconds, where=where(settings), warnings=warnings,
    )  # fmt: skip
    for conflict in outcome.conflicts:
        logger.warning(
            "identity %s: %s (d=%s)", conflict["kind"], " and ".join(conflict["users"]), conflict["distance"]
        )
    logger.info(
        "encoded %d, unchanged %d, rejected %d, uploaded %d objects, upserted %d users; bundle %s",
        summary["encoded"], summary["unchanged"], len(summary["rejected"]), summary["uploaded"], upserted,
        bundle["version"],
    )  # fmt: skip
    if not os.environ.get(TEMPORARY_API_ENV):  # a temporary API's artifacts go when the command ends
        publish_report(bulk(summary))
    if outcome.errors:
        listed = "; ".join(f"{e['file']}: {e['error']}" for e in outcome.errors[:5])
        raise SyncError(f"{len(outcome.errors)} photo(s) could not be synced: {listed}", summary)
    return summary


def _preview(settings: Settings, full: bool) -> dict[str, Any]:
    """What a run would do; reads the images root, MongoDB and the store, and changes nothing."""
    check_store(settings)
    check_catalog(settings)
    found = discover_photos(str(settings.images))
    recorded = load_catalog(settings, prepare=False).photos
    plan = plan_for(found, recorded, settings.thumb_sizes, settings.thumbs_prefix, full=full)
    cached = load_encodings(settings, sorted({p.sha256 for p in plan.todo})) if plan.todo and not full else {}
    would = preview(found, recorded, plan, settings.thumb_sizes, settings.thumbs_prefix, set(cached))
    try:
        check_removals(len(recorded), plan.removed_users, 0, False, settings.max_removal_share)
        refused = None
    except RuntimeError as exc:
        refused = str(exc)
    rejected = [{"file": r.path, "reason": r.reason} for r in found.rejected]
    return {"dry_run": True, "users": len(found.users), "photos": len(found.photos), "plan": would,
            "rejected": rejected, "refused": refused}  # fmt: skip


class _Stopwatch:
    """Seconds per stage, for the summary; the stage under way."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current = "start"

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.current = name
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


@dataclass
class _Done:
    """What a run has done so far, each stage's value as it returns: the summary of a run that stops
    half-way."""

    store: str
    found: Discovery | None = None
    recorded: dict[str, dict[str, dict[str, Any]]] | None = None
    plan: Plan | None = None
    trained: Trained | None = None
    identity: IdentityCheck | None = None
    thumbnailed: Thumbnailed | None = None
    uploaded: Uploaded | None = None
    upserted: int = 0
    deleted: int = 0
    removed: int = 0

    def stopped(
        self, exc: Exception, settings: Settings, stage: _Stopwatch, warnings: list[str]
    ) -> SyncError:
        """The SyncError of a run stopped by `exc` in the stage under way: one line naming the server,
        and the summary of what was done (None before discovery). Before any write (discovery),
        nothing was changed."""
        message = f"{stage.current} stopped: {failure_message(exc, settings)}"
        if self.found is None or self.plan is None or self.recorded is None:
            return SyncError(message, None, changed=False)
        outcome = collect_outcome(self.plan, self.found.users, self.recorded, self.trained, self.thumbnailed,
                                  self.identity, self.uploaded)  # fmt: skip
        summary = summarize(
            self.found, self.plan, outcome, upserted=self.upserted, removed_users=self.removed,
            deleted_objects=self.deleted, store=self.store, bundle=None, seconds=stage.seconds,
            where=where(settings), warnings=warnings,
        )  # fmt: skip
        summary["errors"] = [*summary["errors"], {"file": None, "error": message}]
        return SyncError(message, summary, changed=stage.current != "discover")
