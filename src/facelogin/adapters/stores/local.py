"""The local object store: a directory laid out like the bucket, the embedded default."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from facelogin.adapters.stores.base import MissingObject, ObjectStore, StoreError
from facelogin.files import PRIVATE_FILE, private_dir, write_atomic


class DirStore(ObjectStore):
    """A local directory laid out like the bucket: the embedded default, no cloud account needed."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._folders: dict[str, str] = {}  # a key's folder, resolved and checked once
        self._made: set[str] = set()  # folders known to exist

    @property
    def location(self) -> str:
        return str(self.root)

    def describe(self) -> str:
        return f"local object store {self.root}"

    def is_transient(self, exc: BaseException) -> bool:
        """A disk that is full, read-only or gone stays so for the next try (OSError: False); only a
        network filesystem that timed out or dropped the connection may answer again."""
        if isinstance(exc, StoreError):
            return False
        return isinstance(exc, ConnectionError | TimeoutError)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"key {key!r} leaves the store directory")
        return path

    def _target(self, key: str, make: bool = False) -> str:
        """Where `key` is written: `_path`, with the folder resolved once for all its keys (and made).

        Thousands of thumbnails share a few folders; resolving every key walked every component.
        A rename or unlink does not follow a link in the last component, so only folders matter.
        Plain strings, not Paths: building Paths cost more than the rename itself.
        """
        parent, _, name = key.rpartition("/")
        if name in {"", ".", ".."}:
            raise StoreError(f"key {key!r} leaves the store directory")
        folder = self._folders.get(parent)
        if folder is None:
            folder = self._folders[parent] = str(self._path(parent) if parent else self.root.resolve())
        if make and folder not in self._made:
            private_dir(Path(folder))
            self._made.add(folder)
        return os.path.join(folder, name)

    def check(self) -> None:
        """Usable as a store: a directory, or a path where one can be made (it is made on the first put)."""
        existing = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise StoreError(f"{existing} is not a directory: the local object store cannot live there")
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise StoreError(f"{existing} is not writable: the local object store cannot live there")

    def put(self, key: str, data: bytes, content_type: str, cache_control: str, public: bool = False) -> None:
        write_atomic(self._path(key), data)

    def put_file(
        self, key: str, path: str | Path, content_type: str, cache_control: str, public: bool = False
    ) -> None:
        """Store a local file under `key` by moving it (a rename, atomic, no copy); it is gone from `path`."""
        target = self._target(key, make=True)
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # another filesystem: copy, then drop the original
                raise
            write_atomic(Path(target), Path(path).read_bytes())
            Path(path).unlink(missing_ok=True)
        os.chmod(target, PRIVATE_FILE)

    def keys(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise MissingObject(f"{self.root}/{key}: no such object") from None

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._target(key))

    def url_for(self, key: str, mode: str | None = None) -> str | None:
        """The object's own file (a `file://` URL) in every mode: nothing here expires or is public."""
        return self._path(key).as_uri()
