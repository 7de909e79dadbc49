"""The upload's progress: each object stored is told once, as it is stored, whichever thread stored it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelogin.adapters.stores import DirStore
from facelogin.sync import progress
from facelogin.sync.transfer import upload_staged


@pytest.fixture
def told() -> Iterator[list[int]]:
    done: list[int] = []

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "stage", None) == progress.UPLOADED:
                done.append(int(getattr(record, "done", 0)))

    handler = Listener(level=logging.DEBUG)
    previous = progress.log.level
    progress.log.addHandler(handler)
    progress.log.setLevel(logging.DEBUG)
    yield done
    progress.log.removeHandler(handler)
    progress.log.setLevel(previous)


@pytest.mark.parametrize("threads", [1, 16])
def test_each_object_stored_is_told_once(tmp_path: Path, told: list[int], threads: int) -> None:
    staging = tmp_path / "staging"
    keys = [f"thumbs/128/U{i % 3}/p{i}.jpg" for i in range(40)]
    for key in keys:
        (staging / key).parent.mkdir(parents=True, exist_ok=True)
        (staging / key).write_bytes(b"\xff\xd8\xff" + key.encode())
    store = DirStore(tmp_path / "store")

    assert upload_staged(store, keys, staging, threads) == len(keys)
    assert told == [1] * len(keys)
    assert upload_staged(store, keys, staging, threads) == 0  # a retry: nothing left to send or tell
    assert len(told) == len(keys)
    assert sorted(store.keys("thumbs/")) == sorted(keys)
