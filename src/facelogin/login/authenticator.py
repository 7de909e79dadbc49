"""The login decision: a loaded bundle and the face engine, deciding on frames with the k-of-n rule.

Light on purpose: numpy, Pillow and dlib. Never Prefect or pymongo; boto3 only for an `s3://`
bundle (in `source`), OpenCV or Picamera2 only for a video or a camera (in `frames`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelogin.exits import ERROR, OK, REJECTED
from facelogin.faces import load_faces
from facelogin.login.burst import BurstResult, BurstVerifier, LandmarkModel, load_landmarks
from facelogin.login.errors import LoginError
from facelogin.login.frames import DEFAULT_HEIGHT, Frame, image_frames, video_frames
from facelogin.login.match import (
    ACCEPTED,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    FrameDecision,
    Gallery,
    best_match,
    can_still_agree,
    combine_frames,
    decide_frame,
)
from facelogin.login.source import LoadedBundle

# Detection at the frame's own size first (no upsampling: ~20 ms at 320 px high, faces of 72 px
# and more, as a face at a login camera is), and with one upsampling pass (~4x the cost, faces down
# to ~36 px) only when that finds none: the smaller faces of a group seen from afar are still found
# and the frame refused as "several faces". A face under 72 px far behind a near one goes unseen.
DEFAULT_UPSAMPLE: int | None = None
DEFAULT_FRAMES = 5
DEFAULT_AGREE = 3


@dataclass
class LoginOptions:
    threshold: float | None = None  # None: calibrated value when present, else DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    height: int = DEFAULT_HEIGHT
    upsample: int | None = DEFAULT_UPSAMPLE  # None: 0, then 1 when no face is found
    frames: int = DEFAULT_FRAMES
    agree: int = DEFAULT_AGREE


class Authenticator:
    """A loaded bundle and face model, ready to decide on frames; reused across `--serve` requests."""

    def __init__(self, loaded: LoadedBundle, options: LoginOptions | None = None) -> None:
        start = time.perf_counter()
        self.loaded = loaded
        self.options = options or LoginOptions()
        bundle = loaded.bundle
        self.gallery = Gallery.build(bundle.encodings, bundle.labels, bundle.usernames, bundle.match_rule)
        self.fr = load_faces()
        self._landmarks: LandmarkModel | None = None
        self.model_ms = _ms(start)
        if self.options.threshold is not None:
            self.threshold, self.threshold_source = self.options.threshold, "option"
        elif loaded.calibration is not None:
            self.threshold, self.threshold_source = float(loaded.calibration["threshold"]), "calibrated"
        else:
            self.threshold, self.threshold_source = DEFAULT_THRESHOLD, "default"

    def load_liveness(self) -> LandmarkModel:
        """The 68-point landmark model liveness needs (~0.5 s to load): once, on first use."""
        if self._landmarks is None:
            self._landmarks = load_landmarks()
        return self._landmarks

    def verifier(self, actions: Iterable[str], mirrored: bool = False, eager: bool = False) -> BurstVerifier:
        """A verifier for one burst answering a challenge of `actions`, on this bundle's gallery."""
        return BurstVerifier(
            self.fr,
            self.load_liveness(),
            self.gallery,
            self.threshold,
            self.options.margin,
            actions,
            mirrored,
            eager,
        )

    def decide_burst(
        self,
        actions: Iterable[str],
        pixels: Iterable[np.ndarray],
        times: Iterable[float],
        window: float | None,
        mirrored: bool = False,
    ) -> dict[str, Any]:
        """A liveness decision on a whole burst at once (the web): see `burst_result`."""
        start = time.perf_counter()
        verifier = self.verifier(actions, mirrored)
        for frame, t in zip(pixels, times, strict=True):
            verifier.add(frame, t)
        return self.burst_result(verifier, verifier.finish(window), start)

    def burst_result(self, verifier: BurstVerifier, outcome: BurstResult, start: float) -> dict[str, Any]:
        """The JSON-ready result of a liveness decision, in the shape of `decide`'s."""
        best = next((m for m in outcome.matches if m.user == outcome.user), None) if outcome.user else None
        closest = best or min(
            (m for m in outcome.matches if m.distance is not None),
            key=lambda m: m.distance or 0.0,
            default=None,
        )
        bundle = self.loaded.bundle
        return {
            "decision": outcome.decision,
            "user": outcome.user,
            "reason": outcome.reason,
            "message": outcome.message,
            "liveness": {"mode": "challenge", "asked": list(verifier.actions), **outcome.liveness},
            "distance": _round(closest.distance) if closest else None,
            "margin": _round(closest.margin) if closest else None,
            "nearest": closest.user if closest else None,
            "frames": {"used": outcome.frames, "encoded": len(outcome.matches)},
            "profile_image": bundle.profile(outcome.user) if outcome.user else None,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "margin_required": self.options.margin,
            "bundle": {
                "version": bundle.version,
                "users": len(self.gallery),
                "source": self.loaded.source,
                "from_cache": self.loaded.from_cache,
            },
            "ms": {**outcome.ms, "total": round(_ms(start), 1)},
        }

    def decide(self, frames: Iterable[Frame], n: int, k: int) -> dict[str, Any]:
        """Read up to `n` frames, stopping once `k` agree or can no longer agree; the JSON-ready result."""
        start = time.perf_counter()
        ms = {"decode": 0.0, "detect": 0.0, "encode": 0.0, "match": 0.0}
        decisions: list[FrameDecision] = []
        iterator = iter(frames)
        try:
            while len(decisions) < n:
                t = time.perf_counter()
                frame = next(iterator, None)
                if frame is None:
                    break
                ms["decode"] += _ms(t)  # reading the next frame: decoding, or waiting for the camera
                decisions.append(self._decide_frame(frame.pixels, ms))
                if combine_frames(decisions, k).decision == ACCEPTED:
                    break
                if not can_still_agree(decisions, k, n):
                    break
        finally:
            # Release the camera or video now, not whenever the generator is collected.
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        verdict = combine_frames(decisions, k)
        match = verdict.match
        bundle = self.loaded.bundle
        ms["total"] = _ms(start)
        return {
            "decision": verdict.decision,
            "user": verdict.user,
            "distance": _round(match.distance) if match else None,
            "margin": _round(match.margin) if match else None,
            "nearest": match.user if match else None,
            "reason": verdict.reason,
            "frames": {
                "used": verdict.frames_used,
                "agreeing": verdict.frames_agreeing,
                "required": verdict.frames_required,
            },
            "faces": [d.faces for d in decisions],
            "profile_image": bundle.profile(verdict.user) if verdict.user else None,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "margin_required": self.options.margin,
            "bundle": {
                "version": bundle.version,
                "users": len(self.gallery),
                "source": self.loaded.source,
                "from_cache": self.loaded.from_cache,
            },
            "ms": {key: round(value, 1) for key, value in ms.items()},
        }

    def _decide_frame(self, pixels: np.ndarray, ms: dict[str, float]) -> FrameDecision:
        t = time.perf_counter()
        upsample = self.options.upsample
        boxes = self.fr.face_locations(pixels, number_of_times_to_upsample=upsample or 0)
        if not boxes and upsample is None:
            boxes = self.fr.face_locations(pixels, number_of_times_to_upsample=1)
        ms["detect"] += _ms(t)
        if len(boxes) != 1:
            return decide_frame(len(boxes), None, self.threshold, self.options.margin)
        t = time.perf_counter()
        (encoding,) = self.fr.face_encodings(pixels, known_face_locations=boxes)
        ms["encode"] += _ms(t)
        t = time.perf_counter()
        match = best_match(self.gallery, encoding)
        ms["match"] += _ms(t)
        return decide_frame(1, match, self.threshold, self.options.margin)

    def decide_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """One `--serve` request: {"image": path}, {"images": [paths]} or {"video": path}."""
        height = self.options.height
        if "image" in request or "images" in request:
            paths = [request["image"]] if "image" in request else list(request["images"])
            if not paths or not all(isinstance(p, str) for p in paths):
                raise LoginError('"image" must be a path, "images" a non-empty list of paths')
            n = len(paths)
            k = int(request.get("agree", min(self.options.agree, n)))
            return self.decide(image_frames(paths, height), n, k)
        if "video" in request:
            n = int(request.get("frames", self.options.frames))
            k = int(request.get("agree", self.options.agree))
            return self.decide(video_frames(str(request["video"]), height), n, k)
        raise LoginError('a request needs "image", "images" or "video"')


def error_result(message: str) -> dict[str, Any]:
    return {"decision": "error", "user": None, "reason": message}


def exit_code(result: dict[str, Any]) -> int:
    return {"accepted": OK, "rejected": REJECTED}.get(result["decision"], ERROR)


def serve(
    auth: Authenticator,
    lines: Iterable[str],
    write: Any,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Answer one JSON line per JSON request line until the input ends; returns the requests served.

    `on_result` sees each result once its answer is written (the CLI records decisions with it).
    """
    served = 0
    for line in lines:
        if not line.strip():
            continue
        request: Any = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise LoginError("a request must be a JSON object")
            result = auth.decide_request(request)
        except json.JSONDecodeError as exc:
            result = error_result(f"request is not valid JSON ({exc})")
        except (LoginError, ValueError, TypeError) as exc:
            result = error_result(str(exc))
        if isinstance(request, dict) and "id" in request:
            result["id"] = request["id"]
        write(json.dumps(result) + "\n")
        if on_result is not None:
            on_result(result)
        served += 1
    return served


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
