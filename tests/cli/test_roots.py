"""One answer to "which images root?": --images, FACELOGIN_IMAGES, the sync-now deployment's root,
the root the last sync on this state directory read, ./images (the deployment's rule is checked
against a served deployment in tests/deploy/test_operator_served.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facelogin.cli.roots import RootUnknown, images_root
from facelogin.settings import Settings
from facelogin.sync import lastrun

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_prefect_server() -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


def synced(state: Path, root: Path, code: int = 0) -> None:
    """A sync recorded on `state`, as `facelogin sync` records it."""
    run = lastrun.run_record(images=str(root), started="2026-12-04T16:30:00+00:00",
                             finished="2026-12-04T16:31:00+00:00", exit_code=code)  # fmt: skip
    lastrun.save(state, run)


@pytest.mark.parametrize(
    ("option", "env", "recorded", "source", "picked"),
    [
        ("given", "env", "last", "--images", "given"),
        (None, "env", "last", "FACELOGIN_IMAGES", "env"),
        (None, None, "last", "last sync", "last"),
        (None, None, None, "default", "cwd-images"),
    ],
    ids=["option-first", "then-the-variable", "then-the-last-sync", "then-./images"],
)
def test_the_first_rule_that_answers_wins(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str | None,
    env: str | None,
    recorded: str | None,
    source: str,
    picked: str,
) -> None:
    places = {name: tmp_path / name for name in ("given", "env", "last")} | {
        "cwd-images": tmp_path / "images"
    }
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "state"))
    if env:
        monkeypatch.setenv("FACELOGIN_IMAGES", str(places[env]))
    if recorded:
        synced(tmp_path / "state", places[recorded])

    root = images_root(places[option] if option else None, Settings())

    assert (root.path, root.source) == (places[picked], source)
    assert root.line.startswith(f"images root: {places[picked]} (")
    if source == "last sync":
        assert root.reason.startswith(f"the root the last sync on {tmp_path / 'state'} read, 2026-12-04")


def test_a_relative_variable_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACELOGIN_IMAGES", "photos")
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "state"))
    assert images_root(None, Settings()).path == tmp_path / "photos"


def test_a_refused_sync_does_not_change_the_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "state"))
    synced(tmp_path / "state", tmp_path / "good")
    synced(tmp_path / "state", tmp_path / "typo", code=2)
    assert images_root(None, Settings()).path == tmp_path / "good"


def test_writing_refuses_a_default_no_sync_would_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # not the checkout, no variable, no sync recorded
    with pytest.raises(RootUnknown, match="Give --images, or set FACELOGIN_IMAGES"):
        images_root(None, Settings(), writing=True)
    assert images_root(None, Settings()).source == "default"  # reading commands still say where they looked

    monkeypatch.chdir(CHECKOUT)  # in the checkout, ./images is the one the sync reads
    assert images_root(None, Settings(), writing=True).path == CHECKOUT / "images"
    monkeypatch.chdir(tmp_path)
    synced(tmp_path / "state", tmp_path / "synced")  # and anywhere once a sync has recorded its root
    assert images_root(None, Settings(), writing=True).path == tmp_path / "synced"
