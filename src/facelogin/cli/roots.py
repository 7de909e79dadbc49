"""Which images root a command works on: one answer, the same for every command, said in one line.

`sync`, `users`, `doctor`, `status`, `enroll` and `remove` all ask here. In order:
--images; FACELOGIN_IMAGES (a relative one is taken from the current directory, as the sync takes
it); the root the `sync-now` deployment reads (Prefect API); the root the last sync on this state
directory read (facelogin.sync.lastrun); ./images. A command that writes (enroll, remove) refuses
the ./images fallback outside the checkout, where no sync would read it.
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
    source: str  # which rule: --images, FACELOGIN_IMAGES, how the deployment says it, last sync, default
    reason: str  # why, for the operator: "the root the last sync on ~/.facelogin read, 2026-12-04 16:23"
    deployment_root: Path | None = None  # what the deployment reads, when the server says
    warning: str | None = None

    @property
    def line(self) -> str:
        """The one line every command prints (stderr) so the operator sees which root, and why."""
        return f"images root: {self.path} ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "source": self.source, "reason": self.reason, "warning": self.warning}


def images_root(option: Path | None, settings: Any, ask_api: bool = True, writing: bool = False) -> Root:
    """The images root, by the one rule above; `writing` refuses a ./images no sync would read."""
    setting: Path = settings.images
    from_env = "FACELOGIN_IMAGES" in os.environ
    relative = setting if from_env and not setting.is_absolute() else Path("images")
    deployed = _deployment_root(relative) if ask_api else None
    if option is not None:
        root = Root(option.expanduser().resolve(), "--images", "given by --images")
    elif from_env:
        root = Root(setting.resolve(), "FACELOGIN_IMAGES", "set by FACELOGIN_IMAGES")
    elif deployed is not None:
        return Root(
            deployed[0], deployed[1], f"what the sync-now deployment reads: {deployed[1]}", deployed[0]
        )
    elif (synced := _last_synced(settings.state_dir)) is not None:
        why = f"the root the last sync on {settings.state_dir} read, {synced[1]}"
        root = Root(synced[0], "last sync", why)
    else:
        root = _default(setting, settings.state_dir, writing)
    if deployed is not None:
        root.deployment_root = deployed[0]
        if deployed[0].resolve() != root.path.resolve():
            root.warning = (
                f"the sync deployment reads {deployed[0]} ({deployed[1]}), not {root.path}: this run is told "
                "to use the root given here, the nightly sync is not"
            )
    return root


def _default(setting: Path, state_dir: Path, writing: bool) -> Root:
    if writing and not _is_checkout(Path.cwd()):
        raise RootUnknown(
            f"cannot tell which images root the sync reads: no --images, no FACELOGIN_IMAGES, no sync "
            f"recorded in {state_dir}, and the default {setting} is relative to the checkout the sync runs "
            f"in, but this is {Path.cwd()}. Give --images, or set FACELOGIN_IMAGES to an absolute path (the "
            "same as the worker's or serve process's); with a Prefect server (PREFECT_API_URL) running the "
            "deployments, the root they read is used."
        )
    return Root(
        setting.resolve(),
        "default",
        f"the default ./{setting}: no --images, FACELOGIN_IMAGES, deployment or sync recorded in {state_dir}",
    )


def _last_synced(state_dir: Path) -> tuple[Path, str] | None:
    from facelogin.cli.common import local_time
    from facelogin.sync import lastrun

    found = lastrun.synced_root(state_dir.expanduser())
    if found is None:
        return None
    return found[0], local_time(found[1])


def _is_checkout(folder: Path) -> bool:
    return (folder / "prefect.yaml").is_file() and (folder / "flows" / "sync_faces.py").is_file()


def _deployment_root(relative: Path) -> tuple[Path, str] | None:
    """The root the sync-now deployment reads, when a Prefect API is configured and says so."""
    from facelogin.orchestration import api, deployments

    if not api.api_url() or api.api_health() is not None:
        return None
    try:
        info = deployments.read_deployment(deployments.SYNC_NOW)
    except Exception:  # noqa: BLE001 - an API that does not answer tells nothing; the caller decides
        return None
    return deployments.deployment_images(info, relative) if info is not None else None
