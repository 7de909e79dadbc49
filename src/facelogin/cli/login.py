"""`facelogin login` and `facelogin calibrate`, the Pi side: light imports only.

`facelogin.cli` imports this module at start-up, so everything heavier than Typer (numpy,
dlib, boto3, matplotlib) is imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any

import typer

from facelogin.cli.common import JsonFlag, fail, usage
from facelogin.exits import ERROR, REJECTED

BUNDLE_HELP = "Bundle: a local directory (or its latest.json), or s3://bucket/prefix/latest."
BUNDLE_DEFAULT_TEXT = "$FACELOGIN_STATE_DIR/bundle, else ~/.facelogin/bundle: where the sync publishes"


def default_bundle() -> str:
    """Where the sync on this machine publishes the bundle (read without loading the settings)."""
    import os

    state = os.environ.get("FACELOGIN_STATE_DIR") or "~/.facelogin"
    return str(Path(state).expanduser() / "bundle")


def _bundle_option() -> Any:
    return typer.Option(
        "--bundle", envvar="FACELOGIN_BUNDLE", help=BUNDLE_HELP, show_default=BUNDLE_DEFAULT_TEXT
    )


DEFAULT_THRESHOLD_TEXT = "calibrated, else 0.5"


def register(app: typer.Typer) -> None:
    """Add the login commands to the `facelogin` app."""
    app.command("login")(login)
    app.command("calibrate")(calibrate)


def login(
    bundle: Annotated[str | None, _bundle_option()] = None,
    image: Annotated[
        list[Path] | None,
        typer.Option("--image", help="An image file to decide on; repeat for several frames."),
    ] = None,
    video: Annotated[Path | None, typer.Option("--video", help="A video file, frames read in order.")] = None,
    camera: Annotated[
        int | None, typer.Option("--camera", help="Camera index (Picamera2, else OpenCV VideoCapture).")
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help='Stay up: one JSON request per stdin line ({"image": path}, {"images": [...]}, '
            '{"video": path}), one JSON answer per stdout line.',
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            envvar="FACELOGIN_LOGIN_CACHE",
            help="Where the last good bundle is kept [default ~/.facelogin/login-cache].",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Accept below this distance.", show_default=DEFAULT_THRESHOLD_TEXT),
    ] = None,
    margin: Annotated[
        float, typer.Option("--margin", help="Required gap between the best and the second-best user.")
    ] = 0.1,
    frames: Annotated[
        int, typer.Option("--frames", min=1, help="Frames to read from a video or camera.")
    ] = 5,
    agree: Annotated[
        int,
        typer.Option(
            "--agree", min=1, help="Frames that must agree on one user (capped at the images given)."
        ),
    ] = 3,
    height: Annotated[
        int, typer.Option("--height", min=0, help="Reduce frames to this height (0: never).")
    ] = 320,
    upsample: Annotated[
        int | None,
        typer.Option(
            "--upsample",
            min=0,
            help="Detector upsampling passes.",
            show_default="0, then 1 when no face is found",
        ),
    ] = None,
    no_liveness: Annotated[
        bool,
        typer.Option(
            "--no-liveness",
            help="Decide on the face alone, without a challenge: a photo passes. For testing with "
            "--image, --video or --serve; FACELOGIN_LIVENESS=off does the same for every login.",
        ),
    ] = False,
    mirrored: Annotated[
        bool, typer.Option("--mirrored", help="The camera's frames are mirrored (a selfie view).")
    ] = False,
    speak: Annotated[
        bool, typer.Option("--speak", help="Also say the prompts aloud (espeak-ng, espeak or spd-say).")
    ] = False,
    pretty: Annotated[bool, typer.Option("--pretty", help="Indent the JSON output.")] = False,
) -> None:
    """Decide who is in front of the camera (or in images, or a video): one JSON object on stdout.

    At the camera the person answers a one-time challenge (blink, turn the head) printed on the
    terminal, so a photo held to the camera is refused. --image, --video and --serve decide on
    recorded pictures: they are test modes that need --no-liveness while liveness is required.

    Exit code 0 accepted, 1 rejected (unknown, no face, several faces, no live person, ...), 2 error.
    """
    from facelogin.extras import missing_module_hint

    try:
        from facelogin import login as core
        from facelogin.bundle import BundleError
    except ModuleNotFoundError as exc:  # numpy or Pillow missing: not even the error result can be made
        typer.echo(f"facelogin login: {missing_module_hint(exc.name)}", err=True)
        raise typer.Exit(ERROR) from None

    bundle = bundle or default_bundle()
    liveness = _checked_mode(image, video, camera, serve, no_liveness)
    options = core.LoginOptions(
        threshold=threshold, margin=margin, height=height, upsample=upsample, frames=frames, agree=agree
    )
    record = _recorder()
    try:
        auth, setup_ms = _authenticator(core, bundle, cache_dir, options)
        if serve:
            typer.echo(
                f"facelogin: ready, bundle {auth.loaded.bundle.version} ({len(auth.gallery)} users)", err=True
            )
            with record:
                core.serve(auth, sys.stdin, _write_line, on_result=record)
            return
        if liveness == "challenge":
            assert camera is not None
            result = _live(core, auth, camera, mirrored, speak)
        else:
            result = _face_only(core, auth, options, image, video, camera)
        result["ms"] = {**setup_ms, **result["ms"]}
    except (core.LoginError, BundleError, ModuleNotFoundError) as exc:
        # ModuleNotFoundError: an extra not installed: dlib (pi), boto3 (s3), OpenCV (camera)
        message = missing_module_hint(exc.name) if isinstance(exc, ModuleNotFoundError) else str(exc)
        typer.echo(f"facelogin login: {message}", err=True)
        _print(core.error_result(message), pretty)
        raise typer.Exit(ERROR) from None
    _print(result, pretty)
    sys.stdout.flush()  # the answer first; recording it must not keep anyone waiting for it
    with record:
        record(result)
    raise typer.Exit(core.exit_code(result))


def _checked_mode(
    image: list[Path] | None, video: Path | None, camera: int | None, serve: bool, no_liveness: bool
) -> str:
    """One source given, and one that can show a live person when liveness is required; the mode."""
    sources = [s for s in (image, video, camera) if s not in (None, [])]
    if len(sources) != (0 if serve else 1):
        usage("login", "give one of --image, --video, --camera or --serve")
    liveness = _liveness_mode(no_liveness)
    if liveness == "challenge" and camera is None:
        given = "--image" if image else "--video" if video is not None else "--serve"
        usage(
            "login",
            f"{given} decides on recorded pictures, which cannot show a live person, and liveness is "
            "required (FACELOGIN_LIVENESS=challenge): log in at the camera (--camera N), or add "
            "--no-liveness to test the face match alone",
        )
    if liveness == "off":
        typer.secho(
            "facelogin login: liveness not checked: a photo of an enrolled person passes as them",
            fg="yellow",
            err=True,
        )
    return liveness


def _face_only(
    core: Any, auth: Any, options: Any, image: list[Path] | None, video: Path | None, camera: int | None
) -> dict[str, Any]:
    """The decision on the face alone (liveness off): k of n frames of the images, video or camera."""
    if image:
        result = auth.decide(
            core.image_frames(image, options.height), len(image), min(options.agree, len(image))
        )
    elif video is not None:
        result = auth.decide(core.video_frames(video, options.height), options.frames, options.agree)
    else:
        result = auth.decide(core.camera_frames(camera, options.height), options.frames, options.agree)
    return dict(result) | {"liveness": {"mode": "off", "checked": False, "note": "liveness not checked"}}


def _liveness_mode(no_liveness: bool) -> str:
    """FACELOGIN_LIVENESS (challenge, the default, or off), read without loading the settings."""
    import os

    if no_liveness:
        return "off"
    mode = os.environ.get("FACELOGIN_LIVENESS", "challenge").strip().lower() or "challenge"
    if mode not in {"challenge", "off"}:
        fail("login", f"FACELOGIN_LIVENESS={mode!r}: use challenge (the default) or off", False)
    return mode


def _live(core: Any, auth: Any, camera: int, mirrored: bool, speak: bool) -> dict[str, Any]:
    """The challenge at the camera: prompts on stderr (stdout is the JSON answer), spoken if asked."""
    from facelogin.login.burst import FRAME_HEIGHT
    from facelogin.login.live import live_login, speaker

    voice = speaker() if speak else None
    if speak and voice is None:
        typer.echo(
            "facelogin login: --speak: no espeak-ng, espeak or spd-say found; prompts are printed", err=True
        )
    auth.load_liveness()

    def prompt(action: str, words: str, seconds: float) -> None:
        typer.secho(f">>> {words.upper()} ({seconds:.0f} s)", bold=True, err=True)
        if voice is not None:
            voice(words)

    return live_login(auth, core.camera_frames(camera, FRAME_HEIGHT), prompt, mirrored=mirrored)


class _NoRecorder:
    def __call__(self, result: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _recorder() -> Any:
    """Records each decision in MongoDB when FACELOGIN_RECORD_LOGINS is on (the web profile shows them).

    Only then are the settings, pymongo and the catalog imported: a Pi that does not record needs
    none of them.
    """
    import os
    import socket

    if not os.environ.get("FACELOGIN_RECORD_LOGINS", "").strip():
        return _NoRecorder()

    def warn(message: str) -> None:
        typer.echo(f"facelogin login: {message}", err=True)

    try:
        from facelogin.audit import PI, DecisionRecorder
        from facelogin.settings import SettingsError, load_settings

        settings = load_settings()
    except ModuleNotFoundError as exc:
        warn(
            f"FACELOGIN_RECORD_LOGINS is on but {exc.name} is not installed: decisions are not recorded "
            "(`pip install pymongo pydantic-settings`)"
        )
        return _NoRecorder()
    except SettingsError as exc:
        warn(f"invalid setting, decisions are not recorded: {exc}")
        return _NoRecorder()
    if not settings.record_logins:
        return _NoRecorder()
    return DecisionRecorder(settings, PI, socket.gethostname(), warn)


def _authenticator(
    core: Any, bundle: str, cache_dir: Path | None, options: Any
) -> tuple[Any, dict[str, float]]:
    import time

    start = time.perf_counter()
    loaded = core.load_login_bundle(bundle, cache_dir)
    bundle_ms = (time.perf_counter() - start) * 1000
    for message in loaded.messages:
        typer.echo(f"facelogin login: {message}", err=True)
    auth = core.Authenticator(loaded, options)
    return auth, {"bundle": round(bundle_ms, 1), "model": round(auth.model_ms, 1)}


def _write_line(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print(result: dict[str, Any], pretty: bool) -> None:
    typer.echo(json.dumps(result, indent=2 if pretty else None))


def _refuse_colliding(version: str, collisions: list[dict[str, Any]], as_json: bool) -> None:
    """Name the users whose identities collide, write nothing, exit 1."""
    users = sorted({u for c in collisions for u in c["users"]})
    message = (
        f"bundle {version}: enrolled identities collide ({', '.join(users)}), so genuine and impostor "
        "distances mean nothing; fix the enrolment and sync again. Nothing written."
    )
    typer.echo(f"facelogin calibrate: {message}", err=True)
    for c in collisions:
        typer.echo(f"  {c['problem']}", err=True)
    if as_json:
        _print({"error": message, "users": users, "collisions": collisions, "written_to": None}, pretty=True)
    raise typer.Exit(REJECTED)


def calibrate(
    bundle: Annotated[str | None, _bundle_option()] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of both distance histograms and the threshold.")
    ] = None,
    ceiling: Annotated[
        float,
        typer.Option(
            "--ceiling", help="Never recommend a threshold above this (raise it to loosen on purpose)."
        ),
    ] = 0.5,
    write: Annotated[
        bool,
        typer.Option("--write/--no-write", help="Store the threshold beside the bundle (calibration.json)."),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Leave-one-out over the enrolled encodings: genuine/impostor distances and a recommended threshold.

    The threshold is the largest at which no enrolled user is accepted as another (capped at
    --ceiling); it is stored beside the bundle, tied to its checksum, and `facelogin login` uses it.
    Exit 0 calibrated; 1 the enrolled identities collide (one person under two names, or someone
    else's face among a user's encodings: the users are named and nothing is written); 2 error.
    """
    from datetime import datetime

    from facelogin import login as core
    from facelogin.adapters.stores import StoreError
    from facelogin.bundle import BundleError
    from facelogin.extras import missing_module_hint

    bundle = bundle or default_bundle()
    try:
        if plot is not None:
            core.load_pyplot()  # before anything is written: no calibration without the plot asked for
        loaded, _, _ = core.fetch_bundle(bundle)
        cal = core.calibrate(
            loaded.encodings,
            loaded.labels,
            ceiling=ceiling,
            usernames=loaded.usernames,
            rule=loaded.match_rule,
        )
        if cal.collisions:
            _refuse_colliding(loaded.version, cal.collisions, as_json)
        record = core.calibration_record(loaded, cal, datetime.now(UTC).isoformat(timespec="seconds"))
        if plot is not None:
            core.plot_calibration(cal, plot)
        if write:
            record_location = core.write_calibration(bundle, record)
    except (core.LoginError, BundleError, StoreError, OSError) as exc:
        typer.echo(f"facelogin calibrate: {exc}", err=True)
        raise typer.Exit(ERROR) from None
    except ModuleNotFoundError as exc:
        typer.echo(f"facelogin calibrate: {missing_module_hint(exc.name)}", err=True)
        raise typer.Exit(ERROR) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **record,
                    "written_to": record_location if write else None,
                    "plot": str(plot) if plot else None,
                },
                indent=2,
            )
        )
        return
    frr = "n/a" if cal.false_reject_rate is None else f"{cal.false_reject_rate:.1%}"
    far = "n/a" if cal.false_accept_rate is None else f"{cal.false_accept_rate:.1%}"
    counts = f"{len(cal.genuine)} genuine, {len(cal.impostor)} impostor distances"
    typer.echo(f"bundle {loaded.version} (rule {cal.rule}): {counts}")
    typer.echo(f"largest threshold with no impostor accepted: {cal.largest_safe}")
    typer.echo(f"recommended threshold: {cal.threshold:.3f} (ceiling {ceiling}, margin {cal.margin})")
    typer.echo(
        f"expected at that threshold: false-reject rate {frr} (each enrolled photo held out), "
        f"false-accept rate {far} (each photo tried with its own user not enrolled)"
    )
    for note in cal.notes:
        typer.echo(f"note: {note}")
    if write:
        typer.echo(f"written to {record_location}")
    if plot is not None:
        typer.echo(f"plot: {plot}")
