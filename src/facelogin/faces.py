"""Find the one face in an enrolment photo and compute its 128-d encoding (face_recognition/dlib)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelogin.imaging import PhotoError, open_photo

log = logging.getLogger(__name__)

ENCODED = "encoded"
REJECTED = "rejected"


def load_face_recognition() -> Any:
    """Import face_recognition (loads dlib's models, ~0.5 s) only where faces are needed."""
    from PIL import ImageFile

    truncated_ok = ImageFile.LOAD_TRUNCATED_IMAGES
    with warnings.catch_warnings():
        # face_recognition_models imports pkg_resources, which warns on every import.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import face_recognition
    # face_recognition sets this process-wide on import, which would make a truncated upload
    # decode as a half-grey photo instead of being rejected.
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated_ok
    return face_recognition


@dataclass(frozen=True)
class FaceResult:
    """The outcome for one photo: an encoding, or the reason there is none."""

    status: str
    encoding: list[float] | None = None
    reason: str | None = None
    faces: int = 0
    box: tuple[int, int, int, int] | None = None


def encode_face(path: str | Path, max_side: int = 800, upsample: int = 0, model: str = "hog") -> FaceResult:
    """Encode the single face in `path`, detected on a copy reduced to `max_side` px.

    HOG without upsampling finds faces down to 80 px, a tenth of an 800 px photo, at about
    half the cost of 640 px with one upsampling pass; when it finds none, one upsampling pass
    (faces down to 40 px) is tried before the photo is rejected. A photo with no face,
    several faces or that cannot be decoded is rejected with a reason rather than raising,
    so one bad photo never stops a sync.
    """
    face_recognition = load_face_recognition()
    try:
        image = open_photo(path, max_side)
    except PhotoError as exc:
        return FaceResult(REJECTED, reason=str(exc))
    pixels = np.asarray(image)
    boxes = face_recognition.face_locations(pixels, number_of_times_to_upsample=upsample, model=model)
    if not boxes and upsample < 1:
        boxes = face_recognition.face_locations(pixels, number_of_times_to_upsample=1, model=model)
    if not boxes:
        return FaceResult(REJECTED, reason="no face found")
    if len(boxes) > 1:
        return FaceResult(
            REJECTED,
            reason=f"{len(boxes)} faces found: an enrolment photo must show only its owner",
            faces=len(boxes),
        )
    (encoding,) = face_recognition.face_encodings(pixels, known_face_locations=boxes)
    return FaceResult(ENCODED, encoding=[float(x) for x in encoding], faces=1, box=tuple(boxes[0]))


def model_info(max_side: int, upsample: int) -> dict[str, str]:
    """What produced the encodings: stored with them so a later model change is noticed."""
    from importlib.metadata import PackageNotFoundError, version

    def _version(*names: str) -> str:
        for name in names:
            try:
                return version(name)
            except PackageNotFoundError:
                continue
        return "unknown"

    return {
        "face_recognition": _version("face_recognition"),
        "dlib": _version("dlib-bin", "dlib"),
        "detector": "hog",
        "detect_max_side": str(max_side),
        "upsample": str(upsample),
    }
