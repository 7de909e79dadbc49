"""Decode photos the way a viewer shows them, and make metadata-free JPEG thumbnails (Pillow)."""

from __future__ import annotations

import io
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, UnidentifiedImageError

JPEG_QUALITY = 85
# Resample from at most 2x the target size after the fast reduced decode: close to
# full-quality output at a fraction of the cost (Pillow's reducing_gap).
REDUCING_GAP = 2.0
# The copies faces are found and encoded on are reduced with Pillow's bilinear filter (antialiased:
# its triangle widens with the reduction), as dlib reduces its own images; Lanczos, kept for the
# thumbnails people look at, costs twice as much (1200 -> 800 px: 19 ms against 9) for no face found
# or lost on the sample photos and encodings within 0.08 of the Lanczos copy's.
ANALYSIS_RESAMPLE = Image.Resampling.BILINEAR
THUMB_RESAMPLE = Image.Resampling.LANCZOS
# The largest phone sensors make 200 MP photos (16320x12240); 2^28 px (268 MP) admits them with
# a third to spare and refuses sizes no camera makes (30000x30000 is 900 MP). The size is read
# from the header, before anything is decoded. A JPEG asked for at a limited size is decoded at
# 1/8 scale (a 200 MP photo then takes ~10 MB); other formats are decoded at full size, at most
# 768 MiB in RGB, and reduced before any conversion that would copy them.
MAX_PIXELS = 1 << 28
# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that, so by default it refuses a
# 108 MP photo. The guard that counts is MAX_PIXELS, checked in open_photo; Pillow's stays above it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
_TOO_LARGE = f"more than any camera makes (limit {MAX_PIXELS // 1_000_000} megapixels)"

ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# ISO base media brands of HEIF still images (HEIC from phones and cameras).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}


class PhotoError(ValueError):
    """A photo that cannot be used; the message is the reason shown to the user."""


# Reasons that start so say nothing about the photo itself (permissions, a failing disk): the
# plan tries such a photo again on the next run instead of keeping it rejected.
CANNOT_READ = "cannot be read"


def file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is, from `os.stat().st_mode`."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading, only if it is a regular file (PhotoError otherwise).

    A named pipe or a device is never opened: opening a FIFO blocks until a writer comes, and
    opening some devices acts on them. The open itself does not block either, and the opened
    file is checked again, in case the name was swapped in between. OSError when unreadable.
    """
    kind = file_kind(os.stat(path).st_mode)
    if kind is not None:
        raise PhotoError(f"not a regular file ({kind}): not read")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    fh = os.fdopen(fd, "rb")
    kind = file_kind(os.fstat(fd).st_mode)
    if kind is not None:
        fh.close()
        raise PhotoError(f"not a regular file ({kind}): not read")
    return fh


def open_photo(
    path: str | Path,
    max_side: int | None = None,
    max_height: int | None = None,
    resample: Image.Resampling = ANALYSIS_RESAMPLE,
) -> Image.Image:
    """Decode `path` upright (EXIF orientation applied), in RGB, reduced to fit the limits given.

    The one decoder of facelogin: enrolment, the sync and the login all see the same pixels
    (transparent areas composited on white, 16-bit and float images scaled to 8 bits, no
    metadata kept). `max_side` bounds the long side (photos), `max_height` the height (camera
    frames). JPEGs are decoded at a reduced scale straight from the DCT (`Image.draft`), several
    times faster than decoding at full size and shrinking. JPEG, PNG, WebP and HEIC are decoded;
    anything else is refused, so no other Pillow plugin ever parses a file handed in.
    """
    try:
        with open_regular(path) as fh:
            return _decode(fh, max_side, max_height, MAX_PIXELS, resample)
    except FileNotFoundError:
        raise PhotoError("no such file") from None
    except OSError as exc:
        if exc.errno is not None:  # the system's error (permissions, I/O), not the decoder's
            raise PhotoError(f"{CANNOT_READ} ({exc.strerror or exc})") from None
        raise PhotoError(f"cannot decode image: {exc}") from None


def decode_photo(
    data: bytes, max_side: int | None = None, max_height: int | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """`open_photo` for bytes already in memory (a camera frame sent by a browser).

    `max_pixels` refuses, from the header alone, an image larger than its sender should make.
    """
    try:
        return _decode(io.BytesIO(data), max_side, max_height, max_pixels, ANALYSIS_RESAMPLE)
    except OSError as exc:
        raise PhotoError(f"cannot decode image: {exc}") from None


def _decode(
    fh: BinaryIO, max_side: int | None, max_height: int | None, max_pixels: int, resample: Image.Resampling
) -> Image.Image:
    draft = bool(max_side or max_height)
    try:
        fmt = _format_of(fh.read(16))
        fh.seek(0)
        with Image.open(fh, formats=(fmt,)) as im:
            width, height = im.size
            if width * height > max_pixels:
                limit = _TOO_LARGE if max_pixels == MAX_PIXELS else f"limit {max_pixels:,} pixels"
                raise PhotoError(f"image is too large: {width}x{height} pixels, {limit}")
            if draft:
                _draft(im, max_side, max_height)
            im.load()
            return _upright_rgb(im, max_side, max_height, resample)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError("not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, on the declared size too; it only speaks above MAX_PIXELS.
        raise PhotoError(f"image is too large: {_TOO_LARGE}") from None
    except (SyntaxError, ValueError) as exc:
        raise PhotoError(f"cannot decode image: {exc}") from None


def _format_of(head: bytes) -> str:
    """The Pillow format to decode a file starting with `head` as; PhotoError for any other."""
    if not head:
        raise PhotoError("empty file (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"  # Pillow's JPEG opener also returns MPO (phone JPEGs with depth or gain maps)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        from PIL import WebPImagePlugin  # noqa: F401  registers WEBP without loading every plugin

        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        _register_heif()
        return "HEIF"
    if name := _unsupported_format(head):
        raise PhotoError(f"{name} is not supported: save it as JPEG or PNG")
    raise PhotoError("not a readable image (unknown or corrupt format)")


def _unsupported_format(head: bytes) -> str | None:
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":
        return "BMP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if head[:4] == b"8BPS":
        return "Photoshop (PSD)"
    return None


@lru_cache(maxsize=1)
def _register_heif() -> None:
    """Teach Pillow HEIC (pillow-heif), once per process and only when a HEIC file turns up.

    The login imports this module on a Pi: importing pillow-heif and libheif there for every
    camera frame's sake would only slow its start.
    """
    try:
        import pillow_heif
    except ImportError:
        raise PhotoError("HEIC cannot be decoded here (no pillow-heif): save it as JPEG") from None
    pillow_heif.register_heif_opener()


def _draft(im: Image.Image, max_side: int | None, max_height: int | None) -> None:
    """Let a JPEG decode at the smallest DCT scale (1/2, 1/4, 1/8) still at least the final size.

    Asked for the final size itself, with its aspect ratio: a 4032x3024 phone photo bound for
    800 px decodes at 1/4 (1008x756), where a square 800x800 request allowed only 1/2.
    """
    turned = _orientation(im) in (5, 6, 7, 8)
    width, height = im.size
    shown = (height, width) if turned else (width, height)
    target = fit(shown, max_side, max_height)
    if target != shown:
        im.draft("RGB", (target[1], target[0]) if turned else target)


def _upright_rgb(
    im: Image.Image, max_side: int | None, max_height: int | None, resample: Image.Resampling
) -> Image.Image:
    """`im` in 8-bit RGB, reduced to fit, then turned upright, with no metadata.

    Reduced first: a large photo is converted and rotated at its final size, never copied at
    full size. The limits apply to the image as shown, so a photo stored sideways is reduced
    with its sides swapped.
    """
    orientation = _orientation(im)
    image = _eight_bit(im)
    turned = orientation in (5, 6, 7, 8)
    width, height = image.size
    shown = (height, width) if turned else (width, height)
    target = fit(shown, max_side, max_height)
    if target != shown:
        size = (target[1], target[0]) if turned else target
        image = image.resize(size, resample, reducing_gap=REDUCING_GAP)
    image = _on_white(image)
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
    elif image is im:
        image = image.copy()  # a plain Image, detached from the file it came from
    image.info = {}
    return image


def _orientation(im: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1 when absent or unreadable: a bad EXIF block is no reason to refuse."""
    try:
        value = im.getexif().get(ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def fit(size: tuple[int, int], max_side: int | None = None, max_height: int | None = None) -> tuple[int, int]:
    """`size` scaled down (never up) to fit `max_side` on its long side and `max_height` high."""
    width, height = size
    scale = 1.0
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
    if max_height and height * scale > max_height:
        scale = max_height / height
    if scale >= 1.0:
        return size
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def reduce(
    image: Image.Image,
    max_side: int | None = None,
    max_height: int | None = None,
    resample: Image.Resampling = ANALYSIS_RESAMPLE,
) -> Image.Image:
    """`image` scaled down (never up) to fit `max_side` on its long side and `max_height` high."""
    size = fit(image.size, max_side, max_height)
    if size == image.size:
        return image
    return image.resize(size, resample, reducing_gap=REDUCING_GAP)


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB pixels of `im`, whatever its mode; transparent areas are composited on white."""
    return _on_white(_eight_bit(im))


def _eight_bit(im: Image.Image) -> Image.Image:
    """`im` as L, LA, RGB or RGBA: 8 bits per channel, alpha kept, no palette."""
    mode = im.mode
    if mode in {"L", "LA", "RGB", "RGBA"}:
        return im
    if mode.startswith("I") or mode == "F":
        return _gray_to_eight_bit(im)
    if mode == "PA" or (mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    if mode == "1":
        return im.convert("L")
    if mode == "La":
        return im.convert("LA")
    if mode == "RGBa":
        return im.convert("RGBA")
    try:
        return im.convert("RGB")  # P, CMYK (Adobe's inverted JPEGs included), YCbCr, RGBX, ...
    except ValueError:
        raise PhotoError(f"colour mode {mode} is not supported") from None


def _gray_to_eight_bit(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grayscale scaled to 8 bits, as a viewer shows them.

    Pillow's own conversion clips at 255, which turns a 16-bit photo white. 16-bit samples
    use the full 0-65535 range (PNG); 32-bit and float ones have no fixed range, so values that
    fit 8 or 16 bits (or 0-1 for float) are read as such, and anything else is stretched.
    """
    import numpy as np

    pixels: Any = np.asarray(im)
    if im.mode.startswith("I;16"):
        return Image.fromarray((pixels >> 8).astype(np.uint8), "L")
    if im.mode == "F":
        pixels = np.nan_to_num(pixels, posinf=0.0, neginf=0.0)
    low, high = float(pixels.min()), float(pixels.max())
    if im.mode == "F" and low >= 0 and high <= 1:
        scaled = np.rint(pixels * 255.0)
    elif low >= 0 and high <= 255:
        scaled = np.rint(pixels)
    elif low >= 0 and high <= 65535 and im.mode != "F":
        scaled = pixels >> 8
    elif high > low:
        scaled = np.rint((pixels.astype(np.float32) - low) * np.float32(255.0 / (high - low)))
    else:
        scaled = np.zeros_like(pixels)
    return Image.fromarray(scaled.astype(np.uint8), "L")


def _on_white(im: Image.Image) -> Image.Image:
    """An L, LA, RGB or RGBA image in RGB, transparent areas composited on white as a browser shows them."""
    if im.mode in {"LA", "RGBA"}:
        canvas = Image.new(im.mode[:-1], im.size, 255 if im.mode == "LA" else (255, 255, 255))
        canvas.paste(im, mask=im.getchannel("A"))
        im = canvas
    return im.convert("RGB") if im.mode == "L" else im


def make_thumbnails(
    path: str | Path, sizes: list[int], max_side: int, decoded: Image.Image | None = None
) -> dict[int, bytes]:
    """JPEG thumbnails of `path`, one per size (long side in px), with no metadata at all.

    Made from the copy the face encoder works on (`open_photo(path, max_side)`, the detection
    copy) whenever it is large enough, else from a decode at the largest size. Both ways make the
    same pixels whoever calls it: an encoder passes the copy it `decoded`, a thumbnail task
    decodes it again, and the same photo gives the same bytes (a re-run after a crash, a renamed
    folder and a clean run store identical objects).

    Nothing from the original is carried over (no EXIF, GPS, XMP, ICC profile or comment): the
    orientation is applied to the pixels instead, and each thumbnail is saved from an image
    with no info, so Pillow has nothing to copy into it.
    """
    if not sizes:
        return {}
    if max(sizes) > max_side:
        return thumbnails_of(open_photo(path, max(sizes), resample=THUMB_RESAMPLE), sizes)
    return thumbnails_of(decoded if decoded is not None else open_photo(path, max_side), sizes)


def thumbnails_of(image: Image.Image, sizes: list[int]) -> dict[int, bytes]:
    """`make_thumbnails` of a photo already decoded by `open_photo` (upright, RGB, no info)."""
    out = {}
    for size in sorted(sizes, reverse=True):
        thumb = reduce(image, max_side=size, resample=THUMB_RESAMPLE)
        thumb.info = {}
        buf = io.BytesIO()
        thumb.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
        out[size] = buf.getvalue()
    return out
