"""What a sync refuses before changing anything: a root that vanished, a mass removal (pure checks)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from facelogin.sync.guard import SyncRefused, check_images_root, check_removals


def test_a_root_with_user_folders_passes(tmp_path: Path) -> None:
    (tmp_path / "Ann").mkdir()
    check_images_root(tmp_path)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.write_bytes(b"x"), "is not a directory"),
        (lambda root: root.mkdir(), "holds no user folders: if it is a network share, is it mounted?"),
        (lambda root: (root.mkdir(), (root / ".hidden").mkdir()), "holds no user folders"),
        (lambda root: (root.mkdir(), (root / "ann_01.jpg").write_bytes(b"x")), "not at one user's folder"),
    ],
    ids=["missing", "a-file", "empty", "only-hidden", "one-users-folder"],
)
def test_a_root_that_looks_like_a_mistake_is_refused_naming_it(
    make: object, says: str, tmp_path: Path
) -> None:
    root = tmp_path / "images"
    make(root)  # type: ignore[operator]
    with pytest.raises(SyncRefused, match=says) as info:
        check_images_root(root)
    assert str(root) in str(info.value) and "FACELOGIN_IMAGES" in str(info.value)


def test_links_that_lead_nowhere_do_not_stop_the_check(tmp_path: Path) -> None:
    """A loop or a broken link beside the users is discovery's to name; the root is fine."""
    (tmp_path / "Ann").mkdir()
    (tmp_path / "Loop_Folder").symlink_to("Loop_Folder")
    (tmp_path / "Gone").symlink_to("nowhere")
    check_images_root(tmp_path)
    (tmp_path / "Ann").rmdir()
    with pytest.raises(SyncRefused, match="holds no user folders"):  # links are no users
        check_images_root(tmp_path)


def test_an_empty_root_is_allowed_only_when_pruning_on_purpose(tmp_path: Path) -> None:
    check_images_root(tmp_path, allow_empty=True)


def test_an_unreadable_root_is_refused(
    shared_tmp: Path, unprivileged: Callable[[], AbstractContextManager[None]]
) -> None:
    root = shared_tmp / "images"
    (root / "Ann").mkdir(parents=True)
    root.chmod(0)
    with unprivileged(), pytest.raises(SyncRefused, match="cannot be read"):
        check_images_root(root)


@pytest.mark.parametrize(
    ("known", "removed", "allow", "prune", "refused"),
    [
        (6, [], 0, False, False),
        (6, ["A"], 0, False, False),  # one user leaving is ordinary
        (6, ["A", "B"], 0, False, True),  # two of six: more than one and more than 10 %
        (6, ["A", "B"], 2, False, False),  # confirmed
        (6, ["A", "B", "C"], 2, False, True),  # confirmed for fewer than would go
        (6, ["A", "B", "C", "D", "E", "F"], 0, True, False),  # --prune
        (100, ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"], 0, False, False),  # exactly 10 %
        (100, [f"U{i}" for i in range(11)], 0, False, True),
    ],
)
def test_mass_removals_need_confirming(
    known: int, removed: list[str], allow: int, prune: bool, refused: bool
) -> None:
    if not refused:
        check_removals(known, removed, allow, prune)
        return
    with pytest.raises(SyncRefused) as info:
        check_removals(known, removed, allow, prune)
    message = str(info.value)
    assert f"remove {len(removed)} of {known} users" in message and removed[0] in message
    assert f"--allow-removals {len(removed)}" in message and "--prune" in message


def user_tree(root: Path, *users: str) -> Path:
    for user in users:
        (root / user).mkdir(parents=True)
        (root / user / f"{user.lower()}_01.jpg").write_bytes(b"x")
    return root


@pytest.mark.parametrize(
    ("on_disk", "recorded", "stops", "removed", "kept"),
    [
        (None, ["Ann", "Bob", "Cy"], "does not exist", [], []),  # a vanished root removes nobody
        ((), ["Ann", "Bob", "Cy"], "holds no user folders", [], []),  # nor does an unmounted share
        (("Ann", "Bob", "Cy"), ["Ann", "Bob", "Cy"], None, [], []),
        (("Ann", "Bob"), ["Ann", "Bob", "Cy"], None, ["Cy"], []),  # one user leaving is ordinary
        (("Ann",), ["Ann", "Bob", "Cy"], None, [], ["Bob", "Cy"]),  # two of three: refused
        (("Ann", "New"), ["Ann", "Bob"], None, ["Bob"], []),
    ],
    ids=["missing", "empty", "all-there", "one-gone", "two-gone", "one-gone-one-new"],
)
def test_forecast_is_the_sync_guards_verdict(
    tmp_path: Path,
    on_disk: tuple[str, ...] | None,
    recorded: list[str],
    stops: str | None,
    removed: list[str],
    kept: list[str],
) -> None:
    from facelogin.sync.discover import user_folders
    from facelogin.sync.guard import forecast

    root = tmp_path / "images"
    if on_disk is not None:
        root.mkdir()
        user_tree(root, *on_disk)
    folders, unreadable = user_folders(root) if on_disk else ({}, set())

    verdict = forecast(root, folders, unreadable, recorded)

    assert (verdict.stops, verdict.removed, verdict.kept) == (stops, removed, kept)
    if kept:  # the sync itself refuses the same removal, with the message users shows
        with pytest.raises(SyncRefused) as info:
            check_removals(len(recorded), kept)
        assert verdict.refusal == str(info.value)
    else:
        assert verdict.refusal is None


def test_user_folders_sees_what_discovery_sees(tmp_path: Path) -> None:
    from facelogin.sync.discover import discover_photos, user_folders

    root = user_tree(tmp_path / "images", "Ann", "Bob")
    (root / "Bob" / "bob_02.png").write_bytes(b"y")
    (root / "Bob" / "notes.txt").write_bytes(b"z")
    (root / "Empty").mkdir()
    (root / ".hidden").mkdir()
    (root / "loose.jpg").write_bytes(b"x")
    (root / "Link").symlink_to(tmp_path, target_is_directory=True)  # leaves the root: not a user

    counts, unreadable = user_folders(root)

    assert counts == {"Ann": 1, "Bob": 2, "Empty": 0} and unreadable == set()
    assert set(counts) == set(discover_photos(root).users)


def test_an_unreadable_user_folder_is_not_gone(
    shared_tmp: Path, unprivileged: Callable[[], AbstractContextManager[None]]
) -> None:
    from facelogin.sync.discover import user_folders
    from facelogin.sync.guard import forecast

    root = user_tree(shared_tmp / "images", "Ann", "Bob", "Cy")
    (root / "Bob").chmod(0)
    with unprivileged():
        counts, unreadable = user_folders(root)
        verdict = forecast(root, counts, unreadable, ["Ann", "Bob", "Cy"])
    assert set(counts) == {"Ann", "Cy"} and unreadable == {"Bob"}
    assert verdict.removed == [] and verdict.kept == []
