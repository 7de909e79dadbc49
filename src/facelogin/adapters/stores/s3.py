"""The S3 object store: a bucket reached through boto3, and the one client builder it uses.

The client comes from boto3's own chain (AWS_ENDPOINT_URL, AWS_PROFILE, keys, region), or from a
Prefect AwsCredentials block's values where they are given.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facelogin.adapters.stores.base import URL_MODES, MissingObject, ObjectStore, StoreError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

    from facelogin.settings import AwsAccess

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


def crt_error(exc: BaseException) -> str | None:
    """The name of an AWS CRT error (`AWS_IO_SOCKET_CONNECTION_REFUSED`, ...), None for any other
    exception; awscrt is not imported for this."""
    if type(exc).__name__ == "AwsCrtError" and type(exc).__module__.startswith("awscrt"):
        return str(getattr(exc, "name", "") or "AWS_CRT_ERROR")
    return None


def _crt_transient(name: str) -> bool:
    """A CRT network fault (refused, reset, closed, timed out, name lookup) or throttling. S3's
    own error answers reach callers as botocore ClientErrors, translated by s3transfer."""
    network = ("AWS_IO_SOCKET_", "AWS_IO_DNS_", "AWS_ERROR_HTTP_CONNECTION_", "AWS_ERROR_HTTP_SERVER_CLOSED")
    busy = ("AWS_ERROR_S3_SLOW_DOWN", "AWS_ERROR_S3_INTERNAL_ERROR")
    return name.startswith(network) or name in busy or "TIMEOUT" in name or "TIMED_OUT" in name


def is_transient(exc: BaseException) -> bool:
    """True for faults worth retrying: 5xx, throttling, timeouts, dropped connections."""
    if (crt := crt_error(exc)) is not None:
        return _crt_transient(crt)
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


def _where(bucket: str, endpoint: str) -> str:
    return f"bucket {bucket!r} (FACELOGIN_BUCKET) at {endpoint} (AWS_ENDPOINT_URL)"


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

    where = _where(bucket, endpoint)
    if (crt := crt_error(exc)) is not None:
        if "CONNECTION_REFUSED" in crt or "NO_ROUTE" in crt or crt.startswith("AWS_IO_DNS_"):
            return f"cannot connect to {where}: is the server running, and is the address right?"
        if "TIMEOUT" in crt or "TIMED_OUT" in crt:
            return f"{where} did not answer in time: is the server overloaded or down?"
        hint = ": is the server overloaded or down? The next run tries again" if _crt_transient(crt) else ""
        return f"{where}: {exc}{hint}"
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


class S3Store(ObjectStore):
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

    def describe(self) -> str:
        return _where(self.bucket, str(self.client.meta.endpoint_url))

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def owns(self, exc: BaseException) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        return isinstance(exc, StoreError | ClientError | BotoCoreError) or crt_error(exc) is not None

    def explain(self, exc: BaseException) -> str:
        return failure_message(exc, self.bucket, str(self.client.meta.endpoint_url))

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
            if (refused := self._refused(exc, key)) is not None:
                raise refused from None
            raise

    def _refused(self, exc: ClientError, key: str) -> StoreError | None:
        """The permanent failure to write `key` that `exc` means, with what to do; None if transient."""
        if exc.response.get("Error", {}).get("Code", "") == "AccessControlListNotSupported":
            return StoreError(
                f"bucket {self.bucket!r} has ACLs disabled (S3's default since April 2023), so "
                "url mode 'public-acl' cannot make objects public. Use FACELOGIN_URL_MODE=presigned "
                "(private objects, signed links) or FACELOGIN_URL_MODE=base-url with a CDN or bucket "
                "policy and FACELOGIN_BASE_URL."
            )
        if is_transient(exc):
            return None
        where = failure_message(exc, self.bucket, str(self.client.meta.endpoint_url))
        return StoreError(f"cannot write {key}: {where}")

    def prepare(self) -> None:
        """Build the CRT client `put_files` uses (~0.1 s of CPU, more on a busy machine) on a
        daemon thread; a failure here is left for `put_files` to raise and explain."""

        def build() -> None:
            with contextlib.suppress(Exception):  # put_files raises it again, where it is explained
                _transfers(self.client)

        threading.Thread(target=build, name="s3-crt-prepare", daemon=True).start()

    def put_files(
        self,
        files: Sequence[tuple[str, str]],
        content_type: str,
        cache_control: str,
        public: bool = False,
        threads: int = 1,
        stored: Callable[[str], None] | None = None,
    ) -> None:
        """Many files at once through the AWS Common Runtime's S3 client (C, off the GIL, its own
        connection pool and per-request retries): boto3's Python request path costs ~2 ms of CPU per
        small object under one GIL, so 16 threads of it sent thumbnails at half the rate of rclone.
        At most 4 x `threads` objects are in flight. A permanent refusal stops everything at once; an
        object that a transient fault still fails after its attempts does not stop the others, and
        the first such fault is raised at the end (the objects not stored stay staged). Without the
        CRT (the `s3` extra alone, as on a Pi), the threads of `ObjectStore.put_files`."""
        from botocore.exceptions import ClientError

        try:
            transfers = _transfers(self.client)
        except ImportError:
            return super().put_files(files, content_type, cache_control, public, threads, stored)
        extra: dict[str, Any] = {"ContentType": content_type, "CacheControl": cache_control}
        if public and self.url_mode == "public-acl":
            extra["ACL"] = "public-read"
        window: deque[tuple[str, str, Any]] = deque()
        failed: list[BaseException] = []  # transient faults left after the CRT's own retries

        def settle(key: str, path: str, future: Any) -> None:
            try:
                future.result()
            except ClientError as exc:
                if (refused := self._refused(exc, key)) is not None:
                    raise refused from None
                failed.append(exc)
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failed.append(exc)
                return
            os.unlink(path)
            if public and self.url_mode == "public-acl" and not self._public_checked:
                self.check_public(key)
            if stored is not None:
                stored(key)

        try:
            for key, path in files:
                window.append((key, path, transfers.upload(path, self.bucket, key, extra_args=dict(extra))))
                if len(window) >= 4 * max(1, threads):
                    settle(*window.popleft())
            while window:
                settle(*window.popleft())
        finally:
            for *_, future in window:  # after a permanent failure: what has not finished stays staged
                future.cancel()
        if failed:  # the rest went on: a retry of the task sends only these objects again
            raise failed[0]
        return None

    def check_public(self, key: str) -> None:
        """In public-acl mode: one anonymous HEAD of an object just made public-read. Some servers accept
        the ACL and ignore it (SeaweedFS, a bucket whose policy blocks public access): then nothing is
        public, and saying otherwise would store URLs that answer 403. StoreError with what to do."""
        import urllib.error
        import urllib.request

        url = self.url_for(key, "public-acl")
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

    def url_for(self, key: str, mode: str | None = None) -> str | None:
        """presigned: a fresh signed link; base-url: under FACELOGIN_BASE_URL (None without one);
        public-acl: the object's plain address at the endpoint."""
        mode = mode or self.url_mode
        if mode == "presigned":
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.presign_seconds
            )
        if mode == "base-url":
            return f"{self.base_url}/{key}" if self.base_url else None
        if mode == "public-acl":
            return f"{self.client.meta.endpoint_url.rstrip('/')}/{self.bucket}/{key}"
        raise ValueError(f"url mode {mode!r} is not one of {', '.join(URL_MODES)}")

    def expires_in(self, mode: str | None = None) -> int | None:
        return self.presign_seconds if (mode or self.url_mode) == "presigned" else None


# The parts of boto3's environment that change which client a process gets.
_CHAIN_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


def s3_client(pool_size: int = 16, read_timeout: float = 30.0, access: AwsAccess | None = None) -> Any:
    """One client per process and configuration (clients are thread-safe and hold the connection pool).

    Each request is retried by botocore where it failed (standard mode: 5xx, SlowDown, throttling,
    timeouts and dropped connections; 3 attempts), as boto3's own chain configures it
    (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE). What still fails is left to the task's retries.
    `access` (from a Prefect AwsCredentials block) takes the place of the chain's keys, profile,
    region and endpoint where it sets them.
    """
    return _s3_client(pool_size, read_timeout, tuple(os.environ.get(name) for name in _CHAIN_ENV), access)


@lru_cache(maxsize=8)
def _s3_client(
    pool_size: int, read_timeout: float, chain: tuple[str | None, ...], access: AwsAccess | None
) -> Any:
    from botocore.config import Config

    # botocore's own default is still its "legacy" mode (5 attempts, fewer faults retried).
    retries: Any = None if os.environ.get("AWS_RETRY_MODE") else {"mode": "standard"}
    config = Config(
        retries=retries,
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=pool_size,
        signature_version="s3v4",
    )
    given = {k: v for k, v in (access.client_kwargs() if access else {}).items() if v}
    endpoint = given.pop("endpoint_url", None)
    with _building:  # a boto3 session is not thread-safe
        session = _session(chain, tuple(sorted(given.items())))
        client = session.client("s3", config=config, **({"endpoint_url": endpoint} if endpoint else {}))
    from botocore.handlers import add_expect_header

    client.meta.events.unregister("before-call.s3", add_expect_header)
    client.meta.events.register("before-call.s3", _expect_for_large_bodies)
    return client


_building = threading.Lock()


def _transfers(client: Any) -> Any:
    """One CRT transfer manager per client (per process), built once even when `prepare` and
    `put_files` ask at the same time."""
    with _preparing:
        return _build_transfers(client)


_preparing = threading.Lock()


@lru_cache(maxsize=8)
def _build_transfers(client: Any) -> Any:
    """The CRT's S3 client, signed with the same credentials and sent to the same endpoint and
    region as `client`, addressed the same way.

    boto3 builds these parts itself only for AWS (https, its own endpoint resolution, one per
    machine): here they are aimed at whatever endpoint the client has. ImportError without awscrt.
    """
    import botocore.session
    from awscrt.io import (
        ClientBootstrap,
        ClientTlsContext,
        DefaultHostResolver,
        EventLoopGroup,
        TlsContextOptions,
    )
    from awscrt.s3 import S3Client, S3RequestTlsMode, S3RetryConfig
    from botocore.config import Config
    from botocore.exceptions import NoCredentialsError
    from s3transfer.crt import (
        BotocoreCRTCredentialsWrapper,
        BotocoreCRTRequestSerializer,
        CRTTransferManager,
    )

    endpoint = str(client.meta.endpoint_url)
    region = client.meta.region_name or "us-east-1"
    attempts = _attempts(client)
    if attempts <= 1:  # the CRT reads 0 retries as "its default of 5": boto3's threads do as asked
        raise ImportError("AWS_MAX_ATTEMPTS=1: no retries, which the AWS CRT cannot be told")
    credentials = client._get_credentials()  # as boto3's own CRT path gets them
    if credentials is None:
        raise NoCredentialsError()
    # As s3transfer's create_s3_crt_client builds it, with the client's attempts per request
    # (AWS_MAX_ATTEMPTS, 3 in standard mode) instead of the CRT's own 6.
    loops = EventLoopGroup()
    tls = None
    if (bundle := os.environ.get("AWS_CA_BUNDLE")) and endpoint.startswith("https://"):
        options = TlsContextOptions()
        options.override_default_trust_store_from_path(ca_filepath=bundle)
        tls = ClientTlsContext(options).new_connection_options()
    crt = S3Client(
        bootstrap=ClientBootstrap(loops, DefaultHostResolver(loops)),
        region=region,
        credential_provider=BotocoreCRTCredentialsWrapper(credentials).to_crt_credentials_provider(),
        tls_mode=S3RequestTlsMode.DISABLED if endpoint.startswith("http://") else S3RequestTlsMode.ENABLED,
        tls_connection_options=tls,
        throughput_target_gbps=10.0,
        retry_config=S3RetryConfig(max_retries=attempts - 1),
    )
    config = Config(s3=client.meta.config.s3, signature_version="s3v4")
    serializer = _serializer(BotocoreCRTRequestSerializer)(
        botocore.session.Session(), {"region_name": region, "endpoint_url": endpoint, "config": config}
    )
    return CRTTransferManager(crt, serializer)


def _attempts(client: Any) -> int:
    """Attempts per request that `client` makes (botocore's retry config: AWS_MAX_ATTEMPTS or mode)."""
    retries = client.meta.config.retries or {}
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    if "max_attempts" in retries:
        return int(retries["max_attempts"]) + 1
    return 5 if retries.get("mode", "legacy") == "legacy" else 3


# Per-request headers botocore adds that must not be copied from one request to the next.
_PER_REQUEST = frozenset({"content-length", "amz-sdk-invocation-id", "amz-sdk-request", "expect"})


def _serializer(base: type) -> type:
    """s3transfer's request serializer, with PutObject requests built from a template.

    s3transfer has botocore build every request as a whole API call (parameter checks, endpoint
    rules, a dozen event hooks): ~1.3 ms of CPU per object, most of the upload's own CPU. botocore
    builds the first PutObject per bucket and headers; the next keys take its method, path prefix
    and headers with their own key (quoted as botocore quotes it) and length. The CRT signs each.
    """
    import awscrt.http
    from botocore.utils import percent_encode

    class TemplateSerializer(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._templates: dict[tuple[Any, ...], tuple[str, str, list[tuple[str, str]]] | None] = {}

        def serialize_http_request(self, transfer_type: str, future: Any) -> Any:
            call = future.meta.call_args
            length = call.extra_args.get("ContentLength")
            if transfer_type != "put_object" or length is None:
                return super().serialize_http_request(transfer_type, future)
            shape = tuple(sorted((k, str(v)) for k, v in call.extra_args.items() if k != "ContentLength"))
            sig = (call.bucket, shape)
            quoted = percent_encode(call.key, safe="/~")
            if sig in self._templates:
                template = self._templates[sig]
                if template is not None:
                    method, prefix, headers = template
                    request = awscrt.http.HttpRequest(
                        method, prefix + quoted, awscrt.http.HttpHeaders(headers)
                    )
                    request.headers.set("Content-Length", str(length))
                    return request
                return super().serialize_http_request(transfer_type, future)
            request = super().serialize_http_request(transfer_type, future)
            path = str(request.path)
            keep = [(k, v) for k, v in request.headers if k.lower() not in _PER_REQUEST]
            # A path that is not prefix + key (a query string, another quoting): no template.
            usable = "?" not in path and path.endswith(quoted)
            self._templates[sig] = (request.method, path[: len(path) - len(quoted)], keep) if usable else None
            return request

    return TemplateSerializer


@lru_cache(maxsize=8)
def _session(chain: tuple[str | None, ...], given: tuple[tuple[str, Any], ...]) -> Any:
    """One boto3 session per credential chain: its loader keeps the S3 model it parsed, so a second
    client (the upload's 16 connections after the 2-connection check) takes ~4 ms instead of the
    ~60 ms a new session's first client takes (~190 ms measured inside a sync on two busy cores)."""
    import boto3

    settings: dict[str, Any] = dict(given)
    return boto3.session.Session(**settings)


EXPECT_FROM = 1 << 20  # bytes


def _expect_for_large_bodies(model: Any, params: dict[str, Any], **kwargs: Any) -> None:
    """botocore asks the server for `100 Continue` before every file-like body, whatever its size (and
    reads that answer a byte per system call): for a 6 KB thumbnail that is a round trip and ~25
    reads under the GIL per object. Here only bodies of EXPECT_FROM bytes or more ask first."""
    from botocore.handlers import add_expect_header
    from botocore.utils import determine_content_length

    body = params.get("body")
    if hasattr(body, "read") and (determine_content_length(body) or 0) >= EXPECT_FROM:
        add_expect_header(model, params, **kwargs)
