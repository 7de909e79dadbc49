"""Login decisions on the real sample photos, and the bundle cache that keeps the Pi working."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelogin import login as core
from facelogin.login.match import NO_FACE, SEVERAL_FACES, UNKNOWN

from .conftest import USERS, make_bundle


def _auth(bundle_dir: Path, cache: Path, **settings: object) -> core.Authenticator:
    return core.Authenticator(core.load_login_bundle(str(bundle_dir), cache), core.LoginOptions(**settings))


@pytest.fixture(scope="module")
def auth(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> core.Authenticator:
    return _auth(bundle_dir, tmp_path_factory.mktemp("cache"))


def _decide(auth: core.Authenticator, *paths: Path, k: int | None = None) -> dict:
    return auth.decide(core.image_frames(paths, auth.options.height), len(paths), k or len(paths))


def test_each_probe_is_accepted_as_its_user(auth: core.Authenticator, faces: Path) -> None:
    probes = sorted(faces.glob("probes/*.jpg"))
    assert probes, "no probe photos"
    for probe in probes:
        result = _decide(auth, probe)
        assert (result["decision"], result["user"]) == ("accepted", probe.stem), (probe.name, result)
        assert result["distance"] < result["threshold"] == 0.5
        assert result["margin"] >= 0.1
        assert result["profile_image"]["key"] == f"thumbs/{probe.stem}.jpg"
        assert set(result["ms"]) >= {"decode", "detect", "encode", "match", "total"}
        assert core.exit_code(result) == 0


def test_every_camera_frame_is_accepted_as_obama(auth: core.Authenticator, faces: Path) -> None:
    frames = sorted(faces.glob("frames/*"))
    assert len(frames) >= 5
    for frame in frames:
        result = _decide(auth, frame)
        assert (result["decision"], result["user"]) == ("accepted", "Obama"), (frame.name, result)
    together = _decide(auth, *frames, k=3)
    # Stops reading as soon as three frames agree.
    assert together["frames"] == {"used": 3, "agreeing": 3, "required": 3}


def test_group_photos_are_rejected_as_several_faces(auth: core.Authenticator, faces: Path) -> None:
    groups = sorted(faces.glob("groups/*"))
    assert len(groups) >= 3
    for group in groups:
        result = _decide(auth, group)
        assert (result["decision"], result["reason"]) == ("rejected", SEVERAL_FACES), (group.name, result)
        assert result["user"] is None and result["faces"][0] >= 2
        assert core.exit_code(result) == 1


@pytest.mark.parametrize("left_out", USERS)
def test_user_left_out_of_the_bundle_is_unknown(
    left_out: str, encodings: dict, faces: Path, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle", {u: e for u, e in encodings.items() if u != left_out})
    auth = _auth(bundle, tmp_path / "cache")
    probe = faces / "probes" / f"{left_out}.jpg"
    shown = [probe] if probe.exists() else sorted((faces / "images" / left_out).iterdir())
    for photo in shown:
        result = _decide(auth, photo)
        assert (result["decision"], result["reason"], result["user"]) == ("rejected", UNKNOWN, None), (
            photo.name,
            result,
        )
        assert result["distance"] >= 0.5
    # The others are still recognised by the same bundle.
    others = [p for p in sorted(faces.glob("probes/*.jpg")) if p.stem != left_out]
    for photo in others:
        assert _decide(auth, photo)["user"] == photo.stem


def test_threshold_and_margin_are_configurable(bundle_dir: Path, faces: Path, tmp_path: Path) -> None:
    strict = _auth(bundle_dir, tmp_path / "cache", threshold=0.2)
    result = _decide(strict, faces / "probes" / "Kit_Harington.jpg")
    assert (result["decision"], result["reason"], result["threshold_source"]) == (
        "rejected",
        UNKNOWN,
        "option",
    )
    picky = _auth(bundle_dir, tmp_path / "cache", margin=0.95)
    assert _decide(picky, faces / "probes" / "Obama.jpg")["reason"] == "ambiguous"


def test_exif_rotated_photo_is_accepted(auth: core.Authenticator, faces: Path, tmp_path: Path) -> None:
    # A phone photo stored sideways with an EXIF orientation tag, as cameras write them.
    with Image.open(faces / "probes" / "Obama.jpg") as im:
        sideways = im.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to view
    path = tmp_path / "sideways.jpg"
    sideways.save(path, exif=exif)
    assert _decide(auth, path)["user"] == "Obama"


def test_blank_frame_has_no_face(auth: core.Authenticator, tmp_path: Path) -> None:
    path = tmp_path / "wall.png"
    Image.new("RGB", (640, 480), (200, 200, 190)).save(path)
    result = _decide(auth, path)
    assert (result["decision"], result["reason"]) == ("rejected", NO_FACE)


def test_unreadable_image_is_an_error_naming_the_file(auth: core.Authenticator, tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(core.LoginError, match=r"broken\.jpg"):
        _decide(auth, path)


def test_video_frames_read_in_order(auth: core.Authenticator, faces: Path, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2", reason="OpenCV (facelogin[camera]) reads videos")
    frame = np.asarray(Image.open(faces / "frames" / "obama-480p.jpg").convert("RGB"))[:, :, ::-1]
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for _ in range(6):
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    result = auth.decide(core.video_frames(path, 320), 5, 3)
    assert (result["decision"], result["user"]) == ("accepted", "Obama")
    assert result["frames"] == {"used": 3, "agreeing": 3, "required": 3}


def test_no_camera_stack_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(core.LoginError, match=r"python3-picamera2.*facelogin\[camera\]"):
        next(core.camera_frames(0, 320))
    with pytest.raises(core.LoginError, match="OpenCV"):
        next(core.video_frames("clip.mp4", 320))


# The bundle cache


@pytest.fixture
def published(bundle_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session bundle, free to be damaged."""
    return Path(shutil.copytree(bundle_dir, tmp_path / "published"))


def _npz(directory: Path) -> Path:
    return directory / json.loads((directory / "latest.json").read_text())["npz"]


def test_truncated_bundle_falls_back_to_the_cached_one(published: Path, tmp_path: Path, faces: Path) -> None:
    cache = tmp_path / "cache"
    first = core.load_login_bundle(str(published), cache)
    assert not first.from_cache and (cache / "latest.json").is_file()
    npz = _npz(published)
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])

    loaded = core.load_login_bundle(str(published), cache)
    assert loaded.from_cache and loaded.bundle.version == first.bundle.version
    assert "checksum mismatch" in loaded.messages[0] and str(cache) in loaded.messages[0]
    result = core.Authenticator(loaded).decide(core.image_frames([faces / "probes" / "Obama.jpg"], 320), 1, 1)
    assert result["user"] == "Obama" and result["bundle"]["from_cache"] is True


@pytest.mark.parametrize("damage", ["garbage manifest", "missing directory", "unknown format version"])
def test_unusable_bundle_falls_back(published: Path, tmp_path: Path, damage: str) -> None:
    cache = tmp_path / "cache"
    core.load_login_bundle(str(published), cache)
    latest = published / "latest.json"
    if damage == "garbage manifest":
        latest.write_bytes(b'{"format": "facelog')
    elif damage == "missing directory":
        shutil.rmtree(published)
    else:
        latest.write_text(latest.read_text().replace('"format_version": 2', '"format_version": 99'))
    loaded = core.load_login_bundle(str(published), cache)
    assert loaded.from_cache and len(loaded.bundle.usernames) == len(USERS)


def test_no_bundle_and_no_cache_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(core.LoginError, match="no usable cached bundle"):
        core.load_login_bundle(str(tmp_path / "nowhere"), tmp_path / "cache")


def test_a_new_good_bundle_replaces_the_cached_one(published: Path, tmp_path: Path, encodings: dict) -> None:
    cache = tmp_path / "cache"
    old = core.load_login_bundle(str(published), cache).bundle
    make_bundle(published, {u: e for u, e in encodings.items() if u != "Biden"})
    new = core.load_login_bundle(str(published), cache)
    assert not new.from_cache and new.bundle.version != old.version
    assert "Biden" not in new.bundle.usernames
    cached = sorted(p.name for p in cache.glob("bundle-*.npz"))
    assert cached == [f"bundle-{new.bundle.version}.npz"]


def test_calibration_sidecar_is_used_only_for_its_bundle(published: Path, tmp_path: Path) -> None:
    bundle, _, _ = core.fetch_bundle(str(published))
    record = {
        "format": core.CALIBRATION_FORMAT,
        "bundle_sha256": bundle.manifest["sha256"],
        "threshold": 0.42,
    }
    core.write_calibration(str(published), record)
    auth = _auth(published, tmp_path / "cache")
    assert (auth.threshold, auth.threshold_source) == (0.42, "calibrated")
    core.write_calibration(str(published), {**record, "bundle_sha256": "0" * 64})
    auth = _auth(published, tmp_path / "cache2")
    assert (auth.threshold, auth.threshold_source) == (0.5, "default")


def test_light_face_model_gives_face_recognitions_exact_results(faces: Path) -> None:
    from facelogin.faces import DlibFaces, load_face_recognition, load_faces

    light = load_faces()
    assert isinstance(light, DlibFaces), "face_recognition_models' data folder not found"
    fr = load_face_recognition()
    for photo in [faces / "probes" / "Kit_Harington.jpg", faces / "groups" / "two_people.jpg"]:
        pixels = np.asarray(core.open_frame(photo, 320))
        boxes = fr.face_locations(pixels, number_of_times_to_upsample=1)
        assert light.face_locations(pixels, number_of_times_to_upsample=1) == boxes
        expected = fr.face_encodings(pixels, known_face_locations=boxes)
        got = light.face_encodings(pixels, known_face_locations=boxes)
        assert np.array_equal(np.asarray(got), np.asarray(expected))
