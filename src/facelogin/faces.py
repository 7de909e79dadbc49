"""Find the one face in an enrolment photo and compute its 128-d encoding (face_recognition/dlib)."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facelogin.files import private_dir, write_atomic
from facelogin.imaging import PhotoError, open_photo

log = logging.getLogger(__name__)

ENCODED = "encoded"
REJECTED = "rejected"

# The narrowest face (detector box width, in the original photo's pixels) whose encoding is trusted.
# `python -m bench.face_size` shrinks the 15 sample photos until the face is N px wide (N = 24..140)
# and measures each encoding's drift from the photo's full-size one. By the box width HOG reports
# (its scales run 36, 43, 52, 72, 86, 104, ...: boxes under 72 px come only from the upsampling
# retry), the median drift is 0.29 at 35-41 px, 0.19 at 42-49, 0.16 at 50-59, then 0.10 at 72-85,
# 0.07 at 86-103 and the resampling floor of 0.05 from 104 px on. 72 is the first width whose drift
# is within the login margin (0.1); the smallest sample enrolment face is 129 px.
MIN_FACE_PX = 72

# An accepted photo is still called weak, with the reason, when the face is turned or blurred:
# the person is told how to take a better one, and the photo is enrolled all the same.
# `python -m bench.recognition_levers` on 198 public photos of 40 people: a photo's median distance
# to the person's other photos grows with the yaw its 5 landmarks show (0.40 under 10°, 0.45 at
# 10-20°, 0.49 at 20-30°, 0.53 beyond) and is higher for the blurriest (0.46 at a Laplacian
# variance under 20 on the aligned 150 px chip, 0.41 above 80). Leaving such photos out of the
# enrolment did not recognise more people there (a user's mean is better for every photo it has),
# so they are flagged, not rejected.
WEAK_YAW_DEGREES = 25.0
WEAK_SHARPNESS = 20.0


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


LANDMARKS = "shape_predictor_5_face_landmarks.dat"
DETECTOR_FILE = "frontal_face_detector.svm"


def detector_cache() -> Path:
    """Where the face detector's serialised copy is kept: $XDG_CACHE_HOME/facelogin (~/.cache/facelogin)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "facelogin"


@lru_cache(maxsize=1)
def frontal_detector() -> Any:
    """dlib's HOG face detector, once per process, shared by the encoder and the landmark model.

    dlib builds it from the compressed text it is compiled with: ~0.35 s of CPU, the larger part of
    a new encoding or login process's model loading. Its own serialised form (dlib's format, not a
    pickle) loads in ~1 ms, so the first process writes it to the user's cache, per dlib version,
    private and atomically; a copy that cannot be read is rebuilt, and a cache that cannot be
    written only costs the rebuild.
    """
    import dlib

    path = detector_cache() / f"dlib-{dlib.__version__}" / DETECTOR_FILE
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except RuntimeError as exc:  # truncated by hand, or another dlib's: rebuilt below
            log.debug("cannot load %s (%s): rebuilding it", path, exc)
    detector = dlib.get_frontal_face_detector()
    try:
        scratch = private_dir(path.parent) / f".{DETECTOR_FILE}.{os.getpid()}"
        detector.save(str(scratch))  # dlib writes a file only; copied atomically into place
        try:
            write_atomic(path, scratch.read_bytes())
        finally:
            scratch.unlink(missing_ok=True)
    except (OSError, RuntimeError) as exc:
        log.debug("cannot keep the face detector in %s: %s", path.parent, exc)
    return detector


ENCODER = "dlib_face_recognition_resnet_model_v1.dat"


class DlibFaces:
    """The three dlib models facelogin needs (HOG detector, 5-point landmarks, ResNet encoder), nothing else.

    Same calls and the same box trimming as face_recognition's face_locations/face_encodings (whose
    default is the 5-point model), so encodings are identical to the enrolment ones. Importing
    face_recognition instead also parses the 100 MB 68-point model (~0.75 s on one core), the CNN
    detector, and pkg_resources (~0.3 s): most of a cold start.
    """

    def __init__(self, models_dir: Path) -> None:
        import dlib

        self.detector = frontal_detector()
        self.predictor = dlib.shape_predictor(str(models_dir / LANDMARKS))
        self.encoder = dlib.face_recognition_model_v1(str(models_dir / ENCODER))
        self._rectangle = dlib.rectangle

    def face_locations(
        self, pixels: np.ndarray, number_of_times_to_upsample: int = 1
    ) -> list[tuple[int, ...]]:
        height, width = pixels.shape[:2]
        return [
            (max(r.top(), 0), min(r.right(), width), min(r.bottom(), height), max(r.left(), 0))
            for r in self.detector(pixels, number_of_times_to_upsample)
        ]

    def face_encodings(
        self, pixels: np.ndarray, known_face_locations: list[tuple[int, ...]]
    ) -> list[np.ndarray]:
        return [self.encode_shape(pixels, self.landmarks(pixels, box)) for box in known_face_locations]

    def landmarks(self, pixels: np.ndarray, box: tuple[int, ...]) -> Any:
        """dlib's 5-point shape for the face in `box` (top, right, bottom, left)."""
        top, right, bottom, left = box
        return self.predictor(pixels, self._rectangle(left, top, right, bottom))

    def encode_shape(self, pixels: np.ndarray, shape: Any) -> np.ndarray:
        return np.array(self.encoder.compute_face_descriptor(pixels, shape, 1))

    def quality(self, pixels: np.ndarray, shape: Any) -> tuple[float, float]:
        """(yaw in degrees, sharpness) of the face `shape` marks, measured on what the encoder sees."""
        import dlib

        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        chip = np.asarray(dlib.get_face_chip(pixels, shape, size=150, padding=0.25))
        return yaw_degrees(points), sharpness(chip)


def yaw_degrees(points: np.ndarray) -> float:
    """Head yaw from dlib's 5 points (eye corners 0-3, nose base 4): the nose's sideways offset.

    The nose base sits about 0.55 inter-ocular distances in front of the eye corners, so its offset
    from the eyes' midpoint, over the eye distance the photo shows, is 0.55 tan(yaw).
    """
    first_eye, second_eye = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
    axis = second_eye - first_eye
    eyes = float(np.hypot(*axis))
    if eyes <= 0:
        return 90.0
    offset = float(np.dot(points[4] - (first_eye + second_eye) / 2.0, axis / eyes))
    return float(np.degrees(np.arctan2(abs(offset), 0.55 * eyes)))


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of a face chip in grey: low means blurred (or featureless)."""
    grey = np.asarray(chip, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def weak_reason(yaw: float | None, sharp: float | None) -> str | None:
    """Why an accepted photo is a weak one, in words for the person in it; None when it is fine."""
    reasons = []
    if yaw is not None and yaw >= WEAK_YAW_DEGREES:
        reasons.append(f"face turned {yaw:.0f}°: look straight at the camera")
    if sharp is not None and sharp < WEAK_SHARPNESS:
        reasons.append("blurred: hold still, in good light")
    return "; ".join(reasons) or None


def models_dir() -> Path | None:
    """face_recognition_models' data folder, found without importing the package (and pkg_resources)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "models"
        if (folder / LANDMARKS).is_file() and (folder / ENCODER).is_file():
            return folder
    return None


@lru_cache(maxsize=1)
def load_faces() -> Any:
    """The face detector/encoder, once per process, with face_recognition's interface.

    dlib directly when face_recognition_models' files are found (enrolment and login then
    share one engine), else face_recognition itself.
    """
    folder = models_dir()
    if folder is not None:
        return DlibFaces(folder)
    return load_face_recognition()


@dataclass(frozen=True)
class FaceResult:
    """The outcome for one photo: an encoding, or the reason there is none."""

    status: str
    encoding: list[float] | None = None
    reason: str | None = None
    faces: int = 0
    box: tuple[int, int, int, int] | None = None  # (top, right, bottom, left) on the reduced copy
    face_px: int | None = None  # width of the face box in the original photo's pixels
    yaw: float | None = None  # degrees the head is turned (dlib's engine only)
    sharpness: float | None = None  # Laplacian variance of the aligned face (dlib's engine only)
    weak: str | None = None  # why an encoded photo is a weak one, for the person; None: fine


def encode_face(path: str | Path, max_side: int = 800, upsample: int = 0) -> FaceResult:
    """Encode the single face in `path`, detected on a copy reduced to `max_side` px.

    HOG without upsampling finds faces down to 80 px, a tenth of an 800 px photo, at about
    half the cost of 640 px with one upsampling pass; when it finds none, one upsampling pass
    (faces down to 40 px) is tried before the photo is rejected. A photo with no face,
    several faces, a face narrower than MIN_FACE_PX (in the original photo's pixels), or that
    cannot be decoded is rejected with a reason rather than raising, so one bad photo never
    stops a sync.
    """
    return encode_photo(path, max_side, upsample)[0]


def encode_photo(
    path: str | Path, max_side: int = 800, upsample: int = 0
) -> tuple[FaceResult, Image.Image | None]:
    """`encode_face`, and the reduced copy it worked on (None when the photo could not be decoded)."""
    engine = load_faces()
    try:
        image = open_photo(path, max_side)
    except PhotoError as exc:
        return FaceResult(REJECTED, reason=str(exc)), None
    pixels = np.asarray(image)
    boxes = engine.face_locations(pixels, number_of_times_to_upsample=upsample)
    if not boxes and upsample < 1:
        boxes = engine.face_locations(pixels, number_of_times_to_upsample=1)
    if not boxes:
        return FaceResult(REJECTED, reason="no face found"), image
    if len(boxes) > 1:
        reason = f"{len(boxes)} faces found: an enrolment photo must show only its owner"
        return FaceResult(REJECTED, reason=reason, faces=len(boxes)), image
    box = tuple(boxes[0])
    face_px = round((box[1] - box[3]) * _reduction(path, image.size))
    if face_px < MIN_FACE_PX:
        reason = f"face {face_px} px: come closer (a face needs at least {MIN_FACE_PX} px)"
        return FaceResult(REJECTED, reason=reason, faces=1, box=box, face_px=face_px), image
    yaw = sharp = None
    if isinstance(engine, DlibFaces):
        shape = engine.landmarks(pixels, box)
        encoding = engine.encode_shape(pixels, shape)
        yaw, sharp = engine.quality(pixels, shape)
    else:
        (encoding,) = engine.face_encodings(pixels, known_face_locations=boxes)
    result = FaceResult(
        ENCODED,
        encoding=[float(x) for x in encoding],
        faces=1,
        box=box,
        face_px=face_px,
        yaw=None if yaw is None else round(yaw, 1),
        sharpness=None if sharp is None else round(sharp, 1),
        weak=weak_reason(yaw, sharp),
    )
    return result, image


def _reduction(path: str | Path, reduced: tuple[int, int]) -> float:
    """How many original pixels one pixel of the reduced copy stands for (1.0 when not reduced).

    Read from the header only; the long side is compared, so an EXIF rotation does not matter.
    """
    from PIL import Image

    with Image.open(path) as im:
        original = im.size
    return max(1.0, max(original) / max(reduced))


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
