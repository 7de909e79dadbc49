"""Face encoding on the real sample photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelogin.faces import (
    DETECTOR_FILE,
    ENCODED,
    MIN_FACE_PX,
    REJECTED,
    WEAK_YAW_DEGREES,
    encode_face,
    frontal_detector,
    sharpness,
    weak_reason,
    yaw_degrees,
)


def test_enrolment_photo_gives_one_encoding(faces: Path) -> None:
    result = encode_face(faces / "images" / "Biden" / "biden_01.jpg")
    assert result.status == ENCODED and result.reason is None
    assert result.encoding is not None and len(result.encoding) == 128


def test_same_person_is_closer_than_another(faces: Path) -> None:
    def enc(rel: str) -> np.ndarray:
        result = encode_face(faces / rel)
        assert result.encoding is not None
        return np.asarray(result.encoding)

    obama1, obama2 = enc("images/Obama/obama_01.jpg"), enc("images/Obama/obama_02.jpg")
    biden = enc("images/Biden/biden_01.jpg")
    assert np.linalg.norm(obama1 - obama2) < 0.6 < np.linalg.norm(obama1 - biden)


def test_rotated_phone_photo_is_found(faces: Path, tmp_path: Path) -> None:
    """A photo stored sideways with an EXIF orientation tag, as phones save them."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    with Image.open(faces / "images" / "Obama" / "obama_01.jpg") as upright:
        upright.rotate(90, expand=True).save(path, exif=exif, quality=92)
    assert encode_face(path).status == ENCODED


@pytest.mark.parametrize("group", ["kit_with_rose.jpg", "obama_and_biden.jpg", "two_people.jpg"])
def test_group_photos_are_rejected(faces: Path, group: str) -> None:
    result = encode_face(faces / "groups" / group)
    assert result.status == REJECTED and result.faces >= 2
    assert result.reason is not None and "faces found" in result.reason


def test_no_face_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "wall.png"
    Image.new("RGB", (300, 300), (90, 90, 90)).save(path)
    assert encode_face(path).reason == "no face found"


def _shrunk(source: Path, face_px: int, dest: Path) -> Path:
    """`source` scaled down so that its detected face is about `face_px` wide, saved losslessly."""
    full = encode_face(source)
    assert full.face_px is not None
    scale = face_px / full.face_px
    with Image.open(source) as im:
        im.convert("RGB").resize(
            (round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS
        ).save(dest)
    return dest


def test_every_sample_enrolment_photo_is_big_enough(faces: Path) -> None:
    sizes = {p.name: encode_face(p).face_px for p in sorted(faces.glob("images/*/*"))}
    assert len(sizes) == 12
    assert all(px is not None and px >= MIN_FACE_PX for px in sizes.values()), sizes


# HOG reports box widths on its scale ladder (36, 43, 52, 72, 86, ...), hence the tolerance.
@pytest.mark.parametrize(("target", "status"), [(36, REJECTED), (48, REJECTED), (90, ENCODED)])
def test_a_face_too_small_to_encode_well_is_rejected_with_its_size(
    faces: Path, tmp_path: Path, target: int, status: str
) -> None:
    photo = _shrunk(faces / "images" / "Obama" / "obama_01.jpg", target, tmp_path / "small.png")

    result = encode_face(photo)

    assert result.status == status
    assert result.face_px is not None and abs(result.face_px - target) <= 0.2 * target
    if status == REJECTED:
        assert (
            result.reason == f"face {result.face_px} px: come closer (a face needs at least {MIN_FACE_PX} px)"
        )
        assert result.encoding is None and result.faces == 1
    else:
        assert result.reason is None and result.encoding is not None


def test_face_size_is_measured_in_the_original_photo(faces: Path) -> None:
    """Biden's photo is 2204 px high: detection runs on an 800 px copy, the size is the original's."""
    result = encode_face(faces / "images" / "Biden" / "biden_01.jpg")
    assert result.box is not None and result.face_px is not None
    _, right, _, left = result.box
    assert result.face_px == round((right - left) * 2204 / 800)


def _five_points(nose_shift: float) -> np.ndarray:
    """dlib's 5 points of a face with eye centres 50 px apart, the nose base moved by `nose_shift`."""
    return np.array([[130, 100], [110, 100], [60, 100], [80, 100], [95 + nose_shift, 140]], dtype=float)


@pytest.mark.parametrize(("shift", "yaw"), [(0.0, 0.0), (15.88, 30.0), (-15.88, 30.0), (27.5, 45.0)])
def test_yaw_is_read_from_the_nose_offset(shift: float, yaw: float) -> None:
    assert yaw_degrees(_five_points(shift)) == pytest.approx(yaw, abs=0.5)


def test_a_flat_chip_has_no_sharpness_and_a_detailed_one_has_some() -> None:
    flat = np.full((150, 150, 3), 128, dtype=np.uint8)
    rng = np.random.default_rng(0)
    detailed = rng.integers(0, 255, size=(150, 150, 3)).astype(np.uint8)
    assert sharpness(flat) == 0.0 and sharpness(detailed) > 1000.0


@pytest.mark.parametrize(
    ("yaw", "sharp", "reason"),
    [
        (5.0, 300.0, None),
        (None, None, None),
        (40.0, 300.0, "face turned 40°: look straight at the camera"),
        (5.0, 10.0, "blurred: hold still, in good light"),
        (30.0, 10.0, "face turned 30°: look straight at the camera; blurred: hold still, in good light"),
    ],
)
def test_weak_reason(yaw: float | None, sharp: float | None, reason: str | None) -> None:
    assert weak_reason(yaw, sharp) == reason


def test_sample_enrolment_photos_are_not_weak(faces: Path) -> None:
    for photo in sorted(faces.glob("images/*/*")):
        result = encode_face(photo)
        assert result.weak is None, (photo.name, result.yaw, result.sharpness)
        assert result.yaw is not None and result.yaw < WEAK_YAW_DEGREES


@pytest.fixture
def fresh_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """frontal_detector as a new process on a machine with the cache at `tmp_path/cache`."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    frontal_detector.cache_clear()
    yield tmp_path / "cache"
    frontal_detector.cache_clear()  # the next test's process-wide detector is its own again


def _a_photo(faces: Path) -> Path:
    return sorted((faces / "images").glob("*/*.jpg"))[0]


def _boxes(detector: object, photo: Path) -> list[tuple[int, int, int, int]]:
    with Image.open(photo) as im:
        pixels = np.asarray(im.convert("RGB").reduce(4))
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(pixels, 0)]  # type: ignore[operator]


def test_the_face_detector_is_kept_private_and_loaded_back_the_same(
    fresh_detector: Path, faces: Path
) -> None:
    import dlib

    photo = _a_photo(faces)
    expected = _boxes(dlib.get_frontal_face_detector(), photo)
    assert expected, f"dlib's own detector finds no face in {photo}"

    assert _boxes(frontal_detector(), photo) == expected  # built, and kept
    kept = fresh_detector / "facelogin" / f"dlib-{dlib.__version__}" / DETECTOR_FILE
    assert kept.stat().st_mode & 0o777 == 0o600
    assert all(d.stat().st_mode & 0o777 == 0o700 for d in (kept.parent, kept.parent.parent))
    assert [p.name for p in kept.parent.iterdir()] == [DETECTOR_FILE]  # no scratch file left behind

    frontal_detector.cache_clear()  # the next process: loads the copy
    assert type(frontal_detector()) is dlib.fhog_object_detector
    assert _boxes(frontal_detector(), photo) == expected


@pytest.mark.parametrize("damage", [b"", b"not a detector", "truncated"])
def test_a_damaged_copy_of_the_detector_is_rebuilt(fresh_detector: Path, faces: Path, damage: object) -> None:
    import dlib

    frontal_detector()
    kept = fresh_detector / "facelogin" / f"dlib-{dlib.__version__}" / DETECTOR_FILE
    whole = kept.read_bytes()
    kept.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else damage)  # type: ignore[arg-type]
    frontal_detector.cache_clear()

    photo = _a_photo(faces)
    assert _boxes(frontal_detector(), photo) == _boxes(dlib.get_frontal_face_detector(), photo)
    assert kept.read_bytes() == whole  # and replaced by a whole copy


def test_a_cache_that_cannot_be_written_only_costs_the_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faces: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    frontal_detector.cache_clear()
    try:
        photo = _a_photo(faces)
        assert _boxes(frontal_detector(), photo)
    finally:
        frontal_detector.cache_clear()
    assert blocker.read_text() == "a file where the cache folder would be"
