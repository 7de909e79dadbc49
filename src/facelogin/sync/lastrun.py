"""The last local sync, kept in the state directory: the images root it read and what it did.

`facelogin sync` writes it at the end of every run that is not a dry run (`last-sync.json`, 0600,
replaced atomically). Two things read it: the other commands, to know which images root the sync
uses when nothing else says (facelogin.cli.roots), and `facelogin status` without a Prefect server.
It holds counts, places and the error line, never settings or credentials (the summary's places are
already free of them). A refused run (exit 2) read no images: it is recorded as the last run
(where a state directory is already), and the root of the last run that did read one is kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facelogin.files import write_atomic

FILE = "last-sync.json"
FORMAT = 1
COUNTS = ("users", "photos", "encoded", "unchanged", "rejected", "uploaded", "upserted",
          "removed_users", "deleted_objects", "errors")  # fmt: skip
REFUSED = 2  # `facelogin sync`'s exit code when it stopped before reading or changing anything


def path_in(state_dir: Path) -> Path:
    return state_dir / FILE


def run_record(
    *,
    images: str,
    started: str,
    finished: str,
    exit_code: int,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """One run as recorded: when, exit code, counts and where it read and wrote (from its summary)."""
    counts = None
    if summary:
        counts = {k: len(v) if isinstance(v, list) else v for k, v in summary.items() if k in COUNTS}
    bundle = (summary or {}).get("bundle") or {}
    return {
        "images": images,
        "started": started,
        "finished": finished,
        "exit_code": exit_code,
        "state": _state(exit_code, counts is not None),
        "counts": counts,
        "store": (summary or {}).get("store") or None,
        "catalog": (summary or {}).get("catalog") or None,
        "bundle": {k: bundle.get(k) for k in ("version", "users", "path", "location")} if bundle else None,
        "error": error,
        "url": url,
    }


def _state(exit_code: int, finished_its_work: bool) -> str:
    if exit_code == 0:
        return "Completed"
    if exit_code == REFUSED:
        return "Refused (nothing changed)"
    return "Completed with errors" if finished_its_work else "Failed"


def merged(previous: dict[str, Any] | None, run: dict[str, Any]) -> dict[str, Any]:
    """The record after `run`: it is the last run; the synced root is its own unless it was refused."""
    synced = (previous or {}).get("synced_root")
    if run["exit_code"] != REFUSED:  # it read its images root (all of it, or all but some photos)
        synced = {"path": run["images"], "at": run["finished"]}
    return {"format": FORMAT, "last_run": run, "synced_root": synced}


def load(state_dir: Path) -> dict[str, Any] | None:
    """The record, or None when there is none yet or it cannot be used (the next sync writes it again)."""
    try:
        data = json.loads(path_in(state_dir).read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("last_run"), dict):
        return data
    return None


def synced_root(state_dir: Path) -> tuple[Path, str] | None:
    """The images root the last sync on `state_dir` read, and when (ISO time), if one is recorded."""
    data = load(state_dir) or {}
    root = data.get("synced_root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str):
        return None
    return Path(root["path"]), str(root.get("at") or "")


def save(state_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Record `run` as the last one, atomically; the record written."""
    record = merged(load(state_dir), run)
    write_atomic(path_in(state_dir), (json.dumps(record, indent=2, default=str) + "\n").encode())
    return record
