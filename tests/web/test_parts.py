"""The web side's pure parts: the session cookie, the attempt limiter, image sizes, login events."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from facelogin.audit import login_event
from facelogin.profile import choose_size
from facelogin.web import limits
from facelogin.web.limits import LoginLimiter
from facelogin.web.sessions import SessionStore, record_key, session_key, sign, unsign

KEY = b"k" * 32


def test_a_session_cookie_carries_a_signed_random_id_and_nothing_else() -> None:
    token = sign("abc123", KEY)
    assert unsign(token, KEY) == "abc123"
    assert "Obama" not in token


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: "x" + t,  # another id under the old signature
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: t + ".x",
        lambda t: t.split(".")[0] + ".\u00e9\u00e9",  # not ASCII: refused, never a TypeError
    ],
)
def test_a_tampered_session_cookie_is_refused(tamper: object) -> None:
    token = sign("abc123", KEY)
    assert unsign(tamper(token), KEY) is None  # type: ignore[operator]
    assert unsign(token, b"other" * 8) is None


def test_sessions_end_when_idle_at_their_lifetime_and_when_ended(nx: Any, database: str) -> None:
    now = [1_900_000_000.0]
    with MongoClient(nx.uri) as mongo:
        store = SessionStore(mongo[database]["sessions"], idle=600, lifetime=3600, clock=lambda: now[0])
        store.ensure_indexes()
        sid = store.create("Obama", "login-1", "127.0.0.1")
        doc = mongo[database]["sessions"].find_one({})
        assert doc["_id"] == record_key(sid) and sid not in str(doc)  # the database holds no usable id
        now[0] += 500
        assert store.get(sid).username == "Obama"  # touched: idle counts from here
        now[0] += 500
        assert store.get(sid) is not None
        now[0] += 601
        assert store.get(sid) is None  # idle too long
        assert mongo[database]["sessions"].count_documents({}) == 0

        sid = store.create("Obama", "login-2", None)
        seen = []
        for _ in range(8):
            now[0] += 500
            seen.append(store.get(sid) is not None)
        # A request every 500 s keeps it from idling; past the hour the lifetime ends it all the same.
        assert seen == [True] * 7 + [False]

        kept, other = store.create("Obama", "l3", None), store.create("Biden", "l4", None)
        assert store.end(kept) and store.get(kept) is None and not store.end(kept)
        store.create("Obama", "l5", None)
        assert store.end_user("Obama") == 1 and store.get(other) is not None


def test_the_session_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state" / "web-secret"
    first = session_key(None, path)
    assert len(first) == 32 and session_key(None, path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert session_key("from the environment", path) != first
    path.write_text("not hex\n")
    with pytest.raises(ValueError, match="does not hold a session key"):
        session_key(None, path)


def test_failures_back_off_per_address_doubling_and_a_success_clears_them() -> None:
    now = [0.0]
    limiter = LoginLimiter(lambda: now[0])
    for _ in range(limits.FREE_FAILS):
        assert limiter.address_wait("a") == 0
        limiter.failed("a", None)
    assert limiter.address_wait("a") == 0  # the free failures used up, no wait yet
    limiter.failed("a", None)
    assert limiter.address_wait("a") == limits.FIRST_BLOCK
    now[0] += limits.FIRST_BLOCK
    limiter.failed("a", None)
    assert limiter.address_wait("a") == 2 * limits.FIRST_BLOCK
    assert limiter.address_wait("b") == 0  # another address is not touched
    limiter.succeeded("a", "Obama")
    assert limiter.address_wait("a") == 0


def test_one_address_cannot_lock_an_account_but_many_addresses_slow_it_down() -> None:
    now = [0.0]
    limiter = LoginLimiter(lambda: now[0])
    for _ in range(50):
        limiter.failed("attacker", "Obama")
    assert limiter.account_wait("obama-at-home", "Obama") == 0  # one stranger locks nobody out
    for address in ("x", "y", "z"):
        limiter.failed(address, "Obama")
    assert limiter.account_wait("elsewhere", "Obama") > 0  # many places trying one face: back-off
    limiter.succeeded("home", "Obama")
    assert limiter.account_wait("home", "Obama") == 0  # where Obama logged in before still works
    assert limiter.account_wait("elsewhere", "Biden") == 0


@pytest.mark.parametrize(
    ("sizes", "wanted", "chosen"),
    [([128, 256], None, 256), ([128, 256], 128, 128), ([128, 256], 200, 256), ([128, 256], 512, 256),
     ([64], 256, 64), ([256, 1024], 300, 1024)],
)  # fmt: skip
def test_the_image_size_shown(sizes: list[int], wanted: int | None, chosen: int) -> None:
    assert choose_size(sizes, wanted) == chosen


def test_a_login_event_names_the_user_only_when_accepted() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    result = {
        "decision": "rejected",
        "user": None,
        "nearest": "Obama",
        "reason": "ambiguous",
        "distance": 0.41,
        "margin": 0.05,
        "threshold": 0.5,
        "bundle": {"version": "abc"},
    }
    event = login_event(result, "pi", "pi-door", now)
    assert event == {
        "user": None,
        "time": now,
        "decision": "rejected",
        "reason": "ambiguous",
        "distance": 0.41,
        "margin": 0.05,
        "threshold": 0.5,
        "bundle": "abc",
        "source": "pi",
        "client": "pi-door",
        "liveness": {"mode": "off"},
    }
    accepted = {**result, "decision": "accepted", "user": "Obama", "reason": None}
    assert login_event(accepted, "web", None, now)["user"] == "Obama"
