"""Discovery of users and photos under an images root."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from facelogin.sync.discover import discover_photos


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
    assert found.rejected == []


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
    assert [(Path(r.path).name, r.reason) for r in found.rejected] == [("moved.jpg", "broken symbolic link")]


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        discover_photos(tmp_path / "nowhere")
