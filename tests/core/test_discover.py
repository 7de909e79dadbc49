"""Discovery of users and photos under an images root."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from facelogin.sync.discover import discover_photos

Unprivileged = Callable[[], AbstractContextManager[None]]  # the fixture of tests/core/conftest.py


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_users_photos_and_hashes(tmp_path: Path) -> None:
    root = tmp_path / "images"
    touch(root / "Matthew" / "matthew_02.JPG", b"two")
    touch(root / "Matthew" / "matthew_01.jpg", b"one")
    touch(root / "Matthew" / "notes.txt")
    touch(root / "Matthew" / ".DS_Store")
    touch(root / "Ann" / "any name at all.webp", b"ann")
    (root / "Empty").mkdir()
    touch(root / ".git" / "x.jpg")

    found = discover_photos(root)

    assert list(found.users) == ["Ann", "Empty", "Matthew"]
    assert [p.filename for p in found.users["Matthew"]] == ["matthew_01.jpg", "matthew_02.JPG"]
    assert found.users["Empty"] == []
    one = found.users["Matthew"][0]
    assert one.sha256 == hashlib.sha256(b"one").hexdigest() and one.size == 3
    assert one.ref == "Matthew/matthew_01.jpg"
    assert [(Path(r.path).name, r.reason) for r in found.rejected] == [
        ("notes.txt", "not a photo (a .txt file): only JPEG, PNG, WebP and HEIC photos are synced")
    ]
    assert found.unreadable_users == set() and found.unreadable_photos == set()


def test_unsafe_names_and_escaping_links_are_rejected(tmp_path: Path) -> None:
    root = tmp_path / "images"
    outside = touch(tmp_path / "elsewhere" / "secret.jpg")
    touch(root / "Bad\x07Name" / "a.jpg")
    touch(root / "Ok" / "a.jpg")
    (root / "Ok" / "link.jpg").symlink_to(outside)
    (root / "Escaper").symlink_to(outside.parent, target_is_directory=True)
    touch(root / "loose.jpg")

    found = discover_photos(root)

    assert list(found.users) == ["Ok"]
    assert [p.filename for p in found.users["Ok"]] == ["a.jpg"]
    reasons = {Path(r.path).name: r.reason for r in found.rejected}
    assert "control characters" in reasons["Bad\x07Name"]
    assert reasons["link.jpg"] == "symbolic link leaves the images root"
    assert reasons["Escaper"] == "symbolic link leaves the images root"
    assert "user folder" in reasons["loose.jpg"]


def test_links_inside_the_root_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "images"
    target = touch(root / "Ann" / "a.jpg", b"a")
    touch(root / "Bob" / "b.jpg")
    (root / "Bob" / "shared.jpg").symlink_to(target)
    assert [p.filename for p in discover_photos(root).users["Bob"]] == ["b.jpg", "shared.jpg"]


def test_broken_link_is_rejected_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "images"
    touch(root / "Ann" / "ok.jpg")
    (root / "Ann" / "moved.jpg").symlink_to(root / "Ann" / "was_here.jpg")
    found = discover_photos(root)
    assert [p.filename for p in found.users["Ann"]] == ["ok.jpg"]
    assert [(Path(r.path).name, r.reason) for r in found.rejected] == [
        ("moved.jpg", "cannot be read (broken symbolic link): what was synced from it is kept as it was")
    ]
    # Still there by name (a moved target, an unmounted disk): what was synced is not removed.
    assert found.unreadable_photos == {"Ann/moved.jpg"}


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        discover_photos(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("Ann/anim.gif", "GIF is not supported: save it as JPEG or PNG"),
        ("Ann/scan.tiff", "TIFF is not supported: save it as JPEG or PNG"),
        ("Ann/notes.txt", "not a photo (a .txt file): only JPEG, PNG, WebP and HEIC photos are synced"),
        ("Ann/old/a.jpg", "in a sub-folder of Ann/: move it into Ann/ to enrol it"),
        ("Ann/old/2019/b.png", "in a sub-folder of Ann/: move it into Ann/ to enrol it"),
        ("Ann/old/c.gif", "in a sub-folder of Ann/, and GIF is not supported: save it as JPEG or PNG"),
        ("Ann/x.jpg/inside.jpg", "in a sub-folder of Ann/: move it into Ann/ to enrol it"),
        ("loose.jpg", "photo directly under the images root: put it in a user folder"),
        ("notes.txt", "file directly under the images root: only user folders are synced"),
    ],
)
def test_every_file_left_out_has_a_reason(tmp_path: Path, path: str, reason: str) -> None:
    root = tmp_path / "images"
    touch(root / "Ann" / "ok.jpg")
    touch(root / path)
    found = discover_photos(root)
    assert [(r.path, r.reason) for r in found.rejected] == [(str(root / path), reason)]
    assert [p.filename for p in found.users["Ann"]] == ["ok.jpg"]


def test_heic_photos_are_synced_and_hidden_files_stay_silent(tmp_path: Path) -> None:
    root = tmp_path / "images"
    touch(root / "Ann" / "IMG_0001.HEIC")
    touch(root / "Ann" / "b.heif")
    touch(root / "Ann" / ".DS_Store")
    touch(root / "Ann" / ".trash" / "old.jpg")
    touch(root / "Ann" / "old" / ".DS_Store")
    touch(root / ".DS_Store")
    found = discover_photos(root)
    assert [p.filename for p in found.users["Ann"]] == ["IMG_0001.HEIC", "b.heif"]
    assert found.rejected == []


def make_special(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "named pipe":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))  # the socket file stays after the socket is closed
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
        except PermissionError:
            pytest.skip("creating a device file needs CAP_MKNOD")


@pytest.mark.parametrize("kind", ["named pipe", "socket", "device"])
def test_special_files_are_rejected_without_being_opened(tmp_path: Path, kind: str) -> None:
    """Opening a FIFO blocks until a writer comes: were it opened, this test would hang."""
    root = tmp_path / "images"
    touch(root / "Ann" / "ok.jpg")
    make_special(root / "Ann" / "a.jpg", kind)
    make_special(root / "Ann" / "old" / "b.jpg", kind)
    make_special(root / "Bob", kind)
    (root / "Cid").mkdir()
    (root / "Cid" / "link.jpg").symlink_to(root / "Ann" / "a.jpg")

    found = discover_photos(root)

    assert {u: [p.filename for p in ps] for u, ps in found.users.items()} == {"Ann": ["ok.jpg"], "Cid": []}
    reasons = {str(Path(r.path).relative_to(root)): r.reason for r in found.rejected}
    assert reasons == {
        "Ann/a.jpg": f"not a regular file ({kind}): not read",
        "Ann/old/b.jpg": "in a sub-folder of Ann/: move it into Ann/ to enrol it",
        "Bob": f"not a folder ({kind}): not read",
        "Cid/link.jpg": f"not a regular file ({kind}): not read",
    }
    assert found.unreadable_users == set() and found.unreadable_photos == set()


def test_a_user_folder_linked_to_itself_is_unreadable_and_the_others_sync(tmp_path: Path) -> None:
    root = tmp_path / "images"
    touch(root / "Ann" / "a.jpg")
    touch(root / "Cid" / "c.jpg")
    (root / "Bob").symlink_to("Bob")  # a loop: every lookup of Bob/ fails with ELOOP

    found = discover_photos(root)

    assert list(found.users) == ["Ann", "Cid"]
    assert found.unreadable_users == {"Bob"}
    assert [(r.path, r.reason) for r in found.rejected] == [
        (str(root / "Bob"), "cannot be read (symbolic link loop): what was synced from it is kept as it was")
    ]


def test_a_link_to_the_root_itself_is_rejected_not_walked(tmp_path: Path) -> None:
    root = tmp_path / "images"
    touch(root / "Ann" / "a.jpg")
    (root / "All").symlink_to(".")
    found = discover_photos(root)
    assert list(found.users) == ["Ann"] and found.unreadable_users == set()
    assert [r.reason for r in found.rejected] == ["symbolic link to the images root itself"]


def test_an_unreadable_user_folder_is_listed_apart_and_the_others_sync(
    shared_tmp: Path, unprivileged: Unprivileged
) -> None:
    root = shared_tmp / "images"
    touch(root / "Ann" / "a.jpg")
    touch(root / "Bob" / "b.jpg")
    touch(root / "Cid" / "c.jpg")
    (root / "Bob").chmod(0)

    with unprivileged():
        found = discover_photos(root)

    assert list(found.users) == ["Ann", "Cid"]
    assert found.unreadable_users == {"Bob"}
    assert [(r.path, r.reason) for r in found.rejected] == [
        (str(root / "Bob"), "cannot be read (permission denied): what was synced from it is kept as it was")
    ]


def test_unreadable_photos_are_listed_apart(shared_tmp: Path, unprivileged: Unprivileged) -> None:
    root = shared_tmp / "images"
    touch(root / "Ann" / "a.jpg")
    touch(root / "Ann" / "secret.jpg").chmod(0)
    touch(root / "Ann" / "notes.txt").chmod(0)
    touch(root / "Bob" / "b.jpg")
    (root / "Bob").chmod(0o444)  # names can be listed, but no file in it can be reached

    with unprivileged():
        found = discover_photos(root)

    assert {u: [p.filename for p in ps] for u, ps in found.users.items()} == {"Ann": ["a.jpg"], "Bob": []}
    assert found.unreadable_photos == {"Ann/secret.jpg", "Bob/b.jpg"}
    reasons = {str(Path(r.path).relative_to(root)): r.reason for r in found.rejected}
    assert (
        reasons["Ann/secret.jpg"]
        == "cannot be read (permission denied): what was synced from it is kept as it was"
    )
    assert reasons["Ann/notes.txt"].startswith("not a photo")
    assert reasons["Bob/b.jpg"].startswith("cannot be read (permission denied)")


def test_an_unreadable_root_stops_discovery(shared_tmp: Path, unprivileged: Unprivileged) -> None:
    """With nothing listed, every user would look removed: the run must stop instead."""
    root = shared_tmp / "images"
    touch(root / "Ann" / "a.jpg")
    root.chmod(0)
    with unprivileged(), pytest.raises(PermissionError):
        discover_photos(root)
