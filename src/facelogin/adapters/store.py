"""Object stores for thumbnails and bundles: S3 (boto3) or a local directory with the same key layout."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from facelogin.files import PRIVATE_FILE, private_dir, write_atomic

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

URL_MODES = ("presigned", "public-acl", "base-url")

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "BadGateway",
        "GatewayTimeout",
    }
)


class StoreError(RuntimeError):
    """A permanent object-store failure with a message a person can act on."""


class MissingObject(StoreError, KeyError):
    """No object under that key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such object"


def is_transient(exc: BaseException) -> bool:
    """True for faults worth retrying: 5xx, throttling, timeouts, dropped connections."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, StoreError):
        return False
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _TRANSIENT_CODES or int(status or 0) >= 500
    transient_types = (
        EndpointConnectionError,
        ConnectionClosedError,
        ConnectTimeoutError,
        ReadTimeoutError,
        ConnectionError,
        TimeoutError,
    )
    return isinstance(exc, transient_types)


def failure_message(exc: BaseException, bucket: str, endpoint: str) -> str:
    """What a person can do about an S3 failure, in one line naming the bucket, the endpoint and the
    settings that chose them (never the credentials)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    where = f"bucket {bucket!r} (FACELOGIN_BUCKET) at {endpoint} (AWS_ENDPOINT_URL)"
    if isinstance(exc, StoreError):
        text = str(exc)
        return text if f"{bucket!r}" in text and endpoint in text else f"{where}: {text}"
    if isinstance(exc, NoCredentialsError):
        return f"{where}: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect to {where}: is the server running, and is the address right?"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return f"{where} did not answer in time: is the server overloaded or down?"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status, code = meta.get("HTTPStatusCode"), error.get("Code") or ""
        said = " ".join(str(part) for part in (status, code) if part) or type(exc).__name__
        if detail := str(error.get("Message") or "").rstrip("."):
            said += f" ({detail})"
        tries = int(meta.get("RetryAttempts") or 0) + 1
        if status == 403 or code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            hint = ": check the credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        elif status == 404 or code in {"404", "NoSuchBucket"}:
            hint = ": create the bucket or fix FACELOGIN_BUCKET"
        elif is_transient(exc):
            hint = f" after {tries} attempt(s): is the server overloaded or down? The next run tries again"
        else:
            hint = ": the server refused the request"
        return f"{where} answered {said} to {exc.operation_name}{hint}"
    return f"{where}: {type(exc).__name__}: {exc}"


class ObjectStore(Protocol):
    """What the sync and the login need of a store; S3Store and DirStore pass one contract test."""

    def check(self) -> None: ...
    def put(
        self, key: str, data: bytes, content_type: str, cache_control: str, public: bool = False
    ) -> None: ...
    def put_file(
        self, key: str, path: str | Path, content_type: str, cache_control: str, public: bool = False
    ) -> None: ...
    def get(self, key: str) -> bytes: ...
    def keys(self, prefix: str) -> list[str]: ...
    def delete(self, keys: list[str]) -> None: ...
    def url(self, key: str) -> str | None: ...
    def stable_url(self, key: str) -> str | None: ...
    @property
    def location(self) -> str: ...


class S3Store:
    """A bucket reached through an already-built boto3 client; no retries in here."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        url_mode: str = "presigned",
        base_url: str | None = None,
        presign_seconds: int = 3600,
    ) -> None:
        if url_mode not in URL_MODES:
            raise ValueError(f"url mode {url_mode!r} is not one of {', '.join(URL_MODES)}")
        if url_mode == "base-url" and not base_url:
            raise ValueError("url mode 'base-url' needs a base URL (FACELOGIN_BASE_URL)")
        self.client = client
        self.bucket = bucket
        self.url_mode = url_mode
        self.base_url = base_url.rstrip("/") if base_url else None
        self.presign_seconds = presign_seconds
        self._public_checked = False  # public-acl mode: an anonymous read of a public object worked

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}"

    def check(self) -> None:
        """The bucket exists and answers; any failure left after botocore's retries is permanent here."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        endpoint = self.client.meta.endpoint_url
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise StoreError(
                "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except EndpointConnectionError:
            raise StoreError(
                f"cannot connect to the S3 endpoint {endpoint} (AWS_ENDPOINT_URL): is it running, "
                "and is the address right?"
            ) from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise StoreError(
                f"the S3 endpoint {endpoint} (AWS_ENDPOINT_URL) did not answer about bucket {self.bucket!r}"
            ) from None
        except ClientError as exc:
            # Transient faults too: botocore has retried them already, and a bucket that does not
            # answer now is a server to look at before a run, not after.
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or exc.response.get("Error", {}).get("Code") in {"404", "NoSuchBucket"}:
                raise StoreError(
                    f"bucket {self.bucket!r} does not exist at {endpoint}: create it or set FACELOGIN_BUCKET"
                ) from None
            if status == 403:
                raise StoreError(
                    f"access to bucket {self.bucket!r} at {endpoint} is denied (403): check the credentials"
                ) from None
            raise StoreError(failure_message(exc, self.bucket, str(endpoint))) from None
        except BotoCoreError as exc:  # a dropped connection, a bad endpoint URL, ...
            raise StoreError(failure_message(exc, self.bucket, str(endpoint))) from None

    def put(self, key: str, data: bytes, content_type: str, cache_control: str, public: bool = False) -> None:
        """Write one object, private; a `public` one (a thumbnail) is made public-read in public-acl mode."""
        from botocore.exceptions import ClientError

        extra: dict[str, Any] = {}
        if public and self.url_mode == "public-acl":
            extra["ACL"] = "public-read"
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                **extra,
            )
            if public and self.url_mode == "public-acl" and not self._public_checked:
                self.check_public(key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "AccessControlListNotSupported":
                raise StoreError(
                    f"bucket {self.bucket!r} has ACLs disabled (S3's default since April 2023), so "
                    "url mode 'public-acl' cannot make objects public. Use FACELOGIN_URL_MODE=presigned "
                    "(private objects, signed links) or FACELOGIN_URL_MODE=base-url with a CDN or bucket "
                    "policy and FACELOGIN_BASE_URL."
                ) from None
            if not is_transient(exc):
                where = failure_message(exc, self.bucket, str(self.client.meta.endpoint_url))
                raise StoreError(f"cannot write {key}: {where}") from None
            raise

    def check_public(self, key: str) -> None:
        """In public-acl mode: one anonymous HEAD of an object just made public-read. Some servers accept
        the ACL and ignore it (SeaweedFS, a bucket whose policy blocks public access): then nothing is
        public, and saying otherwise would store URLs that answer 403. StoreError with what to do."""
        import urllib.error
        import urllib.request

        url = self.stable_url(key)
        assert url is not None
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            raise StoreError(
                f"bucket {self.bucket!r} at {self.client.meta.endpoint_url} accepted a public-read ACL but "
                f"an anonymous request for {key} got {exc.code}: the server does not apply ACLs, so "
                "FACELOGIN_URL_MODE=public-acl would store links that do not open. Use "
                "FACELOGIN_URL_MODE=presigned (private objects, signed links), or base-url with a bucket "
                "policy allowing anonymous GET on the thumbnails prefix and FACELOGIN_BASE_URL."
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot check that {url} is public: {exc}") from None
        self._public_checked = True

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise MissingObject(f"s3://{self.bucket}/{key}: no such object") from None
            raise
        return bytes(body.read())

    def put_file(
        self, key: str, path: str | Path, content_type: str, cache_control: str, public: bool = False
    ) -> None:
        """`put` of a local file's bytes; the file is deleted once the object is stored."""
        source = Path(path)
        self.put(key, source.read_bytes(), content_type, cache_control, public)
        source.unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch: list[Any] = [{"Key": k} for k in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def stable_url(self, key: str) -> str | None:
        """A URL that can be stored: None in presigned mode, where links expire."""
        if self.url_mode == "base-url":
            return f"{self.base_url}/{key}"
        if self.url_mode == "public-acl":
            return f"{self.client.meta.endpoint_url.rstrip('/')}/{self.bucket}/{key}"
        return None

    def url(self, key: str) -> str | None:
        """A URL to show the object now: a fresh presigned link in presigned mode."""
        if self.url_mode == "presigned":
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.presign_seconds
            )
        return self.stable_url(key)


class DirStore:
    """A local directory laid out like the bucket: the embedded default, no cloud account needed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._folders: dict[str, str] = {}  # a key's folder, resolved and checked once
        self._made: set[str] = set()  # folders known to exist

    @property
    def location(self) -> str:
        return str(self.root)

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

    def stable_url(self, key: str) -> str | None:
        return self._path(key).as_uri()

    def url(self, key: str) -> str | None:
        return self.stable_url(key)
