"""Environment settings (FACELOGIN_*), read once by the CLI or the flow and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PREFIX = "FACELOGIN_"
# Set by `facelogin sync` while the flow runs against a temporary Prefect API of its own.
TEMPORARY_API_ENV = "FACELOGIN_TEMPORARY_API"

# Old names that still work, and the setting that replaced each (the new name wins when both are set).
RENAMED = {
    "upload_retries": "task_retries",
    "upload_workers": "io_threads",
}
# Old names that no longer do anything, and why.
RETIRED = {
    "retry_delay": "task retries back off 0.5, 1, 2, 4 s ... with jitter, declared with each task",
    "web_attempts": "failed web logins are limited per address and per account, with back-off "
    "(README: login limits)",
}


class _RenamedEnv(PydanticBaseSettingsSource):
    """FACELOGIN_<old name> read into the renamed field."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for old, new in RENAMED.items():
            value = os.environ.get(PREFIX + old.upper())
            if value is not None:
                values[new] = value
        return values


class AwsAccess(BaseModel):
    """AWS access taken from a Prefect AwsCredentials block (else boto3's own chain: AWS_* and profiles)."""

    model_config = ConfigDict(frozen=True)

    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for boto3's Session and client; secrets in clear, for boto3 only."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key.get_secret_value()
            if self.secret_access_key
            else None,
            "aws_session_token": self.session_token.get_secret_value() if self.session_token else None,
            "region_name": self.region,
            "profile_name": self.profile,
            "endpoint_url": self.endpoint_url,
        }


def aws_access_of(credentials: Any) -> AwsAccess:
    """AwsAccess from a prefect-aws AwsCredentials (or MinIOCredentials) block, read by attribute."""
    params = getattr(credentials, "aws_client_parameters", None)
    secret = getattr(credentials, "aws_secret_access_key", None) or getattr(
        credentials, "minio_root_password", None
    )
    token = getattr(credentials, "aws_session_token", None)
    return AwsAccess(
        access_key_id=getattr(credentials, "aws_access_key_id", None)
        or getattr(credentials, "minio_root_user", None),
        secret_access_key=SecretStr(_clear(secret)) if secret else None,
        session_token=SecretStr(_clear(token)) if token else None,
        region=getattr(credentials, "region_name", None),
        profile=getattr(credentials, "profile_name", None),
        endpoint_url=getattr(params, "endpoint_url", None) if params is not None else None,
    )


def _clear(value: Any) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


class Settings(BaseSettings):
    """Where things live and how they are published. Every field has an offline default."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    images: Path = Field(Path("images"), description="The images root: one folder per user.")
    state_dir: Path = Field(
        Path("~/.facelogin"),
        description="Local state: the bundle, and with embedded defaults the object store and database.",
    )
    bucket: str | None = Field(None, description="S3 bucket; unset: a local directory under state_dir.")
    thumbs_prefix: str = "thumbs"
    bundle_prefix: str = "encodings"
    url_mode: Literal["presigned", "public-acl", "base-url"] = "presigned"
    base_url: str | None = Field(None, description="CDN or bucket-policy URL prefix for url_mode=base-url.")
    presign_seconds: int = Field(3600, ge=1, le=604800)
    # A URI may carry a password: kept out of reprs, logs and task parameters shown in the UI.
    mongodb_uri: SecretStr | None = Field(
        None, description="MongoDB URI; unset: an embedded nx-27017 server."
    )
    database: str = "facelogin"
    thumb_sizes: list[int] = Field(default_factory=lambda: [128, 256])
    profile_photos: dict[str, str] = Field(
        default_factory=dict,
        description="username -> file name of the profile photo (default: first by name).",
    )
    detect_max_side: int = Field(
        800, ge=64, description="Detection runs on a copy reduced to this long side."
    )
    upsample: int = Field(0, ge=0, le=3, description="HOG upsampling passes (0: one more try at 1).")
    task_runner: Literal["process", "thread", "dask"] = "process"
    encode_workers: int | None = Field(None, ge=1, description="Encoding processes; default: every core.")
    dask_address: str | None = Field(None, description="Scheduler address for task_runner=dask.")
    io_threads: int = Field(
        16,
        ge=1,
        le=128,
        description="Threads for thumbnails, uploads and deletes; also the S3 connection pool.",
    )
    task_retries: int = Field(
        4,
        ge=0,
        le=10,
        description="Prefect retries of an S3 or MongoDB task that failed on a transient fault.",
    )

    max_removal_share: float = Field(
        0.10,
        ge=0,
        le=1,
        description="A run stops before removing more than this share of the users (and more than one), "
        "unless confirmed with --allow-removals N or --prune.",
    )

    require_remote: bool = Field(
        False,
        description="Refuse to run on embedded defaults (local store, embedded MongoDB): set for workers "
        "and serve processes, whose runs must reach the real bucket and database.",
    )
    # `facelogin web`, the profile page and its browser login.
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs the web session cookie; unset: a random key kept in "
        "state_dir/web-secret (set it when several web processes serve one site).",
    )
    session_minutes: int = Field(
        720,
        ge=1,
        le=60 * 24 * 30,
        description="A web session ends this long after its login, whatever happens.",
    )
    session_idle_minutes: int = Field(
        30, ge=1, le=60 * 24 * 30, description="A web session ends after this long without a request."
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token of the JSON API's admin side (any user's profile image URL); "
        "unset: no admin access.",
    )
    liveness: Literal["challenge", "off"] = Field(
        "challenge",
        description="challenge: a login must answer a one-time challenge (blink, turn) in front of the "
        "camera, so a photo cannot log in; off: the face alone decides (warned about at start, on every "
        "accepted login and by `facelogin doctor`).",
    )
    web_frames: int = Field(
        5,
        ge=1,
        le=20,
        description="Most camera frames one web login request may send (n of k-of-n), with liveness off.",
    )
    web_agree: int = Field(
        3, ge=1, le=20, description="Frames that must agree on one user in a web login (k of k-of-n)."
    )
    web_frame_bytes: int = Field(
        1_500_000, ge=10_000, le=20_000_000, description="Largest encoded camera frame a web login accepts."
    )
    web_frame_pixels: int = Field(
        1920 * 1080, ge=10_000, description="Largest camera frame (width x height) a web login decodes."
    )
    web_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Processes deciding web logins; default one per core; 0: in the web process.",
    )
    web_queue: int = Field(
        48,
        ge=0,
        le=10_000,
        description="Web logins that may wait for a worker; more are told to come back (503).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For / -Proto are believed (JSON list); "
        "unset: none, the TCP peer is the client.",
    )
    public_origin: str | None = Field(
        None,
        description="This site's origin as browsers see it (https://login.example.org), when a proxy "
        "changes the Host header; unset: taken from each request.",
    )
    record_logins: bool = Field(
        False,
        description="`facelogin login` records each decision in MongoDB (`logins`), so a login at the "
        "Pi shows on the web profile page.",
    )
    # Settings from Prefect blocks, read at run time by the flow and by the CLI through one reader
    # (orchestration/blocks.py); the environment's FACELOGIN_BUCKET / FACELOGIN_MONGODB_URI win
    # when also set.
    s3_block: str | None = Field(
        None, description="Name of a prefect-aws S3Bucket block: the bucket and its AwsCredentials."
    )
    aws_credentials_block: str | None = Field(
        None, description="Name of a prefect-aws AwsCredentials block (for FACELOGIN_BUCKET)."
    )
    mongodb_secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the MongoDB URI."
    )
    aws: AwsAccess | None = Field(
        None, description="AWS access from a block; unset: boto3's chain (AWS_PROFILE, AWS_*)."
    )

    _deprecations: list[str] = PrivateAttr(default_factory=list)
    _embedded_uri: str | None = PrivateAttr(None)  # the embedded server's URI, once one is started

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Lowest priority after the environment: a new name always wins over its old one.
        return init_settings, env_settings, _RenamedEnv(settings_cls), dotenv_settings, file_secret_settings

    def model_post_init(self, context: Any, /) -> None:
        self._deprecations = [
            f"{PREFIX}{old.upper()} is deprecated: use {PREFIX}{new.upper()}"
            for old, new in RENAMED.items()
            if PREFIX + old.upper() in os.environ
        ] + [
            f"{PREFIX}{old.upper()} no longer has an effect: {why}"
            for old, why in RETIRED.items()
            if PREFIX + old.upper() in os.environ
        ]

    @field_validator("images", "state_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("thumb_sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        if not value or any(s < 16 or s > 4096 for s in value):
            raise ValueError(f"thumbnail sizes must be between 16 and 4096 px, got {value}")
        return sorted(set(value))

    @property
    def deprecations(self) -> list[str]:
        """One line per old setting name found in the environment, saying what to do instead."""
        return list(self._deprecations)

    @property
    def embedded_store(self) -> bool:
        return not self.bucket

    @property
    def objects_dir(self) -> Path:
        return self.state_dir / "objects"

    @property
    def bundle_dir(self) -> Path:
        return self.state_dir / "bundle"

    @property
    def mongo_dir(self) -> Path:
        return self.state_dir / "mongo"

    @property
    def stat_cache(self) -> Path:
        """Each photo's size, mtime, inode and ctime with its sha256: unchanged photos are not read."""
        return self.state_dir / "stat-cache.json"

    @property
    def login_cache_dir(self) -> Path:
        """Where `facelogin login` on this machine keeps its last good bundle (its default)."""
        return self.state_dir / "login-cache"

    @property
    def web_secret_file(self) -> Path:
        """Where `facelogin web` keeps its session key when FACELOGIN_SESSION_SECRET is not set."""
        return self.state_dir / "web-secret"

    @property
    def staging_dir(self) -> Path:
        return self.state_dir / "staging"

    @property
    def block_names(self) -> dict[str, str]:
        """The Prefect blocks these settings name: setting -> block name."""
        named = {
            "FACELOGIN_S3_BLOCK": self.s3_block,
            "FACELOGIN_AWS_CREDENTIALS_BLOCK": self.aws_credentials_block,
            "FACELOGIN_MONGODB_SECRET_BLOCK": self.mongodb_secret_block,
        }
        return {setting: name for setting, name in named.items() if name}

    def with_blocks(
        self, bucket: str | None = None, aws: AwsAccess | None = None, mongodb_uri: str | None = None
    ) -> Settings:
        """A copy with what the blocks hold; a value set in the environment is kept over a block's."""
        update: dict[str, Any] = {}
        if bucket and not self.bucket:
            update["bucket"] = bucket
        if aws is not None and self.aws is None:
            update["aws"] = aws
        if mongodb_uri and not self.mongodb_uri:
            update["mongodb_uri"] = SecretStr(mongodb_uri)
        return self.model_copy(update=update)

    def with_block_objects(
        self, s3_bucket: Any = None, credentials: Any = None, mongodb_uri: str | None = None
    ) -> Settings:
        """A copy with what loaded Prefect blocks hold: an S3Bucket, an AwsCredentials, a Secret's value."""
        creds = credentials if credentials is not None else getattr(s3_bucket, "credentials", None)
        return self.with_blocks(
            bucket=getattr(s3_bucket, "bucket_name", None),
            aws=aws_access_of(creds) if creds is not None else None,
            mongodb_uri=mongodb_uri,
        )

    def decision_workers(self) -> int:
        """How many processes decide web logins: FACELOGIN_WEB_WORKERS, else one per usable core."""
        import os

        if self.web_workers is not None:
            return self.web_workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, cores or 1)

    @property
    def embedded_catalog(self) -> bool:
        uri = self.mongodb()
        return not uri or uri == self._embedded_uri

    def mongodb(self) -> str | None:
        """The MongoDB URI in clear, for the client that connects with it (and nothing else)."""
        return self.mongodb_uri.get_secret_value() if self.mongodb_uri else None

    def with_mongodb(self, uri: str) -> Settings:
        """A copy that connects to `uri`, the embedded server started for a run."""
        copy = self.model_copy(update={"mongodb_uri": SecretStr(uri)})
        copy._embedded_uri = uri
        return copy


class SettingsError(ValueError):
    """A setting with a value that cannot work; the message names the variable and what it accepts."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and `overrides`), or a SettingsError naming each bad variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = f"--{field}" if field in overrides else PREFIX + field.upper()
            got = error.get("input")
            shown = f" (got {got!r})" if isinstance(got, str | int | float) else ""
            problems.append(f"{name}: {error['msg']}{shown}")
        raise SettingsError("; ".join(problems)) from None
