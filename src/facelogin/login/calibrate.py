"""Calibration: genuine and impostor distances over the enrolled encodings, and the threshold they support.

Leave-one-out: each enrolled encoding is held out in turn and scored the way a login scores a face,
by the bundle's match rule (with "mean", the mean of the user's other encodings), against its own
user's other encodings (genuine) and every other user (impostor). The expected error rates apply the
whole login rule, threshold and margin: the false-reject rate is the share of held-out encodings not
accepted as their own user; the false-accept rate the share accepted as someone when their own user
is not enrolled at all (the stranger at the door who resembles an enrolled user).

Those distances mean something only when every user is one person and every person one user.
The enrolled set is first checked with facelogin.sync.identity: one person under two names, or a
user whose encodings include someone else, makes genuine and impostor distances collide (a
"threshold" of 0.0, or one tightened by a duplicate) and is reported as a collision naming the
users, for which no threshold is recommended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelogin.bundle import Bundle
from facelogin.login.errors import LoginError
from facelogin.login.match import (
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    MEAN,
    NEAREST,
    NEAREST_OR_MEAN,
    RULES,
)
from facelogin.login.source import CALIBRATION_FORMAT
from facelogin.sync.identity import LOOKALIKE, check_identities, enrolled_candidates


@dataclass(frozen=True)
class Calibration:
    """Leave-one-out distances over the enrolled encodings and the threshold they support."""

    genuine: np.ndarray  # each encoding's distance to the rest of its own user's encodings
    impostor: np.ndarray  # each encoding's per-user distance to every other user
    largest_safe: float | None  # the largest threshold accepting no impostor (None: no impostors)
    threshold: float  # recommended: largest_safe, capped at `ceiling`
    false_reject_rate: float | None  # held-out encodings not accepted as their user (threshold + margin)
    ceiling: float
    notes: list[str] = field(default_factory=list)
    # Identities that collide ({"users": [...], "problem": "..."}): the distances cannot be trusted.
    collisions: list[dict[str, Any]] = field(default_factory=list)
    false_accept_rate: float | None = None  # encodings accepted as someone when their user is not enrolled
    rule: str = NEAREST
    margin: float = DEFAULT_MARGIN


def per_user_distances(
    encodings: np.ndarray, labels: np.ndarray, rule: str = NEAREST
) -> tuple[np.ndarray, np.ndarray]:
    """(N, U) each encoding's distance to each user by `rule`, itself left out; and (N, U) own-user mask.

    With "mean" a user is their mean, as in the login's gallery: for another user, the mean of all
    theirs; for the encoding's own user, the mean of the others (inf when it has none). With
    "nearest-or-mean" a user's mean counts as well as each encoding, when it is made of two or more.
    """
    if rule not in RULES:
        raise ValueError(f"unknown match rule {rule!r}")
    encodings = np.asarray(encodings, dtype=np.float64)
    labels = np.asarray(labels)
    sq = np.einsum("ij,ij->i", encodings, encodings)
    dist = np.sqrt(np.maximum(sq[:, None] - 2.0 * encodings @ encodings.T + sq[None, :], 0.0))
    np.fill_diagonal(dist, np.inf)
    users = np.unique(labels)
    per_user = np.stack([dist[:, labels == u].min(axis=1) for u in users], axis=1)
    own = labels[:, None] == users[None, :]
    if rule == MEAN:  # another user: the mean of theirs; its own user: the mean of the others
        for k, u in enumerate(users):
            mine = labels == u
            n = int(mine.sum())
            per_user[~mine, k] = np.linalg.norm(encodings[~mine] - encodings[mine].mean(axis=0), axis=1)
            if n >= 2:
                others_mean = (encodings[mine].sum(axis=0) - encodings[mine]) / (n - 1)
                per_user[mine, k] = np.linalg.norm(encodings[mine] - others_mean, axis=1)
    if rule == NEAREST_OR_MEAN:
        for k, u in enumerate(users):
            mine = labels == u
            n = int(mine.sum())
            if n >= 2:
                to_mean = np.linalg.norm(encodings[~mine] - encodings[mine].mean(axis=0), axis=1)
                per_user[~mine, k] = np.minimum(per_user[~mine, k], to_mean)
            if n >= 3:
                others_mean = (encodings[mine].sum(axis=0) - encodings[mine]) / (n - 1)
                to_own = np.linalg.norm(encodings[mine] - others_mean, axis=1)
                per_user[mine, k] = np.minimum(per_user[mine, k], to_own)
    return per_user, own


def leave_one_out(
    encodings: np.ndarray, labels: np.ndarray, rule: str = NEAREST
) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor distances, each encoding held out in turn, scored as login scores it.

    Genuine: the held-out encoding's distance to its own user's other encodings (a user with a
    single photo has none). Impostor: its distance to each other user.
    """
    per_user, own = per_user_distances(encodings, labels, rule)
    genuine = per_user[own]
    impostor = per_user[~own]
    return genuine[np.isfinite(genuine)], impostor


def error_rates(
    per_user: np.ndarray, own: np.ndarray, threshold: float, margin: float
) -> tuple[float | None, float | None]:
    """Expected (false-reject, false-accept) rates under the login rule; None where nothing was tried.

    False reject: a held-out encoding (of a user with other encodings) not accepted as its user:
    over the threshold, or another user within `margin`. False accept: an encoding accepted as
    anyone when its own user is taken out of the gallery.
    """
    if not per_user.size:
        return None, None
    own_d = np.where(own, per_user, np.inf).min(axis=1)
    others = np.sort(np.where(own, np.inf, per_user), axis=1)
    nearest_other = others[:, 0]
    tried = np.isfinite(own_d)
    second = others[:, 1] if per_user.shape[1] > 2 else np.full(len(others), np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf: no other user, so no margin to miss
        accepted = (own_d < threshold) & ~(nearest_other - own_d < margin)
        wrongly = (nearest_other < threshold) & ~(second - nearest_other < margin)
    frr = float(1.0 - accepted[tried].mean()) if tried.any() else None
    if per_user.shape[1] < 2:
        return frr, None
    return frr, float(wrongly.mean())


def calibrate(
    encodings: np.ndarray,
    labels: np.ndarray,
    ceiling: float = DEFAULT_THRESHOLD,
    usernames: Sequence[str] | None = None,
    rule: str = NEAREST,
    margin: float = DEFAULT_MARGIN,
) -> Calibration:
    """Recommend the largest threshold that accepts no enrolled impostor, capped at `ceiling`.

    The cap exists because a handful of enrolled photos is a small sample of impostors: calibration
    may tighten the default when enrolled users look alike, but only loosens past it when asked to.
    `usernames` (label -> name) name the users in collisions and notes; `rule` is the bundle's
    match rule and `margin` the login's.
    """
    per_user, own = per_user_distances(encodings, labels, rule)
    genuine, impostor = per_user[own], per_user[~own]
    genuine = genuine[np.isfinite(genuine)]
    notes = []
    if not len(impostor):
        notes.append("fewer than two users enrolled: no impostor distances, the ceiling is used")
    if not len(genuine):
        notes.append("no user has two encodings: no genuine distances, false-reject rate unknown")
    # Decisions accept `distance < threshold`, so the smallest impostor distance itself is safe;
    # rounding down to 3 decimals keeps that true for the stored value.
    largest_safe = float(np.floor(impostor.min() * 1000) / 1000) if len(impostor) else None
    threshold = min(largest_safe, ceiling) if largest_safe is not None else ceiling
    frr, far = error_rates(per_user, own, threshold, margin)
    frr = frr if len(genuine) else None
    names = (
        list(usernames)
        if usernames is not None
        else [f"user {i}" for i in range(int(np.max(labels, initial=-1)) + 1)]
    )
    collisions, lookalikes = identity_collisions(encodings, labels, names)
    return Calibration(
        genuine,
        impostor,
        largest_safe,
        threshold,
        frr,
        ceiling,
        notes + lookalikes,
        collisions,
        far,
        rule,
        margin,
    )


def identity_collisions(
    encodings: np.ndarray, labels: np.ndarray, usernames: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Collisions between the enrolled identities, and notes on users who only look alike."""
    if not len(encodings):
        return [], []
    checked = check_identities(enrolled_candidates(encodings, labels, usernames))
    collisions, notes = [], []
    for c in checked.conflicts:
        first, second = c["users"]
        if c["kind"] == LOOKALIKE:
            notes.append(
                f"{first} and {second} look alike (d={c['distance']:.2f}): logins between them may be refused"
            )
        else:
            collisions.append(
                {
                    "users": [first, second],
                    "problem": f"{first} and {second} are the same person (d={c['distance']:.2f})",
                }
            )
    for ref, reason in checked.rejected.items():
        collisions.append({"users": checked.involves[ref], "problem": f"{ref}: {reason}"})
    return collisions, notes


def calibration_record(bundle: Bundle, cal: Calibration, created_at: str) -> dict[str, Any]:
    """The sidecar stored beside the manifest, tied to this bundle's sha256."""
    return {
        "format": CALIBRATION_FORMAT,
        "bundle_sha256": bundle.manifest["sha256"],
        "bundle_version": bundle.version,
        "created_at": created_at,
        "threshold": cal.threshold,
        "largest_safe": cal.largest_safe,
        "ceiling": cal.ceiling,
        "false_reject_rate": cal.false_reject_rate,
        "false_accept_rate": cal.false_accept_rate,
        "rule": cal.rule,
        "margin": cal.margin,
        "genuine": {"count": len(cal.genuine), **_stats(cal.genuine)},
        "impostor": {"count": len(cal.impostor), **_stats(cal.impostor)},
        "notes": cal.notes,
    }


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"min": None, "median": None, "max": None}
    return {
        "min": _round(float(values.min())),
        "median": _round(float(np.median(values))),
        "max": _round(float(values.max())),
    }


def load_pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or a LoginError saying how to install it.

    Called before anything is computed or written, so a missing plot leaves no calibration behind.
    """
    try:
        import matplotlib
    except ImportError:
        raise LoginError("the plot needs matplotlib: `pip install 'facelogin[plot]'`") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_calibration(cal: Calibration, path: Path) -> None:
    """Histograms of genuine and impostor distances with the threshold marked, as a PNG."""
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0.0, max(1.0, float(np.max(cal.impostor, initial=1.0))), 41).tolist()
    if len(cal.genuine):
        ax.hist(cal.genuine, bins=bins, alpha=0.6, label=f"genuine ({len(cal.genuine)})", color="tab:green")
    if len(cal.impostor):
        ax.hist(cal.impostor, bins=bins, alpha=0.6, label=f"impostor ({len(cal.impostor)})", color="tab:red")
    frr = "n/a" if cal.false_reject_rate is None else f"{cal.false_reject_rate:.0%}"
    ax.axvline(
        cal.threshold, color="black", linestyle="--", label=f"threshold {cal.threshold:.3f} (FRR {frr})"
    )
    if cal.largest_safe is not None and cal.largest_safe != cal.threshold:
        ax.axvline(
            cal.largest_safe, color="grey", linestyle=":", label=f"no impostor below {cal.largest_safe:.3f}"
        )
    ax.set_xlabel("face distance (leave-one-out, per user minimum)")
    ax.set_ylabel("count")
    ax.set_title("facelogin calibration")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
