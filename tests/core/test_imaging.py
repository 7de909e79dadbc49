"""Decoding upright RGB photos and making metadata-free thumbnails."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelogin.imaging import MAX_PIXELS, PhotoError, make_thumbnails, open_photo, to_rgb

EXIF_ORIENTATION = 0x0112

Unprivileged = Callable[[], AbstractContextManager[None]]  # the fixture of tests/core/conftest.py


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
    thumbs = make_thumbnails(photos[kind], [128, 64], 800)
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
    im = Image.open(io.BytesIO(make_thumbnails(small, [256], 800)[256]))
    assert im.size == (50, 30)


def test_real_photo_thumbnail_keeps_aspect(faces: Path) -> None:
    src = faces / "images" / "Obama" / "obama_01.jpg"
    with Image.open(src) as original:
        w, h = original.size
    im = Image.open(io.BytesIO(make_thumbnails(src, [256], 800)[256]))
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


def jpeg_segments(data: bytes) -> list[tuple[str, bytes]]:
    """The marker segments of a JPEG up to its image data, as (name, payload)."""
    assert data[:2] == b"\xff\xd8"
    names = {0xC0: "SOF0", 0xC2: "SOF2", 0xC4: "DHT", 0xDB: "DQT", 0xDD: "DRI", 0xFE: "COM"}
    names |= {0xE0 + n: f"APP{n}" for n in range(16)}
    segments, pos = [], 2
    while True:
        assert data[pos] == 0xFF
        while data[pos] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return segments
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        segments.append((names.get(marker, hex(marker)), data[pos + 3 : pos + 1 + length]))
        pos += 1 + length


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
_IPTC_CAPTION = b"\x1c\x02\x78\x00\x05hello"
_PHOTOSHOP = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + len(_IPTC_CAPTION).to_bytes(4, "big") + _IPTC_CAPTION
IPTC = b"\xff\xed" + (len(_PHOTOSHOP) + 2).to_bytes(2, "big") + _PHOTOSHOP  # APP13, as photo editors write it


@pytest.fixture
def tagged(tmp_path: Path) -> dict[str, Path]:
    """Photos carrying every kind of metadata a phone or an editor leaves in them."""
    from PIL import ExifTags, ImageCms

    im = Image.new("RGB", (400, 200), (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[EXIF_ORIENTATION] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[1], gps[2] = "N", (52.0, 22.0, 0.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    meta = {"exif": exif, "icc_profile": icc, "xmp": XMP}
    buf = io.BytesIO()
    im.save(buf, "JPEG", comment=b"taken at home", **meta)
    data = buf.getvalue()
    jpeg = tmp_path / "tagged.jpg"
    jpeg.write_bytes(data[:2] + IPTC + data[2:])
    return {"jpeg": jpeg, "png": save(im, tmp_path / "tagged.png", **meta),
            "webp": save(im, tmp_path / "tagged.webp", **meta)}  # fmt: skip


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp"])
def test_thumbnails_carry_no_metadata_segment_at_all(tagged: dict[str, Path], kind: str) -> None:
    if kind == "jpeg":  # the source really carries them
        found = {(name, payload[:4]) for name, payload in jpeg_segments(tagged[kind].read_bytes())}
        assert {
            ("APP1", b"Exif"),
            ("APP1", b"http"),
            ("APP2", b"ICC_"),
            ("APP13", b"Phot"),
            ("COM", b"take"),
        } <= found
    for size, data in make_thumbnails(tagged[kind], [256, 64], 800).items():
        segments = jpeg_segments(data)
        names = [name for name, _ in segments]
        assert set(names) <= {"APP0", "DQT", "SOF0", "DHT"}, names
        # The one APP0 is the JFIF header: version, unitless 1:1 density and no embedded thumbnail.
        assert [payload for name, payload in segments if name == "APP0"] == [
            b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        ]
        with Image.open(io.BytesIO(data)) as thumb:
            assert thumb.size == (size // 2, size)  # the orientation is in the pixels instead


def sixteen_bit(gray: Image.Image) -> Image.Image:
    """A 16-bit grayscale image with the same look as an 8-bit one (full 0-65535 range, as PNG has it)."""
    import numpy as np

    return Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)


def test_a_16_bit_grayscale_photo_of_a_face_is_scaled_not_clipped(faces: Path, tmp_path: Path) -> None:
    from facelogin.faces import ENCODED, encode_face

    with Image.open(faces / "images" / "Obama" / "obama_01.jpg") as original:
        gray = original.convert("L")
    path = save(sixteen_bit(gray), tmp_path / "obama16.png")
    with Image.open(path) as stored:
        assert stored.mode == "I;16"
        clipped = stored.convert("L").histogram()[255]  # what plain conversion did: almost all white
        assert clipped > 0.9 * gray.width * gray.height

    decoded = open_photo(path)
    assert decoded.mode == "RGB" and decoded.convert("L").tobytes() == gray.tobytes()
    assert encode_face(path).status == ENCODED


def grays(mode: str) -> Image.Image:
    """A 2x1 image in `mode`: black on the left, mid-gray (128) on the right."""
    import numpy as np

    values = {
        "I;16": np.array([[0, 128 * 257]], dtype=np.uint16),
        "I": np.array([[0, 128 * 257]], dtype=np.int32),  # 16-bit data, as 16-bit PNGs once decoded
        "F": np.array([[0.0, 128 / 255]], dtype=np.float32),
    }[mode]
    return Image.fromarray(values)


@pytest.mark.parametrize(
    ("build", "left", "right"),
    [
        (lambda: grays("I;16"), (0, 0, 0), (128, 128, 128)),
        (lambda: grays("I"), (0, 0, 0), (128, 128, 128)),
        (lambda: grays("F"), (0, 0, 0), (128, 128, 128)),
        (
            lambda: Image.fromarray(__import__("numpy").array([[-5.0, 5.0]], dtype="float32")),
            (0, 0, 0),
            (255, 255, 255),
        ),
        (lambda: Image.frombytes("1", (2, 1), b"\x40"), (0, 0, 0), (255, 255, 255)),
        (lambda: Image.new("LA", (2, 1), (0, 0)), (255, 255, 255), (255, 255, 255)),
        (lambda: Image.new("PA", (2, 1), (0, 255)), (0, 0, 0), (0, 0, 0)),
        (lambda: Image.new("RGB", (2, 1), (200, 40, 40)).convert("CMYK"), (200, 40, 40), (200, 40, 40)),
    ],
    ids=["I;16", "I", "F", "F-any-range", "1", "LA-transparent", "PA", "CMYK"],
)
def test_every_mode_becomes_sensible_rgb(build, left, right) -> None:  # type: ignore[no-untyped-def]
    rgb = to_rgb(build())
    assert rgb.mode == "RGB"
    assert (rgb.getpixel((0, 0)), rgb.getpixel((1, 0))) == (left, right)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("I;16", "PNG"),
        ("1", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("CMYK", "JPEG"),
        ("L", "JPEG"),
        ("RGB", "WEBP"),
    ],
)
def test_files_in_every_mode_decode_upright_in_rgb(tmp_path: Path, mode: str, fmt: str) -> None:
    rgb = Image.new("RGB", (400, 200), (255, 255, 255))
    rgb.paste((0, 0, 0), (0, 0, 100, 200))  # a black band on the left edge
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    image = sixteen_bit(rgb.convert("L")) if mode == "I;16" else rgb.convert(mode)
    path = tmp_path / f"photo.{fmt.lower()}"
    image.save(path, fmt, exif=exif)
    with Image.open(path) as stored:
        assert stored.mode == mode

    im = open_photo(path, max_height=100)

    assert (im.mode, im.size) == ("RGB", (50, 100))  # the limit holds for the photo as shown
    top, bottom = im.getpixel((25, 5)), im.getpixel((25, 95))
    assert max(top) < 40 and min(bottom) > 215, (top, bottom)  # the black band is at the top now


@pytest.mark.parametrize(("width", "height"), [(12000, 9000), (16320, 12240)], ids=["108MP", "200MP"])
def test_phone_photos_up_to_200_megapixels_decode(tmp_path: Path, width: int, height: int) -> None:
    """Built as a mostly flat grayscale JPEG: a few hundred KB, decoded at 1/8 scale."""
    big = Image.new("L", (width, height), 90)
    big.paste(200, (0, 0, width // 2, height))
    path = save(big, tmp_path / "big.jpg", quality=50)
    del big

    im = open_photo(path, max_side=800)

    assert (im.mode, im.size) == ("RGB", (800, round(800 * height / width)))
    assert im.getpixel((100, 100)) == (200, 200, 200) and im.getpixel((700, 100)) == (90, 90, 90)
    assert max(Image.open(io.BytesIO(make_thumbnails(path, [256], 800)[256])).size) == 256


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares `width`x`height` gray pixels, followed by almost no image data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (20000, 15000), (1_000_000, 1_000_000)])
def test_sizes_no_camera_makes_are_refused_from_the_header(tmp_path: Path, width: int, height: int) -> None:
    """Refused as too large, not as truncated: the refusal came before any pixel was decoded."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(width, height))
    with pytest.raises(PhotoError, match="image is too large"):
        open_photo(path, max_side=800)


def test_the_guard_is_facelogins_own_not_only_pillows_warning(tmp_path: Path) -> None:
    """Above MAX_PIXELS but below Pillow's refusal, Pillow only warns: facelogin still refuses."""
    import warnings

    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(20000, 15000))
    assert MAX_PIXELS < 20000 * 15000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(PhotoError, match="image is too large: 20000x15000 pixels"):
            open_photo(path)


def test_a_named_pipe_is_refused_without_being_opened(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: were it opened, this test would hang."""
    import os

    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    with pytest.raises(PhotoError, match=r"not a regular file \(named pipe\)"):
        open_photo(path)


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("TIFF", "TIFF"), ("BMP", "BMP")])
def test_unsupported_formats_are_named_whatever_the_suffix(tmp_path: Path, fmt: str, name: str) -> None:
    path = save(Image.new("RGB", (20, 10)), tmp_path / "photo.jpg", format=fmt)
    with pytest.raises(PhotoError, match=f"^{name} is not supported: save it as JPEG or PNG$"):
        open_photo(path)


@pytest.fixture(scope="module")
def heic_face(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample face saved as HEIC, as an iPhone would (encoded through pillow-heif's own opener)."""
    import pillow_heif

    with Image.open(faces / "images" / "Obama" / "obama_01.jpg") as original:
        small = original.convert("RGB").resize((455, 568))
    path = tmp_path_factory.mktemp("heic") / "IMG_0001.HEIC"
    pillow_heif.from_pillow(small).save(path, quality=80)
    return path


def test_heic_decodes_for_the_sync_the_enrolment_and_the_login(heic_face: Path) -> None:
    from facelogin.enroll import jpeg_bytes
    from facelogin.faces import ENCODED, encode_face
    from facelogin.login import open_frame

    assert heic_face.read_bytes()[4:12] == b"ftypheic"
    im = open_photo(heic_face, max_side=200)
    assert (im.mode, im.size) == ("RGB", (160, 200))
    assert encode_face(heic_face).status == ENCODED
    assert open_frame(heic_face, 100).tobytes() == open_photo(heic_face, max_height=100).tobytes()
    with Image.open(io.BytesIO(jpeg_bytes(heic_face))) as enrolled:
        assert (enrolled.format, enrolled.size) == ("JPEG", (455, 568))


def test_heic_support_is_loaded_only_when_a_heic_file_comes(heic_face: Path, faces: Path) -> None:
    """The login imports imaging on the Pi: pillow-heif must cost it nothing until it is needed."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from facelogin.imaging import open_photo\n"
        "seen = ['pillow_heif' in sys.modules]\n"
        f"open_photo({str(faces / 'images' / 'Obama' / 'obama_01.jpg')!r}, 100)\n"
        "seen.append('pillow_heif' in sys.modules)\n"
        f"open_photo({str(heic_face)!r}, 100)\n"
        "seen.append('pillow_heif' in sys.modules)\n"
        "print(json.dumps(seen))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, False, True]


def test_a_photo_that_cannot_be_read_is_a_read_failure_not_a_verdict(
    shared_tmp: Path, unprivileged: Unprivileged
) -> None:
    """Its reason starts with `cannot be read`, which the plan retries instead of keeping it rejected."""

    path = save(Image.new("RGB", (20, 10)), shared_tmp / "secret.jpg")
    path.chmod(0)
    with unprivileged(), pytest.raises(PhotoError, match=r"^cannot be read \(Permission denied\)$"):
        open_photo(path)


@pytest.mark.parametrize(
    ("orientation", "max_side", "max_height", "decoded"),
    [
        (1, 800, None, (1008, 756)),  # a phone photo bound for 800 px: 1/4, not the 1/2 a square asked for
        (6, None, 480, (504, 378)),  # a sideways camera frame bound for 480 px high (as shown): 1/8
        (1, 2000, None, (2016, 1512)),  # 1/4 would be smaller than 2000 px: 1/2
        (1, None, None, (4032, 3024)),  # no limit: full size
    ],
)
def test_a_jpeg_decodes_at_the_smallest_scale_still_as_large_as_the_result(
    tmp_path: Path, orientation: int, max_side: int | None, max_height: int | None, decoded: tuple[int, int]
) -> None:
    from facelogin.imaging import _draft, fit

    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = save(Image.radial_gradient("L").convert("RGB").resize((4032, 3024)), tmp_path / "p.jpg", exif=exif)
    with Image.open(path) as im:
        if max_side or max_height:
            _draft(im, max_side, max_height)
        assert im.size == decoded
    shown = (3024, 4032) if orientation == 6 else (4032, 3024)
    photo = open_photo(path, max_side, max_height)
    assert photo.size == fit(shown, max_side, max_height)
    full = open_photo(path)  # upright, full size: the same picture, to within rounding
    reference = full.resize(photo.size, Image.Resampling.LANCZOS)
    difference = np.abs(np.asarray(photo, dtype=np.int16) - np.asarray(reference, dtype=np.int16))
    assert difference.mean() < 3


def test_faces_are_found_on_a_bilinear_copy_and_thumbnails_are_lanczos(tmp_path: Path) -> None:
    """The copy faces are found on is the antialiased bilinear reduction (as dlib reduces its own
    images, at half Lanczos' cost); the thumbnails people look at keep Lanczos' sharpness."""
    x = np.arange(600)
    stripes = (128 + 100 * np.sin(2 * np.pi * x / 9)).astype(np.uint8)  # fine, smooth detail
    detail = Image.fromarray(np.repeat(np.tile(stripes, (300, 1))[:, :, None], 3, axis=2))
    path = save(detail, tmp_path / "detail.png")  # no DCT draft: the filter alone makes the copy

    copy = open_photo(path, max_side=256)
    bilinear = detail.resize(copy.size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    lanczos = detail.resize(copy.size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    assert copy.tobytes() == bilinear.tobytes() != lanczos.tobytes()

    with Image.open(io.BytesIO(make_thumbnails(path, [256], 800)[256])) as thumb:
        pixels = np.asarray(thumb.convert("RGB"), dtype=np.int16)
    off = {name: np.abs(pixels - np.asarray(im, dtype=np.int16)).mean() for name, im in
           {"lanczos": lanczos, "bilinear": bilinear}.items()}  # fmt: skip
    assert off["lanczos"] < off["bilinear"]  # JPEG's loss aside, the thumbnail is the Lanczos reduction
