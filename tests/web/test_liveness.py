"""Liveness on the web, tried for real: the app in-process on nx-27017, the real face engine, recorded
clips of real people and the attacks of bench/attacks.py made from their enrolment stills.

The people of ../shared/faces/liveness are enrolled; a genuine clip answers a challenge forced to its
own action through `create_app(challenge_actions=...)`, which only Python can pass."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import MongoClient

from bench import attacks
from facelogin.adapters.embedded import NxServer
from facelogin.login.challenge import DEFAULT_TTL
from facelogin.web.sessions import COOKIE
from tests.liveness import BLINK_CLIP, TURN_CLIP, burst_body, clips, enrolment_still
from tests.web.conftest import MakeClient
from tests.web.synced import Encodings, encode_tree


@pytest.fixture(scope="session")
def liveness(faces: Path) -> Path:
    return faces / "liveness"


@pytest.fixture(scope="session")
def people(liveness: Path) -> Encodings:
    return encode_tree(liveness / "people")


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def live_client(make_client: MakeClient, liveness: Path, people: Encodings, clock: Clock) -> Iterator[Any]:
    """The app with liveness on (the default), the liveness people enrolled, challenges forced to blink."""
    forced: list[tuple[str, ...]] = [("blink",)]
    client = make_client(
        images=liveness / "people",
        encoded=people,
        liveness="challenge",
        clock=clock,
        challenge_actions=lambda: forced[0],
    )
    client.forced = forced  # type: ignore[attr-defined]
    yield client


def challenge(client: Any) -> dict[str, Any]:
    answer = client.post("/login/challenge", json={})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def post_burst(client: Any, clock: Clock, cid: str | None, jpegs: list[bytes], fps: float = 10.0) -> Any:
    clock.now += len(jpegs) / fps + 0.3  # the capture, then the upload
    return client.post("/login", json=burst_body(cid, jpegs, fps))


def numbers_in(value: Any) -> list[Any]:
    """Every number anywhere in a JSON value (booleans are not numbers here)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return []


def logins(nx: NxServer, database: str) -> list[dict[str, Any]]:
    with MongoClient(nx.uri, tz_aware=True) as mongo:
        return list(mongo[database]["logins"].find({}, {"_id": 0}).sort("time", 1))


def test_a_challenge_names_two_different_actions_one_a_turn_and_is_unguessable(
    make_client: MakeClient, liveness: Path, people: Encodings
) -> None:
    client = make_client(images=liveness / "people", encoded=people, liveness="challenge")
    seen = [challenge(client) for _ in range(30)]
    for c in seen:
        assert len(c["actions"]) == 2 and len(set(c["actions"])) == 2
        assert {"turn_left", "turn_right"} & set(c["actions"])
        assert len(c["prompts"]) == 2 and 0 < c["expires_in"] <= DEFAULT_TTL
        assert len(c["id"]) >= 32
    assert len({c["id"] for c in seen}) == 30
    assert len({tuple(c["actions"]) for c in seen}) > 1


def test_a_genuine_blink_answering_its_challenge_logs_in_and_opens_the_profile(
    live_client: Any, liveness: Path, clock: Clock, nx: NxServer
) -> None:
    clip = clips(liveness)[BLINK_CLIP]
    c = challenge(live_client)
    assert c["actions"] == ["blink"]
    answer = post_burst(live_client, clock, c["id"], clip.jpegs())

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["decision"], body["user"]) == ("accepted", clip.person)
    assert body["liveness"] == {"checked": True, "passed": True, "check": None, "seen": ["blink"]}
    assert COOKIE in answer.headers["set-cookie"]
    assert live_client.get("/profile").status_code == 200
    (event,) = logins(nx, live_client.settings.database)
    assert event["liveness"]["passed"] is True and event["liveness"]["asked"] == ["blink"]


def test_a_genuine_head_turn_logs_in_when_the_turn_is_what_was_asked(
    live_client: Any, liveness: Path, clock: Clock
) -> None:
    clip = clips(liveness)[TURN_CLIP]  # toward the image's right: the person's own left
    live_client.forced[0] = ("turn_left",)
    answer = post_burst(live_client, clock, challenge(live_client)["id"], clip.jpegs())
    assert (answer.json()["decision"], answer.json()["user"]) == ("accepted", clip.person), answer.text

    live_client.forced[0] = ("turn_right",)
    wrong = post_burst(live_client, clock, challenge(live_client)["id"], clip.jpegs())
    assert wrong.status_code == 403
    assert (wrong.json()["reason"], wrong.json()["message"]) == (
        "turn_right",
        "We did not see you turn your head to your right: turn it clearly, then face the camera again.",
    )


@pytest.mark.parametrize("attack", ["still", "screen", "perspective"])
def test_a_photo_never_logs_in_however_it_is_moved(
    live_client: Any, liveness: Path, clock: Clock, nx: NxServer, attack: str
) -> None:
    person = clips(liveness)[BLINK_CLIP].person
    with Image.open(enrolment_still(liveness, person)) as im:
        photo = im.convert("RGB")
    frames = {
        "still": lambda: attacks.still_repeated(photo, 30),
        "screen": lambda: attacks.screen(photo, 30, seed=7),
        "perspective": lambda: attacks.perspective(photo, 30, "yaw", 35.0, seed=3),
    }[attack]()
    for actions in (("blink",), ("turn_left",), ("turn_right",), ("blink", "turn_left")):
        live_client.forced[0] = actions
        answer = post_burst(live_client, clock, challenge(live_client)["id"], frames)
        assert answer.status_code == 403, answer.text
        body = answer.json()
        assert body["decision"] == "rejected" and body["user"] is None
        assert body["reason"] in {"still", "flat", *actions}
        assert "set-cookie" not in answer.headers
        assert not numbers_in(body), body
    events = logins(nx, live_client.settings.database)
    assert {e["decision"] for e in events} == {"rejected"}
    assert all(e["liveness"]["passed"] is False and e["liveness"]["check"] for e in events)


def test_a_burst_is_refused_without_a_challenge_with_a_used_one_and_after_its_deadline(
    live_client: Any, liveness: Path, clock: Clock
) -> None:
    jpegs = clips(liveness)[BLINK_CLIP].jpegs()
    refused = {
        "none": post_burst(live_client, clock, None, jpegs),
        "unknown": post_burst(live_client, clock, "x" * 32, jpegs),
    }
    c = challenge(live_client)
    assert post_burst(live_client, clock, c["id"], jpegs).status_code == 200
    refused["replayed"] = post_burst(live_client, clock, c["id"], jpegs)
    late = challenge(live_client)
    clock.now += DEFAULT_TTL
    refused["expired"] = post_burst(live_client, clock, late["id"], jpegs)
    for name, answer in refused.items():
        assert answer.status_code == 403, name
        body = answer.json()
        assert (body["decision"], body["reason"]) == ("rejected", "challenge"), name
        assert body["message"].startswith("This login attempt has expired or was already used")


def test_capture_times_that_do_not_fit_the_challenge_are_refused(
    live_client: Any, liveness: Path, clock: Clock
) -> None:
    """Frames said to span 20 s cannot have been captured in the 2.5 s since the challenge."""
    jpegs = clips(liveness)[BLINK_CLIP].jpegs()
    c = challenge(live_client)
    answer = post_burst(live_client, clock, c["id"], jpegs, fps=1.0)  # the clock moves 22 s: expired
    assert answer.json()["reason"] == "challenge"
    c = challenge(live_client)
    clock.now += 2.5
    body = burst_body(c["id"], jpegs, fps=1.0)
    answer = live_client.post("/login", json=body)
    assert (answer.status_code, answer.json()["reason"]) == (403, "timing")


def test_frames_of_two_people_spliced_do_not_log_in(live_client: Any, liveness: Path, clock: Clock) -> None:
    all_clips = clips(liveness)
    blink, other = all_clips[BLINK_CLIP], all_clips["vretalk_face3__blink__1"]
    for first, second in ((blink, other), (other, blink)):
        n = min(len(first.frames), len(second.frames))
        joined = attacks.splice(first.jpegs()[:n], second.jpegs()[:n])
        answer = post_burst(live_client, clock, challenge(live_client)["id"], joined)
        assert answer.status_code == 403 and answer.json()["user"] is None, answer.text


def test_the_login_page_starts_nothing_before_start_is_pressed(live_client: Any) -> None:
    page = live_client.get("/login")
    assert 'data-liveness="challenge"' in page.text and '<button id="start"' in page.text
    script = live_client.get("/static/login.js").text
    assert 'start.addEventListener("click", attempt);' in script
    assert "\nattempt();" not in script  # the camera opens on Start only


def test_with_liveness_off_a_photo_logs_in_and_the_server_says_so(
    make_client: MakeClient, faces: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.web.conftest import frame_urls

    client = make_client(liveness="off")
    with caplog.at_level("WARNING"):
        answer = client.post("/login", json={"frames": frame_urls(faces / "probes" / "Obama.jpg")})
    assert answer.status_code == 200 and answer.json()["liveness"] == {"checked": False}
    assert "Liveness is off on this server" in client.get("/login").text
    assert any("without a liveness check" in r.getMessage() for r in caplog.records)
    assert client.post("/login/challenge", json={}).status_code == 404
