"""The sync against a real S3 server, SeaweedFS on loopback, as a user runs it (the CLI in a subprocess):
a full sync, a re-run with nothing new, a removal, presigned profile URLs fetched over HTTP, base-url
mode behind a bucket policy, and public-acl refused where the server does not apply ACLs.

moto accepts any signature and enforces ACLs; SeaweedFS checks SigV4, refuses anonymous reads unless a
bucket policy allows them, and accepts ACLs without applying them (seaweedfs issue 4007)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from facelogin.adapters.embedded import NxServer
from facelogin.adapters.stores import StoreError
from facelogin.adapters.stores.s3 import S3Store
from tests.conftest import AWS_ENV, s3_for
from tests.servers import MotoServer, SeaweedServer

pytestmark = pytest.mark.slow

FACELOGIN = Path(sys.executable).with_name("facelogin")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FACELOGIN), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def site(
    seaweed: SeaweedServer, nx: NxServer, database: str, served_env: dict[str, str], images: Path
) -> dict[str, Any]:
    bucket = f"faces-{uuid.uuid4().hex[:12]}"
    s3_for(seaweed.url).create_bucket(Bucket=bucket)
    env = (
        served_env
        | AWS_ENV
        | {
            "AWS_ENDPOINT_URL": seaweed.url,
            "FACELOGIN_BUCKET": bucket,
            "FACELOGIN_MONGODB_URI": nx.uri,
            "FACELOGIN_DATABASE": database,
            "FACELOGIN_IMAGES": str(images),
        }
    )
    return {"env": env, "bucket": bucket, "images": images, "client": s3_for(seaweed.url)}


def keys(site: dict[str, Any], prefix: str = "") -> list[str]:
    pages = site["client"].get_paginator("list_objects_v2").paginate(Bucket=site["bucket"], Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def test_a_full_sync_a_quiet_rerun_and_a_removal_on_seaweedfs(site: dict[str, Any]) -> None:
    env = site["env"]
    first = run(env, "sync", "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["uploaded"] > 0 and not summary["errors"]
    thumbs = keys(site, "thumbs/")
    assert len(thumbs) == summary["uploaded"] and "thumbs/256/Obama/obama_01.jpg" in thumbs
    assert any(k.startswith("encodings/") for k in keys(site))

    again = json.loads(run(env, "sync", "--json").stdout)
    assert (again["encoded"], again["uploaded"], again["deleted_objects"]) == (0, 0, 0)

    url = run(env, "profile-url", "Obama", "--json")
    assert url.returncode == 0, url.stderr
    link = json.loads(url.stdout)["url"]
    assert "X-Amz-Signature=" in link and status_of(link) == 200
    assert status_of(link.replace("X-Amz-Signature=", "X-Amz-Signature=0")) == 403  # checked, not trusted
    assert status_of(f"{env['AWS_ENDPOINT_URL']}/{site['bucket']}/thumbs/256/Obama/obama_01.jpg") == 403

    shutil.rmtree(site["images"] / "Obama")
    removed = json.loads(run(env, "sync", "--json").stdout)
    assert removed["removed_users"] == 1 and removed["deleted_objects"] > 0
    assert not [k for k in keys(site, "thumbs/") if "/Obama/" in k]


def test_base_url_mode_behind_a_bucket_policy_serves_thumbnails_and_nothing_else(
    site: dict[str, Any], seaweed: SeaweedServer
) -> None:
    bucket = site["bucket"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{bucket}/thumbs/*"]}
        ],
    }  # fmt: skip
    site["client"].put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    env = site["env"] | {"FACELOGIN_URL_MODE": "base-url", "FACELOGIN_BASE_URL": f"{seaweed.url}/{bucket}"}
    done = run(env, "sync", "--json")
    assert done.returncode == 0, done.stderr
    link = json.loads(run(env, "profile-url", "Obama", "--json").stdout)["url"]
    assert link == f"{seaweed.url}/{bucket}/thumbs/256/Obama/obama_01.jpg"
    assert status_of(link) == 200  # anonymous, through the policy
    latest = next(k for k in keys(site, "encodings/") if k.endswith("latest.json"))
    assert status_of(f"{seaweed.url}/{bucket}/{latest}") == 403  # the encodings stay private


def test_public_acl_is_refused_where_the_server_does_not_apply_acls(
    site: dict[str, Any], seaweed: SeaweedServer, moto: MotoServer, bucket: str
) -> None:
    """SeaweedFS takes the public-read ACL and ignores it: one anonymous HEAD after the first upload says
    so, the sync stops naming what to use instead, and doctor fails the same way. moto applies ACLs."""
    ignored = S3Store(site["client"], site["bucket"], url_mode="public-acl")
    with pytest.raises(StoreError, match="does not apply ACLs") as refused:
        ignored.put("thumbs/x.jpg", b"\xff\xd8", "image/jpeg", "private", public=True)
    assert "FACELOGIN_URL_MODE=presigned" in str(refused.value) and "bucket policy" in str(refused.value)
    applied = S3Store(s3_for(moto.url), bucket, url_mode="public-acl")
    applied.put("thumbs/x.jpg", b"\xff\xd8", "image/jpeg", "private", public=True)  # no error: it is public

    env = site["env"] | {"FACELOGIN_URL_MODE": "public-acl"}
    sync = run(env, "sync")
    assert sync.returncode in {1, 2} and "does not apply ACLs" in sync.stderr
    assert "Traceback" not in sync.stderr
    doctor = run(env, "doctor", "--json")
    store = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "object store")
    assert doctor.returncode == 1 and store["status"] == "FAIL" and "does not apply ACLs" in store["detail"]
