"""A bundle on S3 (moto server on loopback): read through `s3://.../latest`, cached, fallen back from."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from facelogin import login as core


@pytest.fixture
def s3_bundle(moto, bucket: str, bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    env = {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "testsecret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    for path in bundle_dir.iterdir():
        s3.put_object(Bucket=bucket, Key=f"encodings/{path.name}", Body=path.read_bytes())
    return bucket


def test_s3_bundle_is_read_cached_and_fallen_back_from(s3_bundle: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    cache = tmp_path / "cache"
    location = f"s3://{s3_bundle}/encodings/latest"
    first = core.load_login_bundle(location, cache)
    assert not first.from_cache and len(first.bundle.usernames) == 6
    assert (cache / first.bundle.manifest["npz"]).is_file()

    # Unchanged bundle: only the manifest is fetched, the .npz comes from the cache.
    npz_key = f"encodings/{first.bundle.manifest['npz']}"
    s3.delete_object(Bucket=s3_bundle, Key=npz_key)
    again = core.load_login_bundle(location, cache)
    assert not again.from_cache and again.bundle.version == first.bundle.version

    # A corrupt manifest on S3 leaves the cached bundle in use.
    s3.put_object(Bucket=s3_bundle, Key="encodings/latest.json", Body=b"\x00\x01")
    broken = core.load_login_bundle(location, cache)
    assert broken.from_cache and "not valid JSON" in broken.messages[0]

    # So does a location that does not exist.
    missing = core.load_login_bundle(f"s3://{s3_bundle}/nothing-here/", cache)
    assert missing.from_cache and "cannot fetch" in missing.messages[0]


def test_s3_location_parsing() -> None:
    assert core.split_s3("s3://b/enc/latest") == ("b", "enc/latest.json")
    assert core.split_s3("s3://b/enc/latest.json") == ("b", "enc/latest.json")
    assert core.split_s3("s3://b/enc/") == ("b", "enc/latest.json")
    assert core.split_s3("s3://b") == ("b", "latest.json")
    with pytest.raises(core.LoginError, match="no bucket"):
        core.split_s3("s3:///x")


def test_calibration_on_s3_is_stored_beside_the_manifest(s3_bundle: str, tmp_path: Path) -> None:
    location = f"s3://{s3_bundle}/encodings/latest"
    bundle, _, calibration = core.fetch_bundle(location)
    assert calibration is None
    record = {
        "format": core.CALIBRATION_FORMAT,
        "bundle_sha256": bundle.manifest["sha256"],
        "threshold": 0.45,
    }
    assert core.write_calibration(location, record) == f"s3://{s3_bundle}/encodings/calibration.json"
    loaded = core.load_login_bundle(location, tmp_path / "cache")
    assert loaded.calibration == record
    # Cached with the bundle, so a fallback keeps the calibrated threshold too.
    assert core.fetch_bundle(str(tmp_path / "cache"))[2] == record
