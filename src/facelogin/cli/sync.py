"""`facelogin sync`: run the sync flow on this machine and print what it did."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Annotated, Any

import typer

from facelogin.cli.common import ImagesOption, JsonFlag, fail, load_settings
from facelogin.exits import ERROR, REJECTED


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def sync(
    images: ImagesOption = None,
    as_json: JsonFlag = False,
    full: Annotated[
        bool, typer.Option("--full", help="Re-process every photo, not only new or changed ones.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what a sync would do (users, photos, objects); change nothing."),
    ] = False,
    allow_removals: Annotated[
        int,
        typer.Option(
            "--allow-removals",
            min=0,
            help="Confirm removing up to N users whose folders are gone (above the safety share).",
        ),
    ] = 0,
    prune: Annotated[
        bool, typer.Option("--prune", help="Confirm removing any number of users, even every one.")
    ] = False,
) -> None:
    """Sync the images folder: train encodings, upload thumbnails, upsert MongoDB, publish the bundle.

    Exit code 0 synced, 1 some photos could not be synced (the others were), 2 nothing was changed
    (a path, a setting or a server to fix first; the message says which).
    """
    from facelogin.cli.roots import images_root
    from facelogin.orchestration.runs import quiet_prefect_console

    show_progress = not as_json and sys.stderr.isatty()
    if as_json or show_progress:
        quiet_prefect_console()
    overrides = {} if images is None else {"images": images}
    settings = load_settings("sync", as_json, blocks=False, failure={"summary": None}, **overrides)
    root = images_root(images, settings)
    if root.warning:
        typer.secho(f"warning: {root.warning}", fg="yellow", err=True)
    settings = settings.model_copy(update={"images": root.path})
    parameters = {"full": full, "dry_run": dry_run, "allow_removals": allow_removals, "prune": prune}
    run = run_checked(settings, parameters, as_json, show_progress, root=root)
    summary = run.summary
    if as_json:
        typer.echo(json.dumps(summary | {"images_root": root.as_dict()}, indent=2, default=str))
        return
    if dry_run:
        _print_preview(summary)
    else:
        _print_summary(summary)
    if run.url:
        typer.echo(f"run: {run.url}")
    else:
        typer.echo(
            "this run was not kept (a temporary Prefect API): to keep runs and watch them in the UI, "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )


@contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """A progress bar per stage on the terminal, fed by the `facelogin.progress` log records."""
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:>16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bars = Progress(*columns, console=Console(stderr=True))
    ids: dict[str, Any] = {}

    class Bars(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stage = getattr(record, "stage", None)
            if stage is None:
                return
            total = getattr(record, "total", None)
            if stage not in ids:
                ids[stage] = bars.add_task(stage, total=total)
            bars.update(ids[stage], advance=getattr(record, "done", 0), total=total)

    logger = logging.getLogger("facelogin.progress")
    handler = Bars(level=logging.DEBUG)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with bars:
            yield
    finally:
        logger.removeHandler(handler)


def run_checked(
    settings: Any,
    parameters: dict[str, Any],
    as_json: bool,
    progress: bool = False,
    root: Any = None,
) -> Any:
    """Check the images root, store and MongoDB, then run the flow here; the run (a SyncRun), or exit 1/2.

    Mistakes are found before Prefect starts: in seconds, not after half a minute. Every run but a
    dry run is recorded in the state directory (facelogin.sync.lastrun), whatever its end: the other
    commands take its images root, and `facelogin status` shows it without a Prefect server.
    `root` (facelogin.cli.roots.Root) is said once the checks pass (a mistake stays one line on
    stderr), and goes into the --json error output.
    """
    from facelogin.adapters import connect
    from facelogin.orchestration import api, runs
    from facelogin.orchestration.blocks import BlockError, settings_with_blocks
    from facelogin.sync.guard import SyncRefused, check_images_root, check_remote
    from facelogin.sync.outcome import SyncError

    started = _now()

    def failed(message: str, summary: dict[str, Any] | None, code: int) -> None:
        _record(settings, parameters, started, code, summary, message)
        where = {} if root is None else {"images_root": root.as_dict()}
        fail("sync", message, as_json, code, summary=summary, **where)

    try:
        check_images_root(settings.images, allow_empty=bool(parameters.get("prune")))
        checked = settings_with_blocks(settings)
        check_remote(checked.embedded_store, checked.embedded_catalog, checked.require_remote, False,
                     connect.where(checked))  # fmt: skip
        connect.check_store(checked)
        connect.check_catalog(checked)
        if root is not None and not as_json:
            typer.echo(root.line, err=True)
        with (
            hold_local_parts(checked, bool(parameters.get("dry_run")), parameters) as meanwhile,
            api.local_prefect_api(meanwhile=meanwhile),
            progress_bars(progress),
        ):
            if as_json or progress:
                runs.quiet_run_logs()
            run = runs.run_sync(runs.sync_parameters(settings, **parameters))
    except (SyncRefused, BlockError) as exc:
        failed(str(exc), None, ERROR)
    except SyncError as exc:  # what it did is in the summary; nothing at all when not `changed`
        failed(str(exc), exc.summary, REJECTED if exc.changed else ERROR)
    except Exception as exc:  # noqa: BLE001 - the CLI's job is to say what failed, in one line
        code = ERROR if _is_refusal(exc) else REJECTED
        failed(f"{type(exc).__name__}: {exc}" if code == REJECTED else str(exc), None, code)
    _record(settings, parameters, started, 0, run.summary, url=run.url)
    return run


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def _record(
    settings: Any,
    parameters: dict[str, Any],
    started: str,
    code: int,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    url: str | None = None,
) -> None:
    """Keep this run in the state directory as the last one; a dry run changed nothing and is not kept.

    A refused run (exit 2) is kept only where a state directory is already: a typo in --images on
    a new machine leaves nothing behind. A record that cannot be written is a warning: the run
    itself is what the exit code reports.
    """
    from facelogin.sync import lastrun

    state_dir = settings.state_dir.expanduser().resolve()
    if parameters.get("dry_run") or (code == ERROR and not state_dir.is_dir()):
        return
    run = lastrun.run_record(images=str(settings.images.resolve()), started=started, finished=_now(),
                             exit_code=code, summary=summary, error=error, url=url)  # fmt: skip
    try:
        lastrun.save(state_dir, run)
    except OSError as exc:
        where = lastrun.path_in(state_dir)
        typer.secho(
            f"warning: this run could not be recorded in {where} ({exc.strerror or exc}): "
            "`facelogin status` and the images root of the other commands do not know it",
            fg="yellow",
            err=True,
        )


@contextmanager
def hold_local_parts(
    settings: Any, dry_run: bool, parameters: dict[str, Any] | None = None
) -> Iterator[Callable[[], None]]:
    """This machine's parts of a run, held by the command for the flow it runs in this process.

    The sync lock is taken first (another sync on this state directory is waited for, and said
    so). The function it yields starts the embedded database when there is no MongoDB URI, checks
    the removal guard (see check_removals_early) and loads the flow: `facelogin sync` calls it
    while the temporary Prefect API starts. The flow takes both again, as every run does, and
    finds them held by its own process (both are re-entrant).
    A dry run changes nothing and takes no lock.
    """
    from facelogin.adapters.connect import catalog_server
    from facelogin.orchestration.runs import load_sync_flow
    from facelogin.sync.lock import state_lock

    def waiting(pid: int | None) -> None:
        typer.secho(f"another sync (pid {pid}) is running with {state_dir}: waiting for it", err=True)

    state_dir = settings.state_dir.resolve()  # the flow runs in the project directory
    with ExitStack() as held:
        if not dry_run:
            held.enter_context(state_lock(state_dir, on_wait=waiting))

        def meanwhile() -> None:
            if not dry_run:
                full = bool((parameters or {}).get("full"))
                start_encoders_early(settings.model_copy(update={"state_dir": state_dir}), held, full)
            local = held.enter_context(catalog_server(settings.model_copy(update={"state_dir": state_dir})))
            if not dry_run:  # a dry run reports a refusal instead
                check_removals_early(local, parameters)
            load_sync_flow()

        yield meanwhile


def start_encoders_early(settings: Any, held: ExitStack, full: bool = False) -> None:
    """Start the encoding processes now, while Prefect starts, when the stat cache already shows new or
    changed photos (a `full` run encodes them all): they are ready when the flow's encoding stage needs
    them (facelogin.sync.encoders), one per changed photo up to one per core. A run with nothing
    changed starts none; a pool the flow did not take is stopped with `held`."""
    if settings.task_runner != "process":
        return
    from facelogin.sync import encoders

    most = encoders.pool_size(settings.encode_workers)
    changed = most if full else encoders.photos_changed(settings.images, settings.stat_cache, most)
    if changed:
        encoders.start_pool(encoders.pool_size(settings.encode_workers, changed))
        held.callback(encoders.stop_pool)


def check_removals_early(settings: Any, parameters: dict[str, Any] | None) -> None:
    """The flow's removal guard, decided here before the flow starts: SyncRefused when the run would
    remove more users than allowed (the user folders against MongoDB's users; no photo is read).

    The flow checks again (a deployment's run has no CLI before it); this spares an operator the
    start of a run that is bound to stop.
    """
    from pymongo.errors import PyMongoError

    from facelogin.adapters.connect import open_catalog
    from facelogin.sync.discover import discover_users
    from facelogin.sync.guard import check_removals

    parameters = parameters or {}
    found = discover_users(settings.images)
    try:
        recorded = open_catalog(settings).usernames()
    except PyMongoError:  # a fault worth the flow's retries: it decides then
        return
    removed = sorted(set(recorded) - set(found.users) - found.unreadable_users)
    check_removals(len(recorded), removed, int(parameters.get("allow_removals") or 0),
                   bool(parameters.get("prune")), settings.max_removal_share)  # fmt: skip


def _is_refusal(exc: BaseException) -> bool:
    """Errors that mean nothing was changed: a refusal, a store or database that cannot be used."""
    from facelogin.adapters.catalog import CatalogError
    from facelogin.adapters.embedded import EmbeddedServerError
    from facelogin.adapters.stores import StoreError
    from facelogin.settings import SettingsError
    from facelogin.sync.guard import SyncRefused

    return isinstance(exc, SyncRefused | StoreError | CatalogError | SettingsError | EmbeddedServerError)


def _print_preview(summary: dict[str, Any]) -> None:
    plan = summary["plan"]
    typer.echo(f"dry run: {summary['users']} users, {summary['photos']} photos; nothing was changed")
    for key, value in plan.items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        typer.echo(f"  {key.replace('_', ' ')}: {shown or '-'}")
    for item in summary["rejected"]:
        typer.echo(f"  rejected {item['file']}: {item['reason']}")
    if summary["refused"]:
        typer.secho(f"a real run would stop: {summary['refused']}", fg="yellow", err=True)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="facelogin sync", show_header=False)
    for key in ("users", "photos", "encoded", "unchanged", "uploaded", "upserted"):
        table.add_row(key, str(summary[key]))
    table.add_row("rejected", str(len(summary["rejected"])))
    bundle = summary["bundle"]
    table.add_row("bundle", f"{bundle['version']} ({bundle['users']} users) in {bundle['path']}")
    table.add_row("seconds", ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items()))
    # Where it all went, so a run on the wrong settings cannot pass for a good one.
    table.add_row("images root", str(summary.get("images") or "-"))
    table.add_row("object store", str(summary.get("store") or "-"))
    table.add_row("MongoDB", str(summary.get("catalog") or "-"))
    table.add_row("bundle published", str(bundle.get("location") or "-"))
    console.print(table)
    for warning in summary.get("warnings") or []:
        console.print(f"[yellow]warning[/] {warning}")
    for item in summary["rejected"]:
        console.print(f"[yellow]rejected[/] {item['file']}: {item['reason']}")
