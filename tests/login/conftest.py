"""Fixtures for the login tests: the real sample photos and bundles encoded from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelogin.adapters.stores import DirStore
from facelogin.bundle import build_bundle, publish_bundle
from tests.photos import per_user

USERS = ["Alex_Lacamoire", "Biden", "Kit_Harington", "Lin_Manuel_Miranda", "Obama", "Rose_Leslie"]


@pytest.fixture(scope="session")
def encodings(faces: Path) -> dict[str, list[list[float]]]:
    """Every enrolment photo's encoding, per user, computed once for the session."""
    out = per_user(faces / "images")
    assert sorted(out) == USERS
    return out


def make_bundle(directory: Path, encodings: dict[str, list[list[float]]]) -> Path:
    profiles = {
        user: {"key": f"thumbs/{user}.jpg", "url": f"https://cdn.example/{user}.jpg"} for user in encodings
    }
    data, manifest = build_bundle(encodings, profiles, "2026-01-01T00:00:00+00:00", {"detector": "hog"})
    publish_bundle(DirStore(directory), "", data, manifest)
    return directory


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, encodings: dict[str, list[list[float]]]) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle"), encodings)
