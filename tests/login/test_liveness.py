"""Liveness, the engine's parts and the Pi's path: pure checks on landmark sequences built from a real
face, the challenge store, and `facelogin login` at a camera played from recorded bursts."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import attacks
from facelogin import login as core
from facelogin.login import liveness as lv
from facelogin.login.burst import FRAME_HEIGHT, load_landmarks
from facelogin.login.challenge import ChallengeRefused, ChallengeStore, draw_actions
from facelogin.login.live import live_login
from tests.liveness import BLINK_CLIP, TURN_CLIP, clips, enrolment_still
from tests.login.conftest import make_bundle


@pytest.fixture(scope="session")
def liveness(faces: Path) -> Path:
    return faces / "liveness"


@pytest.fixture(scope="session")
def face(liveness: Path) -> np.ndarray:
    """The 68 landmarks of a real frontal face (a frame of the blink clip before the blink)."""
    model = load_landmarks()
    pixels = np.asarray(Image.open(clips(liveness)[BLINK_CLIP].frames[0]).convert("RGB"))
    (box,) = model.boxes(pixels)
    return model.points(pixels, box)


def depth_of(points: np.ndarray) -> np.ndarray:
    """A rough depth per landmark, in eye distances: the nose stands out, the contour lies back."""
    iod = lv.eye_distance(points)
    z = np.zeros(68)
    z[27:31] = np.linspace(0.2, 0.6, 4)  # nose bridge to tip
    z[31:36] = 0.35
    z[0:17] = -0.5 + 0.4 * np.sin(np.linspace(0, math.pi, 17))  # contour: back at the ears
    z[48:68] = 0.25
    return z * iod


def yawed(points: np.ndarray, depth: np.ndarray, degrees: float) -> np.ndarray:
    """The landmarks of `points` turned about the vertical axis through the face's centre (orthographic)."""
    centre = points.mean(0)
    x = points[:, 0] - centre[0]
    a = math.radians(degrees)
    return np.c_[centre[0] + x * math.cos(a) + depth * math.sin(a), points[:, 1]]


def homography_of(points: np.ndarray, h: np.ndarray) -> np.ndarray:
    return lv.project(h, points)


def seq(n: int = 30) -> np.ndarray:
    return np.arange(n) / 10.0


def turn_profile(n: int, peak: float) -> list[float]:
    """Rest, a turn to `peak` degrees and back, rest: as a prompted turn goes."""
    return [peak * max(0.0, math.sin(math.pi * (i - 5) / 15)) if 5 <= i <= 20 else 0.0 for i in range(n)]


def test_a_head_turning_to_its_left_is_a_left_turn_and_nothing_else(face: np.ndarray) -> None:
    depth = depth_of(face)
    # The person's left is toward the image's right: the nose moves to +x.
    frames = [yawed(face, depth, d) for d in turn_profile(30, 30.0)]
    assert lv.check_actions(("turn_left",), seq(), frames).passed
    refused = lv.check_actions(("turn_right",), seq(), frames)
    assert (refused.passed, refused.check) == (False, "turn_right")
    assert lv.check_actions(("turn_right",), seq(), frames, mirrored=True).passed
    assert lv.check_actions(("blink",), seq(), frames).check == "blink"


def test_the_same_turn_of_a_flat_face_is_refused_as_flat(face: np.ndarray) -> None:
    """A photo's landmarks have no depth: however it turns, the nose stays on the plane."""
    flat = np.zeros(68)
    frames = [yawed(face, flat, d) for d in turn_profile(30, 60.0)]
    verdict = lv.check_actions(("turn_left",), seq(), frames)
    assert not verdict.passed and verdict.check in {"flat", "turn_left"}


@pytest.mark.parametrize("shear", [0.0004, -0.0004, 0.0008])
def test_a_photo_tilted_in_perspective_never_turns(face: np.ndarray, shear: float) -> None:
    frames = []
    for d in turn_profile(30, 1.0):
        h = np.eye(3)
        h[2, 0] = shear * d  # a print tilted about its vertical axis: one side nearer the camera
        frames.append(homography_of(face, h))
    for action in ("turn_left", "turn_right"):
        assert not lv.check_actions((action,), seq(), frames).passed


def test_a_warp_strong_enough_to_move_the_nose_like_a_turn_is_refused_as_flat(face: np.ndarray) -> None:
    """A homography about the face's centre that shifts the nose as far as a real turn: only the depth
    check (the nose leaving the plane of the eye corners and contour) can tell, and it does."""
    c = face.mean(0)
    shift = np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1.0]])
    frames = []
    for d in turn_profile(30, 1.0):
        tilt = np.eye(3)
        tilt[2, 0] = 0.003 * d
        frames.append(homography_of(face, np.linalg.inv(shift) @ tilt @ shift))
    moved = max(lv.nose_position(f) for f in frames) - lv.nose_position(face)
    assert moved > lv.TURN_PEAK  # as far as a turn goes...
    assert lv.check_actions(("turn_left",), seq(), frames).check == "flat"  # ...and refused for it


def closed_eyes(points: np.ndarray, amount: float) -> np.ndarray:
    """Upper eyelid points moved `amount` of the way down to the lower lid."""
    out = points.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        out[upper] = points[upper] + amount * (points[lower] - points[upper])
    return out


def test_a_blink_is_a_quick_dip_and_a_long_squint_is_not(face: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    still = [face + rng.normal(0, 0.3, face.shape) for _ in range(30)]
    blink = [closed_eyes(p, 0.8) if i in (12, 13) else p for i, p in enumerate(still)]
    assert lv.check_actions(("blink",), seq(), blink).passed
    squint = [closed_eyes(p, 0.8) if 8 <= i <= 20 else p for i, p in enumerate(still)]
    assert lv.check_actions(("blink",), seq(), squint).check == "blink"
    shallow = [closed_eyes(p, 0.25) if i in (12, 13) else p for i, p in enumerate(still)]
    assert lv.check_actions(("blink",), seq(), shallow).check == "blink"
    at_the_end = [closed_eyes(p, 0.8) if i >= 28 else p for i, p in enumerate(still)]
    assert lv.check_actions(("blink",), seq(), at_the_end).check == "blink"


def test_a_photo_tilted_toward_the_camera_squashes_the_eyes_but_is_no_blink(face: np.ndarray) -> None:
    """Pitching a print squeezes every vertical distance, eyelids too: openness in the face's plane stays."""
    frames = []
    for i in range(30):
        h = np.diag([1.0, 0.55 if i in (12, 13) else 1.0, 1.0])
        frames.append(homography_of(face, h))
    assert lv.check_actions(("blink",), seq(), frames).check == "blink"


def test_actions_must_come_in_the_order_asked(face: np.ndarray) -> None:
    depth = depth_of(face)
    profile = turn_profile(30, 30.0)
    frames = [yawed(face, depth, d) for d in profile]
    frames = [closed_eyes(p, 0.8) if i in (25, 26) else p for i, p in enumerate(frames)]
    assert lv.check_actions(("turn_left", "blink"), seq(), frames).passed
    assert lv.check_actions(("blink", "turn_left"), seq(), frames).check == "order"


def test_the_same_landmarks_again_and_again_are_a_still_picture(face: np.ndarray) -> None:
    assert lv.check_actions(("blink",), seq(), [face] * 30).check == "still"


def test_a_burst_where_the_face_is_mostly_missing_is_refused(face: np.ndarray) -> None:
    frames: list[np.ndarray | None] = [face if i % 2 else None for i in range(30)]
    assert lv.check_actions(("blink",), seq(), frames).check == "face"


def test_every_drawn_challenge_has_two_different_actions_one_a_turn() -> None:
    drawn = {draw_actions() for _ in range(300)}
    assert all(len(set(a)) == 2 and {"turn_left", "turn_right"} & set(a) for a in drawn)
    assert len(drawn) >= 6  # every order of every pair shows up


def test_a_challenge_is_used_once_and_not_after_its_deadline() -> None:
    now = [100.0]
    store = ChallengeStore(lambda: now[0], ttl=8.0)
    first = store.issue()
    assert store.take(first.id) == first
    reasons = []
    for cid in (first.id, "nope", None, ""):
        with pytest.raises(ChallengeRefused) as refused:
            store.take(cid)
        reasons.append(refused.value.reason)
    assert reasons == ["used", "unknown", "missing", "missing"]
    late = store.issue()
    now[0] += 8.5
    with pytest.raises(ChallengeRefused, match="expired"):
        store.take(late.id)
    with pytest.raises(ChallengeRefused, match="used"):
        store.take(late.id)


# --- The Pi: `live_login` with the camera played from recorded frames -------------------------


class Recorded:
    """A camera playing recorded JPEG frames at `fps`, on a clock the test owns."""

    def __init__(self, jpegs: list[bytes], fps: float = 10.0) -> None:
        self.jpegs, self.fps, self.now = jpegs, fps, 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def frames(self) -> Iterator[core.Frame]:
        for i, data in enumerate(self.jpegs):
            image = Image.open(io.BytesIO(data)).convert("RGB")
            image.thumbnail((10_000, FRAME_HEIGHT))
            self.now += 0.005  # the camera hands over a frame
            yield core.Frame(f"recorded#{i}", np.asarray(image))


@pytest.fixture(scope="session")
def pi_auth(liveness: Path, tmp_path_factory: pytest.TempPathFactory) -> core.Authenticator:
    from tests.photos import per_user

    folder = make_bundle(tmp_path_factory.mktemp("pi-bundle"), per_user(liveness / "people", "*/*.jpg"))
    auth = core.Authenticator(core.load_login_bundle(str(folder), folder / "cache"))
    auth.load_liveness()
    return auth


def pi_login(auth: core.Authenticator, jpegs: list[bytes], actions: tuple[str, ...]) -> dict[str, object]:
    camera = Recorded(jpegs)
    prompts: list[str] = []
    result = live_login(
        auth,
        camera.frames(),
        lambda action, words, seconds: prompts.append(action),
        actions=lambda: actions,
        seconds=len(jpegs) / camera.fps,
        clock=camera.clock,
        sleep=camera.sleep,
    )
    assert prompts == list(actions)
    return result


@pytest.mark.parametrize(("clip", "action"), [(BLINK_CLIP, "blink"), (TURN_CLIP, "turn_left")])
def test_the_pi_accepts_a_person_answering_the_challenge(
    pi_auth: core.Authenticator, liveness: Path, clip: str, action: str
) -> None:
    recorded = clips(liveness)[clip]
    result = pi_login(pi_auth, recorded.jpegs(), (action,))
    assert (result["decision"], result["user"]) == ("accepted", recorded.person), result
    assert result["challenge"] == [action]
    ms = result["ms"]
    assert isinstance(ms, dict) and ms["after_last_frame"] > 0


AttackMaker = Callable[[Image.Image], list[bytes]]
PI_ATTACKS: dict[str, AttackMaker] = {
    "still": lambda photo: attacks.still_repeated(photo, 30),
    "screen": lambda photo: attacks.screen(photo, 30, seed=11),
    "tilted left-right": lambda photo: attacks.perspective(photo, 30, "yaw", 35.0, seed=5),
    "tilted up-down": lambda photo: attacks.perspective(photo, 30, "pitch", -35.0, seed=6),
}


@pytest.mark.parametrize("attack", sorted(PI_ATTACKS))
def test_the_pi_refuses_a_photo_held_to_the_camera(
    pi_auth: core.Authenticator, liveness: Path, attack: str
) -> None:
    person = clips(liveness)[BLINK_CLIP].person
    with Image.open(enrolment_still(liveness, person)) as im:
        jpegs = PI_ATTACKS[attack](im.convert("RGB"))
    for actions in (("blink",), ("turn_left",), ("turn_right",)):
        result = pi_login(pi_auth, jpegs, actions)
        assert (result["decision"], result["user"]) == ("rejected", None), (actions, result)
        live = result["liveness"]
        assert isinstance(live, dict) and live["passed"] is False


def test_the_pi_refuses_a_genuine_clip_of_the_wrong_action_and_two_people_spliced(
    pi_auth: core.Authenticator, liveness: Path
) -> None:
    all_clips = clips(liveness)
    blink, turn = all_clips[BLINK_CLIP], all_clips[TURN_CLIP]
    assert pi_login(pi_auth, blink.jpegs(), ("turn_left",))["reason"] == "turn_left"
    assert pi_login(pi_auth, turn.jpegs(), ("turn_right",))["reason"] == "turn_right"
    n = min(len(blink.frames), len(turn.frames))
    spliced = attacks.splice(blink.jpegs()[:n], turn.jpegs()[:n])
    assert pi_login(pi_auth, spliced, ("turn_left",))["user"] is None
