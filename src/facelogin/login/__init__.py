"""The login side, as it runs on the Pi: read the published bundle, look at frames, say who is there.

    from facelogin import login
    auth = login.Authenticator(login.load_login_bundle("~/.facelogin/bundle"))
    result = auth.decide(login.image_frames(["visitor.jpg"], 320), n=1, k=1)

Imports numpy, Pillow and (when deciding) dlib only: never Prefect or pymongo, and boto3 only
for an `s3://` bundle.
"""

from facelogin.login.authenticator import (
    Authenticator,
    LoginOptions,
    error_result,
    exit_code,
    serve,
)
from facelogin.login.calibrate import calibrate, calibration_record, load_pyplot, plot_calibration
from facelogin.login.errors import LoginError
from facelogin.login.frames import (
    Frame,
    camera_frames,
    frame_from_array,
    image_frames,
    open_frame,
    video_frames,
)
from facelogin.login.source import (
    CALIBRATION,
    CALIBRATION_FORMAT,
    LoadedBundle,
    fetch_bundle,
    load_login_bundle,
    split_s3,
    write_calibration,
)

__all__ = [
    "CALIBRATION",
    "CALIBRATION_FORMAT",
    "Authenticator",
    "Frame",
    "LoadedBundle",
    "LoginError",
    "LoginOptions",
    "calibrate",
    "calibration_record",
    "camera_frames",
    "error_result",
    "exit_code",
    "fetch_bundle",
    "frame_from_array",
    "image_frames",
    "load_login_bundle",
    "load_pyplot",
    "open_frame",
    "plot_calibration",
    "serve",
    "split_s3",
    "video_frames",
    "write_calibration",
]
