"""Fixtures of the web tests: the sample photos encoded once, synced states, the app in-process."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import SecretStr
from starlette.testclient import TestClient

from facelogin.adapters.embedded import NxServer
from facelogin.settings import Settings
from facelogin.web import create_app
from tests.conftest import AWS_ENV, s3_for
from tests.servers import MotoServer, SeaweedServer
from tests.web.synced import Encodings, encode_tree, write_state

# Kit_Harington is left out of the bundle: his probe photo is a person the login does not know.
LEFT_OUT = "Kit_Harington"
ENROLLED = ["Alex_Lacamoire", "Biden", "Lin_Manuel_Miranda", "Obama", "Rose_Leslie"]
ADMIN_TOKEN = "admin-token-for-tests"


@pytest.fixture(scope="session")
def encodings(faces: Path) -> Encodings:
    return encode_tree(faces / "images")


def frame_urls(photo: Path, count: int = 5, size: tuple[int, int] = (640, 480)) -> list[str]:
    """`count` camera-like frames of `photo` as the login page sends them: 640x480 JPEG data URLs."""
    image = Image.open(photo).convert("RGB")
    image.thumbnail(size)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return ["data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()] * count


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    faces: Path,
    encodings: Encodings,
    nx: NxServer,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MakeClient]:
    """`make_client(store="dir"|"s3"|"seaweed", users=ENROLLED, **settings)`: the app in-process on a
    synced state ("s3": a bucket on moto, "seaweed": on SeaWeedFS, a real S3 server).

    MongoDB is the session's nx-27017 (a fresh database per test); "s3" is a new bucket on the
    session's moto server. The client's `settings` attribute holds the settings it runs with.
    """
    stack = ExitStack()

    def make(
        store: str = "dir",
        users: list[str] | None = None,
        clock: Callable[[], float] | None = None,
        check_seconds: float = 0.0,
        sync: bool = True,
        images: Path | None = None,
        encoded: Encodings | None = None,
        challenge_actions: Callable[[], tuple[str, ...]] | None = None,
        **overrides: Any,
    ) -> TestClient:
        given: dict[str, Any] = {
            "state_dir": tmp_path / "state",
            "mongodb_uri": SecretStr(nx.uri),
            "database": database,
            "admin_token": SecretStr(ADMIN_TOKEN),
            # These tests log in with still photos to exercise sessions, images and records; the
            # default, liveness challenges, has its own tests with recorded clips (test_liveness.py).
            "liveness": "off",
            # Decisions in the test process (the worker pool has its own tests): no processes to start.
            "web_workers": 0,
        }
        settings = Settings(**(given | overrides))
        if store == "s3":
            moto: MotoServer = request.getfixturevalue("moto")
            for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": moto.url}.items():
                monkeypatch.setenv(key, value)
            settings = settings.model_copy(update={"bucket": request.getfixturevalue("bucket")})
        elif store == "seaweed":
            seaweed: SeaweedServer = request.getfixturevalue("seaweed")
            for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": seaweed.url}.items():
                monkeypatch.setenv(key, value)
            name = f"web-{uuid.uuid4().hex[:12]}"
            s3_for(seaweed.url).create_bucket(Bucket=name)
            settings = settings.model_copy(update={"bucket": name})
        if sync:
            tree, known = (
                (images, encoded)
                if images is not None and encoded is not None
                else (faces / "images", encodings)
            )
            write_state(
                settings,
                tree,
                known,
                (ENROLLED if images is None else sorted(known)) if users is None else users,
            )
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        if challenge_actions is not None:
            extra["challenge_actions"] = challenge_actions
        client = stack.enter_context(TestClient(create_app(settings, check_seconds=check_seconds, **extra)))
        client.settings = settings  # type: ignore[attr-defined]
        return client

    yield make
    stack.close()
