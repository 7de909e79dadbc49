"""Who is this encoding? Distances to the enrolled users and the accept/reject rule.

Pure numpy: values in, values out. A user's distance is the distance to the mean of their
encodings (rule "mean", the default since bundle format 2's second rule), to the nearest of them
(rule "nearest", bundles of format 1), or to either (rule "nearest-or-mean", format 2's first); a
face is accepted only when that distance is under the threshold AND the next user is at least
`margin` further away, and over several frames only when k of them agree.

Why the mean (`python -m bench.recognition_levers` on the 90 public identities of
bench/recognition_set.csv, 445 photos, 103 strangers; every photo held out in turn): the mean of a
user's photos averages away what each photo has of its own (light, expression, pose), so a new photo
of the person lands nearer to it than to most single photos, while a stranger who happens to
resemble one photo of the user does not come near the mean. Genuine trials accepted 393/445
(nearest) -> 417/445 (mean or nearest-or-mean); impostor trials accepted (a person not enrolled,
against everyone who is) 101/8995 (nearest) and 97/8995 (nearest-or-mean) -> 9/8995 (mean), among
them two sisters (Venus Williams taken for Serena). Each photo as well as the mean gave a user with
two looks (glasses, a beard) the photo nearest to today's, and every stranger near any one photo the
same. 68-point alignment, quality gates and per-user thresholds did not do better (nor, on the
earlier 40 identities, 10 jittered samples per photo); a stricter threshold (0.45) or margin (0.15)
with the mean cut impostor accepts to 6 or 1 of 8995 but turned away 12 or 44 more genuine photos.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Measured on the sample photos (dlib 20, hog, 640 px enrolment): genuine distances 0.05-0.52
# (probes and camera frames at most 0.37), the nearest impostor 0.69. face_recognition's own
# tolerance, 0.6, is for tagging photos; for a login the default is stricter.
DEFAULT_THRESHOLD = 0.5
DEFAULT_MARGIN = 0.1

NEAREST = "nearest"  # each of the user's encodings
NEAREST_OR_MEAN = "nearest-or-mean"  # each of them and, with two or more, their mean
MEAN = "mean"  # the mean of the user's encodings
RULES = (NEAREST, NEAREST_OR_MEAN, MEAN)
DEFAULT_RULE = MEAN

ACCEPTED = "accepted"
REJECTED = "rejected"
NO_FACE = "no face"
SEVERAL_FACES = "several faces"
UNKNOWN = "unknown"
AMBIGUOUS = "ambiguous"
DISAGREE = "frames disagree"


@dataclass(frozen=True)
class Gallery:
    """Enrolled encodings sorted by user, with everything a match needs precomputed."""

    usernames: list[str]  # users that have at least one encoding, in label order
    encodings: np.ndarray  # (N, 128) float64, rows grouped by user
    starts: np.ndarray  # (U,) index of each user's first row, for np.minimum.reduceat
    sq_norms: np.ndarray  # (N,) squared norm of each row
    rule: str = NEAREST

    @classmethod
    def build(
        cls, encodings: np.ndarray, labels: np.ndarray, usernames: Sequence[str], rule: str = NEAREST
    ) -> Gallery:
        encodings = np.asarray(encodings, dtype=np.float64)
        labels = np.asarray(labels)
        if encodings.ndim != 2 or len(encodings) != len(labels):
            raise ValueError(f"encodings {encodings.shape} and labels {labels.shape} do not match")
        if rule not in RULES:
            raise ValueError(f"unknown match rule {rule!r} (known: {', '.join(RULES)})")
        if rule == NEAREST_OR_MEAN:
            encodings, labels = with_means(encodings, labels)
        elif rule == MEAN:
            encodings, labels = means(encodings, labels)
        order = np.argsort(labels, kind="stable")
        matrix = np.ascontiguousarray(encodings[order])
        sorted_labels = labels[order]
        present, starts = np.unique(sorted_labels, return_index=True)
        return cls(
            usernames=[str(usernames[i]) for i in present],
            encodings=matrix,
            starts=starts.astype(np.intp),
            sq_norms=np.einsum("ij,ij->i", matrix, matrix),
            rule=rule,
        )

    def __len__(self) -> int:
        return len(self.usernames)

    def distances(self, encoding: np.ndarray) -> np.ndarray:
        """Euclidean distance from `encoding` to every enrolled row, (N,).

        |a-b|^2 = |a|^2 - 2ab + |b|^2 turns 10,000 subtractions of 128-vectors into one
        matrix-vector product.
        """
        x = np.asarray(encoding, dtype=np.float64)
        sq = self.sq_norms - 2.0 * (self.encodings @ x) + float(x @ x)
        return np.sqrt(np.maximum(sq, 0.0))

    def user_distances(self, encoding: np.ndarray) -> np.ndarray:
        """Per user, the smallest distance to any of their encodings, (U,)."""
        if not len(self.encodings):
            return np.zeros(0)
        return np.minimum.reduceat(self.distances(encoding), self.starts)


def with_means(encodings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`encodings` and, for each label with two or more of them, their mean, labelled alike."""
    users, counts = np.unique(labels, return_counts=True)
    several = users[counts > 1]
    if not len(several):
        return encodings, labels
    means = np.vstack([encodings[labels == u].mean(axis=0) for u in several])
    return np.vstack([encodings, means]), np.concatenate([labels, several])


def means(encodings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per label: the mean of its encodings."""
    users = np.unique(labels)
    if not len(users):
        return encodings, labels
    return np.vstack([encodings[labels == u].mean(axis=0) for u in users]), users


@dataclass(frozen=True)
class Match:
    """The nearest user and how clearly they beat the next one."""

    user: str | None
    distance: float | None
    second_user: str | None
    margin: float | None  # None when only one user is enrolled


def best_match(gallery: Gallery, encoding: np.ndarray) -> Match:
    per_user = gallery.user_distances(encoding)
    if not len(per_user):
        return Match(None, None, None, None)
    if len(per_user) == 1:
        return Match(gallery.usernames[0], float(per_user[0]), None, None)
    two = np.argpartition(per_user, 1)[:2]
    first, second = (two if per_user[two[0]] <= per_user[two[1]] else two[::-1]).tolist()
    return Match(
        gallery.usernames[first],
        float(per_user[first]),
        gallery.usernames[second],
        float(per_user[second] - per_user[first]),
    )


@dataclass(frozen=True)
class FrameDecision:
    """The verdict on one frame: accepted as `match.user`, or rejected with a reason."""

    decision: str
    reason: str | None
    faces: int
    match: Match | None = None


def decide_frame(faces: int, match: Match | None, threshold: float, margin: float) -> FrameDecision:
    """Accept one frame only for exactly one face, a distance under `threshold` and a clear `margin`."""
    if faces == 0:
        return FrameDecision(REJECTED, NO_FACE, faces)
    if faces > 1:
        return FrameDecision(REJECTED, SEVERAL_FACES, faces)
    if match is None or match.distance is None:
        return FrameDecision(REJECTED, UNKNOWN, faces, match)
    if not match.distance < threshold:
        return FrameDecision(REJECTED, UNKNOWN, faces, match)
    if match.margin is not None and match.margin < margin:
        return FrameDecision(REJECTED, AMBIGUOUS, faces, match)
    return FrameDecision(ACCEPTED, None, faces, match)


@dataclass(frozen=True)
class Verdict:
    """The decision over several frames."""

    decision: str
    user: str | None
    reason: str | None
    frames_used: int
    frames_agreeing: int
    frames_required: int
    match: Match | None  # the closest accepted match for `user`, else the closest seen at all


def combine_frames(frames: Sequence[FrameDecision], k: int) -> Verdict:
    """Accept only when at least `k` frames were accepted as the same user."""
    votes = Counter(f.match.user for f in frames if f.decision == ACCEPTED and f.match)
    if votes:
        user, count = votes.most_common(1)[0]
        if count >= k and (len(votes) == 1 or votes.most_common(2)[1][1] < count):
            best = min(
                (f.match for f in frames if f.decision == ACCEPTED and f.match and f.match.user == user),
                key=lambda m: m.distance if m.distance is not None else np.inf,
            )
            return Verdict(ACCEPTED, user, None, len(frames), count, k, best)
    agreeing = max(votes.values(), default=0)
    return Verdict(
        REJECTED, None, _rejection_reason(frames, votes), len(frames), agreeing, k, _closest(frames)
    )


def can_still_agree(frames: Sequence[FrameDecision], k: int, n: int) -> bool:
    """Whether reading up to `n` frames in all could still give `k` agreeing ones (stop early if not)."""
    votes = Counter(f.match.user for f in frames if f.decision == ACCEPTED and f.match)
    return max(votes.values(), default=0) + (n - len(frames)) >= k


def _rejection_reason(frames: Sequence[FrameDecision], votes: Counter[str | None]) -> str:
    if len(votes) > 1:
        return DISAGREE
    reasons = Counter(f.reason for f in frames if f.reason)
    if not reasons:
        return DISAGREE
    # The most frequent reason; ties go to the most serious (several faces beats no face).
    severity = [SEVERAL_FACES, UNKNOWN, AMBIGUOUS, NO_FACE]
    return max(reasons, key=lambda r: (reasons[r], -severity.index(r) if r in severity else -99))


def _closest(frames: Sequence[FrameDecision]) -> Match | None:
    seen = [f.match for f in frames if f.match and f.match.distance is not None]
    return min(seen, key=lambda m: m.distance or 0.0) if seen else None
