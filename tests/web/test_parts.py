"""The web side's pure parts: the session cookie, the attempt limiter, image sizes, login events."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facelogin.audit import login_event
from facelogin.web.limits import AttemptLimiter
from facelogin.web.profile import choose_size
from facelogin.web.sessions import Session, session_key, sign, verify

KEY = b"k" * 32
SESSION = Session("Obama", "6b0b33e3fb266322bae7f626", 1000.0, 2000.0)


def test_a_signed_session_verifies_until_it_expires() -> None:
    token = sign(SESSION, KEY)
    assert verify(token, KEY, 1000.0) == SESSION
    assert verify(token, KEY, 1999.9) == SESSION
    assert verify(token, KEY, 2000.0) is None
    assert verify(token, KEY, 999.0) is None  # issued in the future: a clock or a forgery


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("T2JhbWE", "QmlkZW4"),  # another user in the payload
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: t + ".x",
    ],
)
def test_a_tampered_session_is_refused(tamper: object) -> None:
    token = sign(SESSION, KEY)
    assert verify(tamper(token), KEY, 1500.0) is None  # type: ignore[operator]
    assert verify(token, b"other" * 8, 1500.0) is None


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


def test_attempts_are_limited_per_client_over_a_sliding_window() -> None:
    now = [0.0]
    limiter = AttemptLimiter(3, 60.0, lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a") == 60.0
    assert limiter.hit("b") == 0.0
    now[0] = 30.0
    assert limiter.hit("a") == 30.0
    now[0] = 60.0
    assert limiter.hit("a") == 0.0


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
