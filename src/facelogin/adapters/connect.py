"""The store and catalog a run uses, built from settings, and where they are, said without credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from facelogin.adapters import catalog as _catalog
from facelogin.adapters.catalog import Catalog, CatalogError, describe_uri
from facelogin.adapters.embedded import embedded_mongo
from facelogin.adapters.mongo import CHECK_TIMEOUT_MS, close_mongo, mongo_client
from facelogin.adapters.stores import open_store as open_store
from facelogin.adapters.stores import store_location
from facelogin.settings import Settings


def where(settings: Settings) -> dict[str, str]:
    """Where a run reads and writes, without credentials: images, store, catalog."""
    uri = settings.mongodb()
    catalog = (
        f"{describe_uri(uri)}/{settings.database}"
        if uri and not settings.embedded_catalog
        else f"embedded nx-27017 in {settings.mongo_dir} (database {settings.database})"
    )
    return {"images": str(settings.images), "store": store_location(settings), "catalog": catalog}


def check_store(settings: Settings) -> str:
    """Check the bucket (or local store) before any work; a store that does not answer fails in seconds."""
    store = open_store(settings, checking=True)
    store.check()
    return store.location


@contextmanager
def catalog_server(
    settings: Settings, share: bool = False, wait: Callable[[], None] | None = None
) -> Iterator[Settings]:
    """The settings to run with: as given when they name a MongoDB, else pointing at the embedded
    nx-27017 server, started for the block under the state directory and stopped after it (or
    borrowed from the process that shares it: see embedded_mongo for `share` and `wait`)."""
    if settings.mongodb_uri:
        yield settings
        return
    with embedded_mongo(settings.mongo_dir, share=share, wait=wait) as uri:
        try:
            yield settings.with_mongodb(uri)
        finally:
            close_mongo(uri)


def check_catalog(settings: Settings) -> str:
    """Check MongoDB answers (when one is configured); returns its hosts, without credentials."""
    uri = settings.mongodb()
    if not uri:
        return f"embedded nx-27017 in {settings.mongo_dir}"
    catalog = Catalog(mongo_client(uri, CHECK_TIMEOUT_MS)[settings.database], where=describe_uri(uri))
    catalog.check()
    return catalog.where


def open_catalog(settings: Settings) -> Catalog:
    uri = settings.mongodb()
    if not uri:
        raise ValueError("no MongoDB URI: the flow starts the embedded server and sets it")
    return Catalog(mongo_client(uri)[settings.database], where=describe_uri(uri))


def failure_message(exc: BaseException, settings: Settings) -> str:
    """One line on a store or MongoDB failure, naming the setting, the host and the bucket (or the
    local store's folder); never a credential. Any other error: its type and message."""
    from pymongo.errors import PyMongoError

    if isinstance(exc, CatalogError | PyMongoError):
        return _catalog.failure_message(exc, where(settings)["catalog"])
    try:
        store = open_store(settings)
    except ValueError:  # settings no store can be opened with: say the error itself
        store = None
    if store is not None and store.owns(exc):
        return store.explain(exc)
    return f"{type(exc).__name__}: {exc}"
