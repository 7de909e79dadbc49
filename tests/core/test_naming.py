"""Usernames, photo names and object keys."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pytest

from facelogin.naming import format_problem, is_photo_name, join_key, name_problem, suffix_of, thumb_key


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("matthew_01.jpg", True),
        ("IMG_0001.JPEG", True),
        ("scan.PNG", True),
        ("phone.webp", True),
        ("IMG_0001.HEIC", True),
        ("burst.heif", True),
        ("anim.gif", False),
        (".hidden.jpg", False),
        ("notes.txt", False),
        ("photo.jpg.bak", False),
        ("jpg", False),
    ],
)
def test_is_photo_name(name: str, ok: bool) -> None:
    assert is_photo_name(name) is ok


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Matthew", None),
        ("Zoë Ångström", None),
        ("Lin_Manuel_Miranda", None),
        ("", "empty"),
        ("..", "relative path"),
        (".", "relative path"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("bad\x00name", "control characters"),
        ("tab\tname", "control characters"),
        ("x" * 129, "longer than 128 bytes"),
        (" padded", "white space"),
        (os.fsdecode(b"Bytes_\xff\xfe"), "not valid UTF-8"),  # a folder name that is not UTF-8
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    found = name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a.jpg", None),
        ("IMG_0001.HEIC", None),
        ("anim.gif", "GIF is not supported: save it as JPEG or PNG"),
        ("scan.TIFF", "TIFF is not supported: save it as JPEG or PNG"),
        ("DSC_0001.NEF", "camera RAW (NEF) is not supported: save it as JPEG or PNG"),
        ("notes.txt", "not a photo (a .txt file): only JPEG, PNG, WebP and HEIC photos are synced"),
        ("README", "not a photo (a file without a suffix): only JPEG, PNG, WebP and HEIC photos are synced"),
        ("IMG_0001.MOV", "not a photo (a .mov file)"),
    ],
)
def test_format_problem_names_the_format_and_what_to_do(name: str, problem: str | None) -> None:
    found = format_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


@pytest.mark.parametrize(
    ("prefix", "size", "user", "file", "key"),
    [
        ("thumbs", 256, "Matthew", "matthew_01.jpg", "thumbs/256/Matthew/matthew_01.jpg"),
        ("thumbs/", 128, "Alex", "alex_02.png", "thumbs/128/Alex/alex_02.png.jpg"),
        ("", 128, "Alex", "a.b.webp", "128/Alex/a.b.webp.jpg"),
        ("site/a/thumbs", 64, "Zoë", "IMG 1.JPG", "site/a/thumbs/64/Zoë/IMG 1.JPG"),
        ("thumbs", 64, "Ann", "scan.jpeg", "thumbs/64/Ann/scan.jpeg"),
        ("thumbs", 64, "Ann", "IMG_0001.HEIC", "thumbs/64/Ann/IMG_0001.HEIC.jpg"),
    ],
)
def test_thumb_key(prefix: str, size: int, user: str, file: str, key: str) -> None:
    assert thumb_key(prefix, size, user, file) == key


def test_photos_of_one_folder_get_distinct_thumbnail_keys_but_one_pair() -> None:
    names = ["face.jpg", "face.png", "face.webp", "face.jpeg", "face.JPG", "face.heic", "face.png.jpg"]
    keys = [thumb_key("thumbs", 256, "Ann", n) for n in names]
    assert keys[0] == "thumbs/256/Ann/face.jpg"  # a JPEG keeps its key: no migration for most photos
    assert len(set(keys[:-1])) == len(names) - 1
    # The one clash left: a real `face.png.jpg` beside `face.png` (the plan refuses one of them).
    assert keys[-1] == keys[1]


def test_join_key_drops_empty_parts() -> None:
    assert join_key("", "encodings/", "latest.json") == "encodings/latest.json"


@pytest.mark.parametrize(
    "name",
    [
        "a.jpg",
        "A.JPG",
        "a.",
        ".a",
        "..a",
        "a..",
        "a.b.c",
        "noext",
        ".",
        "..",
        "a.tar.GZ",
        " .png",
        "é.HEIC",
        "x.j pg",
    ],
)
def test_suffix_of_agrees_with_pathlib(name: str) -> None:
    assert suffix_of(name) == PurePosixPath(name).suffix.lower()


@pytest.mark.parametrize(
    "name", ["tab\there", "zero\u200bwidth", "line\u2028sep", "bell\x07", "del\x7f", "bidi\u202eexe.jpg"]
)
def test_control_and_format_characters_are_refused(name: str) -> None:
    assert "control characters" in (name_problem(name) or "")
