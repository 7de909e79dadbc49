"""Deciding what a sync does, and the documents it writes (pure)."""

from __future__ import annotations

import pytest

from facelogin.sync.discover import Photo
from facelogin.sync.outcome import collect_outcome, photo_record, stale_keys, user_document
from facelogin.sync.plan import expected_thumbs, plan_sync

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
        {"Ann": [A1, A2], "Bob": [B1]}, plan, {"Bob": {"b1.jpg": done(B1)}}, verdicts, uploaded
    )
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
    assert doc["counts"] == {"photos": 2, "encoded": 2, "rejected": 0}
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
