"""`facelogin enroll`: check and copy a person's photos into the images folder, then trigger `sync-now`.

Light at import like the rest of the CLI: face_recognition and Prefect load inside the command.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from facelogin.cli.common import ROOT_ORDER, JsonFlag, echo_json, fail, load_settings, usage
from facelogin.exits import ERROR, OK, REJECTED

EnrollImages = Annotated[
    Path | None,
    typer.Option(
        "--images", help=f"Images root; when given, the sync run is told to use it too [{ROOT_ORDER}]."
    ),
]

# Exit codes (facelogin.exits): 0 enrolled (and the run completed, with --wait); 1 rejected:
# no photo accepted, the enrolment refused, or the sync run did not complete; 2 error: bad input,
# an images root that cannot be told, a run that could not be started or that nothing picks up.
# After this long in Scheduled/Pending, ask the API whether anything polls the deployment at all.
POLL_GRACE = 10.0


def register(app: typer.Typer) -> None:
    """Add `facelogin enroll` to the app."""
    app.command("enroll")(enroll)


def enroll(
    username: Annotated[str, typer.Argument(help="The person's username, also their folder name.")],
    source: Annotated[
        Path | None,
        typer.Option("--from", help="A folder of photos (or one photo) to enrol.", show_default=False),
    ] = None,
    camera: Annotated[
        int | None,
        typer.Option("--camera", help="Capture from this camera (Picamera2, else OpenCV) instead of --from."),
    ] = None,
    shots: Annotated[int, typer.Option("--shots", min=1, max=20, help="Photos to take with --camera.")] = 5,
    images: EnrollImages = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the sync run to its end; exit non-zero unless Completed.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait with --wait.")] = 1800.0,
    no_trigger: Annotated[
        bool, typer.Option("--no-trigger", help="Only copy the photos; the next nightly sync picks them up.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Enrol even when the face is already enrolled under another name."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Enrol a person: check each photo, copy the good ones in, trigger `sync-now`.

    Each photo must be readable and show one face, big enough, of the same person as the others.
    They are also checked against everyone in the local published bundle (FACELOGIN_STATE_DIR/bundle):
    a photo of someone else is rejected with the reason, and a face already enrolled under another
    name refuses the enrolment (nothing copied) unless --force.
    """
    from facelogin.cli.roots import RootUnknown, images_root
    from facelogin.enroll import EnrollError, default_checker, source_photos
    from facelogin.enroll import enroll as enroll_photos

    if (source is None) == (camera is None):
        usage("enroll", "give exactly one of --from DIR and --camera N")
    settings = load_settings("enroll", as_json, blocks=False)
    out: dict[str, Any] = {}
    try:
        root = images_root(images, settings, writing=True)
    except RootUnknown as exc:
        fail("enroll", str(exc), as_json, ERROR, **out)
    out["images"] = root.as_dict()
    if not as_json:
        typer.echo(root.line, err=True)
    if root.warning:
        out.setdefault("warnings", []).append(root.warning)
        if not as_json:
            typer.secho(f"warning: {root.warning}", fg="yellow", err=True)
    enrolled, warning = _enrolled(settings.bundle_dir)
    if warning:
        out.setdefault("warnings", []).append(warning)
        if not as_json:
            typer.secho(f"warning: {warning}", fg="yellow", err=True)
    with tempfile.TemporaryDirectory(prefix="facelogin-enroll-") as tmp:
        try:
            sources = source_photos(source) if source is not None else _capture(camera or 0, shots, Path(tmp))
            checker = default_checker(settings.detect_max_side, settings.upsample)
            result = enroll_photos(username, sources, root.path, checker, enrolled=enrolled, force=force)
        except EnrollError as exc:
            fail("enroll", str(exc), as_json, ERROR, **out)
    out["enrolment"] = result.as_dict()
    if not as_json:
        _show(result)
    if result.refused:
        fail("enroll", result.refused, as_json, REJECTED, **out)
    if not result.accepted:
        fail("enroll", f"no photo of {username} was accepted", as_json, REJECTED, **out)
    if not as_json:
        typer.echo(f"{len(result.accepted)} photo(s) written to {result.folder}")
    if no_trigger:
        _done(out | {"run": None}, as_json)

    _sync_now(username, root, out, wait, timeout, as_json)


def _sync_now(
    username: str, root: Any, out: dict[str, Any], wait: bool, timeout: float, as_json: bool
) -> None:
    """Start the `sync-now` deployment for the new photos and, with --wait, follow it to its end."""
    from facelogin.orchestration.triggers import (
        NothingPolling,
        TriggerError,
        read_run,
        trigger_sync,
        wait_for_run,
    )

    # The run reads exactly where the photos were written (the deployment's own root needs no telling).
    parameters = {} if root.path == root.deployment_root else {"images": str(root.path)}
    try:
        run = trigger_sync(parameters, tags=["enroll", f"user:{username}"])
    except TriggerError as exc:
        message = f"{exc}; the photos are in place and the next sync will pick them up"
        fail("enroll", message, as_json, ERROR, **out, run=None)
    out["run"] = run.as_dict()
    if not as_json:
        typer.echo(f"started {run.deployment} run {run.name}: {run.url or run.id}")
    if not wait:
        _done(out, as_json)

    def show(kind: str, name: str) -> None:
        if not as_json:
            typer.echo(f"{run.name}: {name}")

    try:
        final = wait_for_run(
            run.id, timeout=timeout, on_state=show, deployment=run.deployment, poll_grace=POLL_GRACE
        )
    except NothingPolling as exc:
        message = f"{exc}; run {run.name} stays scheduled and starts when one does"
        fail("enroll", message, as_json, ERROR, **out, hint=exc.hint)
    except TriggerError as exc:
        fail("enroll", str(exc), as_json, ERROR, **out)
    run = read_run(run.id, run.deployment)
    out["run"] = run.as_dict() | {"state": final}
    if final != "COMPLETED":
        error = f"sync run {run.name} ended {final}: see {run.url or run.id}"
        fail("enroll", error, as_json, REJECTED, **out)
    _done(out, as_json)


def _show(result: Any) -> None:
    """Each photo's verdict and the identity conflicts, for a person at a terminal."""
    for v in result.accepted:
        typer.echo(f"accepted {v.source} -> {v.target}")
        if v.weak:
            typer.secho(f"  weak photo: {v.weak} (enrolled; a better one helps)", fg="yellow", err=True)
    for v in result.rejected:
        typer.secho(f"rejected {v.source}: {v.reason}", fg="yellow", err=True)
    for c in result.conflicts:
        typer.secho(f"{c['kind']}: {' and '.join(c['users'])} (d={c['distance']:.2f})", fg="yellow", err=True)


def _enrolled(bundle_dir: Path) -> tuple[Any, str | None]:
    """The local published bundle (None before the first sync), and a warning when it is unreadable."""
    from facelogin.bundle import LATEST, BundleError, read_bundle

    if not (bundle_dir / LATEST).is_file():
        return None, None
    try:
        return read_bundle(bundle_dir), None
    except BundleError as exc:
        return None, f"enrolled faces not checked, the bundle is unreadable: {exc}"


def _capture(index: int, shots: int, folder: Path) -> list[Path]:
    """Take `shots` photos about half a second apart, so the person can turn a little between them."""
    from PIL import Image

    from facelogin.enroll import EnrollError

    try:
        from facelogin.login import LoginError, camera_frames
    except ImportError as exc:  # the login extras are not installed
        raise EnrollError(f"no camera stack: {exc}; install Picamera2 or `facelogin[camera]`") from None
    paths: list[Path] = []
    try:
        frames = camera_frames(index, 960)
        for n, frame in enumerate(frames):
            if n >= shots:
                break
            path = folder / f"camera_{n + 1:02d}.jpg"
            Image.fromarray(frame.pixels).save(path, "JPEG", quality=95)
            paths.append(path)
            time.sleep(0.5)
    except LoginError as exc:
        raise EnrollError(f"camera {index}: {exc}") from None
    return paths


def _done(out: dict[str, Any], as_json: bool) -> NoReturn:
    if as_json:
        echo_json(out | {"ok": True})
    raise typer.Exit(OK)
