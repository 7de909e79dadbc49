"""Which install extra provides a module, and the pip command that installs it.

The wheel's core is light (Typer, numpy, Pillow); the rest comes with extras: `pi` (dlib and its
models: what `facelogin login` needs), `s3` (boto3, for s3:// bundles), `camera` (OpenCV),
`plot` (matplotlib), `sync` (Prefect, pymongo, ...: the checkout's side) and `web` (Starlette,
Jinja2, Uvicorn, pymongo: `facelogin web`). A command that
needs a module that is not installed says which command installs it, and exits 2.
"""

from __future__ import annotations

import sys

# Top-level module -> (extra, the PyPI package to install on its own).
MODULES: dict[str, tuple[str, str]] = {
    "boto3": ("s3", "boto3"),
    "botocore": ("s3", "boto3"),
    "s3transfer": ("s3", "boto3"),
    "dlib": ("pi", "dlib-bin"),
    "face_recognition_models": ("pi", "face_recognition_models"),
    "cv2": ("camera", "opencv-python-headless"),
    "matplotlib": ("plot", "matplotlib"),
    "prefect": ("sync", "prefect"),
    "prefect_aws": ("sync", "prefect-aws"),
    "pymongo": ("sync", "pymongo"),
    "bson": ("sync", "pymongo"),
    "pydantic_settings": ("sync", "pydantic-settings"),
    "pydantic": ("sync", "pydantic-settings"),
    "face_recognition": ("sync", "face_recognition"),
    "rich": ("sync", "rich"),
    "pillow_heif": ("sync", "pillow-heif"),
    "prefect_dask": ("dask", "prefect-dask"),
    "starlette": ("web", "starlette"),
    "jinja2": ("web", "jinja2"),
    "uvicorn": ("web", "uvicorn"),
}


def missing_module_hint(name: str | None) -> str:
    """What to run when importing `name` failed: `python -m pip install PACKAGE` and the extra holding it."""
    top = (name or "").split(".")[0]
    extra, package = MODULES.get(top, (None, top or "?"))
    pip = f"{sys.executable} -m pip install {package}"
    if extra is None:
        return f"the Python module {top!r} is not installed: `{pip}`"
    return (
        f"the Python module {top!r} is not installed: run `{pip}` "
        f"(it comes with the `{extra}` extra: pip install 'facelogin[{extra}]')"
    )
