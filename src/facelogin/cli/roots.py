"""Which images root a command works on: the one the sync reads, never a guess from the current directory.

`facelogin enroll` and `facelogin remove` change the images root. Run from another directory with
a relative default, they used to write into <cwd>/images, which no sync reads. The root is, in order:
--images; an absolute FACELOGIN_IMAGES; the root the `sync-now` deployment records or runs in
(Prefect API); a relative setting when this directory is the checkout the sync runs from.
Anything else is refused with what to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RootUnknown(RuntimeError):
    """The images root the sync reads cannot be told from here; the message says what to set."""


@dataclass
class Root:
    path: Path
    source: str  # how it was found, for the user: "--images", "FACELOGIN_IMAGES", ...
    deployment_root: Path | None = None  # what the deployment reads, when the server says
    warning: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "source": self.source, "warning": self.warning}


def images_root(option: Path | None, setting: Path, ask_api: bool = True) -> Root:
    """The images root to change; `setting` is Settings.images (FACELOGIN_IMAGES or ./images)."""
    deployed = _deployment_root(setting if not setting.is_absolute() else Path("images")) if ask_api else None
    if option is not None:
        root = Root(option.expanduser().resolve(), "--images")
    elif "FACELOGIN_IMAGES" in os.environ and setting.is_absolute():
        root = Root(setting, "FACELOGIN_IMAGES")
    elif deployed is not None:
        return Root(deployed[0], deployed[1], deployed[0])
    elif _is_checkout(Path.cwd()):
        root = Root(setting.resolve(), "the checkout the sync runs from (the current directory)")
    else:
        raise RootUnknown(
            f"cannot tell which images root the sync reads: {_setting_text(setting)} is relative to the "
            f"directory the sync runs in, and this is {Path.cwd()}, not the checkout. Set FACELOGIN_IMAGES "
            "to an absolute path (the same as the worker's or serve process's), or give --images; with a "
            "Prefect server (PREFECT_API_URL) running the deployments, the root they read is used."
        )
    if deployed is not None:
        root.deployment_root = deployed[0]
        if deployed[0].resolve() != root.path.resolve():
            root.warning = (
                f"the sync deployment reads {deployed[0]} ({deployed[1]}), not {root.path}: this run is told "
                "to use the root given here, the nightly sync is not"
            )
    return root


def _setting_text(setting: Path) -> str:
    return f"FACELOGIN_IMAGES={setting}" if "FACELOGIN_IMAGES" in os.environ else f"the default {setting}"


def _is_checkout(folder: Path) -> bool:
    return (folder / "prefect.yaml").is_file() and (folder / "flows" / "sync_faces.py").is_file()


def _deployment_root(relative: Path) -> tuple[Path, str] | None:
    """The root the sync-now deployment reads, when a Prefect API is configured and says so."""
    from facelogin.cli import runs

    if not runs.api_url() or runs.api_health() is not None:
        return None
    try:
        info = runs.read_deployment(runs.SYNC_NOW)
    except Exception:  # noqa: BLE001 - an API that does not answer tells nothing; the caller decides
        return None
    return runs.deployment_images(info, relative) if info is not None else None
