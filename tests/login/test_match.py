"""The matching rule on values: distances, per-user minimum, margin, k-of-n agreement, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from facelogin.login.calibrate import calibrate, error_rates, leave_one_out, per_user_distances
from facelogin.login.match import (
    ACCEPTED,
    AMBIGUOUS,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    DISAGREE,
    MEAN,
    NEAREST,
    NEAREST_OR_MEAN,
    NO_FACE,
    REJECTED,
    SEVERAL_FACES,
    UNKNOWN,
    FrameDecision,
    Gallery,
    Match,
    best_match,
    can_still_agree,
    combine_frames,
    decide_frame,
)


def test_user_distances_match_brute_force_with_unsorted_labels() -> None:
    rng = np.random.default_rng(1)
    encodings = rng.normal(size=(50, 128)) * 0.1
    labels = rng.integers(0, 7, size=50)
    labels[labels == 3] = 4  # a user index with no encodings at all
    names = [f"u{i}" for i in range(7)]
    gallery = Gallery.build(encodings, labels, names)
    assert gallery.usernames == [names[i] for i in sorted(set(labels.tolist()))]
    probe = rng.normal(size=128) * 0.1
    brute = {
        names[u]: np.linalg.norm(encodings[labels == u] - probe, axis=1).min() for u in set(labels.tolist())
    }
    got = dict(zip(gallery.usernames, gallery.user_distances(probe), strict=True))
    assert got == pytest.approx(brute, abs=1e-9)


def test_best_match_reports_second_user_and_margin() -> None:
    encodings = np.zeros((4, 128))
    encodings[1, 0] = 0.3  # A, further
    encodings[2, 0] = 0.5  # B
    encodings[3, 0] = 0.9  # C
    gallery = Gallery.build(encodings, np.array([0, 0, 1, 2]), ["A", "B", "C"])
    probe = np.zeros(128)
    probe[0] = 0.45
    match = best_match(gallery, probe)
    assert (match.user, match.second_user) == ("B", "A")
    assert match.distance == pytest.approx(0.05)
    assert match.margin == pytest.approx(0.10)


def test_single_user_has_no_margin() -> None:
    gallery = Gallery.build(np.zeros((2, 128)), np.array([0, 0]), ["only"])
    match = best_match(gallery, np.full(128, 0.01))
    assert match.user == "only" and match.margin is None


@pytest.mark.parametrize(
    ("faces", "distance", "margin", "decision", "reason"),
    [
        (0, None, None, REJECTED, NO_FACE),
        (2, 0.1, 0.5, REJECTED, SEVERAL_FACES),
        (1, 0.3, 0.3, ACCEPTED, None),
        (1, 0.5, 0.3, REJECTED, UNKNOWN),  # at the threshold is not under it
        (1, 0.7, 0.3, REJECTED, UNKNOWN),
        (1, 0.3, 0.05, REJECTED, AMBIGUOUS),
        (1, 0.3, None, ACCEPTED, None),  # one enrolled user: no second to compare with
    ],
)
def test_decide_frame(
    faces: int, distance: float | None, margin: float | None, decision: str, reason: str
) -> None:
    match = Match("A", distance, "B", margin) if distance is not None else None
    result = decide_frame(faces, match, threshold=0.5, margin=0.1)
    assert (result.decision, result.reason) == (decision, reason)


def _ok(user: str) -> FrameDecision:
    return FrameDecision(ACCEPTED, None, 1, Match(user, 0.3, "X", 0.3))


def _no(reason: str) -> FrameDecision:
    return FrameDecision(REJECTED, reason, 2 if reason == SEVERAL_FACES else 0)


@pytest.mark.parametrize(
    ("frames", "k", "decision", "user", "reason"),
    [
        ([_ok("A"), _ok("A"), _ok("A")], 3, ACCEPTED, "A", None),
        ([_ok("A"), _no(NO_FACE), _ok("A"), _ok("A")], 3, ACCEPTED, "A", None),
        ([_ok("A"), _ok("A"), _no(NO_FACE)], 3, REJECTED, None, NO_FACE),
        ([_ok("A"), _ok("B"), _ok("A"), _ok("B")], 2, REJECTED, None, DISAGREE),
        ([_no(SEVERAL_FACES), _no(SEVERAL_FACES), _no(NO_FACE)], 2, REJECTED, None, SEVERAL_FACES),
        ([_no(SEVERAL_FACES), _no(NO_FACE)], 1, REJECTED, None, SEVERAL_FACES),
        ([], 1, REJECTED, None, DISAGREE),
    ],
)
def test_combine_frames(
    frames: list[FrameDecision], k: int, decision: str, user: str | None, reason: str
) -> None:
    verdict = combine_frames(frames, k)
    assert (verdict.decision, verdict.user, verdict.reason) == (decision, user, reason)
    assert verdict.frames_used == len(frames)


def test_can_still_agree_stops_hopeless_reads() -> None:
    assert can_still_agree([_no(NO_FACE), _no(NO_FACE)], k=3, n=5)
    assert not can_still_agree([_no(NO_FACE), _no(NO_FACE), _no(NO_FACE)], k=3, n=5)


def test_calibration_threshold_is_largest_without_impostor_and_capped() -> None:
    # Two users on a line: A at 0.0 and 0.2, B at 1.0 and 1.1.
    encodings = np.zeros((4, 128))
    encodings[:, 0] = [0.0, 0.2, 1.0, 1.1]
    labels = np.array([0, 0, 1, 1])
    genuine, impostor = leave_one_out(encodings, labels)
    assert sorted(genuine.tolist()) == pytest.approx([0.1, 0.1, 0.2, 0.2])
    assert impostor.min() == pytest.approx(0.8)
    loose = calibrate(encodings, labels, ceiling=0.9)
    assert loose.largest_safe == pytest.approx(0.8) and loose.threshold == pytest.approx(0.8)
    assert loose.false_reject_rate == 0.0
    capped = calibrate(encodings, labels, ceiling=0.15)
    assert capped.threshold == 0.15 and capped.false_reject_rate == 0.5
    assert loose.collisions == [] and loose.notes == []


def _on_a_line(*points: float) -> np.ndarray:
    encodings = np.zeros((len(points), 128))
    encodings[:, 0] = points
    return encodings


@pytest.mark.parametrize(
    ("points", "labels", "users", "problem"),
    [
        # One person under two names: B's photo is 0.05 and 0.15 from A's (the median pair: 0.10).
        ([0.0, 0.2, 0.05], [0, 0, 1], ["A", "B"], "A and B are the same person (d=0.10)"),
        # A's third encoding is B: it looks like B, not A.
        (
            [0.0, 0.2, 1.0, 1.05, 1.1],
            [0, 0, 0, 1, 1],
            ["A", "B"],
            "A/encoding-3: looks like B (d=0.05), not A",
        ),
        # A's encodings show two people, and only A's first photo was ever A: nothing says which.
        (
            [0.0, 1.0, 3.0],
            [0, 0, 1],
            ["A"],
            "A/encoding-1: a different person from A/encoding-2 (d=1.00): cannot tell which photo shows A",
        ),
    ],
)
def test_calibration_names_identities_that_collide(
    points: list[float], labels: list[int], users: list[str], problem: str
) -> None:
    cal = calibrate(_on_a_line(*points), np.array(labels), usernames=["A", "B"])
    assert cal.collisions[0] == {"users": users, "problem": problem}


def test_calibration_notes_users_who_only_look_alike() -> None:
    cal = calibrate(_on_a_line(0.0, 0.2, 0.75, 0.8), np.array([0, 0, 1, 1]), usernames=["A", "B"])
    assert cal.collisions == []
    assert cal.notes == ["A and B look alike (d=0.55): logins between them may be refused"]
    assert cal.threshold == 0.5


def test_calibration_with_one_user_says_so() -> None:
    cal = calibrate(np.zeros((1, 128)), np.array([0]))
    assert cal.largest_safe is None and cal.false_reject_rate is None and len(cal.notes) == 2


def test_matching_ten_thousand_users_agrees_with_brute_force() -> None:
    """Speed is measured by bench/login.py; here the vectorised path must give the brute-force answer."""
    rng = np.random.default_rng(0)
    encodings, labels = rng.normal(size=(10_000, 128)), np.arange(10_000)
    gallery = Gallery.build(encodings, labels, [f"u{i}" for i in range(10_000)])
    probe = encodings[4321] + rng.normal(size=128) * 0.01
    distances = np.linalg.norm(encodings - probe, axis=1)
    first, second = np.argsort(distances)[:2]
    match = best_match(gallery, probe)
    assert match is not None and match.user == f"u{first}"
    assert match.distance == pytest.approx(distances[first])
    assert match.margin == pytest.approx(distances[second] - distances[first])


def test_nearest_or_mean_also_measures_each_user_mean() -> None:
    # A's photos at 0.0 and 0.4 on one axis, 0.4 apart on another: their mean is nearer the probe
    # than either photo. B has one photo: no mean row.
    encodings = np.zeros((3, 128))
    encodings[0, :2] = [0.0, 0.2]
    encodings[1, :2] = [0.4, -0.2]
    encodings[2, 0] = 2.0
    labels = np.array([0, 0, 1])
    probe = np.zeros(128)
    probe[0] = 0.2
    nearest = Gallery.build(encodings, labels, ["A", "B"], NEAREST)
    mean = Gallery.build(encodings, labels, ["A", "B"], NEAREST_OR_MEAN)
    assert len(nearest.encodings) == 3 and len(mean.encodings) == 4 and mean.rule == NEAREST_OR_MEAN
    assert nearest.user_distances(probe)[0] == pytest.approx(np.hypot(0.2, 0.2))
    assert mean.user_distances(probe).tolist() == pytest.approx([0.0, 1.8])
    assert best_match(mean, probe).user == "A"


def test_the_mean_rule_refuses_a_face_near_one_photo_but_far_from_the_person() -> None:
    """A's two photos sit 0.8 apart (two looks); a stranger 0.3 from one of them is 0.5 from
    their mean: "nearest-or-mean" lets the stranger in as A, "mean" does not. On 90 public
    identities such impostor trials fell from 97/8995 to 9/8995 (bench.recognition_levers)."""
    encodings = np.zeros((3, 128))
    encodings[0, 0], encodings[1, 0], encodings[2, 1] = -0.4, 0.4, 3.0
    labels = np.array([0, 0, 1])
    stranger = np.zeros(128)
    stranger[0], stranger[2] = 0.4, 0.3
    either = Gallery.build(encodings, labels, ["A", "B"], NEAREST_OR_MEAN)
    mean = Gallery.build(encodings, labels, ["A", "B"], MEAN)
    assert len(mean.encodings) == 2 and mean.rule == MEAN
    assert mean.user_distances(stranger)[0] == pytest.approx(0.5)
    for gallery, accepted in ((either, True), (mean, False)):
        frame = decide_frame(1, best_match(gallery, stranger), DEFAULT_THRESHOLD, DEFAULT_MARGIN)
        assert (frame.decision == ACCEPTED) is accepted, gallery.rule


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown match rule 'telepathy'"):
        Gallery.build(np.zeros((1, 128)), np.array([0]), ["A"], "telepathy")


def test_leave_one_out_by_the_mean_rule_uses_the_mean_of_the_others() -> None:
    # A at 0.0, 0.2, 0.4 (held out 0.0: the others' mean is 0.3, their nearest 0.2); B at 1.0, 1.2.
    encodings = _on_a_line(0.0, 0.2, 0.4, 1.0, 1.2)
    labels = np.array([0, 0, 0, 1, 1])
    per_user, _ = per_user_distances(encodings, labels, NEAREST_OR_MEAN)
    assert per_user[0].tolist() == pytest.approx([0.2, 1.0])
    assert per_user[1].tolist() == pytest.approx([0.0, 0.8])  # the mean of 0.0 and 0.4 is 0.2 itself
    assert per_user[2, 1] == pytest.approx(0.6)  # to B: its photo at 1.0 (its mean 1.1 is further)
    genuine, _ = leave_one_out(encodings, labels, NEAREST_OR_MEAN)
    assert len(genuine) == 5


def test_leave_one_out_by_the_mean_rule_scores_against_means_only() -> None:
    # A at 0.0, 0.2, 0.4; B at 1.0, 1.2; C alone at 3.0 (no other photo: no genuine trial).
    encodings = _on_a_line(0.0, 0.2, 0.4, 1.0, 1.2, 3.0)
    labels = np.array([0, 0, 0, 1, 1, 2])
    per_user, _ = per_user_distances(encodings, labels, MEAN)
    assert per_user[0].tolist() == pytest.approx([0.3, 1.1, 3.0])  # A's others' mean 0.3; B's 1.1
    assert per_user[3, :2].tolist() == pytest.approx([0.8, 0.2])  # A's mean 0.2; B's other, 1.2
    assert per_user[5, 2] == np.inf
    genuine, _ = leave_one_out(encodings, labels, MEAN)
    assert len(genuine) == 5
    cal = calibrate(encodings, labels, rule=MEAN)
    assert cal.rule == MEAN and cal.false_reject_rate is not None


def test_expected_error_rates_apply_threshold_and_margin() -> None:
    # A at 0.0, 0.2; B at 0.45, 0.5; C far away.
    encodings = _on_a_line(0.0, 0.2, 0.45, 0.5, 3.0)
    labels = np.array([0, 0, 1, 1, 2])
    per_user, own = per_user_distances(encodings, labels)
    frr, far = error_rates(per_user, own, threshold=0.5, margin=0.1)
    # Held out: 0.0 (A at 0.2, B at 0.45: accepted), 0.2 (A at 0.2, B at 0.25: margin 0.05, refused),
    # 0.45 (B 0.05, A 0.25: accepted), 0.5 (B 0.05, A 0.3: accepted). C has no other photo.
    assert frr == pytest.approx(1 / 4)
    # Without its own user: 0.2 is 0.25 from B, next C: accepted as B; 0.45 is 0.25 from A: accepted.
    # 0.0 (B at 0.45 < 0.5, next C far: accepted), 0.5 (A at 0.3: accepted); C: nobody near.
    assert far == pytest.approx(4 / 5)


def test_calibration_reports_its_rule_and_both_rates() -> None:
    cal = calibrate(_on_a_line(0.0, 0.2, 1.0, 1.1), np.array([0, 0, 1, 1]), rule=NEAREST_OR_MEAN)
    assert cal.rule == NEAREST_OR_MEAN and cal.false_reject_rate == 0.0 and cal.false_accept_rate == 0.0
