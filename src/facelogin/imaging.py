"""Decode photos the way a viewer shows them, and make metadata-free JPEG thumbnails (Pillow)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

JPEG_QUALITY = 85
# Resample from at most 2x the target size after the fast reduced decode: close to
# full-quality output at a fraction of the cost (Pillow's reducing_gap).
REDUCING_GAP = 2.0


class PhotoError(ValueError):
    """A photo that cannot be used; the message is the reason shown to the user."""


def open_photo(path: str | Path, max_side: int | None = None, max_height: int | None = None) -> Image.Image:
    """Decode `path` upright (EXIF orientation applied), in RGB, reduced to fit the limits given.

    The one decoder of facelogin: enrolment, the sync and the login all see the same pixels
    (transparent areas composited on white). `max_side` bounds the long side (photos),
    `max_height` the height (camera frames). JPEGs are decoded at a reduced scale straight from
    the DCT (`Image.draft`), several times faster than decoding at full size and shrinking.
    """
    path = Path(path)
    # Both sides at least the limit, so the limit still holds after an EXIF rotation.
    draft = max(max_side or 0, max_height or 0)
    try:
        if path.stat().st_size == 0:
            raise PhotoError("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if draft:
                    im.draft("RGB", (draft, draft))
                im.load()
                upright = ImageOps.exif_transpose(im)
    except PhotoError:
        raise
    except FileNotFoundError:
        raise PhotoError("no such file") from None
    except UnidentifiedImageError:
        raise PhotoError("not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError("image is too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"cannot decode image: {exc}") from None
    return reduce(to_rgb(upright), max_side=max_side, max_height=max_height)


def reduce(image: Image.Image, max_side: int | None = None, max_height: int | None = None) -> Image.Image:
    """`image` scaled down (never up) to fit `max_side` on its long side and `max_height` high."""
    width, height = image.size
    scale = 1.0
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
    if max_height and height * scale > max_height:
        scale = max_height / height
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB pixels of `im`; transparent areas are composited on white."""
    if im.mode == "RGB":
        return im
    if im.mode in {"RGBA", "LA", "PA"} or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        # Transparent areas become white, not black, as a browser would show them.
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return im.convert("RGB")


def make_thumbnails(path: str | Path, sizes: list[int]) -> dict[int, bytes]:
    """JPEG thumbnails of `path`, one per size (long side in px), with no metadata at all.

    Nothing from the original is carried over (no EXIF, GPS, XMP or ICC profile): the
    orientation is applied to the pixels instead.
    """
    if not sizes:
        return {}
    base = open_photo(path, max(sizes))
    out = {}
    for size in sorted(sizes, reverse=True):
        thumb = reduce(base, max_side=size)
        buf = io.BytesIO()
        thumb.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
        out[size] = buf.getvalue()
    return out
