"""Frames to decide on: image files, a video, or a camera (Picamera2 on a Pi, else OpenCV).

Image files go through facelogin's one decoder (`imaging.open_photo`), so a photo gives the
login the same pixels it gave the sync. OpenCV and Picamera2 are imported only when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facelogin.imaging import PhotoError, open_photo, reduce
from facelogin.login.errors import LoginError

# Howdy reduces camera frames to 320 px height before detection: big enough for a face at arm's
# length, small enough for ~50 ms of HOG detection on one core.
DEFAULT_HEIGHT = 320

CAMERA_HINT = (
    "no camera stack found: install Picamera2 (Raspberry Pi OS: `sudo apt install python3-picamera2`, "
    "venv created with --system-site-packages) or OpenCV (`pip install 'facelogin[camera]'`)"
)
VIDEO_HINT = "reading a video needs OpenCV: `pip install 'facelogin[camera]'` (opencv-python-headless)"


@dataclass
class Frame:
    label: str
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, already reduced


def open_frame(path: str | Path, height: int) -> Image.Image:
    """Decode an image file upright, RGB, at most `height` px high (0: as it is)."""
    try:
        return open_photo(path, max_height=height or None)
    except PhotoError as exc:
        raise LoginError(f"{path}: {exc}") from None


def image_frames(paths: Iterable[str | Path], height: int) -> Iterator[Frame]:
    for path in paths:
        yield Frame(str(path), np.asarray(open_frame(path, height)))


def frame_from_array(label: str, rgb: np.ndarray, height: int) -> Frame:
    if height and rgb.shape[0] > height:
        rgb = np.asarray(reduce(Image.fromarray(np.ascontiguousarray(rgb)), max_height=height))
    return Frame(label, np.ascontiguousarray(rgb))


def _import_cv2() -> Any | None:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def video_frames(path: str | Path, height: int) -> Iterator[Frame]:
    """Frames of a video file, in order (OpenCV)."""
    cv2 = _import_cv2()
    if cv2 is None:
        raise LoginError(VIDEO_HINT)
    if not Path(path).is_file():
        raise LoginError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise LoginError(f"{path}: OpenCV cannot open this video")
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield frame_from_array(f"{path}#{index}", bgr[:, :, ::-1], height)
            index += 1
    finally:
        capture.release()


def camera_frames(index: int, height: int) -> Iterator[Frame]:
    """Frames from a camera: Picamera2 when importable (Raspberry Pi), else OpenCV VideoCapture."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        Picamera2 = None
    if Picamera2 is not None:
        yield from _picamera_frames(Picamera2, index, height)
        return
    cv2 = _import_cv2()
    if cv2 is None:
        raise LoginError(CAMERA_HINT)
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise LoginError(f"camera {index}: OpenCV cannot open it (is it connected, and free?)")
    try:
        count = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                raise LoginError(f"camera {index}: no frame could be read")
            yield frame_from_array(f"camera{index}#{count}", bgr[:, :, ::-1], height)
            count += 1
    finally:
        capture.release()


def _picamera_frames(picamera2_cls: Any, index: int, height: int) -> Iterator[Frame]:
    camera = picamera2_cls(camera_num=index)
    # Ask the ISP for a small frame directly: cheaper than reducing a full-size one.
    size = (round(height * 4 / 3), height) if height else (640, 480)
    camera.configure(camera.create_preview_configuration(main={"format": "RGB888", "size": size}))
    camera.start()
    try:
        count = 0
        while True:
            # Picamera2's "RGB888" is laid out B, G, R in memory.
            bgr = camera.capture_array()
            yield frame_from_array(f"picamera{index}#{count}", bgr[:, :, :3][:, :, ::-1], height)
            count += 1
    finally:
        camera.stop()
        camera.close()
