"""The encodings bundle the Pi reads: a deterministic .npz (no pickles) plus a JSON manifest with its sha256.

Layout, locally and under the bundle prefix in the object store::

    bundle-<version>.npz    arrays: encodings (N,128) float64, labels (N,) int32, usernames (U,) str,
                            match_rule (1,) str (format 2: in the checksum, so a new rule is a new version)
    bundle-<version>.json   the manifest (format, version, sha256 of the .npz, users, model versions)
    latest.json             a copy of the newest manifest, written last: the pointer readers follow

`version` is the first 16 hex digits of the .npz's sha256, so the same encodings always give
the same version and an unchanged tree publishes nothing new.

`format_version` says how the bundle is to be read. 1: every encoding is matched on its own
(rule "nearest"). 2: the manifest names the match rule (`match.rule`: "nearest-or-mean", each of
a user's encodings and their mean, when version 2 was made; "mean", the mean of a user's
encodings, since), and a calibration is only valid for the rule it was made with. A reader
refuses a version or a rule it does not know, naming it, rather than match a bundle by a rule it
was not made for: an older Pi keeps its last good bundle and says it needs an update.
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

from facelogin.adapters.stores import ObjectStore, open_store

FORMAT = "facelogin-bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# The rules facelogin.login.match knows (kept here, the format's own module, so that reading a
# manifest needs no login code); version 1 bundles have no `match` and mean "nearest".
MATCH_NEAREST = "nearest"
MATCH_NEAREST_OR_MEAN = "nearest-or-mean"
MATCH_MEAN = "mean"
MATCH_RULES = (MATCH_NEAREST, MATCH_NEAREST_OR_MEAN, MATCH_MEAN)
MATCH_RULE = MATCH_MEAN
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

    @property
    def match_rule(self) -> str:
        """How the login matches these encodings (checked by `parse_manifest`)."""
        return match_rule(self.manifest)

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
    rule: str = MATCH_RULE,
) -> tuple[bytes, dict[str, Any]]:
    """The .npz bytes and manifest for `encodings` (username -> list of 128-d encodings)."""
    if rule not in MATCH_RULES:
        raise BundleError(f"unknown match rule {rule!r}")
    usernames = sorted(u for u, encs in encodings.items() if encs)
    rows = [np.asarray(e, dtype=np.float64) for u in usernames for e in encodings[u]]
    matrix = np.vstack(rows) if rows else np.zeros((0, ENCODING_SIZE), dtype=np.float64)
    if matrix.shape[1] != ENCODING_SIZE:
        raise BundleError(f"encodings must have {ENCODING_SIZE} values, got {matrix.shape[1]}")
    labels = np.asarray([i for i, u in enumerate(usernames) for _ in encodings[u]], dtype=np.int32)
    names = np.asarray(usernames, dtype=str) if usernames else np.zeros(0, dtype="<U1")
    data = _npz_bytes(
        {"encodings": matrix, "labels": labels, "usernames": names, "match_rule": np.asarray([rule])}
    )
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
        "match": {"rule": rule},
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
    if manifest.get("format_version") not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise BundleError(
            f"{source}: bundle format version {manifest.get('format_version')!r} is not supported "
            f"(this facelogin reads versions {readable}): update facelogin on this machine"
        )
    if match_rule(manifest) not in MATCH_RULES:
        raise BundleError(
            f"{source}: match rule {match_rule(manifest)!r} is not known to this facelogin "
            f"(it knows {', '.join(MATCH_RULES)}): update facelogin on this machine"
        )
    for key in ("version", "npz", "sha256"):
        if not isinstance(manifest.get(key), str):
            raise BundleError(f"{source}: manifest has no {key!r}")
    if Path(manifest["npz"]).name != manifest["npz"]:
        raise BundleError(f"{source}: manifest names an unsafe file {manifest['npz']!r}")
    return manifest


def match_rule(manifest: dict[str, Any]) -> str:
    """The rule a manifest's encodings are matched by: "nearest" for format 1."""
    if manifest.get("format_version") == 1:
        return MATCH_NEAREST
    match = manifest.get("match")
    return str(match.get("rule")) if isinstance(match, dict) else ""


def _one_string(array: np.ndarray) -> str:
    values = np.asarray(array).reshape(-1)
    return str(values[0]) if len(values) == 1 else ""


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
            rule = _one_string(npz["match_rule"]) if "match_rule" in npz.files else MATCH_NEAREST
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{source}: cannot read the encodings ({exc})") from None
    if encodings.ndim != 2 or encodings.shape[1] != ENCODING_SIZE or len(labels) != len(encodings):
        raise BundleError(f"{source}: encodings have shape {encodings.shape}, labels {labels.shape}")
    if rule != match_rule(manifest):
        raise BundleError(
            f"{source}: the encodings are for rule {rule!r}, the manifest says {match_rule(manifest)!r}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(usernames)):
        raise BundleError(f"{source}: labels point outside the user list")
    return Bundle(usernames, encodings, labels, manifest)


def read_object(store: ObjectStore, key: str) -> bytes:
    """The bytes of `key`, or a BundleError naming where it was looked for."""
    try:
        return store.get(key)
    except Exception as exc:  # noqa: BLE001 - missing, denied or unreachable: the bundle is unusable
        detail = getattr(exc, "strerror", None) or exc
        verb = "fetch" if store.remote else "read"
        raise BundleError(f"{store.location}/{key}: cannot {verb} ({detail})") from None


def read_manifest(store: ObjectStore, prefix: str = "", name: str = LATEST) -> dict[str, Any]:
    """The manifest `name` (default: the latest pointer) under `prefix`, checked for format."""
    key = key_for(prefix, name)
    return parse_manifest(read_object(store, key), f"{store.location}/{key}")


def read_bundle_from(store: ObjectStore, prefix: str = "", name: str = LATEST) -> Bundle:
    """The bundle that manifest `name` under `prefix` names, verified against its checksum."""
    manifest = read_manifest(store, prefix, name)
    key = key_for(prefix, manifest["npz"])
    return load_bundle(manifest, read_object(store, key), f"{store.location}/{key}")


def local_location(path: str | Path) -> tuple[ObjectStore, str]:
    """A local bundle as (store, manifest name): a directory holding latest.json, or a manifest file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return open_store(path), LATEST
    if path.suffix != ".json" and path.name == "latest":
        return open_store(path.parent), LATEST
    return open_store(path.parent), path.name


def read_bundle(path: str | Path) -> Bundle:
    """Read a local bundle: a directory holding latest.json, or a manifest .json file."""
    store, name = local_location(path)
    return read_bundle_from(store, "", name)


def publish_bundle(store: ObjectStore, prefix: str, data: bytes, manifest: dict[str, Any]) -> str:
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


def published_everywhere(targets: list[tuple[ObjectStore, str]], inputs: str) -> dict[str, Any] | None:
    """The manifest every target's latest pointer names when all were built from `inputs`, in this
    format and for this match rule, else None (a bundle of an older format is built again)."""
    manifests = []
    for store, prefix in targets:
        try:
            manifests.append(read_manifest(store, prefix))
        except BundleError:
            return None
    if not manifests or any(
        m.get("inputs") != inputs
        or m["sha256"] != manifests[0]["sha256"]
        or m.get("format_version") != FORMAT_VERSION
        or match_rule(m) != MATCH_RULE
        for m in manifests
    ):
        return None
    return manifests[0]


def publish_to(
    targets: list[tuple[ObjectStore, str]], data: bytes, manifest: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Publish to each (store, prefix) whose latest pointer names another bundle, then prune older ones.

    Returns the locations published to and the keys of the old versions deleted.
    """
    published, pruned = [], []
    for store, prefix in targets:
        if published_sha(store, prefix) != manifest["sha256"]:
            publish_bundle(store, prefix, data, manifest)
            published.append(store.location)
        pruned += prune(store, prefix, manifest)
    return published, pruned


def prune(store: ObjectStore, prefix: str, keep: dict[str, Any]) -> list[str]:
    """Delete every bundle version under `prefix` but the one `keep` describes; returns the keys deleted.

    Old bundles hold the encodings of users removed since: biometric data is not kept longer than
    the current bundle needs. Readers follow latest.json, which names the version kept.
    """
    wanted = {key_for(prefix, keep["npz"]), key_for(prefix, manifest_name(keep["version"]))}
    old = [
        key
        for key in store.keys(key_for(prefix, "bundle-"))
        if key.rsplit("/", 1)[-1].startswith("bundle-") and key not in wanted
    ]
    store.delete(old)
    return old


def describe(manifest: dict[str, Any], local: Path, store: ObjectStore, prefix: str) -> dict[str, Any]:
    """The bundle as the run summary shows it: version, checksum, counts, where it is."""
    return {
        "version": manifest["version"],
        "sha256": manifest["sha256"],
        "users": len(manifest["users"]),
        "encodings": sum(u["encodings"] for u in manifest["users"]),
        "path": str(local),
        "location": f"{store.location}/{key_for(prefix, LATEST)}",
    }


def key_for(prefix: str, name: str) -> str:
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def published_sha(store: ObjectStore, prefix: str) -> str | None:
    """The sha256 the store's latest pointer names, or None when there is no readable pointer."""
    try:
        return str(read_manifest(store, prefix)["sha256"])
    except BundleError:  # missing or unreadable: publishing again is the fix either way
        return None
