"""Where the login reads its bundle: a local directory or an S3 prefix, verified, cached, with a fallback.

Reading and verifying is `facelogin.bundle` over an ObjectStore, the same reader the sync uses;
this module adds what only the login needs: the last good bundle kept in a local cache and used
when the published one is corrupt or unreachable, and the calibration sidecar beside it.
boto3 is imported only for an `s3://` location.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facelogin.adapters.stores import ObjectStore, open_store
from facelogin.bundle import (
    LATEST,
    Bundle,
    BundleError,
    key_for,
    load_bundle,
    local_location,
    manifest_bytes,
    read_manifest,
    read_object,
)
from facelogin.files import write_atomic
from facelogin.login.errors import LoginError

log = logging.getLogger(__name__)

CALIBRATION = "calibration.json"
CALIBRATION_FORMAT = "facelogin-calibration"
DEFAULT_CACHE = Path("~/.facelogin/login-cache")


@dataclass
class LoadedBundle:
    bundle: Bundle
    source: str
    from_cache: bool
    calibration: dict[str, Any] | None
    messages: list[str] = field(default_factory=list)


def split_s3(location: str) -> tuple[str, str]:
    """`s3://bucket/prefix/latest[.json]` or `s3://bucket/prefix/` -> (bucket, key of the manifest)."""
    rest = location[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise LoginError(f"{location}: no bucket in the S3 location")
    if key.endswith(".json"):
        return bucket, key
    if key.rstrip("/").endswith("latest"):
        return bucket, key.rstrip("/") + ".json"
    return bucket, f"{key.strip('/')}/{LATEST}" if key.strip("/") else LATEST


@dataclass(frozen=True)
class BundleSource:
    """A bundle's manifest in a store: the files it names and the calibration sidecar sit beside it."""

    store: ObjectStore
    prefix: str
    manifest: str = LATEST

    @classmethod
    def parse(cls, location: str) -> BundleSource:
        if location.startswith("s3://"):
            _, key = split_s3(location)
            prefix, _, name = key.rpartition("/")
            return cls(open_store(location), prefix, name)
        store, name = local_location(location)
        return cls(store, "", name)

    def describe(self, name: str | None = None) -> str:
        return f"{self.store.location}/{key_for(self.prefix, name or self.manifest)}"

    def read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.store, self.prefix, self.manifest)

    def read(self, name: str) -> bytes:
        """The file `name` beside the manifest; BundleError for anything unreachable."""
        return read_object(self.store, key_for(self.prefix, name))

    def read_optional(self, name: str) -> bytes | None:
        try:
            return self.read(name)
        except BundleError:
            return None

    def write(self, name: str, data: bytes) -> str:
        self.store.put(key_for(self.prefix, name), data, "application/json", "private, no-cache")
        return self.describe(name)


def parse_calibration(raw: bytes | None, sha256: str) -> dict[str, Any] | None:
    """The calibration sidecar if it was made for the bundle with this sha256, else None."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
        return None
    if data.get("bundle_sha256") != sha256 or not isinstance(data.get("threshold"), int | float):
        return None
    return data


def fetch_bundle(location: str, cache: Path | None = None) -> tuple[Bundle, bytes, dict[str, Any] | None]:
    """Read and verify the bundle at `location`: the bundle, its .npz bytes, its calibration.

    For a remote bundle whose .npz is already in `cache` with the right checksum, only the small
    manifest crosses the network.
    """
    source = BundleSource.parse(location)
    manifest = source.read_manifest()
    bundle = None
    if cache is not None and source.store.remote:
        try:
            data = (cache / manifest["npz"]).read_bytes()
            bundle = load_bundle(manifest, data, str(cache / manifest["npz"]))
        except (OSError, BundleError):
            bundle = None
    if bundle is None:
        data = source.read(manifest["npz"])
        bundle = load_bundle(manifest, data, source.describe(manifest["npz"]))
    calibration = parse_calibration(source.read_optional(CALIBRATION), manifest["sha256"])
    return bundle, data, calibration


def _save_cache(cache: Path, bundle: Bundle, data: bytes, calibration: dict[str, Any] | None) -> None:
    """Store the bundle in `cache`: the .npz first, the pointer last, as the publisher does."""
    manifest = bundle.manifest
    write_atomic(cache / manifest["npz"], data)
    if calibration is not None:
        write_atomic(cache / CALIBRATION, json.dumps(calibration, indent=2).encode())
    else:
        (cache / CALIBRATION).unlink(missing_ok=True)
    write_atomic(cache / LATEST, manifest_bytes(manifest))
    for old in cache.glob("bundle-*.npz"):
        if old.name != manifest["npz"]:
            old.unlink(missing_ok=True)


def _cached_sha(cache: Path) -> str | None:
    try:
        return str(read_manifest(open_store(cache))["sha256"])
    except BundleError:
        return None


def load_login_bundle(location: str, cache_dir: Path | None = None) -> LoadedBundle:
    """The bundle at `location`, verified; when it is unusable, the last good one from the cache.

    A good new bundle replaces the cached one. Messages about a fallback are returned (and logged)
    so the CLI can show them on stderr.
    """
    cache = (cache_dir or DEFAULT_CACHE).expanduser()
    try:
        bundle, data, calibration = fetch_bundle(location, cache)
    except BundleError as exc:
        try:
            cached, _, calibration = fetch_bundle(str(cache))
        except BundleError as cache_exc:
            raise LoginError(f"{exc}; and no usable cached bundle ({cache_exc})") from None
        message = (
            f"{exc}; using the last good bundle {cached.version} "
            f"({len(cached.usernames)} users) cached in {cache}"
        )
        log.warning(message)
        return LoadedBundle(cached, str(cache), True, calibration, [message])
    messages = []
    sha = bundle.manifest["sha256"]
    cached_calibration = parse_calibration(
        BundleSource(open_store(cache), "").read_optional(CALIBRATION), sha
    )
    if _cached_sha(cache) != sha or cached_calibration != calibration:
        try:
            _save_cache(cache, bundle, data, calibration)
        except OSError as exc:
            messages.append(f"{cache}: cannot cache the bundle ({exc.strerror or exc})")
            log.warning(messages[-1])
    return LoadedBundle(bundle, location, False, calibration, messages)


def write_calibration(location: str, calibration: dict[str, Any]) -> str:
    """Store the calibration sidecar beside the bundle's manifest; returns where it went."""
    data = (json.dumps(calibration, indent=2) + "\n").encode()
    return BundleSource.parse(location).write(CALIBRATION, data)
