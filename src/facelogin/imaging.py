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


def open_photo(path: str | Path, max_side: int | None = None) -> Image.Image:
    """Decode `path` upright (EXIF orientation applied), in RGB, at most `max_side` px on its long side.

    JPEGs are decoded at a reduced scale straight from the DCT (`Image.draft`), which is
    several times faster than decoding at full size and shrinking afterwards.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise PhotoError("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if max_side:
                    im.draft("RGB", (max_side, max_side))
                im.load()
                upright = ImageOps.exif_transpose(im)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError("not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError("image is too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"cannot decode image: {exc}") from None
    rgb = _to_rgb(upright)
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return rgb


def _to_rgb(im: Image.Image) -> Image.Image:
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
        thumb = base.copy()
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        buf = io.BytesIO()
        thumb.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
        out[size] = buf.getvalue()
    return out
