"""The last local sync kept in the state directory: what is recorded, and which root it remembers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from facelogin.sync import lastrun

SUMMARY: dict[str, Any] = {
    "users": 6, "photos": 12, "encoded": 12, "unchanged": 0, "rejected": [{"file": "x", "reason": "y"}],
    "uploaded": 24, "upserted": 6, "removed_users": 0, "deleted_objects": 0, "errors": [],
    "conflicts": [], "per_user": [{"user": "Obama"}], "store": "s3://faces",
    "catalog": "db.example.org/facelogin",
    "bundle": {"version": "abc", "sha256": "f" * 64, "users": 6, "encodings": 12, "path": "/b",
               "location": "s3://faces/encodings/latest.json"},
}  # fmt: skip


def run(images: str, code: int, summary: dict[str, Any] | None = None, at: str = "2026-12-04T10:00:00+00:00",
        error: str | None = None) -> dict[str, Any]:  # fmt: skip
    return lastrun.run_record(images=images, started=at, finished=at, exit_code=code, summary=summary,
                              error=error)  # fmt: skip


def test_a_run_records_counts_and_places_not_the_photo_lists(tmp_path: Path) -> None:
    record = lastrun.save(tmp_path, run("/srv/images", 0, SUMMARY))

    last = record["last_run"]
    assert last["counts"] == {"users": 6, "photos": 12, "encoded": 12, "unchanged": 0, "rejected": 1,
                              "uploaded": 24, "upserted": 6, "removed_users": 0, "deleted_objects": 0,
                              "errors": 0}  # fmt: skip
    assert (last["state"], last["store"], last["catalog"]) == (
        "Completed",
        "s3://faces",
        "db.example.org/facelogin",
    )
    assert last["bundle"] == {
        "version": "abc",
        "users": 6,
        "path": "/b",
        "location": "s3://faces/encodings/latest.json",
    }
    on_disk = tmp_path / lastrun.FILE
    assert json.loads(on_disk.read_text()) == record and on_disk.stat().st_mode & 0o777 == 0o600
    assert "per_user" not in on_disk.read_text() and "Obama" not in on_disk.read_text()
    assert lastrun.synced_root(tmp_path) == (Path("/srv/images"), "2026-12-04T10:00:00+00:00")


@pytest.mark.parametrize(
    ("code", "summary", "state", "root_after"),
    [
        (0, SUMMARY, "Completed", "/new"),
        (1, SUMMARY, "Completed with errors", "/new"),  # some photos failed: the root was read
        (1, None, "Failed", "/new"),
        (2, None, "Refused (nothing changed)", "/old"),  # a refused run read nothing: keep the old root
    ],
)
def test_the_synced_root_is_the_last_one_a_run_read(
    tmp_path: Path, code: int, summary: dict[str, Any] | None, state: str, root_after: str
) -> None:
    lastrun.save(tmp_path, run("/old", 0, SUMMARY, at="2026-12-01T02:00:00+00:00"))

    record = lastrun.save(tmp_path, run("/new", code, summary, error=None if code == 0 else "what failed"))

    assert record["last_run"]["state"] == state and record["last_run"]["images"] == "/new"
    found = lastrun.synced_root(tmp_path)
    assert found is not None and found[0] == Path(root_after)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"format": 99, "last_run": {}}'])
def test_a_damaged_record_is_no_record(tmp_path: Path, content: bytes) -> None:
    (tmp_path / lastrun.FILE).write_bytes(content)
    assert lastrun.load(tmp_path) is None and lastrun.synced_root(tmp_path) is None
    lastrun.save(tmp_path, run("/srv/images", 0, SUMMARY))  # the next sync writes it again
    assert lastrun.synced_root(tmp_path) == (Path("/srv/images"), "2026-12-04T10:00:00+00:00")
