"""Where a run writes: embedded defaults in a deployment's run warn, and fail when remote is required."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from facelogin.adapters.connect import where
from facelogin.settings import Settings
from facelogin.sync.guard import SyncRefused, check_remote
from facelogin.sync.report import report_markdown

WHERE = {"images": "/srv/images", "store": "local directory /h/.facelogin/objects",
         "catalog": "embedded nx-27017 in /h/.facelogin/mongo (database facelogin)"}  # fmt: skip


@pytest.mark.parametrize(
    ("store", "catalog", "from_deployment", "expected"),
    [
        (False, False, True, 0),  # remote both: nothing to say
        (True, True, False, 0),  # `facelogin sync` on a laptop: embedded is the documented default
        (True, False, True, 1),
        (True, True, True, 2),
    ],
)
def test_embedded_defaults_warn_in_a_deployment_run(
    store: bool, catalog: bool, from_deployment: bool, expected: int
) -> None:
    warnings = check_remote(store, catalog, False, from_deployment, WHERE)
    assert len(warnings) == expected
    assert all("embedded defaults" in w for w in warnings)


def test_require_remote_refuses_embedded_defaults_naming_what_is_missing() -> None:
    with pytest.raises(SyncRefused, match="FACELOGIN_REQUIRE_REMOTE is set") as refused:
        check_remote(False, True, True, False, WHERE)
    assert (
        "FACELOGIN_MONGODB_URI" in str(refused.value) and "FACELOGIN_BUCKET" not in str(refused.value)[:120]
    )
    assert check_remote(False, False, True, True, WHERE) == []


def test_where_names_hosts_and_database_never_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FACELOGIN_BUCKET", "FACELOGIN_MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        bucket="faces", mongodb_uri=SecretStr("mongodb://u:hunter2@db1:27017,db2:27017/?tls=true"),
        database="fl", images=Path("/srv/images"),
    )  # fmt: skip
    assert where(settings) == {
        "images": "/srv/images",
        "store": "s3://faces",
        "catalog": "db1:27017,db2:27017/fl",
    }
    assert not settings.embedded_catalog and settings.with_mongodb("mongodb://127.0.0.1:1/").embedded_catalog


def test_report_markdown_says_where_it_wrote_and_warns() -> None:
    summary = {"users": 1, "images": "/srv/images", "store": "s3://faces", "catalog": "db1:27017/fl",
               "bundle": {"version": "v1", "users": 1, "location": "s3://faces/encodings/latest.json",
                          "path": "/h/.facelogin/bundle"},
               "warnings": ["a deployment run uses embedded defaults on its machine: x"]}  # fmt: skip
    text = report_markdown(summary)
    assert "## Where it wrote" in text and "| object store | `s3://faces` |" in text
    assert "| MongoDB | `db1:27017/fl` |" in text and "`s3://faces/encodings/latest.json`" in text
    assert "## Warnings" in text and "embedded defaults" in text
