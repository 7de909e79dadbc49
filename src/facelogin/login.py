"""The login side on the Pi: load the encodings bundle (keeping the last good one), read frames, decide.

Light on purpose: numpy, Pillow, face_recognition and the bundle reader. boto3 is imported only for
an `s3://` bundle, OpenCV or Picamera2 only for a video or a camera; never Prefect or pymongo.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facelogin.bundle import LATEST, Bundle, BundleError, load_bundle, manifest_bytes, parse_manifest
from facelogin.faces import load_faces
from facelogin.files import write_atomic
from facelogin.match import (
    ACCEPTED,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    FrameDecision,
    Gallery,
    best_match,
    can_still_agree,
    combine_frames,
    decide_frame,
)

log = logging.getLogger(__name__)

CALIBRATION = "calibration.json"
CALIBRATION_FORMAT = "facelogin-calibration"
DEFAULT_CACHE = Path("~/.facelogin/login-cache")
# Howdy reduces camera frames to 320 px height before detection: big enough for a face at arm's
# length, small enough for ~50 ms of HOG detection on one core.
DEFAULT_HEIGHT = 320
DEFAULT_UPSAMPLE = 1  # at 0, the smaller faces of the sample group photos go unseen
DEFAULT_FRAMES = 5
DEFAULT_AGREE = 3

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2

CAMERA_HINT = (
    "no camera stack found: install Picamera2 (Raspberry Pi OS: `sudo apt install python3-picamera2`, "
    "venv created with --system-site-packages) or OpenCV (`pip install 'facelogin[camera]'`)"
)
VIDEO_HINT = "reading a video needs OpenCV: `pip install 'facelogin[camera]'` (opencv-python-headless)"


class LoginError(RuntimeError):
    """Login cannot decide at all (no usable bundle, unreadable input, no camera): exit code 2."""


# Bundle: fetch, verify, cache, fall back


@dataclass
class LoadedBundle:
    bundle: Bundle
    source: str
    from_cache: bool
    calibration: dict[str, Any] | None
    messages: list[str] = field(default_factory=list)


def _s3_split(location: str) -> tuple[str, str]:
    """`s3://bucket/prefix/latest[.json]` or `s3://bucket/prefix/` -> (bucket, key of the manifest)."""
    rest = location[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise LoginError(f"{location}: no bucket in the S3 location")
    if key.endswith(".json"):
        return bucket, key
    if key.rstrip("/").endswith("latest"):
        return bucket, key.rstrip("/") + ".json"
    return bucket, f"{key.strip('/')}/{LATEST}" if key.strip("/") else LATEST


def _local_manifest(location: str) -> Path:
    path = Path(location).expanduser()
    if path.is_dir():
        return path / LATEST
    if path.suffix != ".json" and path.name == "latest":
        return path.with_name(LATEST)
    return path


class _Source:
    """Where a bundle lives: reads the manifest and files beside it, and writes a sidecar there."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.is_s3 = location.startswith("s3://")
        if self.is_s3:
            self.bucket, self.manifest_key = _s3_split(location)
            self._client: Any = None
        else:
            self.manifest_path = _local_manifest(location)

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # only here: a local bundle never needs it

            self._client = boto3.client("s3")
        return self._client

    def _sibling_key(self, name: str) -> str:
        parent = self.manifest_key.rpartition("/")[0]
        return f"{parent}/{name}" if parent else name

    def describe(self, name: str | None = None) -> str:
        if self.is_s3:
            return f"s3://{self.bucket}/{self._sibling_key(name) if name else self.manifest_key}"
        return str(self.manifest_path.parent / name if name else self.manifest_path)

    def read(self, name: str | None = None) -> bytes:
        """The manifest, or the file `name` beside it. Raises BundleError for anything unreachable."""
        where = self.describe(name)
        if not self.is_s3:
            try:
                return (self.manifest_path.parent / name if name else self.manifest_path).read_bytes()
            except OSError as exc:
                raise BundleError(f"{where}: cannot read ({exc.strerror or exc})") from None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            key = self._sibling_key(name) if name else self.manifest_key
            return bytes(self._s3().get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise BundleError(f"{where}: cannot fetch ({exc})") from None

    def write(self, name: str, data: bytes) -> str:
        where = self.describe(name)
        if self.is_s3:
            self._s3().put_object(
                Bucket=self.bucket,
                Key=self._sibling_key(name),
                Body=data,
                ContentType="application/json",
                CacheControl="private, no-cache",
            )
        else:
            write_atomic(self.manifest_path.parent / name, data)
        return where


def parse_calibration(raw: bytes | None, sha256: str) -> dict[str, Any] | None:
    """The calibration sidecar if it was made for the bundle with this sha256, else None."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT:
        return None
    if data.get("bundle_sha256") != sha256 or not isinstance(data.get("threshold"), int | float):
        return None
    return data


def _read_optional(source: _Source, name: str) -> bytes | None:
    try:
        return source.read(name)
    except BundleError:
        return None


def fetch_bundle(location: str, cache: Path | None = None) -> tuple[Bundle, bytes, dict[str, Any] | None]:
    """Read and verify the bundle at `location`: the bundle, its .npz bytes, its calibration.

    For an S3 bundle whose .npz is already in `cache` with the right checksum, only the small
    manifest crosses the network.
    """
    source = _Source(location)
    manifest = parse_manifest(source.read(), source.describe())
    bundle = None
    if cache is not None and source.is_s3:
        try:
            data = (cache / manifest["npz"]).read_bytes()
            bundle = load_bundle(manifest, data, str(cache / manifest["npz"]))
        except (OSError, BundleError):
            bundle = None
    if bundle is None:
        data = source.read(manifest["npz"])
        bundle = load_bundle(manifest, data, source.describe(manifest["npz"]))
    calibration = parse_calibration(_read_optional(source, CALIBRATION), manifest["sha256"])
    return bundle, data, calibration


def _save_cache(cache: Path, bundle: Bundle, data: bytes, calibration: dict[str, Any] | None) -> None:
    """Store the bundle in `cache`: the .npz first, the pointer last, as the publisher does."""
    manifest = bundle.manifest
    write_atomic(cache / manifest["npz"], data)
    if calibration is not None:
        write_atomic(cache / CALIBRATION, json.dumps(calibration, indent=2).encode())
    else:
        (cache / CALIBRATION).unlink(missing_ok=True)
    write_atomic(cache / LATEST, manifest_bytes(manifest))
    for old in cache.glob("bundle-*.npz"):
        if old.name != manifest["npz"]:
            old.unlink(missing_ok=True)


def _cached_sha(cache: Path) -> str | None:
    try:
        return str(parse_manifest((cache / LATEST).read_bytes(), str(cache / LATEST))["sha256"])
    except (OSError, BundleError):
        return None


def load_login_bundle(location: str, cache_dir: Path | None = None) -> LoadedBundle:
    """The bundle at `location`, verified; when it is unusable, the last good one from the cache.

    A good new bundle replaces the cached one. Messages about a fallback are returned (and logged)
    so the CLI can show them on stderr.
    """
    cache = (cache_dir or DEFAULT_CACHE).expanduser()
    try:
        bundle, data, calibration = fetch_bundle(location, cache)
    except BundleError as exc:
        try:
            cached, _, calibration = fetch_bundle(str(cache))
        except BundleError as cache_exc:
            raise LoginError(f"{exc}; and no usable cached bundle ({cache_exc})") from None
        message = (
            f"{exc}; using the last good bundle {cached.version} "
            f"({len(cached.usernames)} users) cached in {cache}"
        )
        log.warning(message)
        return LoadedBundle(cached, str(cache), True, calibration, [message])
    messages = []
    sha = bundle.manifest["sha256"]
    cached_calibration = parse_calibration(_read_optional(_Source(str(cache)), CALIBRATION), sha)
    if _cached_sha(cache) != sha or cached_calibration != calibration:
        try:
            _save_cache(cache, bundle, data, calibration)
        except OSError as exc:
            messages.append(f"{cache}: cannot cache the bundle ({exc.strerror or exc})")
            log.warning(messages[-1])
    return LoadedBundle(bundle, location, False, calibration, messages)


def write_calibration(location: str, calibration: dict[str, Any]) -> str:
    """Store the calibration sidecar beside the bundle's manifest; returns where it went."""
    return _Source(location).write(CALIBRATION, (json.dumps(calibration, indent=2) + "\n").encode())


# Frames


@dataclass
class Frame:
    label: str
    pixels: np.ndarray  # (H, W, 3) uint8 RGB, already reduced


def reduce_image(image: Image.Image, height: int) -> Image.Image:
    """`image` scaled down (never up) to at most `height` px high."""
    if height and image.height > height:
        width = max(1, round(image.width * height / image.height))
        return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def open_frame(path: str | Path, height: int) -> Image.Image:
    """Decode an image file upright (EXIF orientation), RGB, at most `height` px high.

    JPEGs decode straight at a reduced scale (`draft`): a 12 MP phone photo costs ~15 ms, not ~150.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if height:
                # Both sides at least `height`, so the height after an EXIF rotation still is.
                im.draft("RGB", (height, height))
            im.load()
            upright = ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise LoginError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise LoginError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise LoginError(f"{path}: cannot decode image ({exc})") from None
    if upright.mode != "RGB":
        upright = upright.convert("RGBA").convert("RGB") if "A" in upright.mode else upright.convert("RGB")
    return reduce_image(upright, height)


def image_frames(paths: Iterable[str | Path], height: int) -> Iterator[Frame]:
    for path in paths:
        yield Frame(str(path), np.asarray(open_frame(path, height)))


def _import_cv2() -> Any | None:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def frame_from_array(label: str, rgb: np.ndarray, height: int) -> Frame:
    if height and rgb.shape[0] > height:
        rgb = np.asarray(reduce_image(Image.fromarray(np.ascontiguousarray(rgb)), height))
    return Frame(label, np.ascontiguousarray(rgb))


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


# Faces

# Deciding


@dataclass
class Settings:
    threshold: float | None = None  # None: calibrated value when present, else DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    height: int = DEFAULT_HEIGHT
    upsample: int = DEFAULT_UPSAMPLE
    frames: int = DEFAULT_FRAMES
    agree: int = DEFAULT_AGREE


class Authenticator:
    """A loaded bundle and face model, ready to decide on frames; reused across `--serve` requests."""

    def __init__(self, loaded: LoadedBundle, settings: Settings | None = None) -> None:
        start = time.perf_counter()
        self.loaded = loaded
        self.settings = settings or Settings()
        bundle = loaded.bundle
        self.gallery = Gallery.build(bundle.encodings, bundle.labels, bundle.usernames)
        self.fr = load_faces()
        self.model_ms = _ms(start)
        if self.settings.threshold is not None:
            self.threshold, self.threshold_source = self.settings.threshold, "option"
        elif loaded.calibration is not None:
            self.threshold, self.threshold_source = float(loaded.calibration["threshold"]), "calibrated"
        else:
            self.threshold, self.threshold_source = DEFAULT_THRESHOLD, "default"

    def decide(self, frames: Iterable[Frame], n: int, k: int) -> dict[str, Any]:
        """Read up to `n` frames, stopping once `k` agree or can no longer agree; the JSON-ready result."""
        start = time.perf_counter()
        ms = {"decode": 0.0, "detect": 0.0, "encode": 0.0, "match": 0.0}
        decisions: list[FrameDecision] = []
        iterator = iter(frames)
        try:
            while len(decisions) < n:
                t = time.perf_counter()
                frame = next(iterator, None)
                if frame is None:
                    break
                ms["decode"] += _ms(t)  # reading the next frame: decoding, or waiting for the camera
                decisions.append(self._decide_frame(frame.pixels, ms))
                if combine_frames(decisions, k).decision == ACCEPTED:
                    break
                if not can_still_agree(decisions, k, n):
                    break
        finally:
            # Release the camera or video now, not whenever the generator is collected.
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        verdict = combine_frames(decisions, k)
        match = verdict.match
        bundle = self.loaded.bundle
        ms["total"] = _ms(start)
        return {
            "decision": verdict.decision,
            "user": verdict.user,
            "distance": _round(match.distance) if match else None,
            "margin": _round(match.margin) if match else None,
            "nearest": match.user if match else None,
            "reason": verdict.reason,
            "frames": {
                "used": verdict.frames_used,
                "agreeing": verdict.frames_agreeing,
                "required": verdict.frames_required,
            },
            "faces": [d.faces for d in decisions],
            "profile_image": bundle.profile(verdict.user) if verdict.user else None,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "margin_required": self.settings.margin,
            "bundle": {
                "version": bundle.version,
                "users": len(self.gallery),
                "source": self.loaded.source,
                "from_cache": self.loaded.from_cache,
            },
            "ms": {key: round(value, 1) for key, value in ms.items()},
        }

    def _decide_frame(self, pixels: np.ndarray, ms: dict[str, float]) -> FrameDecision:
        t = time.perf_counter()
        boxes = self.fr.face_locations(pixels, number_of_times_to_upsample=self.settings.upsample)
        ms["detect"] += _ms(t)
        if len(boxes) != 1:
            return decide_frame(len(boxes), None, self.threshold, self.settings.margin)
        t = time.perf_counter()
        (encoding,) = self.fr.face_encodings(pixels, known_face_locations=boxes)
        ms["encode"] += _ms(t)
        t = time.perf_counter()
        match = best_match(self.gallery, encoding)
        ms["match"] += _ms(t)
        return decide_frame(1, match, self.threshold, self.settings.margin)

    def decide_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """One `--serve` request: {"image": path}, {"images": [paths]} or {"video": path}."""
        height = self.settings.height
        if "image" in request or "images" in request:
            paths = [request["image"]] if "image" in request else list(request["images"])
            if not paths or not all(isinstance(p, str) for p in paths):
                raise LoginError('"image" must be a path, "images" a non-empty list of paths')
            n = len(paths)
            k = int(request.get("agree", min(self.settings.agree, n)))
            return self.decide(image_frames(paths, height), n, k)
        if "video" in request:
            n = int(request.get("frames", self.settings.frames))
            k = int(request.get("agree", self.settings.agree))
            return self.decide(video_frames(str(request["video"]), height), n, k)
        raise LoginError('a request needs "image", "images" or "video"')


def error_result(message: str) -> dict[str, Any]:
    return {"decision": "error", "user": None, "reason": message}


def exit_code(result: dict[str, Any]) -> int:
    return {"accepted": EXIT_ACCEPTED, "rejected": EXIT_REJECTED}.get(result["decision"], EXIT_ERROR)


def serve(auth: Authenticator, lines: Iterable[str], write: Any) -> int:
    """Answer one JSON line per JSON request line until the input ends; returns the requests served."""
    served = 0
    for line in lines:
        if not line.strip():
            continue
        request: Any = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise LoginError("a request must be a JSON object")
            result = auth.decide_request(request)
        except json.JSONDecodeError as exc:
            result = error_result(f"request is not valid JSON ({exc})")
        except (LoginError, ValueError, TypeError) as exc:
            result = error_result(str(exc))
        if isinstance(request, dict) and "id" in request:
            result["id"] = request["id"]
        write(json.dumps(result) + "\n")
        served += 1
    return served


def calibration_record(bundle: Bundle, cal: Any, created_at: str) -> dict[str, Any]:
    """The sidecar stored beside the manifest, tied to this bundle's sha256."""
    return {
        "format": CALIBRATION_FORMAT,
        "bundle_sha256": bundle.manifest["sha256"],
        "bundle_version": bundle.version,
        "created_at": created_at,
        "threshold": cal.threshold,
        "largest_safe": cal.largest_safe,
        "ceiling": cal.ceiling,
        "false_reject_rate": cal.false_reject_rate,
        "genuine": {"count": len(cal.genuine), **_stats(cal.genuine)},
        "impostor": {"count": len(cal.impostor), **_stats(cal.impostor)},
        "notes": cal.notes,
    }


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"min": None, "median": None, "max": None}
    return {
        "min": _round(float(values.min())),
        "median": _round(float(np.median(values))),
        "max": _round(float(values.max())),
    }


def plot_calibration(cal: Any, path: Path) -> None:
    """Histograms of genuine and impostor distances with the threshold marked, as a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise LoginError("the plot needs matplotlib: `pip install 'facelogin[plot]'`") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0.0, max(1.0, float(np.max(cal.impostor, initial=1.0))), 41).tolist()
    if len(cal.genuine):
        ax.hist(cal.genuine, bins=bins, alpha=0.6, label=f"genuine ({len(cal.genuine)})", color="tab:green")
    if len(cal.impostor):
        ax.hist(cal.impostor, bins=bins, alpha=0.6, label=f"impostor ({len(cal.impostor)})", color="tab:red")
    frr = "n/a" if cal.false_reject_rate is None else f"{cal.false_reject_rate:.0%}"
    ax.axvline(
        cal.threshold, color="black", linestyle="--", label=f"threshold {cal.threshold:.3f} (FRR {frr})"
    )
    if cal.largest_safe is not None and cal.largest_safe != cal.threshold:
        ax.axvline(
            cal.largest_safe, color="grey", linestyle=":", label=f"no impostor below {cal.largest_safe:.3f}"
        )
    ax.set_xlabel("face distance (leave-one-out, per user minimum)")
    ax.set_ylabel("count")
    ax.set_title("facelogin calibration")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
