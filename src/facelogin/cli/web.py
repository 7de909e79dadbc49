"""`facelogin web`: the profile page and the browser login, served with Uvicorn.

Starlette, Uvicorn, pymongo and the face engine are imported inside the command.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from facelogin.exits import ERROR


def register(app: typer.Typer) -> None:
    app.command("web")(web)


def web(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    bundle: Annotated[
        str | None,
        typer.Option(
            "--bundle",
            envvar="FACELOGIN_BUNDLE",
            help="Bundle the login decides with: a local directory or s3://bucket/prefix/latest.",
            show_default="$FACELOGIN_STATE_DIR/bundle: where the sync on this machine publishes",
        ),
    ] = None,
    certfile: Annotated[
        Path | None, typer.Option("--certfile", help="TLS certificate (PEM): serve https://.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="TLS private key (PEM).")] = None,
) -> None:
    """Serve the profile page and the camera login page (Ctrl-C stops it).

    Reads the same FACELOGIN_* / AWS_* settings as the sync. With embedded defaults it starts the
    embedded MongoDB and shares it: a sync run meanwhile uses it too. Exit 0 stopped, 2 error.
    """
    from facelogin.cli.common import fail, load_settings

    if (certfile is None) != (keyfile is None):
        fail("web", "give both --certfile and --keyfile, or neither", False)
    if problem := _cannot_listen(host, port):
        fail("web", problem, False)
    settings = load_settings("web", False)
    if settings.liveness == "off":
        typer.secho(
            "warning: FACELOGIN_LIVENESS=off: a photo of an enrolled person logs in as them "
            "(unset it to ask every login for a blink or a head turn)",
            fg="yellow",
            err=True,
        )

    import uvicorn

    from facelogin.adapters.catalog import CatalogError
    from facelogin.adapters.connect import catalog_server, check_catalog, check_store, where
    from facelogin.adapters.embedded import EmbeddedServerError
    from facelogin.adapters.stores import StoreError
    from facelogin.web import create_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    scheme = "https" if certfile else "http"
    if scheme == "http" and not _is_loopback(host):
        typer.secho(
            "warning: browsers give the camera only to https:// pages (and http://localhost): "
            "serve with --certfile/--keyfile or behind an HTTPS proxy for other machines",
            fg="yellow",
            err=True,
        )

    def waiting() -> None:
        typer.echo(f"facelogin web: a sync is using the embedded database in {settings.mongo_dir}; "
                   "starting when it is done", err=True)  # fmt: skip

    # Uvicorn stops gracefully on SIGTERM or Ctrl-C, then raises the signal again for the previous
    # handler: ours turns it into an exception, so the embedded database is stopped in order (after
    # its borrowers) instead of the process dying with it. Ctrl-C too: with Python's default SIGINT
    # handler, asyncio cancels the app's lifespan mid-shutdown and Uvicorn prints a traceback.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with catalog_server(settings, share=True, wait=waiting) as running:
            for check in (check_catalog, check_store):
                try:
                    check(running)
                except (CatalogError, StoreError) as exc:  # served anyway: the pages say what to fix
                    typer.secho(f"warning: {exc}", fg="yellow", err=True)
            app = create_app(running, bundle)
            shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
            typer.echo(f"facelogin web: {scheme}://{shown}:{port}/ ({where(running)['catalog']})", err=True)
            try:
                uvicorn.run(
                    app,
                    host=host,
                    port=port,
                    ssl_certfile=str(certfile) if certfile else None,
                    ssl_keyfile=str(keyfile) if keyfile else None,
                    server_header=False,
                    log_level="info",
                    # Uvicorn believes X-Forwarded-For from loopback by default: anyone on this
                    # machine could then pick their address. Only the proxies named are believed.
                    proxy_headers=bool(running.trusted_proxies),
                    forwarded_allow_ips=",".join(running.trusted_proxies) or None,
                )
            except SystemExit as exc:  # Uvicorn exits 1 when it cannot listen: an error, not a rejection
                if exc.code:
                    fail("web", f"cannot serve on {host}:{port} (see the lines above)", False)
    except (_Stopped, KeyboardInterrupt):
        typer.echo("facelogin web: stopped", err=True)
    except (EmbeddedServerError, ValueError, OSError) as exc:
        fail("web", str(exc), False, ERROR)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stopped(BaseException):
    """SIGTERM or Ctrl-C: stop serving (a BaseException, so no `except Exception` on the way swallows it)."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped()


def _cannot_listen(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (in use, no such address), found before anything starts."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror} (another facelogin web? try --port)"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
