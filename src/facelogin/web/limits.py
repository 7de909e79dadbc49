"""Login attempt limits that an attacker cannot reset and a stranger cannot use against others.

- **Per address**: FREE_FAILS failed logins are free; then the address waits FIRST_BLOCK seconds,
  doubling with each further failure (at most LONGEST_BLOCK). A success clears it; so does an hour
  without failures. Successful logins never count: a person logging in often is never slowed.
- **Per account** (the enrolled user a refused face was nearest to): failures against one account
  from ACCOUNT_ADDRESSES different addresses within ACCOUNT_WINDOW put the account in back-off
  (FIRST_BLOCK, doubling): until it passes, a login that would be accepted as that user is refused,
  except from an address that logged in as them before. One stranger at one address can never
  trigger it, so cannot lock anyone out; many addresses trying one face are slowed down together.
- **Challenges**: CHALLENGES_PER_MINUTE per address (issuing is cheap; this bounds memory).

In memory, per `facelogin web` process: the unit this guards. The client address is the TCP peer,
or what a proxy named in FACELOGIN_TRUSTED_PROXIES says (never a header from anyone else).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FREE_FAILS = 5
FIRST_BLOCK = 30.0
LONGEST_BLOCK = 3600.0
FORGET_AFTER = 3600.0
ACCOUNT_ADDRESSES = 3
ACCOUNT_WINDOW = 900.0
CHALLENGES_PER_MINUTE = 30
MOST_TRACKED = 50_000


@dataclass
class _Backoff:
    fails: int = 0
    last_fail: float = 0.0
    until: float = 0.0

    def fail(self, now: float, free: int) -> None:
        if now - self.last_fail > FORGET_AFTER:
            self.fails = 0
        self.fails += 1
        self.last_fail = now
        if self.fails > free:
            block = min(LONGEST_BLOCK, FIRST_BLOCK * 2 ** (self.fails - free - 1))
            self.until = max(self.until, now + block)

    def wait(self, now: float) -> float:
        return max(0.0, self.until - now)


@dataclass
class _Account:
    failed_from: dict[str, float] = field(default_factory=dict)  # address -> last failure
    trusted: set[str] = field(default_factory=set)  # addresses that logged in as this user
    backoff: _Backoff = field(default_factory=_Backoff)


class LoginLimiter:
    """The policy above. Thread-safe; `clock` is monotonic seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._addresses: dict[str, _Backoff] = {}
        self._accounts: dict[str, _Account] = {}
        self._challenges: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def address_wait(self, address: str) -> float:
        """Seconds before `address` may try again (0: now)."""
        with self._lock:
            backoff = self._addresses.get(address)
            return backoff.wait(self.clock()) if backoff else 0.0

    def account_wait(self, address: str, user: str) -> float:
        """Seconds before a login accepted as `user` may be let in from `address` (0: now)."""
        with self._lock:
            account = self._accounts.get(user)
            if account is None or address in account.trusted:
                return 0.0
            return account.backoff.wait(self.clock())

    def challenge_wait(self, address: str) -> float:
        now = self.clock()
        with self._lock:
            seen = self._challenges.setdefault(address, deque())
            while seen and seen[0] <= now - 60.0:
                seen.popleft()
            if len(seen) >= CHALLENGES_PER_MINUTE:
                return seen[0] + 60.0 - now
            seen.append(now)
            self._trim(self._challenges, now)
            return 0.0

    def failed(self, address: str, nearest: str | None) -> None:
        """A refused login from `address`; `nearest`: the enrolled user its face was closest to."""
        now = self.clock()
        with self._lock:
            self._addresses.setdefault(address, _Backoff()).fail(now, FREE_FAILS)
            if nearest is not None:
                account = self._accounts.setdefault(nearest, _Account())
                account.failed_from[address] = now
                recent = {a for a, t in account.failed_from.items() if now - t <= ACCOUNT_WINDOW}
                account.failed_from = {a: account.failed_from[a] for a in recent}
                if len(recent) >= ACCOUNT_ADDRESSES:
                    account.backoff.fail(now, 0)
            self._trim(self._addresses, now)

    def succeeded(self, address: str, user: str) -> None:
        with self._lock:
            self._addresses.pop(address, None)
            account = self._accounts.setdefault(user, _Account())
            account.trusted.add(address)
            account.failed_from.pop(address, None)

    def _trim(self, table: dict[str, Any], now: float) -> None:
        if len(table) > MOST_TRACKED:  # forget the oldest half rather than grow without bound
            for key in list(table)[: len(table) // 2]:
                del table[key]
