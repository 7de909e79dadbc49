"""Recorded liveness clips for the tests: the frames of ../shared/faces/liveness as a browser or a
camera would deliver them, and the attacks of bench/attacks.py made from the people's stills."""

from __future__ import annotations

import base64
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLINK_CLIP = "lp_d13__blink__1"  # one clear blink, head frontal
TURN_CLIP = "lp_d3__turn_right__1"  # a head turn toward the image's right: the person's own left


@dataclass(frozen=True)
class Clip:
    name: str
    person: str
    action: str  # the manifest's, in image directions
    fps: float
    frames: list[Path]

    def jpegs(self) -> list[bytes]:
        return [f.read_bytes() for f in self.frames]

    def times(self, start: float = 0.0) -> list[float]:
        return [start + i / self.fps for i in range(len(self.frames))]


def clips(liveness: Path) -> dict[str, Clip]:
    with (liveness / "MANIFEST.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        r["clip"]: Clip(
            r["clip"], r["person"], r["action"], float(r["fps"]),
            sorted((liveness / "clips" / r["clip"]).glob("frame_*.jpg")),
        )
        for r in rows
    }  # fmt: skip


def enrolment_still(liveness: Path, person: str) -> Path:
    return sorted((liveness / "people" / person).glob("*.jpg"))[0]


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def burst_body(challenge: str | None, jpegs: list[bytes], fps: float = 10.0) -> dict[str, Any]:
    """A POST /login body as the login page sends it: frames with capture times in ms."""
    frames = [{"t": 5000.0 + i * 1000.0 / fps, "image": data_url(j)} for i, j in enumerate(jpegs)]
    body: dict[str, Any] = {"frames": frames}
    if challenge is not None:
        body["challenge"] = challenge
    return body
