"""A liveness login: one burst of frames, answering one challenge, decided by the web and the Pi alike.

Each frame is looked at as it arrives (`BurstVerifier.add`): the face is detected (HOG, every frame,
so a second face anywhere is seen) and its 68 landmarks found, ~8 ms a frame at 320 px here. The
128-d descriptor, ~80 ms, is computed on three frames only, at `finish`: the first frame, and the
frames where the actions were seen (an open-eyed frame beside the blink, a frame part-way into
each turn), so the person who blinked and turned is the person who is matched. All three must be
the same enrolled user; two must pass the threshold and margin, and the third must be nearest to
that user within THIRD_SLACK of the threshold.

The challenge itself (exists, unused, unexpired) is the caller's: the web's ChallengeStore, or the
Pi's own. `finish` checks that the burst's capture times fit the challenge's window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from facelogin.login import liveness
from facelogin.login.challenge import Challenge
from facelogin.login.match import ACCEPTED, Gallery, Match, best_match, decide_frame

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
LANDMARK_SOURCE = "dlib 68-point predictor (iBUG 300-W), face_recognition_models"

# Frames are looked at up to FRAME_HEIGHT px high: eyelids are a few pixels tall at 320 px, and
# the landmarks' noise there reads like a blink. Faces are found on a copy DETECT_HEIGHT high.
FRAME_HEIGHT = 480
DETECT_HEIGHT = 320
FEWEST_FRAMES = 12  # ~1.2 s at 10 fps: less cannot show an action and its return
MOST_FRAMES = 80
SHORTEST_BURST = 1.0  # s between the first and last capture
LONGEST_GAP = 0.5  # s between two frames: longer hides what happened in between
CLOCK_SLACK = 0.5  # s: the client's capture span may exceed the server's window by this much
THIRD_SLACK = 0.1
LARGEST_JUMP = 0.6  # face centre moving more than this many face widths between frames: a cut


class LandmarkModel:
    """dlib's HOG detector and 68-point shape predictor, and the 5-point one the encoder is aligned with.

    The 68-point model's licence (iBUG 300-W) excludes commercial use: see the README. Another
    source giving the same 68-point layout can stand in for it (`LandmarkSource` in the README).
    """

    name = LANDMARK_SOURCE

    def __init__(self, models_dir: Path) -> None:
        import dlib

        from facelogin.faces import frontal_detector

        self._dlib = dlib
        self.detector = frontal_detector()  # the encoder's own: one decision at a time uses either
        self.predictor = dlib.shape_predictor(str(models_dir / LANDMARKS_68))

    def boxes(self, pixels: np.ndarray, upsample: int = 0) -> list[Any]:
        """Faces found on a copy at most DETECT_HEIGHT high (HOG's cost grows with the area), as boxes
        in `pixels`' own coordinates."""
        height = pixels.shape[0]
        if height <= DETECT_HEIGHT:
            return list(self.detector(pixels, upsample))
        from PIL import Image

        step = int(np.ceil(height / DETECT_HEIGHT))
        small = np.asarray(Image.fromarray(pixels).reduce(step))
        return [
            self._dlib.rectangle(r.left() * step, r.top() * step, r.right() * step, r.bottom() * step)
            for r in self.detector(small, upsample)
        ]

    def points(self, pixels: np.ndarray, box: Any) -> np.ndarray:
        shape = self.predictor(pixels, box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def box_around(self, points: np.ndarray, width: int, height: int) -> Any:
        """The detector-like box of last frame's landmarks: where to look when the detector misses
        a face that is turned or blurred by the turn."""
        left, top = points.min(0)
        right, bottom = points.max(0)
        pad = 0.1 * (right - left)
        return self._dlib.rectangle(
            int(max(0, left - pad)),
            int(max(0, top - pad)),
            int(min(width - 1, right + pad)),
            int(min(height - 1, bottom + pad)),
        )


@lru_cache(maxsize=1)
def load_landmarks() -> LandmarkModel:
    """The landmark model, once per process (parsing its 100 MB file takes ~0.75 s of CPU), shared by
    every Authenticator: a bundle published overnight does not load it again. Like `load_faces`'
    engine it is used one decision at a time (the web's Engine and the Pi's loop decide in turn)."""
    from facelogin.faces import models_dir

    folder = models_dir()
    if folder is None or not (folder / LANDMARKS_68).is_file():
        raise ModuleNotFoundError("face_recognition_models", name="face_recognition_models")
    return LandmarkModel(folder)


@dataclass
class _Seen:
    time: float
    pixels: np.ndarray
    faces: int  # detector's count (0 when only tracked)
    points: np.ndarray | None
    box: tuple[int, int, int, int] | None  # top, right, bottom, left
    tracked: bool = False


@dataclass
class BurstResult:
    decision: str  # accepted / rejected
    user: str | None
    reason: str | None  # the failing check (liveness) or the match's reason
    message: str | None  # what the person is told
    liveness: dict[str, Any]
    matches: list[Match] = field(default_factory=list)
    frames: int = 0
    ms: dict[str, float] = field(default_factory=dict)


class BurstVerifier:
    """Decides one burst against one challenge's actions; frames may be added as they are captured."""

    def __init__(
        self,
        faces: Any,
        landmarks: LandmarkModel,
        gallery: Gallery,
        threshold: float,
        margin: float,
        actions: Iterable[str],
        mirrored: bool = False,
        eager: bool = False,
    ) -> None:
        """`eager`: encode the first face as soon as it is seen (frames arriving from a camera), so
        that only two descriptors are left for after the last frame."""
        self.faces = faces
        self.landmarks = landmarks
        self.gallery = gallery
        self.threshold = threshold
        self.margin = margin
        self.actions = tuple(actions)
        self.mirrored = mirrored
        self.eager = eager
        self.seen: list[_Seen] = []
        self._encoded: dict[int, np.ndarray] = {}
        self.ms = {"landmarks": 0.0, "encode": 0.0, "checks": 0.0}

    def add(self, pixels: np.ndarray, t: float) -> None:
        """Look at one frame (RGB, already reduced) captured at `t` seconds (any origin, increasing)."""
        start = time.perf_counter()
        boxes = self.landmarks.boxes(pixels)
        previous = next((s for s in reversed(self.seen) if s.points is not None), None)
        if len(boxes) == 1:
            box, tracked = boxes[0], False
        elif not boxes and previous is not None and previous.points is not None:
            box, tracked = self.landmarks.box_around(previous.points, pixels.shape[1], pixels.shape[0]), True
        else:
            self.seen.append(_Seen(t, pixels, len(boxes), None, None))
            self.ms["landmarks"] += _ms(start)
            return
        points = self.landmarks.points(pixels, box)
        rect = (max(box.top(), 0), box.right(), box.bottom(), max(box.left(), 0))
        self.seen.append(_Seen(t, pixels, 0 if tracked else 1, points, rect, tracked))
        self.ms["landmarks"] += _ms(start)
        if self.eager and not self._encoded and not tracked:
            self._encode(len(self.seen) - 1)

    def _encode(self, index: int) -> np.ndarray:
        if index not in self._encoded:
            s = self.seen[index]
            t = time.perf_counter()
            (self._encoded[index],) = self.faces.face_encodings(s.pixels, known_face_locations=[s.box])
            self.ms["encode"] += _ms(t)
        return self._encoded[index]

    def finish(self, window: float | None = None) -> BurstResult:
        """The decision. `window`: seconds from the challenge's issue to the burst's arrival (the web),
        against which the capture times are checked; None when the capture was ours (the Pi)."""
        start = time.perf_counter()
        timing = self._timing_problem(window)
        if timing is not None:
            return self._refused(timing)
        if any(s.faces > 1 for s in self.seen):
            return self._refused("several faces")
        times = np.array([s.time - self.seen[0].time for s in self.seen])
        points = [s.points for s in self.seen]
        if self._cut():
            return self._refused("identity")
        verdict = liveness.check_actions(self.actions, times, points, self.mirrored)
        self.ms["checks"] += _ms(start)
        if not verdict.passed:
            return self._refused(verdict.check or "face", verdict, self._nearest())
        return self._identify(verdict)

    def _nearest(self) -> list[Match]:
        """Whose face a refused burst showed (for the audit record and the per-account limits)."""
        usable = [i for i, s in enumerate(self.seen) if s.points is not None and not s.tracked]
        return [best_match(self.gallery, self._encode(usable[0]))] if usable else []

    def _timing_problem(self, window: float | None) -> str | None:
        n = len(self.seen)
        if n < FEWEST_FRAMES or n > MOST_FRAMES:
            return "timing"
        times = np.array([s.time for s in self.seen])
        gaps = np.diff(times)
        span = times[-1] - times[0]
        if (gaps <= 0).any() or gaps.max() > LONGEST_GAP or span < SHORTEST_BURST:
            return "timing"
        if window is not None and span > window + CLOCK_SLACK:
            return "timing"
        return None

    def _cut(self) -> bool:
        """A jump of the face between two frames that no head makes in a tenth of a second."""
        previous = None
        for s in self.seen:
            if s.box is None:
                continue
            top, right, bottom, left = s.box
            centre, width = np.array([(left + right) / 2, (top + bottom) / 2]), max(1, right - left)
            if previous is not None:
                p_centre, p_width = previous
                if np.linalg.norm(centre - p_centre) > LARGEST_JUMP * max(width, p_width):
                    return True
                if not 0.6 < width / p_width < 1 / 0.6:
                    return True
            previous = (centre, width)
        return False

    def _descriptor_frames(self, verdict: liveness.Verdict) -> list[int]:
        """The first frame with a face, and for each action the frame that shows who did it."""
        usable = [i for i, s in enumerate(self.seen) if s.points is not None and not s.tracked]
        if not usable:
            return []
        chosen = [usable[0]]
        times = np.array([s.time - self.seen[0].time for s in self.seen])
        for f in verdict.findings:
            if f.time is None:
                continue
            at = int(np.argmin(np.abs(times - f.time)))
            if f.action == liveness.BLINK:
                # An open-eyed frame just before the blink.
                before = [i for i in usable if i < at]
                pick = before[-2] if len(before) >= 2 else (before[-1] if before else at)
            else:
                # Part-way into the turn: between the turn's start and its peak.
                before = [i for i in usable if i <= at]
                pick = before[len(before) * 3 // 4] if before else at
            if pick not in chosen and pick in usable:
                chosen.append(pick)
        for i in (usable[-1], usable[len(usable) // 2]):
            if len(chosen) >= 3:
                break
            if i not in chosen:
                chosen.append(i)
        return chosen[:3]

    def _identify(self, verdict: liveness.Verdict) -> BurstResult:
        matches: list[Match] = []
        decisions = []
        for i in self._descriptor_frames(verdict):
            match = best_match(self.gallery, self._encode(i))
            matches.append(match)
            decisions.append(decide_frame(1, match, self.threshold, self.margin))
        users = {m.user for m in matches}
        accepted = [d for d in decisions if d.decision == ACCEPTED]
        if len(users) == 1 and len(accepted) >= min(2, len(matches)):
            (user,) = users
            third_ok = all(
                m.distance is not None and m.distance < self.threshold + THIRD_SLACK for m in matches
            )
            if user is not None and third_ok:
                return BurstResult(
                    ACCEPTED, user, None, None, verdict.record(), matches, len(self.seen), self._ms()
                )
        if len(users) > 1 and len(accepted) >= 1:
            reason = "identity"
        else:
            reasons = [d.reason for d in decisions if d.reason]
            reason = max(set(reasons), key=reasons.count) if reasons else "unknown"
        return BurstResult(
            "rejected", None, reason, None, verdict.record(), matches, len(self.seen), self._ms()
        )

    def _refused(
        self, check: str, verdict: liveness.Verdict | None = None, matches: list[Match] | None = None
    ) -> BurstResult:
        record = (verdict or liveness.failed(check)).record()
        return BurstResult(
            "rejected", None, check, liveness.MESSAGES.get(check), record, matches or [], len(self.seen),
            self._ms(),
        )  # fmt: skip

    def _ms(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in self.ms.items()}


def window_of(challenge: Challenge, received: float) -> float:
    """Seconds the burst can have been captured in: from the challenge's issue to its arrival."""
    return received - challenge.issued


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
