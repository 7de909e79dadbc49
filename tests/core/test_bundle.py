"""The encodings bundle: deterministic, verified, never a pickle."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facelogin.adapters.stores import DirStore
from facelogin.bundle import (
    FORMAT_VERSION,
    LATEST,
    MATCH_MEAN,
    MATCH_NEAREST,
    MATCH_NEAREST_OR_MEAN,
    MATCH_RULES,
    BundleError,
    _npz_bytes,
    build_bundle,
    publish_bundle,
    published_everywhere,
    published_sha,
    read_bundle,
)
from facelogin.login import match

MODEL = {"face_recognition": "1.3.0", "dlib": "20.0.1"}


def encodings(seed: int = 0) -> dict[str, list[list[float]]]:
    rng = np.random.default_rng(seed)
    return {
        "Obama": rng.normal(size=(3, 128)).tolist(),
        "Biden": rng.normal(size=(2, 128)).tolist(),
        "NoPhotos": [],
    }


@pytest.fixture
def published(tmp_path: Path) -> Path:
    data, manifest = build_bundle(
        encodings(), {"Obama": {"keys": {"128": "k"}}}, "2026-11-26T00:00:00Z", MODEL
    )
    publish_bundle(DirStore(tmp_path / "bundle"), "", data, manifest)
    return tmp_path / "bundle"


def test_round_trip(published: Path) -> None:
    bundle = read_bundle(published)
    assert bundle.usernames == ["Biden", "Obama"]  # users with no encodings are left out
    assert bundle.encodings.shape == (5, 128)
    assert bundle.labels.tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_allclose(bundle.encodings[2:], np.asarray(encodings()["Obama"]))
    assert bundle.profile("Obama") == {"keys": {"128": "k"}}
    assert bundle.manifest["model"] == MODEL
    assert (published / f"bundle-{bundle.version}.npz").exists()


def test_same_encodings_give_the_same_version() -> None:
    a, ma = build_bundle(encodings(), {}, "2026-01-01", MODEL)
    b, mb = build_bundle(encodings(), {}, "2027-06-30", MODEL)
    _, mc = build_bundle(encodings(seed=1), {}, "2026-01-01", MODEL)
    assert a == b and ma["version"] == mb["version"]
    assert mc["version"] != ma["version"]


def test_truncated_npz_is_refused(published: Path) -> None:
    npz = next(published.glob("bundle-*.npz"))
    npz.write_bytes(npz.read_bytes()[:-100])
    with pytest.raises(BundleError, match="checksum mismatch"):
        read_bundle(published)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, "not a facelogin-bundle"),
        ({"format_version": 99}, "format version 99 is not supported .*: update facelogin"),
        ({"match": {"rule": "telepathy"}}, "match rule 'telepathy' is not known .*: update facelogin"),
        ({"npz": "../../etc/passwd"}, "unsafe file"),
    ],
)
def test_bad_manifest_is_refused(published: Path, change: dict[str, object], message: str) -> None:
    latest = published / LATEST
    manifest = json.loads(latest.read_text())
    latest.write_text(json.dumps(manifest | change))
    with pytest.raises(BundleError, match=message):
        read_bundle(published)


def test_object_arrays_are_never_unpickled(tmp_path: Path, published: Path) -> None:
    """A bundle whose arrays need pickle fails to load even when its checksum matches."""
    import hashlib

    buf = io.BytesIO()
    np.savez(buf, encodings=np.zeros((1, 128)), labels=np.zeros(1, dtype=np.int32),
             usernames=np.array([{"evil": True}], dtype=object))  # fmt: skip
    data = buf.getvalue()
    manifest = json.loads((published / LATEST).read_text())
    manifest |= {"sha256": hashlib.sha256(data).hexdigest(), "npz": "evil.npz"}
    (published / "evil.npz").write_bytes(data)
    (published / LATEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="cannot read the encodings"):
        read_bundle(published)


def test_missing_bundle_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=str(tmp_path / "nothing")):
        read_bundle(tmp_path / "nothing")


def test_pointer_is_written_last_and_npz_is_deterministic_zip(published: Path) -> None:
    bundle = read_bundle(published)
    npz = published / f"bundle-{bundle.version}.npz"
    assert npz.stat().st_mtime_ns <= (published / LATEST).stat().st_mtime_ns
    with zipfile.ZipFile(npz) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert published_sha(DirStore(published), "") == bundle.manifest["sha256"]
    assert published_sha(DirStore(published / "elsewhere"), "") is None
    assert oct(npz.stat().st_mode & 0o777) == "0o600"  # biometric data: private by default


def test_a_new_bundle_names_its_match_rule_in_the_manifest_and_the_checksummed_arrays(
    published: Path,
) -> None:
    bundle = read_bundle(published)
    assert bundle.manifest["format_version"] == FORMAT_VERSION == 2
    assert bundle.manifest["match"] == {"rule": MATCH_MEAN}
    assert bundle.match_rule == MATCH_MEAN
    nearest, _ = build_bundle(encodings(), {}, "2026-01-01", MODEL, rule=MATCH_NEAREST)
    mean, _ = build_bundle(encodings(), {}, "2026-01-01", MODEL)
    assert nearest != mean  # a new rule is a new version, published even when no photo changed


def test_a_bundle_of_the_previous_rule_is_still_read_and_matched_by_it(tmp_path: Path) -> None:
    data, manifest = build_bundle(encodings(), {}, "2026-01-01", MODEL, rule=MATCH_NEAREST_OR_MEAN)
    publish_bundle(DirStore(tmp_path / "bundle"), "", data, manifest)
    bundle = read_bundle(tmp_path / "bundle")
    assert bundle.match_rule == MATCH_NEAREST_OR_MEAN
    assert match.Gallery.build(bundle.encodings, bundle.labels, bundle.usernames, bundle.match_rule).rule == (
        MATCH_NEAREST_OR_MEAN
    )


def test_the_login_knows_every_rule_a_bundle_can_name() -> None:
    assert set(MATCH_RULES) == set(match.RULES)
    assert match.DEFAULT_RULE == MATCH_MEAN


def version_1(directory: Path) -> Path:
    """A bundle as facelogin wrote it before the match rule was recorded (format 1)."""
    import hashlib

    arrays = {
        "encodings": np.asarray(encodings()["Obama"]),
        "labels": np.zeros(3, dtype=np.int32),
        "usernames": np.asarray(["Obama"]),
    }
    data = _npz_bytes(arrays)
    sha = hashlib.sha256(data).hexdigest()
    manifest = {"format": "facelogin-bundle", "format_version": 1, "version": sha[:16], "sha256": sha,
                "npz": f"bundle-{sha[:16]}.npz", "users": [{"username": "Obama", "encodings": 3}],
                "inputs": "same"}  # fmt: skip
    publish_bundle(DirStore(directory), "", data, manifest)
    return directory


def test_a_format_1_bundle_is_still_read_and_matched_by_the_rule_it_was_made_for(tmp_path: Path) -> None:
    bundle = read_bundle(version_1(tmp_path / "old"))
    assert bundle.match_rule == MATCH_NEAREST
    assert bundle.encodings.shape == (3, 128)


def test_a_format_1_bundle_is_built_again_even_from_the_same_inputs(tmp_path: Path) -> None:
    store = DirStore(version_1(tmp_path / "old"))
    assert published_everywhere([(store, "")], "same") is None
    data, manifest = build_bundle(encodings(), {}, "2026-01-01", MODEL, extra={"inputs": "same"})
    publish_bundle(store, "", data, manifest)
    assert published_everywhere([(store, "")], "same") == manifest


def test_a_reader_of_format_1_only_refuses_a_format_2_bundle(
    published: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an older facelogin (it reads format 1 only) says of a new bundle: it needs an update."""
    from facelogin import bundle as module

    monkeypatch.setattr(module, "READABLE_VERSIONS", (1,))
    with pytest.raises(BundleError, match="format version 2 is not supported"):
        module.parse_manifest((published / LATEST).read_bytes(), "old pi")
