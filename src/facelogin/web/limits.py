"""Per-client attempt limits for the login endpoint: a sliding window of attempts per address."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class AttemptLimiter:
    """At most `attempts` per `window` seconds per client; `hit` says how long to wait when over it.

    In memory and per process: one `facelogin web` process is the unit this guards.
    """

    def __init__(self, attempts: int, window: float, clock: Callable[[], float]) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, client: str) -> float:
        """Count one attempt by `client`: 0 when allowed, else the seconds until the next one is."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > 10_000:  # forget clients whose window has passed
                self._seen = {c: q for c, q in self._seen.items() if q and q[-1] > now - self.window}
            seen = self._seen.setdefault(client, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.attempts:
                return seen[0] + self.window - now
            seen.append(now)
            return 0.0
