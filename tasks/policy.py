"""How tasks fail: which failures are retried and how often (transient faults only, so permanent ones
surface at once), and how a failed task is reported instead of stopping the other users' work.

Every I/O task declares its policy once, in its decorator (`**S3_RETRIES` or `**MONGO_RETRIES`).
The delays back off 0.5, 1, 2, 4 s ... (capped at 30 s) with jitter; how many retries a run allows
is its setting `FACELOGIN_TASK_RETRIES`, read from the `settings` the task was called with.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.states import State
from prefect.utilities.annotations import quote

from facelogin.adapters import catalog
from facelogin.adapters.stores import open_store
from facelogin.settings import Settings

# One delay per retry, up to the setting's upper bound; the run's own budget is checked in the condition.
DELAYS = [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0, 30.0]
DEFAULT_BUDGET = int(Settings.model_fields["task_retries"].default)


def _exception(state: State[Any]) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the state carries whatever the task raised
        return exc
    return None


def _settings() -> Settings:
    """The settings the task was called with (the environment's, for a task called without)."""
    context = TaskRunContext.get()
    settings = context.parameters.get("settings") if context else None
    return settings if isinstance(settings, Settings) else Settings()


def _within_budget(task_run: Any) -> bool:
    """True while the run's FACELOGIN_TASK_RETRIES allows another try of this task run."""
    context = TaskRunContext.get()
    settings = context.parameters.get("settings") if context else None
    budget = settings.task_retries if isinstance(settings, Settings) else DEFAULT_BUDGET
    return int(task_run.run_count) <= budget


def transient_s3(task: Any, task_run: Any, state: State[Any]) -> bool:
    """A fault the task's own store calls transient (the store is asked, whatever its kind)."""
    exc = _exception(state)
    return exc is not None and open_store(_settings()).is_transient(exc) and _within_budget(task_run)


def transient_mongo(task: Any, task_run: Any, state: State[Any]) -> bool:
    exc = _exception(state)
    return exc is not None and catalog.is_transient(exc) and _within_budget(task_run)


# Nothing is cached: every run looks at the disk afresh, and hashing a run's large inputs for a
# cache key would cost seconds at 10,000 photos (the flow also passes them in `quote()`, so that
# Prefect does not walk them looking for futures).
PLAIN: dict[str, Any] = {"cache_policy": NO_CACHE}
_BACKOFF = {**PLAIN, "retries": len(DELAYS), "retry_delay_seconds": DELAYS, "retry_jitter_factor": 0.5}


def transient_io(task: Any, task_run: Any, state: State[Any]) -> bool:
    return transient_s3(task, task_run, state) or transient_mongo(task, task_run, state)


S3_RETRIES: dict[str, Any] = {**_BACKOFF, "retry_condition_fn": transient_s3}
IO_RETRIES: dict[str, Any] = {**_BACKOFF, "retry_condition_fn": transient_io}
MONGO_RETRIES: dict[str, Any] = {**_BACKOFF, "retry_condition_fn": transient_mongo}


def outcome_of(future: PrefectFuture[Any]) -> tuple[Any, BaseException | None]:
    """A task's result, or the exception it ended with: one failure is reported, not raised."""
    try:
        return future.result(), None  # waits; a Dask future's state is only read back through it
    except BaseException as exc:  # noqa: BLE001
        return None, exc


T = TypeVar("T")


def bulk(value: T) -> T:
    """`value` handed to a task as it is: Prefect neither walks it looking for futures nor hashes it.

    For the run's large inputs (every photo's record, every content hash): at 10,000 photos walking
    one of them costs Prefect about 2 s per task call.
    """
    return cast(T, quote(value))
