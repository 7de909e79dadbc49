"""Face encoding on the real sample photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelogin.faces import (
    ENCODED,
    MIN_FACE_PX,
    REJECTED,
    WEAK_YAW_DEGREES,
    encode_face,
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
