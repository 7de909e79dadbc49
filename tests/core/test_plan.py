"""Deciding what a sync does, and the documents it writes (pure)."""

from __future__ import annotations

import pytest

from facelogin.sync.discover import Photo
from facelogin.sync.outcome import collect_outcome, photo_record, stale_keys, user_document
from facelogin.sync.plan import expected_thumbs, plan_sync
from facelogin.sync.stages import Trained, Uploaded

SIZES = [128, 256]


def photo(user: str, name: str, sha: str) -> Photo:
    return Photo(user, name, f"/img/{user}/{name}", sha, 10)


def done(p: Photo) -> dict[str, object]:
    return photo_record(p, "encoded", thumbs=expected_thumbs(p, SIZES, "thumbs"))


A1, A2, B1 = photo("Ann", "a1.jpg", "s1"), photo("Ann", "a2.jpg", "s2"), photo("Bob", "b1.jpg", "s3")


@pytest.mark.parametrize(
    ("recorded", "full", "todo", "unchanged", "kept", "removed"),
    [
        ({}, False, [A1, A2, B1], [], [], []),
        (
            {"Ann": {"a1.jpg": done(A1), "a2.jpg": done(A2)}, "Bob": {"b1.jpg": done(B1)}},
            False,
            [],
            [A1, A2, B1],
            [],
            [],
        ),
        (
            {"Ann": {"a1.jpg": done(A1), "a2.jpg": done(A2)}, "Bob": {"b1.jpg": done(B1)}},
            True,
            [A1, A2, B1],
            [],
            [],
            [],
        ),
        ({"Ann": {"a1.jpg": done(A1) | {"sha256": "old"}}}, False, [A1, A2, B1], [], [], []),
        ({"Ann": {"a1.jpg": done(A1) | {"thumbs": {"128": "x"}}}}, False, [A1, A2, B1], [], [], []),
        (
            {"Ann": {"a1.jpg": photo_record(A1, "rejected", "no face found")}},
            False,
            [A2, B1],
            [],
            [(A1, "no face found")],
            [],
        ),
        ({"Gone": {"g.jpg": {}}}, False, [A1, A2, B1], [], [], ["Gone"]),
    ],
    ids=["new", "unchanged", "full", "content-changed", "sizes-changed", "still-rejected", "user-removed"],
)
def test_plan_sync(recorded, full, todo, unchanged, kept, removed) -> None:  # type: ignore[no-untyped-def]
    plan = plan_sync({"Ann": [A1, A2], "Bob": [B1]}, recorded, SIZES, "thumbs", full=full)
    assert (plan.todo, plan.unchanged, plan.kept_rejected, plan.removed_users) == (
        todo,
        unchanged,
        kept,
        removed,
    )


def test_outcome_records_failed_uploads_without_thumbnails() -> None:
    plan = plan_sync({"Ann": [A1, A2], "Bob": [B1]}, {"Bob": {"b1.jpg": done(B1)}}, SIZES, "thumbs")
    verdicts = {"s1": ("encoded", None), "s2": ("rejected", "2 faces found")}
    uploaded = {}  # a1's upload failed
    out = collect_outcome(
        plan, {"Ann": [A1, A2], "Bob": [B1]}, {"Bob": {"b1.jpg": done(B1)}}, Trained(verdicts),
        uploaded=Uploaded(uploaded),
    )  # fmt: skip
    ann = {r["filename"]: r for r in out.records["Ann"]}
    assert ann["a1.jpg"]["status"] == "encoded" and ann["a1.jpg"]["thumbs"] == {}
    assert ann["a2.jpg"]["reason"] == "2 faces found"
    assert out.rejected == [{"file": "/img/Ann/a2.jpg", "reason": "2 faces found"}]
    assert out.encoded_shas == ["s1", "s3"]
    # the next plan retries a1 because its thumbnails are missing
    again = plan_sync(
        {"Ann": [A1, A2], "Bob": [B1]}, {"Ann": ann, "Bob": {"b1.jpg": done(B1)}}, SIZES, "thumbs"
    )
    assert again.todo == [A1] and again.kept_rejected == [(A2, "2 faces found")]


@pytest.mark.parametrize(
    ("preferred", "photo_name"),
    [(None, "a1.jpg"), ("a2.jpg", "a2.jpg"), ("missing.jpg", "a1.jpg")],
)
def test_profile_is_first_encoded_unless_configured(preferred: str | None, photo_name: str) -> None:
    recs = [done(A2), done(A1)]
    doc = user_document("Ann", recs, preferred, {})
    assert doc["profile_image"]["photo"] == photo_name
    assert doc["profile_image"]["urls"] is None  # no stable URLs (presigned mode)
    assert doc["counts"] == {"photos": 2, "encoded": 2, "rejected": 0, "weak": 0}
    assert [r["filename"] for r in doc["photos"]] == ["a1.jpg", "a2.jpg"]


def test_profile_skips_rejected_and_keeps_stable_urls() -> None:
    recs = [photo_record(A1, "rejected", "no face found"), done(A2)]
    urls = {k: f"https://cdn/{k}" for k in expected_thumbs(A2, SIZES, "thumbs").values()}
    doc = user_document("Ann", recs, None, urls)
    assert doc["profile_image"]["photo"] == "a2.jpg"
    assert doc["profile_image"]["urls"]["256"] == "https://cdn/thumbs/256/Ann/a2.jpg"
    assert user_document("Ann", [photo_record(A1, "rejected", "x")], None, {})["profile_image"] is None


def test_stale_keys() -> None:
    before = {"Ann": {"a1.jpg": done(A1), "a2.jpg": done(A2)}, "Gone": {"b1.jpg": done(B1)}}
    after = {"Ann": [done(A1)]}
    assert stale_keys(before, after) == sorted(
        list(expected_thumbs(A2, SIZES, "thumbs").values())
        + list(expected_thumbs(B1, SIZES, "thumbs").values())
    )


def test_thumbnails_sharing_a_key_under_the_old_rule_are_both_redone_under_unique_keys() -> None:
    """Before: `face.jpg` and `face.png` both had `face.jpg` thumbnails, and one overwrote the other."""
    jpg, png = photo("Ann", "face.jpg", "s1"), photo("Ann", "face.png", "s2")
    old = {str(s): f"thumbs/{s}/Ann/face.jpg" for s in SIZES}
    recorded = {
        "Ann": {
            "face.jpg": photo_record(jpg, "encoded", thumbs=old),
            "face.png": photo_record(png, "encoded", thumbs=old),
        }
    }

    plan = plan_sync({"Ann": [jpg, png]}, recorded, SIZES, "thumbs")

    assert plan.todo == [jpg, png] and plan.unchanged == []
    new = {p.filename: expected_thumbs(p, SIZES, "thumbs") for p in plan.todo}
    assert new["face.jpg"] == old  # its own key, uploaded again with its own picture
    assert new["face.png"] == {str(s): f"thumbs/{s}/Ann/face.png.jpg" for s in SIZES}
    verdicts = {"s1": ("encoded", None), "s2": ("encoded", None)}
    uploaded = {f"Ann/{name}": keys for name, keys in new.items()}
    out = collect_outcome(plan, {"Ann": [jpg, png]}, recorded, Trained(verdicts), uploaded=Uploaded(uploaded))
    assert out.stale_keys(recorded) == []  # face.jpg's keys are still in use
    # The next run finds nothing to do.
    again = {"Ann": {r["filename"]: r for r in out.records["Ann"]}}
    assert plan_sync({"Ann": [jpg, png]}, again, SIZES, "thumbs").unchanged == [jpg, png]


def test_keys_of_the_old_rule_become_stale_once_redone() -> None:
    png, jpeg = photo("Ann", "b.png", "s2"), photo("Ann", "c.jpeg", "s3")
    recorded = {
        "Ann": {
            p.filename: photo_record(
                p, "encoded", thumbs={str(s): f"thumbs/{s}/Ann/{stem}.jpg" for s in SIZES}
            )
            for p, stem in ((png, "b"), (jpeg, "c"))
        }
    }
    plan = plan_sync({"Ann": [png, jpeg]}, recorded, SIZES, "thumbs")
    assert plan.todo == [png, jpeg]
    uploaded = {p.ref: expected_thumbs(p, SIZES, "thumbs") for p in plan.todo}
    verdicts = {"s2": ("encoded", None), "s3": ("encoded", None)}
    out = collect_outcome(
        plan, {"Ann": [png, jpeg]}, recorded, Trained(verdicts), uploaded=Uploaded(uploaded)
    )
    assert out.stale_keys(recorded) == sorted(f"thumbs/{s}/Ann/{n}.jpg" for s in SIZES for n in "bc")


@pytest.mark.parametrize("recorded_first", [False, True])
def test_a_photo_whose_thumbnail_key_is_taken_is_rejected_naming_the_other(recorded_first: bool) -> None:
    png, jpg = photo("Ann", "x.png", "s1"), photo("Ann", "x.png.jpg", "s2")
    recorded = (
        {"Ann": {"x.png": done(png) | {"thumbs": {"128": "thumbs/128/Ann/x.jpg"}}}} if recorded_first else {}
    )

    plan = plan_sync({"Ann": [png, jpg]}, recorded, SIZES, "thumbs")

    # The JPEG keeps its own name, so it owns the key, whichever photo came first.
    assert plan.todo == [jpg]
    reason = "its thumbnail would overwrite that of x.png.jpg (both named x.png.jpg): rename one of the two"
    assert plan.clashes == [(png, reason)]
    out = collect_outcome(plan, {"Ann": [png, jpg]}, recorded, Trained({"s2": ("encoded", None)}))
    assert [(r["filename"], r["status"], r["reason"]) for r in out.records["Ann"]] == [
        ("x.png", "rejected", reason),
        ("x.png.jpg", "encoded", None),
    ]
    assert out.rejected == [{"file": png.path, "reason": reason}]


def test_unreadable_users_and_photos_are_held_as_recorded_not_removed() -> None:
    a3 = photo("Ann", "a3.jpg", "s9")
    recorded = {
        "Ann": {"a1.jpg": done(A1), "a3.jpg": done(a3)},
        "Bob": {"b1.jpg": done(B1)},
        "Gone": {"g.jpg": done(photo("Gone", "g.jpg", "s5"))},
    }
    users = {"Ann": [A1]}  # a3.jpg and Bob/ are there but could not be read; Gone/ is gone

    plan = plan_sync(users, recorded, SIZES, "thumbs", unreadable_users={"Bob", "New"},
                     unreadable_photos={"Ann/a3.jpg", "Ann/never.jpg"})  # fmt: skip

    assert plan.removed_users == ["Gone"]
    assert plan.held_users == ["Bob"]
    assert plan.held == {"Bob": [done(B1)], "Ann": [done(a3)]}
    assert plan.unchanged == [A1] and plan.todo == []
    out = collect_outcome(plan, users, recorded)
    assert out.records == {"Ann": [done(A1), done(a3)], "Bob": [done(B1)]}
    assert out.held_users == {"Bob"}
    assert [d["username"] for d in out.documents({}, lambda k: None)] == ["Ann"]  # Bob's stays as it is
    assert out.profiles({}, lambda k: None)["Bob"]["photo"] == "b1.jpg"  # still in the bundle
    assert out.encoded_shas == ["s1", "s3", "s9"]  # their encodings are kept
    assert out.stale_keys(recorded) == sorted(
        expected_thumbs(photo("Gone", "g.jpg", "s5"), SIZES, "thumbs").values()
    )


def test_without_the_unreadable_sets_a_missing_user_is_removed() -> None:
    """What the flow did before it passed the discovery's unreadable sets (and must not do since)."""
    plan = plan_sync(
        {"Ann": [A1]}, {"Ann": {"a1.jpg": done(A1)}, "Bob": {"b1.jpg": done(B1)}}, SIZES, "thumbs"
    )
    assert plan.removed_users == ["Bob"] and plan.held == {}


def test_a_held_record_whose_key_a_readable_photo_now_uses_loses_its_thumbnails() -> None:
    """Old rule: face.png's thumbnails were at face.jpg; face.png is unreadable, face.jpg is redone there."""
    jpg, png = photo("Ann", "face.jpg", "s1"), photo("Ann", "face.png", "s2")
    old = {str(s): f"thumbs/{s}/Ann/face.jpg" for s in SIZES}
    recorded = {"Ann": {"face.jpg": done(jpg), "face.png": photo_record(png, "encoded", thumbs=old)}}

    plan = plan_sync({"Ann": [jpg]}, recorded, SIZES, "thumbs", unreadable_photos={"Ann/face.png"})

    assert plan.todo == [jpg]  # its thumbnail in the store may show face.png
    assert plan.held == {"Ann": [photo_record(png, "encoded", thumbs={})]}  # redone once readable


@pytest.mark.parametrize(
    ("reason", "retried"),
    [
        ("no face found", False),
        ("cannot decode image: image file is truncated", False),
        ("cannot be read (Permission denied)", True),
        ("encoding failed: worker process died", True),
    ],
)
def test_a_rejection_that_was_a_failure_is_tried_again(reason: str, retried: bool) -> None:
    recorded = {"Ann": {"a1.jpg": photo_record(A1, "rejected", reason)}}
    plan = plan_sync({"Ann": [A1]}, recorded, SIZES, "thumbs")
    assert (plan.todo, plan.kept_rejected) == (([A1], []) if retried else ([], [(A1, reason)]))
