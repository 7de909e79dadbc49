"""The encoding pool `facelogin sync` starts while Prefect starts: only when the stat cache shows new or
changed photos, handed to the flow's encoding stage, stopped when no one takes it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from facelogin.sync import encoders, statcache
from facelogin.sync.discover import discover_photos


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def synced(tmp_path: Path) -> tuple[Path, Path]:
    """An images root and the stat cache a run left of it."""
    root = tmp_path / "images"
    touch(root / "Ann" / "ann_01.jpg", b"one")
    touch(root / "Ann" / "notes.txt")  # not a photo: never in the cache
    touch(root / "Ann" / "bad name?.jpg", b"two")  # rejected by discovery: never in the cache
    touch(root / ".git" / "x.jpg")  # hidden: not a user folder
    touch(root / "Bob" / "bob_01.png", b"three")
    cache = tmp_path / "state" / "stat-cache.json"
    statcache.save(cache, discover_photos(root).hashes)
    return root, cache


def _rewrite(root: Path) -> None:
    path = root / "Ann" / "ann_01.jpg"
    st = path.stat()
    path.write_bytes(b"one")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: the ctime tells


CHANGES: list[tuple[str, Callable[[Path], object], bool]] = [
    ("nothing", lambda root: None, False),
    ("a new photo", lambda root: touch(root / "Bob" / "bob_02.jpg"), True),
    ("a new user", lambda root: touch(root / "Cy" / "cy_01.jpg"), True),
    ("a photo rewritten in place", _rewrite, True),
    ("a photo removed", lambda root: (root / "Bob" / "bob_01.png").unlink(), False),
    ("a text file added", lambda root: touch(root / "Bob" / "readme.txt"), False),
    ("a hidden folder's photo", lambda root: touch(root / ".cache" / "y.jpg"), False),
]


@pytest.mark.parametrize(("change", "make", "expected"), CHANGES, ids=[c[0] for c in CHANGES])
def test_photos_changed_sees_what_discovery_would_hash(
    synced: tuple[Path, Path], change: str, make: Callable[[Path], object], expected: bool
) -> None:
    root, cache = synced
    make(root)
    assert encoders.photos_changed(root, cache) == int(expected)
    hashed = discover_photos(root, statcache.load(cache)).hashed
    assert (hashed > 0) is expected


def test_without_a_stat_cache_every_photo_is_new(synced: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = synced
    everything = discover_photos(root).hashed
    assert everything == 3  # the two photos, and the one whose name discovery rejects after hashing
    assert encoders.photos_changed(root, tmp_path / "nowhere" / "stat-cache.json", most=9) == everything
    assert encoders.photos_changed(tmp_path / "no-root", tmp_path / "nowhere.json") == 0


def test_the_started_pool_is_the_one_taken_and_an_untaken_one_is_stopped() -> None:
    encoders.start_pool(1)
    started = encoders._started
    assert started is not None
    taken = encoders.take_pool(1)
    try:
        assert taken is started[1]
        assert taken.submit(os.getpid).result(timeout=120) != os.getpid()  # a worker of its own
        assert encoders._started is None
    finally:
        taken.shutdown()
    fresh = encoders.take_pool(1)  # nothing started: a new pool
    assert fresh is not taken
    fresh.shutdown()

    encoders.start_pool(1)
    pool = encoders._started[1] if encoders._started else None
    encoders.stop_pool()
    assert pool is not None and encoders._started is None
    with pytest.raises(RuntimeError):
        pool.submit(os.getpid)


def test_photos_changed_counts_up_to_the_most_asked(synced: tuple[Path, Path]) -> None:
    root, cache = synced
    for name in ("bob_02.jpg", "bob_03.jpg", "bob_04.jpg"):
        touch(root / "Bob" / name, name.encode())
    assert encoders.photos_changed(root, cache, most=8) == 3
    assert encoders.photos_changed(root, cache, most=2) == 2
    assert encoders.photos_changed(root, cache) == 1


@pytest.mark.parametrize(
    ("configured", "photos", "expected"),
    [
        (None, 1, 1),
        (4, 1, 1),
        (4, 3, 3),
        (4, 100, 4),
        (2, 0, 1),
        (None, 10_000, os.cpu_count() or 1),
        (3, None, 3),
        (None, None, os.cpu_count() or 1),
    ],
)
def test_no_more_encoders_than_photos(configured: int | None, photos: int | None, expected: int) -> None:
    assert encoders.pool_size(configured, photos) == expected


def test_a_started_pool_larger_than_needed_is_taken_and_a_smaller_one_replaced() -> None:
    encoders.start_pool(2)
    started = encoders._started
    assert started is not None
    taken = encoders.take_pool(1)
    assert taken is started[1]
    taken.shutdown()

    encoders.start_pool(1)
    small = encoders._started
    assert small is not None
    bigger = encoders.take_pool(2)
    try:
        assert bigger is not small[1] and bigger._max_workers == 2
        with pytest.raises(RuntimeError):  # the small one was stopped, not left running
            small[1].submit(os.getpid)
    finally:
        bigger.shutdown()


def test_the_sync_starts_one_encoder_for_one_new_photo(
    synced: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an enrolment of one photo: one process loading the models, not one per core."""
    from contextlib import ExitStack

    from facelogin.cli.sync import start_encoders_early
    from facelogin.settings import Settings

    root, cache = synced
    touch(root / "Cy" / "cy_01.jpg", b"new")
    settings = Settings(images=root, state_dir=cache.parent, encode_workers=4)
    for full, expected in ((False, 1), (True, 4)):
        with ExitStack() as held:
            start_encoders_early(settings, held, full=full)
            assert encoders._started is not None and encoders._started[0] == expected
        assert encoders._started is None  # not taken: stopped with the command
