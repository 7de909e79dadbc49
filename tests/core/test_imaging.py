"""Decoding upright RGB photos and making metadata-free thumbnails."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from facelogin.imaging import PhotoError, make_thumbnails, open_photo

EXIF_ORIENTATION = 0x0112


def save(im: Image.Image, path: Path, **kw: object) -> Path:
    im.save(path, **kw)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    """Tiny photos in the modes people's files come in; 400x200 landscape unless rotated."""
    rgb = Image.new("RGB", (400, 200), (200, 40, 40))
    rgb.paste((40, 200, 40), (0, 0, 100, 200))  # a green band on the left edge
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored landscape, shown rotated 90° clockwise (phones do this)
    exif[0x010F] = "PhoneMaker"
    rgba = Image.new("RGBA", (400, 200), (0, 0, 255, 0))
    return {
        "rgb": save(rgb, tmp_path / "rgb.jpg", quality=95),
        "rgba": save(rgba, tmp_path / "rgba.png"),
        "l": save(rgb.convert("L"), tmp_path / "l.jpg"),
        "p": save(rgb.convert("P"), tmp_path / "p.png"),
        "exif": save(rgb, tmp_path / "exif.jpg", exif=exif, quality=95),
        "webp": save(rgb, tmp_path / "w.webp"),
    }


@pytest.mark.parametrize("kind", ["rgb", "rgba", "l", "p", "exif", "webp"])
def test_open_photo_is_rgb_and_reduced(photos: dict[str, Path], kind: str) -> None:
    im = open_photo(photos[kind], max_side=100)
    assert im.mode == "RGB"
    assert max(im.size) == 100


def test_exif_orientation_is_applied(photos: dict[str, Path]) -> None:
    im = open_photo(photos["exif"])
    assert im.size == (200, 400)  # portrait, as the phone showed it
    r, g, _ = im.getpixel((100, 20))  # the green band is now at the top
    assert g > 150 and r < 100


def test_transparent_areas_become_white(photos: dict[str, Path]) -> None:
    assert open_photo(photos["rgba"]).getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.parametrize("kind", ["rgb", "rgba", "l", "p", "exif", "webp"])
def test_thumbnails_are_jpeg_rgb_without_metadata(photos: dict[str, Path], kind: str) -> None:
    thumbs = make_thumbnails(photos[kind], [128, 64])
    assert sorted(thumbs) == [64, 128]
    for size, data in thumbs.items():
        im = Image.open(io.BytesIO(data))
        assert (im.format, im.mode, max(im.size)) == ("JPEG", "RGB", size)
        assert not im.getexif()
        assert not {"exif", "icc_profile", "xmp"} & set(im.info)
    if kind == "exif":
        assert Image.open(io.BytesIO(thumbs[128])).size == (64, 128)


def test_thumbnails_never_enlarge(tmp_path: Path) -> None:
    small = save(Image.new("RGB", (50, 30)), tmp_path / "small.jpg")
    im = Image.open(io.BytesIO(make_thumbnails(small, [256])[256]))
    assert im.size == (50, 30)


def test_real_photo_thumbnail_keeps_aspect(faces: Path) -> None:
    src = faces / "images" / "Obama" / "obama_01.jpg"
    with Image.open(src) as original:
        w, h = original.size
    im = Image.open(io.BytesIO(make_thumbnails(src, [256])[256]))
    assert max(im.size) == 256
    assert abs(im.size[0] / im.size[1] - w / h) < 0.02


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"definitely not an image", "not a readable image"),
    ],
)
def test_bad_files_raise_photo_error(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(data)
    with pytest.raises(PhotoError, match=reason):
        open_photo(path)


def test_truncated_jpeg_is_an_error_even_after_face_recognition_import(faces: Path, tmp_path: Path) -> None:
    from facelogin.faces import load_face_recognition

    load_face_recognition()  # it flips PIL's LOAD_TRUNCATED_IMAGES on import; we put it back
    data = (faces / "images" / "Obama" / "obama_01.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PhotoError, match="truncated"):
        open_photo(path, 640)


@pytest.mark.parametrize("kind", ["rgb", "rgba", "l", "p", "exif", "webp"])
def test_enrolment_sync_and_login_see_the_same_pixels(photos: dict[str, Path], kind: str) -> None:
    """One decoder: the login's frame reader and the enrolment's JPEG conversion decode as the sync does."""
    from facelogin.enroll import jpeg_bytes
    from facelogin.login import open_frame

    sync = open_photo(photos[kind], max_height=100)
    login = open_frame(photos[kind], 100)
    assert login.mode == sync.mode == "RGB" and login.tobytes() == sync.tobytes()
    if kind == "rgba":  # transparent blue decodes as white everywhere, not as blue at login
        assert login.getpixel((10, 10)) == (255, 255, 255)
        with Image.open(io.BytesIO(jpeg_bytes(photos[kind]))) as enrolled:
            assert all(c > 245 for c in enrolled.convert("RGB").getpixel((10, 10)))
