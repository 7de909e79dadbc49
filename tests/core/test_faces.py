"""Face encoding on the real sample photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelogin.faces import ENCODED, REJECTED, encode_face


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
