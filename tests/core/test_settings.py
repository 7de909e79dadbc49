"""Settings from the environment: names that say what they govern, old names honoured, secrets hidden."""

from __future__ import annotations

import pytest

from facelogin.settings import Settings


def test_defaults_keep_everything_on_this_machine() -> None:
    settings = Settings()
    assert settings.embedded_store and settings.mongodb_uri is None and settings.mongodb() is None
    assert (settings.io_threads, settings.task_retries) == (16, 4)
    assert settings.deprecations == []


@pytest.mark.parametrize(
    ("old", "new", "field", "value"),
    [
        ("FACELOGIN_UPLOAD_RETRIES", "FACELOGIN_TASK_RETRIES", "task_retries", 2),
        ("FACELOGIN_UPLOAD_WORKERS", "FACELOGIN_IO_THREADS", "io_threads", 5),
    ],
)
def test_an_old_name_still_works_and_says_its_new_name(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str, field: str, value: int
) -> None:
    monkeypatch.setenv(old, str(value))
    settings = Settings()
    assert getattr(settings, field) == value
    assert settings.deprecations == [f"{old} is deprecated: use {new}"]

    monkeypatch.setenv(new, str(value + 1))  # the new name wins over the old one
    assert getattr(Settings(), field) == value + 1


def test_a_retired_name_says_it_has_no_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACELOGIN_RETRY_DELAY", "0.05")
    (message,) = Settings().deprecations
    assert message.startswith("FACELOGIN_RETRY_DELAY no longer has an effect")


def test_the_mongodb_uri_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "mongodb://sync:hunter2@db.example.org:27017/"
    monkeypatch.setenv("FACELOGIN_MONGODB_URI", uri)
    settings = Settings()
    assert settings.mongodb() == uri
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "hunter2" not in shown
    assert settings.with_mongodb("mongodb://127.0.0.1:1/").mongodb() == "mongodb://127.0.0.1:1/"
