"""Is a present person doing what was asked? Pure checks on a burst's face landmarks.

Values in, values out (numpy only): per frame the capture time and the 68 landmarks of the one face
(iBUG 300-W layout, as dlib's predictor gives them), in the frame's pixels. What is checked:

- **blink**: the eyes' openness dips and recovers within half a second. Openness is measured in the
  face's own plane: each frame's eye points are mapped through the homography that takes the
  frame's rigid points (eye corners, nose bridge, face contour) back to the reference frame's, so
  a photo tilted toward or away from the camera, which squashes the eyes with everything else,
  shows no dip; only eyelids that move against the rest of the face do.
- **turn_left / turn_right**: the person's own left and right. In a camera image that is not
  mirrored, a turn to the person's left moves the nose toward the image's right edge. The nose's
  position between the two sides of the face contour (roll removed) leaves its rest value by at
  least TURN_PEAK, holds past TURN_HOLD for two frames, and comes back; and at the turn the nose
  tip leaves the plane that the eye corners and the contour follow (PARALLAX_MIN): a head has depth,
  a picture moved, tilted or warped in perspective keeps every point on one homography.
- the actions happen in the order asked, and the face moves at all (a still picture sent again and
  again has landmarks that do not move).

Each check either passes or names what it did not see, in words a person can act on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

BLINK = "blink"
TURN_LEFT = "turn_left"
TURN_RIGHT = "turn_right"
ACTIONS = (BLINK, TURN_LEFT, TURN_RIGHT)
TURNS = (TURN_LEFT, TURN_RIGHT)

# iBUG 300-W indices.
CONTOUR_LEFT = list(range(0, 9))  # image-left half of the jaw line, down to the chin
CONTOUR_RIGHT = list(range(8, 17))
NOSE_TIP = 30
NOSE_LOWER = [30, 31, 32, 33, 34, 35]  # tip and base: the points furthest out of the face's plane
RIGHT_EYE = [36, 37, 38, 39, 40, 41]  # image-left eye
LEFT_EYE = [42, 43, 44, 45, 46, 47]
# Points that stay on one surface whatever the mouth and eyelids do: eye corners, the top of the
# nose bridge, and the upper face contour (the jaw below it moves with the mouth).
PLANE = [0, 1, 2, 3, 13, 14, 15, 16, 27, 36, 39, 42, 45]

# Thresholds, measured on the clips of ../shared/faces/liveness (python -m bench.liveness --explain)
# and on still photos moved, tilted and re-compressed (the attacks of the same bench).
BLINK_CLOSED = 0.68  # a blink's lowest openness, as a share of the burst's open-eye level
BLINK_DEPTH = 0.6  # ... and of the open level around it (genuine 0.45-0.55; squints, smiles 0.65+)
BLINK_LONGEST = 0.45  # s: nearer closed than open for longer than this is not a blink
BLINK_RECOVERY = 0.6  # s: open again within this long before and after the dip
REST_FRAMES = 3  # the first frames give the rest pose a turn starts from
TURN_PEAK = 0.24  # the nose's move from its rest position, in half face widths (genuine 0.28+,
# a talking head's sway up to 0.2)
TURN_HOLD = 0.14  # ... and at least this much in two frames
TURN_RETURN = 0.5  # back to at most this share of the peak afterwards
PARALLAX_MIN = 0.1  # the nose tip off the face plane at the turn, in eye distances (genuine 0.14+,
# photos moved, tilted or warped under 0.05)
STILL_MOTION = 0.004  # landmarks moving less than this (eye distances) in every frame: a still picture
MIN_FACE_FRAMES = 0.75  # share of frames in which the face must be found


@dataclass(frozen=True)
class Finding:
    """One action seen (or not): when, and the measure that decided it."""

    action: str
    seen: bool
    time: float | None = None  # s from the burst's first frame: the action's peak
    measure: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """Whether the burst shows a live person doing the challenge; `check` names the one that failed."""

    passed: bool
    check: str | None = None  # None when passed
    message: str | None = None  # what the person is told
    findings: list[Finding] = field(default_factory=list)

    def record(self) -> dict[str, object]:
        """For the audit record and the operator: no distances, only what was and was not seen."""
        return {
            "passed": self.passed,
            "check": self.check,
            "actions": [
                {"action": f.action, "seen": f.seen, "at": None if f.time is None else round(f.time, 2)}
                for f in self.findings
            ],
        }


# What the person is told when a check fails: what to do, never a number.
MESSAGES = {
    "challenge": "This login attempt has expired or was already used: press Start to try again.",
    "timing": "The frames did not come from this login attempt: press Start to try again.",
    "face": "We lost sight of your face: keep your whole face in the picture and try again.",
    "several faces": "Several faces seen: only the person logging in may be in front of the camera.",
    "still": "We saw a still picture, not a person: look at the camera yourself and try again.",
    "flat": "We could not see your head turn: turn your whole head, not the phone or the picture, "
    "and try again.",
    BLINK: "We did not see you blink: try again in better light, and blink once, clearly.",
    TURN_LEFT: "We did not see you turn your head to your left: turn it clearly, then face the camera again.",
    TURN_RIGHT: "We did not see you turn your head to your right: turn it clearly, then face the camera "
    "again.",
    "order": "We saw the actions in the wrong order: follow the prompts one at a time and try again.",
    "identity": "The face changed during the login: only the person logging in may be in front of the "
    "camera.",
}


def failed(check: str, findings: list[Finding] | None = None) -> Verdict:
    return Verdict(False, check, MESSAGES[check], findings or [])


def eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))


def level(points: np.ndarray) -> np.ndarray:
    """The landmarks with roll removed: eye centres on a horizontal line, centred, in eye distances."""
    right, left = points[RIGHT_EYE].mean(0), points[LEFT_EYE].mean(0)
    d = left - right
    scale = float(np.hypot(*d)) or 1.0
    c, s = d / scale
    rotate = np.array([[c, s], [-s, c]])
    return ((points - (left + right) / 2) @ rotate.T) / scale


def nose_position(points: np.ndarray) -> float:
    """Where the nose tip sits between the two sides of the face contour at its height: 0 in the middle,
    -1 at the image-left side, +1 at the image-right side. Turning the head moves it; moving, rolling
    or scaling the face does not."""
    q = level(points)
    y = q[NOSE_TIP, 1]

    def side(indices: list[int]) -> float:
        c = q[indices]
        order = np.argsort(c[:, 1])
        return float(np.interp(y, c[order, 1], c[order, 0]))

    left, right = side(CONTOUR_LEFT), side(CONTOUR_RIGHT)
    width = right - left
    if width <= 1e-6:
        return 0.0
    return float((2 * q[NOSE_TIP, 0] - left - right) / width)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking `src` points to `dst` (least squares, normalised DLT)."""

    def normalise(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centre = p.mean(0)
        spread = np.sqrt(((p - centre) ** 2).sum(1).mean()) or 1.0
        k = np.sqrt(2) / spread
        t = np.array([[k, 0, -k * centre[0]], [0, k, -k * centre[1]], [0, 0, 1]])
        return (p - centre) * k, t

    a, ta = normalise(np.asarray(src, float))
    b, tb = normalise(np.asarray(dst, float))
    rows = []
    for (x, y), (u, v) in zip(a, b, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(tb) @ h @ ta
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h


def project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.c_[points, np.ones(len(points))] @ h.T
    return p[:, :2] / p[:, 2:3]


def openness(eye: np.ndarray) -> float:
    """Eye aspect ratio: the two eyelid gaps over the corner-to-corner width."""
    gaps = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    width = np.linalg.norm(eye[0] - eye[3])
    return float(gaps / (2 * width)) if width > 0 else 0.0


@dataclass(frozen=True)
class Signals:
    """Per-frame measures of a burst (NaN where the face was not found)."""

    times: np.ndarray
    openness: np.ndarray  # in the reference frame's plane
    nose: np.ndarray  # nose_position
    parallax: np.ndarray  # horizontal offset of the nose from the plane's prediction, eye distances
    motion: np.ndarray  # mean landmark move from the reference frame, eye distances


def signals(times: np.ndarray, points: list[np.ndarray | None]) -> Signals:
    """Measure every frame against the first frame that has a face (the person's rest pose)."""
    n = len(points)
    out = {k: np.full(n, np.nan) for k in ("openness", "nose", "parallax", "motion")}
    reference = next((p for p in points if p is not None), None)
    if reference is None:
        return Signals(np.asarray(times, float), **out)
    ref_plane = reference[PLANE]
    for i, p in enumerate(points):
        if p is None:
            continue
        iod = eye_distance(p) or 1.0
        to_ref = homography(p[PLANE], ref_plane)
        eyes = project(to_ref, p[RIGHT_EYE + LEFT_EYE])
        out["openness"][i] = (openness(eyes[:6]) + openness(eyes[6:])) / 2
        out["nose"][i] = nose_position(p)
        from_ref = homography(ref_plane, p[PLANE])
        predicted = project(from_ref, reference[NOSE_LOWER])
        # Horizontal in the face's own frame (roll removed), signed as the image's x.
        d = p[LEFT_EYE].mean(0) - p[RIGHT_EYE].mean(0)
        axis = d / (np.hypot(*d) or 1.0)
        out["parallax"][i] = float(((p[NOSE_LOWER] - predicted) @ axis).mean() / iod)
        out["motion"][i] = float(np.linalg.norm(p - reference, axis=1).mean() / iod)
    return Signals(np.asarray(times, float), **out)


def find_blink(s: Signals) -> Finding:
    """A dip in openness, to at most BLINK_DEPTH of the open level just before and just after it
    (within BLINK_RECOVERY s on each side) and under BLINK_CLOSED of the burst's open level, that
    lasts at most BLINK_LONGEST s. Squints, smiles and downcast eyes are slower or shallower."""
    o, t = s.openness, s.times
    valid = ~np.isnan(o)
    if valid.sum() < 3:
        return Finding(BLINK, False, detail="too few frames with eyes")
    level_open = float(np.percentile(o[valid], 75))
    if level_open <= 0:
        return Finding(BLINK, False, detail="no open eyes")
    ratio = o / level_open
    deepest = 1.0
    for i in np.argsort(np.where(valid, ratio, np.inf)):
        if not valid[i] or ratio[i] > BLINK_CLOSED:
            break
        before = [j for j in range(i) if valid[j] and t[i] - t[j] <= BLINK_RECOVERY]
        after = [j for j in range(i + 1, len(o)) if valid[j] and t[j] - t[i] <= BLINK_RECOVERY]
        if not before or not after:
            continue  # at the edge of the burst: cannot tell a blink from eyes that stay shut
        around = min(max(ratio[j] for j in before), max(ratio[j] for j in after))
        depth = float(ratio[i] / around)
        deepest = min(deepest, depth)
        if depth > BLINK_DEPTH:
            continue
        # How long the eyes stay nearer closed than open.
        half = (ratio[i] + around) / 2
        lo = hi = i
        while lo > 0 and valid[lo - 1] and ratio[lo - 1] < half:
            lo -= 1
        while hi < len(o) - 1 and valid[hi + 1] and ratio[hi + 1] < half:
            hi += 1
        if t[hi] - t[lo] > BLINK_LONGEST:
            continue
        return Finding(BLINK, True, float(t[i]), round(depth, 3))
    lowest = float(np.nanmin(ratio))
    return Finding(BLINK, False, detail=f"lowest openness {lowest:.2f}, deepest dip {deepest:.2f}")


def find_turn(s: Signals, action: str, mirrored: bool = False) -> Finding:
    """A turn to the person's own left or right (image-right or image-left when not mirrored) and back."""
    # Image direction of the nose: to the person's left is toward image-right in an unmirrored frame.
    sign = 1.0 if (action == TURN_LEFT) != mirrored else -1.0
    nose, par, t = s.nose, s.parallax, s.times
    valid = ~np.isnan(nose)
    if valid.sum() < 3:
        return Finding(action, False, detail="too few frames with a face")
    first = np.flatnonzero(valid)[:REST_FRAMES]
    rest = float(np.median(nose[first]))
    moved = sign * (nose - rest)
    peak_i = int(np.nanargmax(np.where(valid, moved, -np.inf)))
    peak = float(moved[peak_i])
    if peak < TURN_PEAK:
        return Finding(action, False, detail=f"nose moved {peak:.2f}, needs {TURN_PEAK}")
    held = np.flatnonzero(valid & (moved >= TURN_HOLD))
    if len(held) < 2:
        return Finding(action, False, detail="turn not held")
    after = moved[peak_i + 1 :][valid[peak_i + 1 :]]
    if not len(after) or after.min() > TURN_RETURN * peak:
        return Finding(action, False, detail="did not come back")
    # Depth: at the frames of the turn the nose leaves the plane of the face's rigid points.
    depth = float(np.nanmax(sign * par[held]))
    if depth < PARALLAX_MIN:
        return Finding(action, False, detail=f"flat: nose parallax {depth:.3f}", measure=depth)
    return Finding(action, True, float(t[peak_i]), round(peak, 3))


def check_actions(
    actions: tuple[str, ...] | list[str],
    times: np.ndarray,
    points: list[np.ndarray | None],
    mirrored: bool = False,
) -> Verdict:
    """The liveness part of a decision: the face moves, each action is seen, in the order asked."""
    s = signals(times, points)
    found = sum(p is not None for p in points)
    if found < MIN_FACE_FRAMES * len(points) or found < 3:
        return failed("face")
    if np.nanmax(s.motion) < STILL_MOTION:
        return failed("still")
    findings = [find_blink(s) if a == BLINK else find_turn(s, a, mirrored) for a in actions]
    for f in findings:
        if not f.seen:
            flat = f.action in TURNS and f.detail.startswith("flat")
            return failed("flat" if flat else f.action, findings)
    times_seen = [f.time for f in findings]
    if any(b <= a for a, b in itertools.pairwise(times_seen) if a is not None and b is not None):
        return failed("order", findings)
    return Verdict(True, None, None, findings)
