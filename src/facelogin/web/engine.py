"""The web login's engine: `facelogin login`'s Authenticator on the current bundle, reloaded when a new
bundle (or a new calibration) is published, deciding on frames a browser sent.

The rule is the Pi's, unchanged: exactly one face, distance under the threshold (the calibrated one
when present) with a margin to the next user, k of n frames agreeing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelogin import login
from facelogin.adapters.stores import MissingObject
from facelogin.bundle import BundleError, key_for, parse_manifest
from facelogin.login.liveness import MESSAGES as LIVENESS_MESSAGES
from facelogin.login.match import AMBIGUOUS, DISAGREE, NO_FACE, SEVERAL_FACES, UNKNOWN
from facelogin.login.source import CALIBRATION, BundleSource

log = logging.getLogger(__name__)

NO_BUNDLE = "no encodings bundle yet at {location}: run `facelogin sync` first"

# What a person in front of the camera is told, for each reason the rule gives.
MESSAGES = {
    NO_FACE: "No face found: look straight at the camera, in good light, and try again.",
    SEVERAL_FACES: "Several faces seen: only the person logging in may be in front of the camera.",
    UNKNOWN: "Face not recognised: you are not enrolled, or your photos do not match. "
    "Ask for your photos to be added, then try again.",
    AMBIGUOUS: "Face not recognised with certainty: it is close to more than one enrolled person. "
    "Try again facing the camera.",
    DISAGREE: "Face not recognised: the frames did not agree on one person. Hold still and try again.",
}
_DATA_URL_PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,", "data:image/webp;base64,")


class NoBundle(RuntimeError):
    """No usable bundle: nothing has been synced (or published) yet."""


class BadFrames(ValueError):
    """The frames sent cannot be decided on; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def message_for(result: dict[str, Any]) -> str:
    if result["decision"] == "accepted":
        return f"Welcome, {result['user']}."
    reason = str(result.get("reason"))
    return LIVENESS_MESSAGES.get(reason) or MESSAGES.get(reason) or f"Not accepted: {reason}."


@dataclass(frozen=True)
class FrameLimits:
    most: int  # n: frames one request may send
    agree: int  # k: frames that must agree (and so the fewest a request may send)
    max_bytes: int  # one encoded frame
    max_pixels: int  # one decoded frame, from its header


def image_bytes(text: str, index: int, limits: FrameLimits) -> bytes:
    """One frame's bytes from a data URL (or bare base64), within the size limit."""
    for prefix in _DATA_URL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if len(text) > limits.max_bytes * 4 // 3 + 4:
        raise BadFrames(f"frame {index + 1} is larger than {limits.max_bytes:,} bytes", 413)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadFrames(f"frame {index + 1} is not base64") from None
    if len(data) > limits.max_bytes:
        raise BadFrames(f"frame {index + 1} is larger than {limits.max_bytes:,} bytes", 413)
    return data


def fingerprint(location: str) -> str | None:
    """What changes when a new bundle or calibration is published there: the manifest's sha256 and the
    calibration's. None when nothing is published yet; BundleError when what is there cannot be read."""
    source = BundleSource.parse(location)
    try:
        raw = source.store.get(key_for(source.prefix, source.manifest))
    except MissingObject:
        return None
    except Exception as exc:  # noqa: BLE001 - denied or unreachable: the bundle is unusable, as read_object says
        raise BundleError(
            f"{source.describe()}: cannot read ({getattr(exc, 'strerror', None) or exc})"
        ) from None
    sha = str(parse_manifest(raw, source.describe())["sha256"])
    calibration = source.read_optional(CALIBRATION)
    return f"{sha}:{hashlib.sha256(calibration).hexdigest() if calibration else '-'}"


class Engine:
    """One Authenticator, replaced when the published bundle changes; decisions one at a time.

    The bundle is looked at again on a login at most every `check_seconds`; while the published
    one is unreadable the last good one goes on deciding (as on the Pi).
    """

    def __init__(
        self,
        location: str,
        cache_dir: Path,
        options: login.LoginOptions,
        check_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.cache_dir = cache_dir
        self.options = options
        self.check_seconds = check_seconds
        self.clock = clock
        self._auth: login.Authenticator | None = None
        self._fingerprint: str | None = None
        self._checked = float("-inf")
        self._problem: str | None = None
        self._loading = threading.Lock()
        # dlib's detector is one object per process: one decision at a time.
        self._deciding = threading.Lock()

    def authenticator(self) -> login.Authenticator:
        """The Authenticator of the current bundle; NoBundle when there has never been one."""
        with self._loading:
            now = self.clock()
            if self._auth is None or now - self._checked >= self.check_seconds:
                self._checked = now
                self._refresh()
            if self._auth is None:
                raise NoBundle(self._problem or NO_BUNDLE.format(location=self.location))
            return self._auth

    def _refresh(self) -> None:
        try:
            current = fingerprint(self.location)
            problem = None if current else NO_BUNDLE.format(location=self.location)
        except BundleError as exc:
            current, problem = None, str(exc)
        if self._auth is not None and (current is None or current == self._fingerprint):
            if problem:  # unpublished or unreadable now: the last good bundle goes on deciding
                log.warning("%s; still deciding with bundle %s", problem, self._auth.loaded.bundle.version)
            return
        try:
            loaded = login.load_login_bundle(self.location, self.cache_dir)  # else the cached one
        except login.LoginError as exc:
            self._problem = problem or str(exc)
            log.warning("%s", self._problem)
            return
        for message in loaded.messages:
            log.warning("%s", message)
        self._auth = login.Authenticator(loaded, self.options)
        self._fingerprint = current
        self._problem = None
        log.info(
            "deciding with bundle %s (%d users, threshold %.3f %s)",
            loaded.bundle.version,
            len(self._auth.gallery),
            self._auth.threshold,
            self._auth.threshold_source,
        )

    def status(self) -> dict[str, Any]:
        """For the login page and /healthz: the bundle in use, or why there is none."""
        try:
            auth = self.authenticator()
        except NoBundle as exc:
            return {"ready": False, "problem": str(exc)}
        bundle = auth.loaded.bundle
        return {
            "ready": True,
            "bundle": bundle.version,
            "users": len(auth.gallery),
            "threshold": auth.threshold,
            "threshold_source": auth.threshold_source,
        }

    def load_liveness(self) -> None:
        """Load the landmark model now (~0.5 s), not on the first person's login."""
        with contextlib.suppress(NoBundle):  # else loaded with the first bundle
            self.authenticator().load_liveness()

    def decide(self, frames: list[login.Frame], agree: int) -> dict[str, Any]:
        """`facelogin login`'s result for these frames: n = the frames sent, k = `agree`."""
        auth = self.authenticator()
        with self._deciding:
            return auth.decide(frames, len(frames), agree)

    def decide_burst(
        self, actions: tuple[str, ...], pixels: list[np.ndarray], times: list[float], window: float
    ) -> dict[str, Any]:
        """The liveness decision on a burst answering a challenge of `actions`, captured within `window` s."""
        auth = self.authenticator()
        with self._deciding:
            return auth.decide_burst(actions, pixels, times, window)
