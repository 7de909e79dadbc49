"""Broken entries in the images root, as an operator's tree has them: each is named with its reason,
and every other user syncs (`facelogin sync --json`, exit 0)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.cli.test_cli import facelogin

pytestmark = pytest.mark.slow

# entry (relative to the images root) -> what its reason must say
EXPECTED = {
    "Loop_Folder": "symbolic link loop",  # ln -s Loop_Folder images/Loop_Folder
    "A_Loop": "symbolic link loop",  # A -> B -> A
    "B_Loop": "symbolic link loop",
    "Gone": "broken symbolic link",
    "Outside": "symbolic link leaves the images root",
    "Root": "symbolic link to the images root itself",
    "pipe": "not a folder (named pipe)",
    "sock": "not a folder (socket)",
    "notes.txt": "file directly under the images root",
    "Bad\nName": "contains control characters",
    "Bytes_\ufffd\ufffd": "is not valid UTF-8",
    "Biden/loop.jpg": "symbolic link loop",
    "Biden/gone.jpg": "broken symbolic link",
    "Biden/pipe.jpg": "not a regular file (named pipe)",
    "Biden/bad_\ufffd.jpg": "is not valid UTF-8",
    "Biden/sub/again": "in a sub-folder of Biden/",
}


def broken_tree(faces: Path, root: Path) -> Path:
    images = root / "images"
    for user in ("Biden", "Obama"):
        shutil.copytree(faces / "images" / user, images / user)
    (root / "outside").mkdir()
    (images / "Loop_Folder").symlink_to("Loop_Folder")
    (images / "A_Loop").symlink_to("B_Loop")
    (images / "B_Loop").symlink_to("A_Loop")
    (images / "Gone").symlink_to("nowhere")
    (images / "Outside").symlink_to(root / "outside")
    (images / "Root").symlink_to(".")
    os.mkfifo(images / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(images / "sock"))
    (images / "notes.txt").write_text("hello")
    (images / "Bad\nName").mkdir()
    os.mkdir(os.fsencode(images) + b"/Bytes_\xff\xfe")
    biden = images / "Biden"
    biden.chmod(0o755)
    (biden / "loop.jpg").symlink_to("loop.jpg")
    (biden / "gone.jpg").symlink_to("nothing.jpg")
    os.mkfifo(biden / "pipe.jpg")
    shutil.copyfile(biden / "biden_01.jpg", os.fsencode(biden) + b"/bad_\xff.jpg")
    (biden / "sub").mkdir()
    (biden / "sub" / "again").symlink_to("../sub")
    return images


def test_every_kind_of_broken_entry_is_named_and_the_others_sync(
    faces: Path, served_env: dict[str, str], tmp_path: Path
) -> None:
    images = broken_tree(faces, tmp_path)
    done = facelogin("sync", "--images", str(images), "--json", env=served_env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["users"], summary["encoded"], summary["errors"]) == (2, 5, [])
    assert {row["user"] for row in summary["per_user"]} == {"Biden", "Obama"}
    reasons = {str(Path(r["file"]).relative_to(images)): r["reason"] for r in summary["rejected"]}
    for entry, says in EXPECTED.items():
        assert says in reasons.get(entry, ""), (entry, reasons.get(entry))

    # Nothing of a broken entry is removed or stored; a second run says the same and changes nothing.
    again = facelogin("sync", "--images", str(images), "--json", env=served_env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert (second["encoded"], second["uploaded"], second["removed_users"]) == (0, 0, 0)
    assert {r["file"] for r in second["rejected"]} == {r["file"] for r in summary["rejected"]}
