"""The stat cache: each photo's size, mtime, inode and ctime with its sha256, so an unchanged
photo is not read again. A file private to the state directory; a lost or damaged one only costs
one run of hashing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facelogin.files import write_atomic

FORMAT = 1


def load(path: Path) -> dict[str, list[Any]]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("photos"), dict):
        return {}
    return {k: v for k, v in data["photos"].items() if isinstance(v, list) and len(v) == 5}


def save(path: Path, hashes: dict[str, list[Any]]) -> None:
    write_atomic(path, json.dumps({"format": FORMAT, "photos": hashes}, separators=(",", ":")).encode())
