"""Environment settings (FACELOGIN_*), read once by the CLI or the flow and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where things live and how they are published. Every field has an offline default."""

    model_config = SettingsConfigDict(env_prefix="FACELOGIN_", extra="ignore")

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
    mongodb_uri: str | None = Field(None, description="MongoDB URI; unset: an embedded nx-27017 server.")
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
    upload_workers: int = Field(16, ge=1, le=128)
    upload_retries: int = Field(4, ge=0, le=20)
    retry_delay: float = Field(0.5, ge=0, description="First retry delay in seconds; doubles each retry.")

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
