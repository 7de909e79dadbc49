"""The MongoDB catalog against a real wire-protocol server (nx-27017) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from facelogin.adapters.catalog import Catalog, is_transient
from facelogin.adapters.embedded import NxServer


@pytest.fixture
def catalog(nx: NxServer, database: str) -> Iterator[Catalog]:
    client: MongoClient[dict[str, Any]] = MongoClient(nx.uri)
    with client:
        catalog = Catalog(client[database])
        catalog.ensure_indexes()
        yield catalog


def doc(user: str, photos: list[str]) -> dict[str, Any]:
    return {
        "username": user,
        "photos": [{"filename": f, "sha256": f"sha-{f}", "status": "encoded"} for f in photos],
    }


def test_upsert_is_idempotent(catalog: Catalog) -> None:
    catalog.upsert_users([doc("Ann", ["a.jpg"]), doc("Bob", ["b.jpg"])])
    catalog.upsert_users([doc("Ann", ["a.jpg", "a2.jpg"]), doc("Bob", ["b.jpg"])])
    assert catalog.users.count_documents({}) == 2
    assert set(catalog.load_photos()["Ann"]) == {"a.jpg", "a2.jpg"}
    ann = catalog.user("Ann")
    assert ann is not None and "created_at" in ann and "updated_at" in ann


def test_username_is_unique(catalog: Catalog) -> None:
    catalog.users.insert_one({"username": "Ann"})
    with pytest.raises(DuplicateKeyError):
        catalog.users.insert_one({"username": "Ann"})


def test_encodings_by_content_hash(catalog: Catalog) -> None:
    enc = [0.5] * 128
    assert catalog.save_encodings({"s1": enc, "s2": [0.1] * 128}, {"dlib": "20"}) == 2
    assert catalog.save_encodings({"s1": enc}, {"dlib": "20"}) == 1
    assert catalog.faces.count_documents({}) == 2
    assert catalog.load_encodings(["s1", "missing"]) == {"s1": enc}
    assert catalog.remove_encodings_except(["s2"]) == 1
    assert set(catalog.load_encodings(["s1", "s2"])) == {"s2"}


def test_remove_users(catalog: Catalog) -> None:
    catalog.upsert_users([doc("Ann", []), doc("Bob", [])])
    assert catalog.remove_users(["Bob", "Nobody"]) == 1
    assert list(catalog.load_photos()) == ["Ann"]
    assert catalog.remove_users([]) == 0


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (AutoReconnect("primary stepped down"), True),
        (OperationFailure("bad query"), False),
        (KeyError(), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
