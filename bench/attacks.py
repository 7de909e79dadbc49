"""Presentation attacks made from a person's still photo, as an attacker would make them.

Used by `python -m bench.liveness` and by the tests, which must see each of them refused:
- `still_repeated`: one photo sent as every frame;
- `screen`: the photo shown on a screen or held up: per-frame brightness, rotation, scale, offset and
  JPEG re-compression;
- `perspective`: a printed photo tilted toward and away from the camera, left-right or up-down
  (homographies of a plane rotated in 3-D), so its landmarks move as a turning head's would in 2-D;
- `splice`: frames of two bursts joined, to borrow one person's live action for another's face.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageEnhance

SIZE = (640, 480)


def letterbox(image: Image.Image, size: tuple[int, int] = SIZE) -> Image.Image:
    """`image` fitted into a camera frame of `size`, on black."""
    image = image.convert("RGB")
    fitted = image.copy()
    fitted.thumbnail(size)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return canvas


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def still_repeated(photo: Image.Image, n: int) -> list[bytes]:
    frame = jpeg(letterbox(photo))
    return [frame] * n


def screen(photo: Image.Image, n: int, seed: int = 0) -> list[bytes]:
    """The photo on a screen in front of the camera: every frame a little different, none of it 3-D."""
    rng = random.Random(seed)
    base = letterbox(photo)
    out = []
    for _ in range(n):
        angle = rng.uniform(-6, 6)
        scale = rng.uniform(0.9, 1.1)
        dx, dy = rng.uniform(-20, 20), rng.uniform(-15, 15)
        frame = base.rotate(angle, resample=Image.Resampling.BILINEAR, translate=(dx, dy))
        w, h = frame.size
        scaled = frame.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
        canvas = Image.new("RGB", SIZE, (0, 0, 0))
        canvas.paste(scaled, ((w - scaled.width) // 2, (h - scaled.height) // 2))
        canvas = ImageEnhance.Brightness(canvas).enhance(rng.uniform(0.8, 1.2))
        out.append(jpeg(canvas, rng.randint(60, 92)))
    return out


def _perspective_coefficients(
    src: Sequence[tuple[float, float]], dst: Sequence[tuple[float, float]]
) -> list[float]:
    """PIL's PERSPECTIVE data mapping output pixels `dst` back to input pixels `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows, float), np.array(rhs, float))]


def tilt(image: Image.Image, degrees: float, axis: str) -> Image.Image:
    """`image` as a print rotated by `degrees` about its vertical ("yaw") or horizontal ("pitch") axis,
    seen by a pinhole camera whose focal length is the image width."""
    w, h = image.size
    f = float(w)
    a = math.radians(degrees)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    projected = []
    for x, y in corners:
        if axis == "yaw":
            X, Y, Z = x * math.cos(a), y, f + x * math.sin(a)
        else:
            X, Y, Z = x, y * math.cos(a), f + y * math.sin(a)
        projected.append((w / 2 + f * X / Z, h / 2 + f * Y / Z))
    src = [(x + w / 2, y + h / 2) for x, y in corners]
    data = _perspective_coefficients(src, projected)
    return image.transform(image.size, Image.Transform.PERSPECTIVE, data, Image.Resampling.BILINEAR)


def perspective(photo: Image.Image, n: int, axis: str, amplitude: float, seed: int = 0) -> list[bytes]:
    """The print tilted from flat to `amplitude` degrees and back over the burst, with small hand shake."""
    rng = random.Random(seed)
    base = letterbox(photo)
    out = []
    for i in range(n):
        phase = math.sin(math.pi * i / max(1, n - 1))
        frame = tilt(base, amplitude * phase + rng.uniform(-1, 1), axis)
        frame = frame.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BILINEAR)
        out.append(jpeg(frame, rng.randint(75, 92)))
    return out


def splice(first: Sequence[bytes], second: Sequence[bytes]) -> list[bytes]:
    """The first half of one burst, then the second half of another."""
    return list(first[: len(first) // 2]) + list(second[len(second) // 2 :])
