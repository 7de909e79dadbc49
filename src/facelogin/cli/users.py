"""`facelogin users`, `facelogin remove` and `facelogin profile-url`: who is enrolled, and their data.

Thin over the catalog (MongoDB, or the embedded server started for the command) and the store;
the images root is the one the sync reads (facelogin.cli.roots).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from facelogin.cli.common import ImagesOption, JsonFlag
from facelogin.exits import ERROR, OK, REJECTED


def register(app: typer.Typer) -> None:
    app.command("users")(users)
    app.command("remove")(remove)
    app.command("profile-url")(profile_url)


@contextmanager
def _catalog(command: str, settings: Any, as_json: bool) -> Iterator[Any]:
    """The catalog, checked first; the embedded server is started for the block when none is set."""
    from facelogin.adapters.catalog import CatalogError
    from facelogin.adapters.connect import catalog_server, check_catalog, open_catalog, where
    from facelogin.adapters.embedded import EmbeddedServerError
    from facelogin.cli.common import fail

    try:
        with catalog_server(settings) as running:
            check_catalog(running)
            catalog = open_catalog(running)
            catalog.where = where(running)["catalog"]  # host/database, never the URI's credentials
            yield catalog
    except (CatalogError, EmbeddedServerError) as exc:
        fail(command, str(exc), as_json)


def _end_sessions(settings: Any, username: str, as_json: bool) -> int | None:
    """Log the removed user out of the web at once (their data goes with the sync); None when MongoDB
    cannot be reached, which is said and does not stop the removal."""
    from pymongo.errors import PyMongoError

    from facelogin.adapters.catalog import CatalogError, failure_message
    from facelogin.adapters.connect import catalog_server, check_catalog, open_catalog, where
    from facelogin.adapters.embedded import EmbeddedServerError

    try:
        with catalog_server(settings) as running:
            check_catalog(running)
            ended = int(open_catalog(running).sessions.delete_many({"user": username}).deleted_count)
    except (CatalogError, EmbeddedServerError, PyMongoError) as exc:
        message = (
            exc if not isinstance(exc, PyMongoError) else failure_message(exc, where(settings)["catalog"])
        )
        typer.secho(f"warning: {username}'s web sessions not ended: {message}", fg="yellow", err=True)
        return None
    if not as_json:
        typer.echo(f"ended {ended} web session{'s' if ended != 1 else ''} of {username}")
    return ended


def _when(value: Any) -> str | None:
    """A stored time as ISO text (nx-27017 may hand back a `$set` datetime as a string already)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value) if value else None


def _state(name: str, doc: Any, folders: dict[str, int], unreadable: set[str], verdict: Any) -> str:
    """What the next sync does with this user, as the sync's own guard decides it."""
    if doc is None:
        return "not synced yet"
    if verdict.stops or name in folders:
        return "synced"  # a root the sync refuses is not read: nobody is removed
    if name in unreadable:
        return "folder unreadable: kept as synced"
    if name in verdict.kept:
        return f"folder gone: kept; needs --allow-removals {len(verdict.kept)}"
    return "folder gone: removed at the next sync"


def _shown(path: Path) -> str:
    """`./images` for a path under the current directory, else the path."""
    try:
        return f"./{path.relative_to(Path.cwd())}"
    except ValueError:
        return str(path)


def users(
    as_json: JsonFlag = False,
    images: ImagesOption = None,
) -> None:
    """List every user: photos (encoded/rejected), profile image, last sync, and what the next sync does.

    Users come from MongoDB and from the images root the sync reads: a folder not synced yet, or a
    user whose folder is gone, is shown as such; the state is the next sync's own verdict (a root
    it would refuse removes nobody). Exit 0 listed, 2 error.
    """
    from facelogin.adapters.connect import open_store
    from facelogin.cli.common import echo_json, load_settings
    from facelogin.cli.roots import images_root
    from facelogin.profile import profile_location
    from facelogin.sync.discover import user_folders
    from facelogin.sync.guard import forecast, images_root_problem

    settings = load_settings("users", as_json)
    root = images_root(images, settings)
    folders: dict[str, int] = {}
    unreadable: set[str] = set()
    if images_root_problem(root.path) is None:
        with contextlib.suppress(OSError):  # gone since it was checked: the forecast says so
            folders, unreadable = user_folders(root.path)
    with _catalog("users", settings, as_json) as catalog:
        docs = {d["username"]: d for d in catalog.list_users()}
        where = catalog.where
    verdict = forecast(root.path, folders, unreadable, list(docs), settings.max_removal_share)
    store = open_store(settings)
    rows = []
    for name in sorted(set(docs) | set(folders)):
        doc = docs.get(name)
        counts = (doc or {}).get("counts") or {}
        rows.append(
            {
                "username": name,
                "photos": counts.get("photos", folders.get(name, 0)),
                "encoded": counts.get("encoded", 0),
                "rejected": counts.get("rejected", 0),
                "weak": counts.get("weak", 0),
                "notes": (doc or {}).get("notes") or [],
                "profile_image": profile_location(store, (doc or {}).get("profile_image")),
                "last_sync": _when((doc or {}).get("updated_at")),
                "folder": str(root.path / name) if name in folders else None,
                "state": _state(name, doc, folders, unreadable, verdict),
            }
        )
    notes = []
    if verdict.stops:
        notes.append(f"images root {_shown(root.path)} {verdict.stops}: showing MongoDB only; pass --images")
    elif verdict.refusal:
        notes.append(verdict.refusal)
    if as_json:
        echo_json(
            {
                "ok": True,
                "images": str(root.path),
                "images_root": root.as_dict() | {"problem": verdict.stops},
                "catalog": where,
                "store": store.location,
                "next_sync": {
                    "stops": verdict.stops,
                    "removes": verdict.removed,
                    "refuses": verdict.kept,
                    "refusal": verdict.refusal,
                },
                "users": rows,
            }
        )
        raise typer.Exit(OK)
    typer.echo(root.line, err=True)
    for note in notes:
        typer.secho(f"note: {note}", fg="yellow", err=True)
    _print_table(rows, docs, where, store.location)


def _print_table(rows: list[dict[str, Any]], docs: dict[str, Any], where: str, store: str) -> None:
    """One row per user that reads at 80 columns. The narrow columns (counts, time) are laid out
    first at their own width; what is left goes to the long texts, which wrap: the state at spaces,
    the profile image's store key anywhere. Names are never cut (folded only past 24 characters)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from facelogin.cli.common import local_time
    from facelogin.profile import largest_key

    console = Console()
    zone = datetime.now().astimezone().strftime("%Z")
    cells = []
    for r in rows:
        doc = docs.get(r["username"]) or {}
        when = local_time(r["last_sync"]).removesuffix(f" {zone}") if r["last_sync"] else "-"
        key = largest_key(doc.get("profile_image")) or "-"
        cells.append(
            (r["username"], str(r["photos"]), str(r["encoded"]), str(r["rejected"]), when, r["state"], key)
        )
    name_w = min(max([4, *(len(c[0]) for c in cells)]), 24)
    state_natural = max([5, *(len(c[5]) for c in cells)])
    key_natural = max([13, *(len(c[6]) for c in cells)])
    # After the user and the counts (photos, enc, rej) and a 2-space gap between the 7 columns:
    # the time on one line when there is room for it, else the date over the time.
    rest = console.width - name_w - (6 + 3 + 3) - 2 * 6
    time_w = 16 if rest - 16 >= min(state_natural, 12) + min(key_natural, 24) else 10
    left = rest - time_w
    state_w = min(state_natural, max(8, left // 2))
    key_w = min(key_natural, max(8, left - state_w))
    table = Table(
        title=f"facelogin users ({len(rows)})",
        caption=f"enc/rej: photos encoded/rejected; times in {zone}; MongoDB {where}; store {store}",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),  # with the box's one-space separator: a 2-space gap
    )
    table.add_column("user", overflow="fold", width=name_w)
    table.add_column("photos", justify="right", no_wrap=True, width=6)
    table.add_column("enc", justify="right", no_wrap=True, width=3)
    table.add_column("rej", justify="right", no_wrap=True, width=3)
    table.add_column("last sync", width=time_w)
    table.add_column("state", overflow="fold", width=state_w)
    table.add_column("profile image", overflow="fold", width=key_w)
    for row in cells:
        table.add_row(*row)
    console.print(table)
    # Why photos were left out or are weak, one line each (the table has no room for reasons).
    for r in rows:
        for note in r["notes"]:
            verdict = "left out" if note["status"] == "rejected" else "weak"
            typer.echo(f"{r['username']}/{note['photo']}: {verdict}: {note['reason']}")


def remove(
    username: Annotated[str, typer.Argument(help="The user to remove (their folder name).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    sync_now: Annotated[
        bool, typer.Option("--sync", help="Sync at once: thumbnails, MongoDB and bundle lose the user now.")
    ] = False,
    images: ImagesOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove a user: delete their folder; the next sync removes their data everywhere (--sync: now).

    Their thumbnails, MongoDB document, stored encodings and bundle entries go with the sync.
    Exit 0 removed, 1 no such user or not confirmed, 2 error.
    """
    import shutil

    from facelogin.cli.common import echo_json, fail, load_settings
    from facelogin.cli.roots import RootUnknown, images_root
    from facelogin.naming import is_photo_name, name_problem

    if problem := name_problem(username):
        fail("remove", f"{username!r} is not a user name: {problem}", as_json)
    settings = load_settings("remove", as_json, blocks=False)
    try:
        root = images_root(images, settings, writing=True)
    except RootUnknown as exc:
        fail("remove", str(exc), as_json)
    if not as_json:
        typer.echo(root.line, err=True)
    folder = root.path / username
    out: dict[str, Any] = {
        "ok": True,
        "username": username,
        "folder": str(folder),
        "removed_photos": 0,
        "images": root.as_dict(),
        "sync": None,
    }
    if folder.is_dir():
        photos = [p for p in folder.iterdir() if is_photo_name(p.name)]
        if not yes:
            if not sys.stdin.isatty():
                fail("remove", f"removing {folder} needs confirmation: run with --yes", as_json)
            question = (
                f"Remove {username}'s folder {folder} ({len(photos)} photos)? Their thumbnails, MongoDB "
                f"document and encodings go {'now' if sync_now else 'at the next sync'}"
            )
            if not typer.confirm(question, default=False):
                fail("remove", "not confirmed: nothing removed", as_json, REJECTED)
        shutil.rmtree(folder)
        out["removed_photos"] = len(photos)
        if not as_json:
            typer.echo(f"removed {folder} ({len(photos)} photos)")
        out["sessions_ended"] = _end_sessions(settings, username, as_json)
    elif not sync_now:
        fail(
            "remove",
            f"{folder} does not exist; if {username} is still in MongoDB, the next sync "
            "removes them (or run with --sync)",
            as_json,
            REJECTED,
        )
    if not sync_now:
        if not as_json:
            typer.echo(f"{username}'s data goes at the next sync (facelogin sync, or the nightly run)")
        else:
            echo_json(out)
        raise typer.Exit(OK)

    from facelogin.cli.sync import run_checked
    from facelogin.orchestration.runs import quiet_prefect_console

    if as_json:
        quiet_prefect_console()
    summary = run_checked(
        settings.model_copy(update={"images": root.path}), {"allow_removals": 1}, as_json
    ).summary
    out["sync"] = summary
    if as_json:
        echo_json(out)
    else:
        typer.echo(
            f"synced: removed {summary['removed_users']} user(s) from MongoDB ({summary['catalog']}), "
            f"{summary['deleted_objects']} objects from {summary['store']}; "
            f"bundle {summary['bundle']['version']}"
        )


def profile_url(
    username: Annotated[str, typer.Argument(help="The user whose profile image URL to print.")],
    size: Annotated[
        int | None, typer.Option("--size", help="Thumbnail size in px [default: the largest synced].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the URL a profile page would use now (a fresh presigned link in presigned mode).

    Exit 0 printed, 1 no such user or no profile image, 2 error.
    """
    from facelogin.adapters.connect import open_store
    from facelogin.cli.common import echo_json, fail, load_settings
    from facelogin.profile import profile_image

    settings = load_settings("profile-url", as_json)
    with _catalog("profile-url", settings, as_json) as catalog:
        doc = catalog.user(username)
        where = catalog.where
    if doc is None:
        fail("profile-url", f"no user {username!r} in MongoDB ({where})", as_json, REJECTED)
    profile = doc.get("profile_image") or {}
    keys: dict[str, str] = profile.get("keys") or {}
    if not keys:
        fail(
            "profile-url",
            f"{username} has no profile image (no encoded photo with thumbnails)",
            as_json,
            REJECTED,
        )
    chosen = str(size) if size is not None else max(keys, key=int)
    if chosen not in keys:
        fail(
            "profile-url",
            f"no {chosen} px thumbnail for {username}: sizes {', '.join(sorted(keys, key=int))}",
            as_json,
            REJECTED,
        )
    store = open_store(settings)
    image = profile_image(doc, store, int(chosen))
    url = image.url if image else None
    if as_json:
        echo_json(
            {
                "ok": True,
                "username": username,
                "size": int(chosen),
                "key": keys[chosen],
                "url": url,
                "expires_in": image.expires_in if image else None,
                "store": store.location,
                "photo": profile.get("photo"),
            }
        )
    else:
        typer.echo(url)
    raise typer.Exit(OK if url else ERROR)
