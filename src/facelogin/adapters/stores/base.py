"""What every object store is: the errors it raises and the questions it answers for itself.

Callers ask the store (is this fault worth a retry, what URL shows this key, how is it named in a
message) instead of asking which kind of store it is; a new backend is one module beside this one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

URL_MODES = ("presigned", "public-acl", "base-url")


class StoreError(RuntimeError):
    """A permanent object-store failure with a message a person can act on."""


class MissingObject(StoreError, KeyError):
    """No object under that key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such object"


class ObjectStore(ABC):
    """What the sync, the web and the login need of a store; every store passes one contract test."""

    # False where an object is a file on this machine: read, not fetched, and never worth caching.
    remote: bool = True

    @property
    @abstractmethod
    def location(self) -> str:
        """Where keys live, as a prefix for one object's place in messages: `s3://bucket`, a folder."""

    @abstractmethod
    def describe(self) -> str:
        """The store named for a person: endpoint and bucket, or the local directory; never a secret."""

    @abstractmethod
    def is_transient(self, exc: BaseException) -> bool:
        """True for a fault of this store worth retrying (the server busy or unreachable for now)."""

    def owns(self, exc: BaseException) -> bool:
        """True for an error this store raises (its own, or its client's), which `explain` names."""
        return isinstance(exc, StoreError)

    def explain(self, exc: BaseException) -> str:
        """One line on a failure of this store, naming it (and the settings that chose it)."""
        return f"{self.describe()}: {exc}"

    @abstractmethod
    def url_for(self, key: str, mode: str | None = None) -> str | None:
        """A URL that shows `key` in profile-URL `mode` (one of URL_MODES; None: the store's own).
        None when the mode gives no URL here."""

    def expires_in(self, mode: str | None = None) -> int | None:
        """Seconds a `url_for` link of `mode` lasts; None for a link that can be stored."""
        return None

    def url(self, key: str) -> str | None:
        """A URL to show the object now, in the store's own mode (a fresh link where links expire)."""
        return self.url_for(key)

    def stable_url(self, key: str) -> str | None:
        """A URL that can be stored: None where links expire."""
        return None if self.expires_in() else self.url_for(key)

    @abstractmethod
    def check(self) -> None: ...

    @abstractmethod
    def put(
        self, key: str, data: bytes, content_type: str, cache_control: str, public: bool = False
    ) -> None: ...

    @abstractmethod
    def put_file(
        self, key: str, path: str | Path, content_type: str, cache_control: str, public: bool = False
    ) -> None: ...

    def prepare(self) -> None:
        """Get ready to send many objects (`put_files`) later, in the background: a sync calls this
        when it checks the store, so the set-up overlaps the encoding. Nothing to do by default."""
        return None

    def put_files(
        self,
        files: Sequence[tuple[str, str]],
        content_type: str,
        cache_control: str,
        public: bool = False,
        threads: int = 1,
        stored: Callable[[str], None] | None = None,
    ) -> None:
        """`put_file` for each (key, path), `threads` at a time; `stored(key)` once each is stored.

        The first failure stops what has not started and is raised: the files not yet stored are
        the ones still there. A store with a faster way to send many objects overrides this.
        """

        def put(key: str, path: str) -> None:
            self.put_file(key, path, content_type, cache_control, public)
            if stored is not None:
                stored(key)

        if threads <= 1 or len(files) <= 1:
            for key, path in files:
                put(key, path)
            return
        pool = ThreadPoolExecutor(min(threads, len(files)), thread_name_prefix="upload")
        try:
            for done in as_completed([pool.submit(put, key, path) for key, path in files]):
                done.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def keys(self, prefix: str) -> list[str]: ...

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...
