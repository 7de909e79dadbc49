"""Merging a run's results into records, documents, bundle inputs and the summary (pure)."""

from __future__ import annotations

import shutil
from pathlib import Path

from facelogin.faces import ENCODED, REJECTED, FaceResult
from facelogin.sync.discover import Discovery, Photo, Rejection, discover_photos
from facelogin.sync.identity import IdentityCheck
from facelogin.sync.outcome import Outcome, collect_outcome, photo_record, summarize
from facelogin.sync.plan import Plan, expected_thumbs, plan_for, plan_sync
from facelogin.sync.stages import Jobs, Thumbnailed, Trained, collect_training

SIZES, PREFIX = [128, 256], "thumbs"


def photo(user: str, name: str, sha: str) -> Photo:
    return Photo(user, name, f"/img/{user}/{name}", sha, 10)


ANN1, ANN2, ANN3 = photo("Ann", "a1.jpg", "s1"), photo("Ann", "a2.jpg", "s2"), photo("Ann", "a3.jpg", "s1")
BOB1, BOB2 = photo("Bob", "b1.jpg", "s3"), photo("Bob", "b2.jpg", "s4")
USERS = {"Ann": [ANN1, ANN2, ANN3], "Bob": [BOB1, BOB2]}


def encoded(value: float) -> FaceResult:
    return FaceResult(ENCODED, encoding=[value] * 128, faces=1)


def started(recorded: dict | None = None) -> Jobs:  # type: ignore[type-arg]
    return Jobs.for_plan(plan_sync(USERS, recorded or {}, SIZES, PREFIX), SIZES, PREFIX)


def every_photo_staged(jobs: Jobs, trained: Trained) -> Thumbnailed:
    return jobs.thumbnailed([(list(USERS), {p.path: None for p in jobs.plan.todo}, None)], trained, None)


def test_each_content_is_encoded_once_and_stored_encodings_are_reused() -> None:
    jobs = started()
    todo = jobs.to_encode(["s4"])
    assert sorted(p.sha256 for p in todo) == ["s1", "s2", "s3"]  # s1 twice on disk, once to encode
    assert collect_training(["s4"], {}).verdicts == {"s4": (ENCODED, None)}
    results = {"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="no face found"), "s3": encoded(0.3)}
    trained = collect_training(["s4"], results)
    assert set(trained.encodings) == {"s1", "s3"} and trained.verdicts["s2"] == (REJECTED, "no face found")
    assert trained.verdicts["s4"] == (ENCODED, None)


def test_thumbnails_of_rejected_photos_are_discarded_and_undecodable_ones_rejected() -> None:
    jobs = started()
    trained = collect_training(
        ["s3", "s4"], {"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="no face found")}
    )
    problems = {ANN1.path: None, ANN2.path: None, ANN3.path: "cannot decode image"}
    thumbnailed = jobs.thumbnailed([(["Ann"], problems, None)], trained, None)
    assert sorted(thumbnailed.discard) == sorted(expected_thumbs(ANN2, SIZES, PREFIX).values())
    assert thumbnailed.staged["Ann"] == [ANN1]
    # Same content as a1, but this file did not decode: it is rejected, and so is its content.
    assert thumbnailed.undecodable == {"s1": "cannot decode image"}
    outcome = collect_outcome(jobs.plan, USERS, {}, trained, thumbnailed)
    ann = {r["filename"]: (r["status"], r["reason"]) for r in outcome.records["Ann"]}
    assert ann["a1.jpg"] == ann["a3.jpg"] == (REJECTED, "cannot decode image")


def test_the_encoders_stage_each_content_under_every_name_and_the_tasks_make_the_rest() -> None:
    jobs = started()
    photos = jobs.to_encode(["s4"])  # s4's encoding is stored: its thumbnails still need a task
    along = jobs.thumbnails_along(photos)
    # a1 and a3 have the same content: encoded once (from one of the two), staged under both names.
    (shared,) = (p.path for p in photos if p.sha256 == "s1")
    assert along[shared] == [jobs.thumbs[ANN1.ref], jobs.thumbs[ANN3.ref]]
    assert set(along) == {shared, ANN2.path, BOB1.path}
    assert jobs.thumbnail_jobs(along) == {"Bob": {BOB2.path: jobs.thumbs[BOB2.ref]}}
    assert (
        jobs.thumbnail_jobs() == jobs.thumbnail_jobs([]) != jobs.thumbnail_jobs(along)
    )  # the thread/Dask runners

    staged = {"s1": None, "s3": "thumbnail failed: [Errno 28] No space left on device"}
    trained = collect_training(
        ["s4"], {"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="no face found"), "s3": encoded(0.3)},
        staged,
    )  # fmt: skip
    thumbnailed = jobs.thumbnailed([(["Bob"], {BOB2.path: None}, None)], trained, None)

    assert thumbnailed.staged == {"Ann": [ANN1, ANN3], "Bob": [BOB2]}
    assert thumbnailed.errors == [
        {"file": BOB1.path, "error": staged["s3"]}
    ]  # not a verdict: retried next run
    assert trained.verdicts["s3"] == (ENCODED, None) and thumbnailed.undecodable == {}
    assert sorted(thumbnailed.discard) == sorted(
        [*jobs.thumbs[ANN2.ref].values(), *jobs.thumbs[BOB1.ref].values()]
    )


def test_a_failed_thumbnail_or_upload_task_is_an_error_and_the_photo_is_retried_next_run() -> None:
    jobs = started()
    trained = collect_training(
        [], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)}
    )
    tasks = [
        (["Ann"], {p.path: None for p in USERS["Ann"]}, None),
        (["Bob"], None, RuntimeError("disk full")),
    ]
    thumbnailed = jobs.thumbnailed(tasks, trained, None)
    assert jobs.upload_jobs(thumbnailed) == {
        "Ann": sorted(k for p in USERS["Ann"] for k in jobs.thumbs[p.ref].values())
    }
    first_key = jobs.upload_jobs(thumbnailed)["Ann"][0]
    owner = next(p for p in USERS["Ann"] if first_key in jobs.thumbs[p.ref].values())
    uploaded = jobs.uploaded(thumbnailed, {first_key: ConnectionError("reset")})  # one object failed for good

    outcome = collect_outcome(jobs.plan, USERS, {}, trained, thumbnailed, None, uploaded)

    assert {e["file"] for e in outcome.errors} == {owner.path} | {p.path for p in USERS["Bob"]}
    assert {e["error"].split(":")[0] for e in outcome.errors} == {"upload failed", "thumbnail failed"}
    # Encoded, but with no thumbnails recorded: the next run sees them as to do. The others are done.
    thumbs = {r["filename"]: r["thumbs"] for recs in outcome.records.values() for r in recs}
    assert {name for name, keys in thumbs.items() if not keys} == {owner.filename, "b1.jpg", "b2.jpg"}


def test_documents_bundle_inputs_and_stale_keys() -> None:
    before = {"Ann": {"old.jpg": photo_record(photo("Ann", "old.jpg", "s0"), ENCODED,
                                              thumbs={"128": "thumbs/128/Ann/old.jpg"})}}  # fmt: skip
    jobs = started(before)
    trained = collect_training([], {"s1": encoded(0.1), "s2": FaceResult(REJECTED, reason="2 faces found"),
                                    "s3": encoded(0.3), "s4": encoded(0.4)})  # fmt: skip
    thumbnailed = every_photo_staged(jobs, trained)
    outcome = collect_outcome(
        jobs.plan, USERS, before, trained, thumbnailed, None, jobs.uploaded(thumbnailed, {})
    )

    docs = {d["username"]: d for d in outcome.documents({"Bob": "b2.jpg"}, lambda k: f"https://cdn/{k}")}
    assert docs["Ann"]["profile_image"]["photo"] == "a1.jpg"
    assert docs["Bob"]["profile_image"]["urls"]["256"] == "https://cdn/thumbs/256/Bob/b2.jpg"
    assert docs["Ann"]["counts"] == {"photos": 3, "encoded": 2, "rejected": 1, "weak": 0}
    stored = {"s1": [0.1] * 128, "s3": [0.3] * 128, "s4": [0.4] * 128}
    assert {u: len(e) for u, e in outcome.bundle_encodings(stored).items()} == {"Ann": 2, "Bob": 2}
    assert outcome.stale_keys(before) == ["thumbs/128/Ann/old.jpg"]
    assert outcome.profiles({}, lambda k: None)["Bob"]["photo"] == "b1.jpg"


def test_summary_counts_what_the_run_did() -> None:
    jobs = started()
    trained = collect_training(
        [], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)}
    )
    thumbnailed = every_photo_staged(jobs, trained)
    outcome = collect_outcome(
        jobs.plan, USERS, {}, trained, thumbnailed, None, jobs.uploaded(thumbnailed, {})
    )
    found = Discovery(USERS, [Rejection("/img/notes.jpg", "photo directly under the images root")])

    summary = summarize(found, jobs.plan, outcome, upserted=2, removed_users=0, deleted_objects=0,
                        store="s3://b", bundle={"version": "v"}, seconds={"discover": 0.1})  # fmt: skip

    assert (summary["users"], summary["photos"], summary["encoded"], summary["uploaded"]) == (2, 5, 4, 10)
    assert summary["rejected"] == [
        {"file": "/img/notes.jpg", "reason": "photo directly under the images root"}
    ]
    assert [row["user"] for row in summary["per_user"]] == ["Ann", "Bob"]


def test_a_weak_photo_is_enrolled_and_its_reason_reaches_the_summary_and_the_document() -> None:
    turned = "face turned 32°: look straight at the camera"
    jobs = started()
    weak = FaceResult(ENCODED, encoding=[0.2] * 128, faces=1, weak=turned)
    trained = collect_training([], {"s1": encoded(0.1), "s2": weak, "s3": encoded(0.3), "s4": encoded(0.4)})
    thumbnailed = every_photo_staged(jobs, trained)
    outcome = collect_outcome(
        jobs.plan, USERS, {}, trained, thumbnailed, None, jobs.uploaded(thumbnailed, {})
    )
    summary = summarize(Discovery(USERS, []), jobs.plan, outcome, upserted=2, removed_users=0,
                        deleted_objects=0, store="s3://b", bundle={"version": "v"}, seconds={})  # fmt: skip
    assert summary["weak"] == [{"file": "Ann/a2.jpg", "reason": turned}]
    assert summary["rejected"] == []
    assert summary["per_user"][0]["weak"] == [f"a2.jpg: {turned}"]
    assert "s2" in outcome.encoded_shas  # enrolled all the same
    ann = {d["username"]: d for d in outcome.documents({}, lambda k: None)}["Ann"]
    assert ann["counts"]["weak"] == 1
    assert ann["notes"] == [{"photo": "a2.jpg", "status": ENCODED, "reason": turned}]


def run_once(root: Path, recorded: dict) -> tuple[Discovery, Plan, Outcome]:  # type: ignore[type-arg]
    """Discovery, plan and merge as the flow chains them, every photo encoded and uploaded."""
    found = discover_photos(root)
    plan = plan_for(found, recorded, SIZES, PREFIX)
    jobs = Jobs.for_plan(plan, SIZES, PREFIX)
    trained = collect_training([], {sha: encoded(0.5) for sha in jobs.shas_to_encode()})
    tasks = [([user], dict.fromkeys(paths), None) for user, paths in jobs.thumbnail_jobs().items()]
    thumbnailed = jobs.thumbnailed(tasks, trained, None)
    uploaded = jobs.uploaded(thumbnailed, {})
    return found, plan, collect_outcome(plan, found.users, recorded, trained, thumbnailed, None, uploaded)


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
    found, plan, outcome = run_once(root, recorded)

    assert found.unreadable_users == {"Bob"} and found.unreadable_photos == {"Ann/a2.png"}
    assert plan.removed_users == ["Cid"]
    assert [d["username"] for d in outcome.documents({}, lambda k: None)] == ["Ann"]
    assert {r["filename"] for r in outcome.records["Ann"]} == {"a1.jpg", "a2.png"}
    assert outcome.records["Bob"] == list(recorded["Bob"].values())
    assert set(outcome.bundle_encodings({s: [0.5] * 128 for s in outcome.encoded_shas})) == {"Ann", "Bob"}
    cid_keys = sorted(recorded["Cid"]["c1.jpg"]["thumbs"].values())
    assert outcome.stale_keys(recorded) == cid_keys  # Bob's and a2's thumbnails stay
    summary = summarize(found, plan, outcome, upserted=1, removed_users=1, deleted_objects=2, store="s3://b",
                        bundle={}, seconds={})  # fmt: skip
    reasons = {Path(r["file"]).name: r["reason"] for r in summary["rejected"]}
    assert reasons["Bob"].startswith("cannot be read (symbolic link loop)")
    assert reasons["a2.png"].startswith("cannot be read (broken symbolic link)")

    # Readable again: synced as usual, nothing was lost in between.
    (root / "Bob").unlink()
    (tmp_path / "Bob").rename(root / "Bob")
    (root / "Ann" / "a2.png").unlink()
    (root / "Ann" / "a2.png").write_bytes(b"Ann/a2.png")
    found, plan, outcome = run_once(root, as_recorded(outcome, recorded))
    assert found.rejected == [] and plan.todo == [] and plan.held == {}
    assert {u: len(r) for u, r in outcome.records.items()} == {"Ann": 2, "Bob": 1}


def test_a_photo_this_run_could_not_read_keeps_its_previous_record() -> None:
    """Read when discovered, unreadable when decoded (a disk error, permissions changed meanwhile)."""
    before = {"Bob": {"b1.jpg": photo_record(photo("Bob", "b1.jpg", "old"), ENCODED,
                                             thumbs={"128": "thumbs/128/Bob/b1.jpg"})}}  # fmt: skip
    jobs = started(before)
    failure = "cannot be read (Input/output error)"
    unread = FaceResult(REJECTED, reason=failure)
    trained = collect_training([], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": unread, "s4": unread})

    outcome = collect_outcome(jobs.plan, USERS, before, trained)

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


def full_run(jobs: Jobs, trained: Trained, identity: IdentityCheck | None = None) -> Outcome:
    """Every stage done: each photo's thumbnails staged by one task and uploaded."""
    thumbnailed = jobs.thumbnailed(
        [(list(USERS), {p.path: None for p in jobs.plan.todo}, None)], trained, identity
    )
    uploaded = jobs.uploaded(thumbnailed, {})
    return collect_outcome(jobs.plan, USERS, {}, trained, thumbnailed, identity, uploaded)


def test_a_photo_whose_thumbnail_cannot_be_decoded_is_rejected_with_the_reason() -> None:
    jobs = started()
    trained = collect_training(
        [], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)}
    )
    problems: dict[str, str | None] = {p.path: None for p in jobs.plan.todo} | {
        BOB2.path: "cannot decode image"
    }
    thumbnailed = jobs.thumbnailed([(list(USERS), problems, None)], trained, None)
    uploaded = jobs.uploaded(thumbnailed, {})

    outcome = collect_outcome(jobs.plan, USERS, {}, trained, thumbnailed, None, uploaded)

    bob = {r["filename"]: r for r in outcome.records["Bob"]}
    assert (bob["b2.jpg"]["status"], bob["b2.jpg"]["reason"], bob["b2.jpg"]["thumbs"]) == (
        REJECTED, "cannot decode image", {}
    )  # fmt: skip
    assert {"file": BOB2.path, "reason": "cannot decode image"} in outcome.rejected
    assert BOB2 not in thumbnailed.staged["Bob"] and BOB2.ref not in uploaded.thumbs
    assert outcome.errors == []  # a verdict, not an error: not tried again until the photo changes
    assert "s4" in outcome.new_encodings and "s4" not in outcome.encoded_shas


def test_an_upload_failure_leaves_the_photo_recorded_without_thumbnails_and_an_error() -> None:
    jobs = started()
    trained = collect_training(
        [], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)}
    )
    thumbnailed = jobs.thumbnailed([(list(USERS), {}, None)], trained, None)
    key = jobs.thumbs[BOB1.ref]["256"]
    uploaded = jobs.uploaded(thumbnailed, {key: "bucket 'b' answered 503"})

    outcome = collect_outcome(jobs.plan, USERS, {}, trained, thumbnailed, None, uploaded)

    bob = {r["filename"]: r for r in outcome.records["Bob"]}
    assert (bob["b1.jpg"]["status"], bob["b1.jpg"]["thumbs"]) == (ENCODED, {})
    assert bob["b2.jpg"]["thumbs"] == jobs.thumbs[BOB2.ref]
    assert outcome.errors == [{"file": BOB1.path, "error": "upload failed: bucket 'b' answered 503"}]
    assert BOB1.ref not in outcome.uploaded and set(outcome.uploaded) == {p.ref for p in jobs.plan.todo} - {
        BOB1.ref
    }
    assert plan_sync(USERS, as_recorded(outcome, {}), SIZES, PREFIX).todo == [BOB1]  # tried again next run


def test_an_identity_rejection_wins_over_an_encoded_verdict_and_drops_the_thumbnails() -> None:
    jobs = started()
    trained = collect_training(
        [], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3), "s4": encoded(0.4)}
    )
    conflict = {"kind": "same person", "users": ["Ann", "Bob"], "distance": 0.2, "kept": "Ann",
                "rejected": [BOB2.ref]}  # fmt: skip
    identity = IdentityCheck({BOB2.ref: "same person as Ann (d=0.20)"}, [conflict])

    outcome = full_run(jobs, trained, identity)

    bob = {r["filename"]: r for r in outcome.records["Bob"]}
    assert bob["b2.jpg"] == photo_record(BOB2, REJECTED, "same person as Ann (d=0.20)", check="identity")
    assert trained.verdicts["s4"] == (ENCODED, None)  # the encoders accepted it all the same
    assert BOB2.ref not in outcome.uploaded and outcome.conflicts == [conflict]
    assert "s4" in outcome.kept_shas and "s4" not in outcome.encoded_shas  # decided again next run
    thumbnailed = jobs.thumbnailed([(list(USERS), {}, None)], trained, identity)
    assert set(jobs.thumbs[BOB2.ref].values()) <= set(thumbnailed.discard)


def test_a_run_stopped_after_training_gives_the_unchanged_photos_the_records_of_a_full_run() -> None:
    def synced(p: Photo) -> dict:  # type: ignore[type-arg]
        return photo_record(p, ENCODED, thumbs=expected_thumbs(p, SIZES, PREFIX))

    old_b2 = synced(photo("Bob", "b2.jpg", "old"))  # b2.jpg's content changed since
    recorded = {"Ann": {"a1.jpg": synced(ANN1)}, "Bob": {"b1.jpg": synced(BOB1), "b2.jpg": old_b2}}
    jobs = started(recorded)
    assert jobs.plan.unchanged == [ANN1, BOB1] and BOB2 in jobs.plan.todo
    trained = collect_training([], {sha: encoded(0.5) for sha in jobs.shas_to_encode()})
    thumbnailed = jobs.thumbnailed([(list(USERS), {}, None)], trained, None)
    uploaded = jobs.uploaded(thumbnailed, {})

    full = collect_outcome(jobs.plan, USERS, recorded, trained, thumbnailed, None, uploaded)
    stopped = collect_outcome(jobs.plan, USERS, recorded, trained)
    nothing_yet = collect_outcome(jobs.plan, USERS, recorded)

    def unchanged(outcome: Outcome) -> dict[str, dict]:  # type: ignore[type-arg]
        refs = {p.ref for p in jobs.plan.unchanged}
        return {f"{u}/{r['filename']}": r for u, recs in outcome.records.items() for r in recs
                if f"{u}/{r['filename']}" in refs}  # fmt: skip

    assert unchanged(stopped) == unchanged(full) == unchanged(nothing_yet) == {
        "Ann/a1.jpg": recorded["Ann"]["a1.jpg"], "Bob/b1.jpg": recorded["Bob"]["b1.jpg"]
    }  # fmt: skip
    # Trained but not uploaded: encoded, no thumbnails yet; not trained: what was synced is kept.
    b2 = {r["filename"]: r for r in stopped.records["Bob"]}["b2.jpg"]
    assert (b2["status"], b2["sha256"], b2["thumbs"]) == (ENCODED, "s4", {})
    assert {r["filename"]: r for r in nothing_yet.records["Bob"]}["b2.jpg"] == recorded["Bob"]["b2.jpg"]
    assert "a2.jpg" not in {r["filename"] for r in nothing_yet.records["Ann"]}  # nothing to keep
    assert (stopped.uploaded, stopped.errors, nothing_yet.new_encodings) == ({}, [], frozenset())
    assert stopped.new_encodings == full.new_encodings == frozenset(jobs.shas_to_encode())


def test_the_merge_is_the_same_whatever_order_the_thumbnail_tasks_finish_in() -> None:
    jobs = started()
    trained = collect_training(["s4"], {"s1": encoded(0.1), "s2": encoded(0.2), "s3": encoded(0.3)})
    ann, bob = (["Ann"], {}, None), (["Bob"], {BOB1.path: "cannot decode image"}, None)
    one, other = jobs.thumbnailed([ann, bob], trained, None), jobs.thumbnailed([bob, ann], trained, None)
    assert one == other and one.undecodable == {"s3": "cannot decode image"}
    assert one.staged == {"Ann": [ANN1, ANN2, ANN3], "Bob": [BOB2]}
