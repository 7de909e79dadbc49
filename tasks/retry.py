"""Which failures a task retries: transient ones only, so permanent errors surface at once."""

from __future__ import annotations

from typing import Any, TypeVar

from prefect.states import State
from prefect.tasks import Task, exponential_backoff

from facelogin.settings import Settings

T = TypeVar("T", bound=Task[Any, Any])


def with_retries(task: T, settings: Settings) -> T:
    """The task with the configured number of retries and exponential backoff (jitter is set per task)."""
    return task.with_options(  # type: ignore[return-value]
        retries=settings.upload_retries, retry_delay_seconds=exponential_backoff(settings.retry_delay)
    )


def _exception(state: State[Any]) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the state carries whatever the task raised
        return exc
    return None


def transient_s3(task: Any, task_run: Any, state: State[Any]) -> bool:
    from facelogin.store import is_transient

    exc = _exception(state)
    return exc is not None and is_transient(exc)


def transient_mongo(task: Any, task_run: Any, state: State[Any]) -> bool:
    from facelogin.catalog import is_transient

    exc = _exception(state)
    return exc is not None and is_transient(exc)
