"""Usernames, photo names and object keys."""

from __future__ import annotations

import pytest

from facelogin.naming import is_photo_name, join_key, name_problem, thumb_key


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("matthew_01.jpg", True),
        ("IMG_0001.JPEG", True),
        ("scan.PNG", True),
        ("phone.webp", True),
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
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    found = name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    ("prefix", "size", "user", "file", "key"),
    [
        ("thumbs", 256, "Matthew", "matthew_01.jpg", "thumbs/256/Matthew/matthew_01.jpg"),
        ("thumbs/", 128, "Alex", "alex_02.png", "thumbs/128/Alex/alex_02.jpg"),
        ("", 128, "Alex", "a.b.webp", "128/Alex/a.b.jpg"),
        ("site/a/thumbs", 64, "Zoë", "IMG 1.JPG", "site/a/thumbs/64/Zoë/IMG 1.jpg"),
    ],
)
def test_thumb_key(prefix: str, size: int, user: str, file: str, key: str) -> None:
    assert thumb_key(prefix, size, user, file) == key


def test_join_key_drops_empty_parts() -> None:
    assert join_key("", "encodings/", "latest.json") == "encodings/latest.json"
