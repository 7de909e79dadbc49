"""`facelogin doctor`: a self-check, one line per check (OK, WARN or FAIL) with the fix.

Settings; the images root; MongoDB, the bucket and the Prefect API reachable; the deployments there
and something polling them; the bundle verifies; the login's modules and, on a Pi, a camera stack.
Exit 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when it could not check.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from facelogin.cli.common import ROOT_ORDER, JsonFlag
from facelogin.exits import OK, REJECTED

DoctorImages = Annotated[Path | None, typer.Option("--images", help=f"Images root to check [{ROOT_ORDER}].")]

PASS, WARN, FAIL = "OK", "WARN", "FAIL"
NAMES = {"_images": "images root", "_catalog": "MongoDB", "_store": "object store", "_bundle": "bundle"}
FIXES = {
    "_catalog": "start MongoDB, or fix FACELOGIN_MONGODB_URI / the Secret block it comes from",
    "_store": "fix FACELOGIN_BUCKET, AWS_* credentials and AWS_ENDPOINT_URL (or the S3 block)",
    "_bundle": "run `facelogin sync` to publish a good bundle again",
}


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    as_json: JsonFlag = False,
    images: DoctorImages = None,
) -> None:
    """Check this machine's facelogin: settings, images, MongoDB, bucket, Prefect, bundle, camera.

    Each line is OK, WARN or FAIL, with the fix. Exit 0 nothing failed, 1 a check failed, 2 error.
    """
    checks: list[Check] = []
    settings = _settings(checks)
    root = None
    if settings is not None:
        from facelogin.cli.roots import images_root

        root = images_root(images, settings)
        checks.append(_guarded(_images, root))
        for step in (_catalog, _store):
            checks.append(_guarded(step, settings))
    checks += _prefect()
    checks.append(_guarded(_bundle, settings))
    checks += _login_modules()
    checks.append(_liveness(settings))
    checks.append(_camera())
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        from facelogin.cli.common import echo_json

        out = {"ok": not failed, "images_root": root.as_dict() if root else None}
        echo_json(out | {"checks": [asdict(c) for c in checks]})
    else:  # the images root check names the root and why it is the one
        colours = {PASS: "green", WARN: "yellow", FAIL: "red"}
        for c in checks:
            typer.secho(f"{c.status:<4}", fg=colours[c.status], nl=False)
            typer.echo(f" {c.name}: {c.detail}" + (f"\n     fix: {c.fix}" if c.fix else ""))
    raise typer.Exit(REJECTED if failed else OK)


def _guarded(step: Callable[[Any], Check], settings: Any) -> Check:
    """A check that raised is a FAIL naming the error, never a traceback."""
    try:
        return step(settings)
    except Exception as exc:  # noqa: BLE001 - every failure is a finding to show
        name = NAMES.get(step.__name__, step.__name__.strip("_"))
        return Check(name, FAIL, str(exc) or type(exc).__name__, FIXES.get(step.__name__))


def _settings(checks: list[Check]) -> Any:
    from facelogin.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        checks.append(Check("settings", FAIL, f"invalid: {exc}", "fix the value named"))
        return None
    for message in settings.deprecations:
        checks.append(Check("settings", WARN, message, "rename it in the environment or /etc/facelogin/env"))
    if settings.block_names:
        from facelogin.orchestration.blocks import settings_with_blocks

        try:
            settings = settings_with_blocks(settings)
        except Exception as exc:  # noqa: BLE001 - BlockError, or an API that does not answer
            checks.append(Check("settings", FAIL, f"blocks: {exc}", "create the block or fix its name"))
            return None
        checks.append(
            Check("settings", PASS, "valid; blocks read: " + ", ".join(settings.block_names.values()))
        )
    elif not settings.deprecations:
        checks.append(Check("settings", PASS, "valid"))
    return settings


def _images(root: Any) -> Check:
    """The images root every command uses (facelogin.cli.roots), judged by the sync's own guard."""
    from facelogin.sync.guard import images_root_problem

    problem = images_root_problem(root.path)
    if problem is not None:
        short, advice = problem
        fix = {
            "--images": "give the folder that holds one folder per user with --images",
            "FACELOGIN_IMAGES": "point FACELOGIN_IMAGES at the folder that holds one folder per user",
            "last sync": "the last sync read it: mount it again, or give the new root once with "
            "`facelogin sync --images DIR`",
        }.get(
            root.source,
            "run `facelogin sync --images DIR` once (the root is recorded), or set FACELOGIN_IMAGES",
        )
        return Check(
            "images root", FAIL, f"{root.path} {short} ({root.reason})", f"{advice}; {fix}" if advice else fix
        )
    users = [p for p in root.path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    detail = f"{root.path} ({root.reason}): {len(users)} user folders"
    if root.warning:
        return Check(
            "images root", WARN, f"{detail}; {root.warning}", "use the same FACELOGIN_IMAGES everywhere"
        )
    return Check("images root", PASS, detail)


def _catalog(settings: Any) -> Check:
    from facelogin.adapters import connect

    if not settings.mongodb_uri:
        ok = importlib.util.find_spec("nx_27017") is not None
        where = connect.where(settings)["catalog"]
        if not ok:
            return Check(
                "MongoDB", FAIL, f"{where}: nx-27017 is not installed", "pip install 'nx-27017==0.8.1'"
            )
        return Check(
            "MongoDB",
            WARN,
            f"{where}: data stays on this machine",
            "set FACELOGIN_MONGODB_URI (or FACELOGIN_MONGODB_SECRET_BLOCK) for production",
        )
    where = connect.check_catalog(settings)
    return Check("MongoDB", PASS, f"{where}/{settings.database} answers")


def _store(settings: Any) -> Check:
    from facelogin.adapters.connect import check_store

    location = check_store(settings)
    if settings.embedded_store:
        return Check(
            "object store",
            WARN,
            f"local directory {location}: thumbnails and bundle stay here",
            "set FACELOGIN_BUCKET (or FACELOGIN_S3_BLOCK) and AWS credentials for production",
        )
    if settings.url_mode == "public-acl":
        from facelogin.adapters.connect import open_store

        store = open_store(settings)
        probe = f"{settings.thumbs_prefix}/.facelogin-doctor-probe"
        try:
            store.put(probe, b"facelogin doctor", "text/plain", "no-store", public=True)
        finally:
            store.delete([probe])
        return Check(
            "object store", PASS, f"{location} answers; public-read objects open without credentials"
        )
    return Check("object store", PASS, f"{location} answers")


def _prefect() -> list[Check]:
    from facelogin.orchestration import api, deployments

    if not api.api_url():
        return [
            Check(
                "Prefect API",
                WARN,
                "PREFECT_API_URL is not set: `facelogin sync` starts a temporary "
                "server; nightly runs and enroll need one",
                "prefect server start, then export PREFECT_API_URL=http://127.0.0.1:4200/api",
            )
        ]
    if problem := api.api_health():
        return [
            Check(
                "Prefect API", FAIL, problem, "start the server (prefect server start) or fix PREFECT_API_URL"
            )
        ]
    checks = [Check("Prefect API", PASS, f"{api.api_url()} answers")]
    for name in (deployments.NIGHTLY, deployments.SYNC_NOW):
        try:
            info = deployments.read_deployment(name)
        except Exception as exc:  # noqa: BLE001
            checks.append(Check("deployment", FAIL, f"{name}: {exc}"))
            continue
        if info is None:
            checks.append(
                Check(
                    "deployment",
                    FAIL,
                    f"{name} is not on the server",
                    "python -m deployments.serve, or prefect deploy --all (in the checkout)",
                )
            )
            continue
        poll = deployments.polling(info)
        if poll.ok:
            checks.append(Check("deployment", PASS, poll.detail))
        else:
            checks.append(
                Check("deployment", FAIL, poll.detail, (poll.hint or "").removeprefix("start one: "))
            )
    return checks


def _bundle(settings: Any) -> Check:
    from facelogin.bundle import BundleError
    from facelogin.cli.login import default_bundle

    location = os.environ.get("FACELOGIN_BUNDLE") or default_bundle()
    if (
        not location.startswith("s3://")
        and not (Path(location).expanduser() / "latest.json").exists()
        and (not location.endswith(".json"))
    ):
        return Check(
            "bundle",
            WARN,
            f"no bundle at {location} yet",
            "run `facelogin sync` (or wait for the nightly run)",
        )
    from facelogin.login import fetch_bundle

    try:
        bundle, _, calibration = fetch_bundle(location)
    except BundleError as exc:
        return Check("bundle", FAIL, str(exc), "run `facelogin sync` to publish a good bundle again")
    threshold = f", calibrated threshold {calibration['threshold']:.3f}" if calibration else ""
    return Check(
        "bundle",
        PASS,
        f"{location}: version {bundle.version}, {len(bundle.usernames)} users, checksum verified{threshold}",
    )


def _login_modules() -> list[Check]:
    from facelogin.extras import missing_module_hint
    from facelogin.faces import models_dir

    missing = [m for m in ("dlib", "face_recognition_models") if importlib.util.find_spec(m) is None]
    if missing:
        return [
            Check("login modules", FAIL, f"{', '.join(missing)} missing", missing_module_hint(missing[0]))
        ]
    if models_dir() is None:
        return [
            Check(
                "login modules",
                FAIL,
                "face_recognition_models has no model files",
                "pip install --force-reinstall face_recognition_models",
            )
        ]
    return [Check("login modules", PASS, "dlib and its models found")]


def _liveness(settings: Any) -> Check:
    """Liveness on (a challenge at every login) or off (a photo logs in): off is a WARN, never hidden."""
    import os

    mode = settings.liveness if settings is not None else os.environ.get("FACELOGIN_LIVENESS", "challenge")
    if mode == "off":
        return Check(
            "liveness",
            WARN,
            "off (FACELOGIN_LIVENESS=off): a photo of an enrolled person logs in as them, on the web "
            "and at the Pi",
            "unset FACELOGIN_LIVENESS (or set it to challenge) so every login asks for a blink or a turn",
        )
    from facelogin.faces import models_dir
    from facelogin.login.burst import LANDMARKS_68

    folder = models_dir()
    if folder is None or not (folder / LANDMARKS_68).is_file():
        return Check(
            "liveness",
            FAIL,
            f"challenge, but {LANDMARKS_68} (face_recognition_models) is missing",
            "pip install --force-reinstall face_recognition_models",
        )
    return Check("liveness", PASS, "challenge: every login answers a blink or head-turn challenge")


def on_a_pi() -> bool:
    try:
        return "raspberry pi" in Path("/proc/device-tree/model").read_text(errors="replace").lower()
    except OSError:
        return False


def _camera() -> Check:
    stacks = [
        name
        for name, module in (("Picamera2", "picamera2"), ("OpenCV", "cv2"))
        if importlib.util.find_spec(module) is not None
    ]
    if not on_a_pi():
        found = f"{', '.join(stacks)} found" if stacks else "none found"
        return Check("camera", PASS, f"not a Raspberry Pi: camera stack not required ({found})")
    if not stacks:
        from facelogin.login.frames import CAMERA_HINT

        return Check("camera", FAIL, "no camera stack on this Raspberry Pi", CAMERA_HINT.split(": ", 1)[-1])
    devices = sorted(str(p) for p in Path("/dev").glob("video*"))
    if not devices:
        return Check(
            "camera",
            WARN,
            f"{', '.join(stacks)} installed, but no /dev/video* device",
            "connect the camera and enable it (sudo raspi-config), then reboot",
        )
    return Check("camera", PASS, f"{', '.join(stacks)} installed; {', '.join(devices[:4])}")
