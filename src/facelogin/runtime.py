"""Running flows from the CLI: a local Prefect API when none is configured, and console quieting."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_prefect_api() -> Iterator[str | None]:
    """Use the configured Prefect API, or start a temporary local one for this run.

    Prefect's own ephemeral mode starts a separate temporary server in every process, so
    each encoding worker process would start its own; one server whose URL the workers
    inherit keeps them all on the same API, and the run visible in one place.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    import os

    # Imported only when needed: the server package (FastAPI, SQLAlchemy, ...) takes ~2 s to import.
    from prefect.server.api.server import SubprocessASGIServer

    # A throw-away local server has no one to report usage to (and no internet here).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    server = SubprocessASGIServer()
    # The first start on a machine creates and migrates Prefect's database: on a Pi or a
    # busy 2-core box that takes longer than Prefect's default 20 s.
    server.start(timeout=max(120, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_to_api()
    finally:
        # Quietly: a log line about stopping would be queued for the API that is going away.
        logging.getLogger("prefect").disabled = True
        try:
            server.stop()
        finally:
            logging.getLogger("prefect").disabled = False


def _drain_to_api() -> None:
    """Send queued logs and events while the API is still up (else exit waits on retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all()


def quiet_prefect_console() -> None:
    """Keep Prefect's console logs to warnings, so --json output is what a script reads."""
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    logging.getLogger("prefect").setLevel(logging.WARNING)
