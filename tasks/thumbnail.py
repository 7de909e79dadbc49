"""Thumbnail stage: JPEGs written to the staging directory, never passed between tasks."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.futures import PrefectFuture

from facelogin.sync.identity import IdentityCheck
from facelogin.sync.stages import Jobs, Thumbnailed, ThumbnailTask, Trained
from facelogin.sync.transfer import discard_staged, stage_thumbnails
from tasks.policy import PLAIN, bulk, outcome_of


@task(task_run_name="thumbnail-{label}", **PLAIN)
def make_thumbnails(
    label: str, photos: dict[str, dict[str, str]], staging: str, max_side: int
) -> dict[str, str | None]:
    """Make a user's thumbnails (upright, RGB, no metadata) and stage them under their object keys.

    The same bytes as the encoders stage (from the copy reduced to `max_side` they detect faces on).
    Returns, per photo path, None when staged or the reason it could not be decoded.
    """
    return stage_thumbnails(photos, Path(staging), max_side)


BATCH = 16  # photos per thumbnail task: small users share one, so 5,000 users are not 5,000 task runs


def start_thumbnails(
    jobs: dict[str, dict[str, dict[str, str]]], staging: str, max_side: int
) -> list[tuple[list[str], PrefectFuture[dict[str, str | None]]]]:
    """Thumbnail tasks over the users' photos, started on the flow's threads while the encoders run.

    For the photos the encoders do not stage themselves (their encoding was stored already, or
    they run on Dask). Thumbnails do not depend on the face check, and making them alongside it
    uses the time the encoding processes spend starting; those of photos the check rejects are
    dropped unused. Returns, per task, the users it covers and its future.
    """
    started: list[tuple[list[str], PrefectFuture[dict[str, str | None]]]] = []
    users: list[str] = []
    photos: dict[str, dict[str, str]] = {}
    for user, user_photos in jobs.items():
        users.append(user)
        photos |= user_photos
        if len(photos) >= BATCH or user == next(reversed(jobs)):
            label = users[0] if len(users) == 1 else f"{users[0]}+{len(users) - 1}"
            started.append((users, make_thumbnails.submit(label, bulk(photos), staging, max_side)))
            users, photos = [], {}
    return started


def finish_thumbnails(
    started: list[tuple[list[str], PrefectFuture[dict[str, str | None]]]],
    jobs: Jobs,
    trained: Trained,
    identity: IdentityCheck | None,
    staging: str,
) -> Thumbnailed:
    """Every user's thumbnails: the tasks' (`started`) and the encoders' (`trained.thumbnails`).

    Staged thumbnails no longer wanted (their photo was rejected) are dropped from the staging area.
    """
    tasks: list[ThumbnailTask] = [(users, *outcome_of(future)) for users, future in started]
    thumbnailed = jobs.thumbnailed(tasks, trained, identity)
    discard_staged(Path(staging), thumbnailed.discard)
    return thumbnailed
