"""`facelogin users`, `facelogin remove` and `facelogin profile-url`: who is enrolled, and their data.

Thin over the catalog (MongoDB, or the embedded server started for the command) and the store;
the images root is the one the sync reads (facelogin.cli.roots).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from facelogin.cli.exits import ERROR, OK, REJECTED

IMAGES_HELP = (
    "Images root [env FACELOGIN_IMAGES, default: the root the sync-now deployment reads, "
    "or ./images in the checkout]."
)


def register(app: typer.Typer) -> None:
    app.command("users")(users)
    app.command("remove")(remove)
    app.command("profile-url")(profile_url)


@contextmanager
def _catalog(command: str, settings: Any, as_json: bool) -> Iterator[Any]:
    """The catalog, checked first; the embedded server is started for the block when none is set."""
    from facelogin.adapters.catalog import CatalogError
    from facelogin.adapters.connect import catalog_server, check_catalog, open_catalog
    from facelogin.adapters.embedded import EmbeddedServerError
    from facelogin.cli.common import fail

    try:
        with catalog_server(settings) as running:
            check_catalog(running)
            catalog = open_catalog(running)
            catalog.where = running.where()["catalog"]  # host/database, never the URI's credentials
            yield catalog
    except (CatalogError, EmbeddedServerError) as exc:
        fail(command, str(exc), as_json)


def _when(value: Any) -> str | None:
    """A stored time as ISO text (nx-27017 may hand back a `$set` datetime as a string already)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value) if value else None


def _profile_location(store: Any, profile: dict[str, Any] | None) -> str | None:
    if not profile or not profile.get("keys"):
        return None
    keys = profile["keys"]
    key = keys[max(keys, key=int)]
    return f"{store.location}/{key}"


def users(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP)] = None,
) -> None:
    """List every user: photos (encoded/rejected), profile image location, last sync.

    Users come from MongoDB and from the images root: a folder not synced yet, or a user whose folder
    is gone (the next sync removes them), is shown as such. Exit 0 listed, 2 error.
    """
    from facelogin.adapters.connect import open_store
    from facelogin.cli.common import echo_json, load_settings
    from facelogin.cli.roots import RootUnknown, images_root
    from facelogin.naming import is_photo_name, name_problem

    settings = load_settings("users", as_json)
    try:
        root: Path | None = images_root(images, settings.images).path
    except RootUnknown:
        root = None  # MongoDB still says who is enrolled; the folders cannot be told
    folders: dict[str, int] = {}
    if root is not None and root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.name.startswith(".") and name_problem(entry.name) is None:
                try:
                    folders[entry.name] = sum(1 for p in entry.iterdir() if is_photo_name(p.name))
                except OSError:  # an unreadable folder: the sync names it and keeps its user
                    folders[entry.name] = 0
    with _catalog("users", settings, as_json) as catalog:
        docs = {d["username"]: d for d in catalog.list_users()}
        where = catalog.where
    store = open_store(settings)
    rows = []
    for name in sorted(set(docs) | set(folders)):
        doc = docs.get(name)
        counts = (doc or {}).get("counts") or {}
        if doc is None:
            state = "not synced yet"
        elif root is not None and name not in folders:
            state = "folder gone: removed at the next sync"
        else:
            state = "synced"
        rows.append(
            {
                "username": name,
                "photos": counts.get("photos", folders.get(name, 0)),
                "encoded": counts.get("encoded", 0),
                "rejected": counts.get("rejected", 0),
                "profile_image": _profile_location(store, (doc or {}).get("profile_image")),
                "last_sync": _when((doc or {}).get("updated_at")),
                "folder": str(root / name) if root is not None and name in folders else None,
                "state": state,
            }
        )
    if as_json:
        echo_json(
            {
                "ok": True,
                "images": str(root) if root else None,
                "catalog": where,
                "store": store.location,
                "users": rows,
            }
        )
        raise typer.Exit(OK)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"facelogin users ({len(rows)})", caption=f"MongoDB {where}; store {store.location}")
    for column in ("user", "photos", "encoded", "rejected", "profile image", "last sync", "state"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["username"],
            str(r["photos"]),
            str(r["encoded"]),
            str(r["rejected"]),
            r["profile_image"] or "-",
            r["last_sync"] or "-",
            r["state"],
        )
    Console().print(table)
    if root is None:
        typer.secho("note: the images root the sync reads is unknown here: folders not shown", err=True)


def remove(
    username: Annotated[str, typer.Argument(help="The user to remove (their folder name).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    sync_now: Annotated[
        bool, typer.Option("--sync", help="Sync at once: thumbnails, MongoDB and bundle lose the user now.")
    ] = False,
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
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
        root = images_root(images, settings.images)
    except RootUnknown as exc:
        fail("remove", str(exc), as_json)
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

    from facelogin.cli import runs
    from facelogin.cli.sync import run_checked

    if as_json:
        runs.quiet_prefect_console()
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Print the URL a profile page would use now (a fresh presigned link in presigned mode).

    Exit 0 printed, 1 no such user or no profile image, 2 error.
    """
    from facelogin.adapters.connect import open_store
    from facelogin.cli.common import echo_json, fail, load_settings

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
    url = store.url(keys[chosen])
    expires = settings.presign_seconds if settings.bucket and settings.url_mode == "presigned" else None
    if as_json:
        echo_json(
            {
                "ok": True,
                "username": username,
                "size": int(chosen),
                "key": keys[chosen],
                "url": url,
                "expires_in": expires,
                "store": store.location,
                "photo": profile.get("photo"),
            }
        )
    else:
        typer.echo(url)
    raise typer.Exit(OK if url else ERROR)
