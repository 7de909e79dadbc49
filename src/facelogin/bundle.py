"""The encodings bundle the Pi reads: a deterministic .npz (no pickles) plus a JSON manifest with its sha256.

Layout, locally and under the bundle prefix in the object store::

    bundle-<version>.npz    arrays: encodings (N,128) float64, labels (N,) int32, usernames (U,) str
    bundle-<version>.json   the manifest (format, version, sha256 of the .npz, users, model versions)
    latest.json             a copy of the newest manifest, written last: the pointer readers follow

`version` is the first 16 hex digits of the .npz's sha256, so the same encodings always give
the same version and an unchanged tree publishes nothing new.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npformat

FORMAT = "facelogin-bundle"
FORMAT_VERSION = 1
LATEST = "latest.json"
ENCODING_SIZE = 128
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class BundleError(ValueError):
    """A bundle that must not be used: missing, corrupt, truncated, or of an unknown format."""


@dataclass
class Bundle:
    usernames: list[str]
    encodings: np.ndarray  # (N, 128) float64
    labels: np.ndarray  # (N,) int32, index into usernames
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    def profile(self, username: str) -> dict[str, Any] | None:
        for user in self.manifest.get("users", []):
            if user["username"] == username:
                return user.get("profile_image")
        return None


def npz_name(version: str) -> str:
    return f"bundle-{version}.npz"


def manifest_name(version: str) -> str:
    return f"bundle-{version}.json"


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """np.savez with fixed timestamps, so equal arrays give equal bytes (and equal versions)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                npformat.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def build_bundle(
    encodings: dict[str, list[list[float]]],
    profiles: dict[str, dict[str, Any] | None],
    created_at: str,
    model: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The .npz bytes and manifest for `encodings` (username -> list of 128-d encodings)."""
    usernames = sorted(u for u, encs in encodings.items() if encs)
    rows = [np.asarray(e, dtype=np.float64) for u in usernames for e in encodings[u]]
    matrix = np.vstack(rows) if rows else np.zeros((0, ENCODING_SIZE), dtype=np.float64)
    if matrix.shape[1] != ENCODING_SIZE:
        raise BundleError(f"encodings must have {ENCODING_SIZE} values, got {matrix.shape[1]}")
    labels = np.asarray([i for i, u in enumerate(usernames) for _ in encodings[u]], dtype=np.int32)
    names = np.asarray(usernames, dtype=str) if usernames else np.zeros(0, dtype="<U1")
    data = _npz_bytes({"encodings": matrix, "labels": labels, "usernames": names})
    sha = hashlib.sha256(data).hexdigest()
    version = sha[:16]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created_at": created_at,
        "npz": npz_name(version),
        "sha256": sha,
        "bytes": len(data),
        "model": model,
        "users": [
            {
                "username": u,
                "encodings": len(encodings[u]),
                "profile_image": profiles.get(u),
            }
            for u in usernames
        ],
        **(extra or {}),
    }
    return data, manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def parse_manifest(raw: bytes, source: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{source}: manifest is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{source}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{source}: bundle format version {manifest.get('format_version')!r} is not supported "
            f"(this facelogin reads version {FORMAT_VERSION})"
        )
    for key in ("version", "npz", "sha256"):
        if not isinstance(manifest.get(key), str):
            raise BundleError(f"{source}: manifest has no {key!r}")
    if Path(manifest["npz"]).name != manifest["npz"]:
        raise BundleError(f"{source}: manifest names an unsafe file {manifest['npz']!r}")
    return manifest


def load_bundle(manifest: dict[str, Any], data: bytes, source: str) -> Bundle:
    """Verify `data` against `manifest` (sha256, shapes) and load it without unpickling anything."""
    sha = hashlib.sha256(data).hexdigest()
    if sha != manifest["sha256"]:
        raise BundleError(
            f"{source}: checksum mismatch (sha256 {sha[:16]}..., manifest says "
            f"{manifest['sha256'][:16]}...): the file is corrupt or truncated"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            encodings = np.asarray(npz["encodings"], dtype=np.float64)
            labels = np.asarray(npz["labels"], dtype=np.int32)
            usernames = [str(u) for u in npz["usernames"]]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{source}: cannot read the encodings ({exc})") from None
    if encodings.ndim != 2 or encodings.shape[1] != ENCODING_SIZE or len(labels) != len(encodings):
        raise BundleError(f"{source}: encodings have shape {encodings.shape}, labels {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(usernames)):
        raise BundleError(f"{source}: labels point outside the user list")
    return Bundle(usernames, encodings, labels, manifest)


def read_bundle(path: str | Path) -> Bundle:
    """Read a local bundle: a directory holding latest.json, or a manifest .json file."""
    path = Path(path).expanduser()
    manifest_path = path / LATEST if path.is_dir() else path
    try:
        raw = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"{manifest_path}: cannot read the bundle manifest ({exc.strerror or exc})"
        ) from None
    manifest = parse_manifest(raw, str(manifest_path))
    npz_path = manifest_path.parent / manifest["npz"]
    try:
        data = npz_path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{npz_path}: cannot read the encodings ({exc.strerror or exc})") from None
    return load_bundle(manifest, data, str(npz_path))


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest `latest.json` of a local bundle directory points at, or None when there is none."""
    try:
        raw = (Path(path) / LATEST).read_bytes()
    except FileNotFoundError:
        return None
    return parse_manifest(raw, str(Path(path) / LATEST))


def publish_bundle(store: Any, prefix: str, data: bytes, manifest: dict[str, Any]) -> str:
    """Write the bundle to an object store (a bucket or a local directory); the pointer goes last.

    A reader following `latest.json` therefore always finds the .npz it names.
    Returns the key of the manifest.
    """

    def key(name: str) -> str:
        return key_for(prefix, name)

    version = manifest["version"]
    body = manifest_bytes(manifest)
    store.put(
        key(npz_name(version)), data, "application/octet-stream", "private, max-age=31536000, immutable"
    )
    store.put(key(manifest_name(version)), body, "application/json", "private, max-age=31536000, immutable")
    store.put(key(LATEST), body, "application/json", "private, no-cache")
    return key(manifest_name(version))


def key_for(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def published_sha(store: Any, prefix: str) -> str | None:
    """The sha256 the store's latest pointer names, or None when there is no readable pointer."""
    try:
        manifest = parse_manifest(store.get(key_for(prefix, LATEST)), LATEST)
    except Exception:  # noqa: BLE001 - missing or unreadable: publishing again is the fix either way
        return None
    return str(manifest["sha256"])
