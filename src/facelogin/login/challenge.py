"""One-time liveness challenges: issued by the server (or the Pi), used at most once, before a deadline.

A challenge is an unguessable id, the actions asked for in order, and when it stops being valid.
Every challenge asks for a head turn (a flat picture cannot show one): two different actions are
drawn from blink, turn left and turn right, so one of them is always a turn.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from facelogin.login.liveness import ACTIONS, BLINK, TURN_LEFT, TURN_RIGHT, TURNS

DEFAULT_TTL = 8.0  # s from issue to the last frame's arrival: a 4 s burst, the upload, and slack
BURST_SECONDS = 4.0  # how long the page and the Pi capture: 2 s per action
MOST_OUTSTANDING = 10_000  # challenges kept at once; the oldest go first

PROMPTS = {
    BLINK: "Blink once",
    TURN_LEFT: "Turn your head to your left, then back",
    TURN_RIGHT: "Turn your head to your right, then back",
}


@dataclass(frozen=True)
class Challenge:
    id: str
    actions: tuple[str, ...]
    issued: float  # clock seconds
    expires: float

    def public(self, now: float) -> dict[str, object]:
        """What the client is sent: the id, the actions with their prompts, the seconds left."""
        return {
            "id": self.id,
            "actions": list(self.actions),
            "prompts": [PROMPTS[a] for a in self.actions],
            "expires_in": round(max(0.0, self.expires - now), 1),
            "seconds": BURST_SECONDS,
        }


class ChallengeRefused(ValueError):
    """A challenge id that is unknown, used or expired: `reason` is one of those words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"challenge {reason}")
        self.reason = reason


def draw_actions(choose: Callable[[Sequence[str]], str] = secrets.choice) -> tuple[str, ...]:
    """Two different actions in random order, one of them a turn."""
    turn = choose(TURNS)
    other = choose([a for a in ACTIONS if a != turn])
    return (turn, other) if choose(("turn first", "turn last")) == "turn first" else (other, turn)


class ChallengeStore:
    """Challenges issued by this process, each taken at most once. Thread-safe.

    `actions` draws each challenge's actions; production always uses `draw_actions`. Tests that must
    know the actions in advance (a recorded blink clip) build the store with their own function in
    Python: no setting, header or request can reach it.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        ttl: float = DEFAULT_TTL,
        actions: Callable[[], tuple[str, ...]] = draw_actions,
    ) -> None:
        self.clock = clock
        self.ttl = ttl
        self._actions = actions
        self._open: OrderedDict[str, Challenge] = OrderedDict()
        self._spent: OrderedDict[str, float] = OrderedDict()  # id -> when it stops mattering
        self._lock = threading.Lock()

    def issue(self) -> Challenge:
        now = self.clock()
        actions = tuple(self._actions())
        if not actions or any(a not in ACTIONS for a in actions):
            raise ValueError(f"unknown liveness actions {actions}")
        challenge = Challenge(secrets.token_urlsafe(24), actions, now, now + self.ttl)
        with self._lock:
            self._forget(now)
            self._open[challenge.id] = challenge
            while len(self._open) > MOST_OUTSTANDING:
                self._open.popitem(last=False)
        return challenge

    def take(self, challenge_id: object) -> Challenge:
        """The challenge, removed so it can never be used again; ChallengeRefused when it cannot be."""
        now = self.clock()
        if not isinstance(challenge_id, str) or not challenge_id:
            raise ChallengeRefused("missing")
        with self._lock:
            self._forget(now)
            challenge = self._open.pop(challenge_id, None)
            if challenge is None:
                raise ChallengeRefused("used" if challenge_id in self._spent else "unknown")
            self._spent[challenge_id] = challenge.expires + self.ttl
            while len(self._spent) > MOST_OUTSTANDING:
                self._spent.popitem(last=False)
        if now > challenge.expires:
            raise ChallengeRefused("expired")
        return challenge

    def _forget(self, now: float) -> None:
        for cid in [c for c, ch in self._open.items() if ch.expires + self.ttl < now]:
            del self._open[cid]
        for cid in [c for c, until in self._spent.items() if until < now]:
            del self._spent[cid]
