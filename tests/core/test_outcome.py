"""Merging a run's results into records, documents, bundle inputs and the summary (pure)."""

from __future__ import annotations

import shutil
from pathlib import Path

from facelogin.faces import ENCODED, REJECTED, FaceResult
from facelogin.sync.discover import Discovery, Photo, Rejection, discover_photos
from facelogin.sync.outcome import Outcome, RunResults, photo_record, summarize
from facelogin.sync.plan import expected_thumbs, plan_for, plan_sync

SIZES, PREFIX = [128, 256], "thumbs"


def photo(user: str, name: str, sha: str) -> Photo:
    return Photo(user, name, f"/img/{user}/{name}", sha, 10)


ANN1, ANN2, ANN3 = photo("Ann", "a1.jpg", "s1"), photo("Ann", "a2.jpg", "s2"), photo("Ann", "a3.jpg", "s1")
BOB1, BOB2 = photo("Bob", "b1.jpg", "s3"), photo("Bob", "b2.jpg", "s4")
USERS = {"Ann": [ANN1, ANN2, ANN3], "Bob": [BOB1, BOB2]}


def encoded(value: float) -> FaceResult:
    return FaceResult(ENCODED, encoding=[value] * 128, faces=1)


def started(recorded: dict | None = None) -> RunResults:  # type: ignore[type-arg]
    return RunResults.for_plan(plan_sync(USERS, recorded or {}, SIZES, PREFIX), SIZES, PREFIX)


def test_each_content_is_encoded_once_and_stored_encodings_are_reused() -> None:
    run = started()
    todo = run.to_encode(["s4"])
    assert sorted(p.sha256 for p in todo) == ["s1", "s2", "s3"]  # s1 twice on disk, once to encode
    assert run.verdicts == {"s4": (ENCODED, None)}
    new = run.add_encodings({"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="no face found"),
                             "s3": encoded(0.3)})  # fmt: skip
    assert set(new) == {"s1", "s3"} and run.verdicts["s2"] == (REJECTED, "no face found")


def test_thumbnails_of_rejected_photos_are_discarded_and_undecodable_ones_rejected() -> None:
    run = started()
    run.add_encodings({"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="no face found")})
    discard = run.add_thumbnails(
        "Ann", {ANN1.path: None, ANN2.path: None, ANN3.path: "cannot decode image"}, None
    )
    assert sorted(discard) == sorted(expected_thumbs(ANN2, SIZES, PREFIX).values())
    assert run.staged["Ann"] == [ANN1]
    # Same content as a1, but this file did not decode: it is rejected, and so is its content.
    assert run.verdicts["s1"] == (REJECTED, "cannot decode image")


def test_the_encoders_stage_each_content_under_every_name_and_the_tasks_make_the_rest() -> None:
    run = started()
    photos = run.to_encode(["s4"])  # s4's encoding is stored: its thumbnails still need a task
    along = run.thumbnails_along(photos)
    # a1 and a3 have the same content: encoded once (from one of the two), staged under both names.
    (shared,) = (p.path for p in photos if p.sha256 == "s1")
    assert along[shared] == [run.thumbs[ANN1.ref], run.thumbs[ANN3.ref]]
    assert set(along) == {shared, ANN2.path, BOB1.path}
    assert run.thumbnail_jobs(along) == {"Bob": {BOB2.path: run.thumbs[BOB2.ref]}}
    assert (
        run.thumbnail_jobs() == run.thumbnail_jobs([]) != run.thumbnail_jobs(along)
    )  # the thread/Dask runners

    run.add_encodings(
        {"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="no face found"), "s3": encoded(0.3)}
    )
    staged = {"s1": None, "s3": "thumbnail failed: [Errno 28] No space left on device"}
    discard = run.add_thumbnails("Ann", {}, None, staged) + run.add_thumbnails(
        "Bob", {BOB2.path: None}, None, staged
    )

    assert run.staged == {"Ann": [ANN1, ANN3], "Bob": [BOB2]}
    assert run.errors == [{"file": BOB1.path, "error": staged["s3"]}]  # not a verdict: retried next run
    assert run.verdicts["s3"] == (ENCODED, None)
    assert sorted(discard) == sorted([*run.thumbs[ANN2.ref].values(), *run.thumbs[BOB1.ref].values()])


def test_a_failed_thumbnail_or_upload_task_is_an_error_and_the_photo_is_retried_next_run() -> None:
    run = started()
    run.add_encodings({"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)})
    run.add_thumbnails("Ann", {p.path: None for p in USERS["Ann"]}, None)
    run.add_thumbnails("Bob", None, RuntimeError("disk full"))
    assert run.upload_jobs() == {"Ann": sorted(k for p in USERS["Ann"] for k in run.thumbs[p.ref].values())}
    first_key = run.upload_jobs()["Ann"][0]
    owner = next(p for p in USERS["Ann"] if first_key in run.thumbs[p.ref].values())
    run.add_uploads({first_key: ConnectionError("reset")})  # one object of one photo failed for good

    outcome = run.outcome(USERS, {})

    assert {e["file"] for e in run.errors} == {owner.path} | {p.path for p in USERS["Bob"]}
    assert {e["error"].split(":")[0] for e in run.errors} == {"upload failed", "thumbnail failed"}
    # Encoded, but with no thumbnails recorded: the next run sees them as to do. The others are done.
    thumbs = {r["filename"]: r["thumbs"] for recs in outcome.records.values() for r in recs}
    assert {name for name, keys in thumbs.items() if not keys} == {owner.filename, "b1.jpg", "b2.jpg"}


def test_documents_bundle_inputs_and_stale_keys() -> None:
    before = {"Ann": {"old.jpg": photo_record(photo("Ann", "old.jpg", "s0"), ENCODED,
                                              thumbs={"128": "thumbs/128/Ann/old.jpg"})}}  # fmt: skip
    run = started(before)
    run.add_encodings({"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="2 faces found"),
                       "s3": encoded(0.3), "s4": encoded(0.4)})  # fmt: skip
    for user in USERS:
        run.add_thumbnails(user, {p.path: None for p in USERS[user]}, None)
    run.add_uploads({})
    outcome = run.outcome(USERS, before)

    docs = {d["username"]: d for d in outcome.documents({"Bob": "b2.jpg"}, lambda k: f"https://cdn/{k}")}
    assert docs["Ann"]["profile_image"]["photo"] == "a1.jpg"
    assert docs["Bob"]["profile_image"]["urls"]["256"] == "https://cdn/thumbs/256/Bob/b2.jpg"
    assert docs["Ann"]["counts"] == {"photos": 3, "encoded": 2, "rejected": 1, "weak": 0}
    stored = {"s1": [0.1] * 128, "s3": [0.3] * 128, "s4": [0.4] * 128}
    assert {u: len(e) for u, e in outcome.bundle_encodings(stored).items()} == {"Ann": 2, "Bob": 2}
    assert outcome.stale_keys(before) == ["thumbs/128/Ann/old.jpg"]
    assert outcome.profiles({}, lambda k: None)["Bob"]["photo"] == "b1.jpg"


def test_summary_counts_what_the_run_did() -> None:
    run = started()
    run.add_encodings({"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)})
    for user in USERS:
        run.add_thumbnails(user, {p.path: None for p in USERS[user]}, None)
    run.add_uploads({})
    found = Discovery(USERS, [Rejection("/img/notes.jpg", "photo directly under the images root")])

    summary = summarize(found, run, run.outcome(USERS, {}), upserted=2, removed_users=0, deleted_objects=0,
                        store="s3://b", bundle={"version": "v"}, seconds={"discover": 0.1})  # fmt: skip

    assert (summary["users"], summary["photos"], summary["encoded"], summary["uploaded"]) == (2, 5, 4, 10)
    assert summary["rejected"] == [
        {"file": "/img/notes.jpg", "reason": "photo directly under the images root"}
    ]
    assert [row["user"] for row in summary["per_user"]] == ["Ann", "Bob"]


def test_a_weak_photo_is_enrolled_and_its_reason_reaches_the_summary_and_the_document() -> None:
    turned = "face turned 32°: look straight at the camera"
    run = started()
    weak = FaceResult(ENCODED, encoding=[0.2] * 128, faces=1, weak=turned)
    run.add_encodings({"s1": encoded(0.1), "s2": weak, "s3": encoded(0.3), "s4": encoded(0.4)})
    for user in USERS:
        run.add_thumbnails(user, {p.path: None for p in USERS[user]}, None)
    run.add_uploads({})
    outcome = run.outcome(USERS, {})
    summary = summarize(Discovery(USERS, []), run, outcome, upserted=2, removed_users=0, deleted_objects=0,
                        store="s3://b", bundle={"version": "v"}, seconds={})  # fmt: skip
    assert summary["weak"] == [{"file": "Ann/a2.jpg", "reason": turned}]
    assert summary["rejected"] == []
    assert summary["per_user"][0]["weak"] == [f"a2.jpg: {turned}"]
    assert "s2" in outcome.encoded_shas  # enrolled all the same
    ann = {d["username"]: d for d in outcome.documents({}, lambda k: None)}["Ann"]
    assert ann["counts"]["weak"] == 1
    assert ann["notes"] == [{"photo": "a2.jpg", "status": ENCODED, "reason": turned}]


def run_once(root: Path, recorded: dict) -> tuple[Discovery, RunResults, Outcome]:  # type: ignore[type-arg]
    """Discovery, plan and merge as the flow chains them, every photo encoded and uploaded."""
    found = discover_photos(root)
    plan = plan_for(found, recorded, SIZES, PREFIX)
    run = RunResults.for_plan(plan, SIZES, PREFIX)
    run.add_encodings({sha: encoded(0.5) for sha in run.shas_to_encode()})
    for user, jobs in run.thumbnail_jobs().items():
        run.add_thumbnails(user, dict.fromkeys(jobs), None)
    run.add_uploads({})
    return found, run, run.outcome(found.users, recorded)


def as_recorded(outcome: Outcome, before: dict) -> dict:  # type: ignore[type-arg]
    """What the catalog holds after upserting the outcome's documents (held users keep theirs)."""
    after = {u: r for u, r in before.items() if u in outcome.held_users}
    for doc in outcome.documents({}, lambda k: None):
        after[doc["username"]] = {p["filename"]: p for p in doc["photos"]}
    return after


def test_a_folder_or_photo_that_cannot_be_read_keeps_what_was_synced(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for ref in ("Ann/a1.jpg", "Ann/a2.png", "Bob/b1.jpg", "Cid/c1.jpg"):
        (root / ref).parent.mkdir(parents=True, exist_ok=True)
        (root / ref).write_bytes(ref.encode())
    _, _, first = run_once(root, {})
    recorded = as_recorded(first, {})
    assert sorted(recorded) == ["Ann", "Bob", "Cid"]

    # Bob's folder turns into a link loop, Ann's a2.png into a dangling link, Cid's folder goes.
    (root / "Bob").rename(tmp_path / "Bob")
    (root / "Bob").symlink_to("Bob")
    (root / "Ann" / "a2.png").unlink()
    (root / "Ann" / "a2.png").symlink_to(root / "Ann" / "moved-away.png")
    shutil.rmtree(root / "Cid")
    found, run, outcome = run_once(root, recorded)

    assert found.unreadable_users == {"Bob"} and found.unreadable_photos == {"Ann/a2.png"}
    assert run.plan.removed_users == ["Cid"]
    assert [d["username"] for d in outcome.documents({}, lambda k: None)] == ["Ann"]
    assert {r["filename"] for r in outcome.records["Ann"]} == {"a1.jpg", "a2.png"}
    assert outcome.records["Bob"] == list(recorded["Bob"].values())
    assert set(outcome.bundle_encodings({s: [0.5] * 128 for s in outcome.encoded_shas})) == {"Ann", "Bob"}
    cid_keys = sorted(recorded["Cid"]["c1.jpg"]["thumbs"].values())
    assert outcome.stale_keys(recorded) == cid_keys  # Bob's and a2's thumbnails stay
    summary = summarize(found, run, outcome, upserted=1, removed_users=1, deleted_objects=2, store="s3://b",
                        bundle={}, seconds={})  # fmt: skip
    reasons = {Path(r["file"]).name: r["reason"] for r in summary["rejected"]}
    assert reasons["Bob"].startswith("cannot be read (symbolic link loop)")
    assert reasons["a2.png"].startswith("cannot be read (broken symbolic link)")

    # Readable again: synced as usual, nothing was lost in between.
    (root / "Bob").unlink()
    (tmp_path / "Bob").rename(root / "Bob")
    (root / "Ann" / "a2.png").unlink()
    (root / "Ann" / "a2.png").write_bytes(b"Ann/a2.png")
    found, run, outcome = run_once(root, as_recorded(outcome, recorded))
    assert found.rejected == [] and run.plan.todo == [] and run.plan.held == {}
    assert {u: len(r) for u, r in outcome.records.items()} == {"Ann": 2, "Bob": 1}


def test_a_photo_this_run_could_not_read_keeps_its_previous_record() -> None:
    """Read when discovered, unreadable when decoded (a disk error, permissions changed meanwhile)."""
    before = {"Bob": {"b1.jpg": photo_record(photo("Bob", "b1.jpg", "old"), ENCODED,
                                             thumbs={"128": "thumbs/128/Bob/b1.jpg"})}}  # fmt: skip
    run = started(before)
    failure = "cannot be read (Input/output error)"
    run.add_encodings({"s1": encoded(0.1), "s2": encoded(0.2), "s3": FaceResult(REJECTED, reason=failure),
                       "s4": FaceResult(REJECTED, reason=failure)})  # fmt: skip

    outcome = run.outcome(USERS, before)

    bob = {r["filename"]: r for r in outcome.records["Bob"]}
    assert bob["b1.jpg"] == before["Bob"]["b1.jpg"]  # still encoded, its thumbnails still in use
    assert bob["b2.jpg"]["status"] == REJECTED  # nothing synced before: rejected, retried next run
    assert outcome.stale_keys(before) == []
    assert {
        "file": BOB1.path,
        "reason": f"{failure}: what was synced from it is kept as it was",
    } in outcome.rejected
    assert plan_sync({"Bob": [BOB1, BOB2]}, {"Bob": bob}, SIZES, PREFIX).todo == [BOB1, BOB2]


def test_prefect_does_not_walk_a_run_summary_but_a_dict_it_does() -> None:
    """The flow returns a Summary so that Prefect skips its rows when the run ends (~0.5 s at 10k)."""
    from prefect.utilities.collections import visit_collection

    from facelogin.sync.outcome import Summary

    data = {"users": 2, "per_user": [{"user": "Ann"}, {"user": "Bob"}], "rejected": []}
    seen: list[object] = []
    visit_collection(data, visit_fn=seen.append)
    assert {"user": "Ann"} in seen  # a dict is walked down to its rows

    seen.clear()
    summary = Summary(data)
    visit_collection(summary, visit_fn=seen.append)
    assert seen == [summary]
    assert dict(summary) == data and summary["users"] == 2 and summary.get("nothing") is None
