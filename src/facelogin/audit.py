"""Login events: one MongoDB document per decision, made at the web page or at a Pi (`logins`).

`login_event` is pure. `login_recorder` is what `facelogin login` uses when FACELOGIN_RECORD_LOGINS
is on; the login package never imports this module (it would bring pymongo to the Pi), the CLI does,
and only when the setting is on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from facelogin.adapters.mongo import CHECK_TIMEOUT_MS, mongo_client
from facelogin.settings import Settings

log = logging.getLogger(__name__)

WEB = "web"
PI = "pi"
ACCEPTED = "accepted"
# A Pi or a web page waiting on a database that is down would hold the person at the door: a
# recording gives up quickly, and the login goes on without it.
RECORD_TIMEOUT_MS = CHECK_TIMEOUT_MS


def login_event(result: dict[str, Any], source: str, client: str | None, now: datetime) -> dict[str, Any]:
    """The document recorded for one decision: who (or nobody), when, what, how close, from where."""
    accepted = result.get("decision") == ACCEPTED
    return {
        "user": result.get("user") if accepted else None,
        "time": now,
        "decision": result.get("decision"),
        "reason": result.get("reason"),
        "distance": result.get("distance"),
        "margin": result.get("margin"),
        "threshold": result.get("threshold"),
        "bundle": (result.get("bundle") or {}).get("version"),
        "source": source,
        "client": client,
        # What liveness saw: its mode, whether it passed, the failed check, the actions asked and seen.
        "liveness": result.get("liveness") or {"mode": "off"},
    }


@contextmanager
def login_recorder(
    settings: Settings, source: str, client: str | None
) -> Iterator[Callable[[dict[str, Any]], str]]:
    """A function that records a decision in MongoDB and returns its id; CatalogError, PyMongoError or
    EmbeddedServerError when it cannot. With embedded defaults the embedded server is borrowed from
    a running `facelogin web`, else started for the block."""
    from datetime import UTC

    from facelogin.adapters.catalog import Catalog, describe_uri
    from facelogin.adapters.connect import catalog_server

    with catalog_server(settings) as running:
        uri = running.mongodb()
        assert uri is not None
        catalog = Catalog(mongo_client(uri, RECORD_TIMEOUT_MS)[running.database], where=describe_uri(uri))

        def record(result: dict[str, Any]) -> str:
            return catalog.record_login(login_event(result, source, client, datetime.now(UTC)))

        yield record


class DecisionRecorder:
    """Records the decisions of `facelogin login`, connecting on the first one; never stops a login.

    A decision that cannot be recorded (MongoDB down, embedded database busy) is reported through
    `warn` and the login goes on: the Pi must let people in when the database is away.
    """

    def __init__(self, settings: Settings, source: str, client: str | None, warn: Callable[[str], None]):
        from contextlib import ExitStack

        self.settings = settings
        self.source = source
        self.client = client
        self.warn = warn
        self._stack = ExitStack()
        self._record: Callable[[dict[str, Any]], str] | None = None
        self.recorded: list[str] = []

    def __call__(self, result: dict[str, Any]) -> None:
        from pymongo.errors import PyMongoError

        from facelogin.adapters.catalog import CatalogError, failure_message
        from facelogin.adapters.connect import where
        from facelogin.adapters.embedded import EmbeddedServerError

        if result.get("decision") not in {ACCEPTED, "rejected"}:
            return  # an error decided nothing
        try:
            if self._record is None:
                self._record = self._stack.enter_context(
                    login_recorder(self.settings, self.source, self.client)
                )
            self.recorded.append(self._record(result))
        except (PyMongoError, CatalogError) as exc:
            self.warn(f"decision not recorded: {failure_message(exc, where(self.settings)['catalog'])}")
        except EmbeddedServerError as exc:
            self.warn(f"decision not recorded: {exc}")

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> DecisionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
