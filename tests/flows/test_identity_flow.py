"""Identity checks at every sync: a photo under the wrong name, one person under two names, one file twice."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pymongo import MongoClient

from facelogin.bundle import read_bundle
from flows.sync_faces import sync_faces

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def reasons(summary: dict[str, Any]) -> dict[str, str]:
    return {"/".join(Path(r["file"]).parts[-2:]): r["reason"] for r in summary["rejected"]}


def bundle_counts(env: dict[str, str]) -> dict[str, int]:
    bundle = read_bundle(Path(env["FACELOGIN_STATE_DIR"]) / "bundle")
    return {u: int((bundle.labels == i).sum()) for i, u in enumerate(bundle.usernames)}


def test_identities_are_checked_at_every_sync_and_mistakes_lock_nobody_out(
    images: Path, faces: Path, sync_env: dict[str, str]
) -> None:
    first = sync_faces(images=str(images))
    assert first["conflicts"] == [] and first["rejected"] == []

    # Mistakes an operator makes: Obama's photo filed under Biden, the same file in two folders,
    # and Kit_Harington enrolled again under a second name.
    shutil.copy(faces / "probes/Obama.jpg", images / "Biden" / "biden_03.jpg")
    shutil.copy(images / "Rose_Leslie" / "rose_leslie_01.jpg", images / "Alex_Lacamoire" / "alex_03.jpg")
    (images / "Jon_Snow").mkdir()
    for photo in sorted((images / "Kit_Harington").iterdir()):  # new files (re-saved), the same face
        with Image.open(photo) as im:
            im.save(images / "Jon_Snow" / photo.name.replace("kit_harington", "jon_snow"), quality=90)
    second = sync_faces(images=str(images))

    why = reasons(second)
    assert (
        why["Biden/biden_03.jpg"].startswith("looks like Obama (d=")
        and "not Biden" in why["Biden/biden_03.jpg"]
    )
    assert why["Alex_Lacamoire/alex_03.jpg"] == "same file as Rose_Leslie/rose_leslie_01.jpg"
    assert all(why[f"Jon_Snow/{p.name}"].startswith("same person as Kit_Harington") for p in
               (images / "Jon_Snow").iterdir())  # fmt: skip
    kinds = {(c["kind"], tuple(c["users"])) for c in second["conflicts"]}
    assert ("same person", ("Jon_Snow", "Kit_Harington")) in kinds
    # Nobody's login changed: the bundle holds exactly the photos of the first sync.
    counts = bundle_counts(sync_env)
    assert {u: counts[u] for u in ("Biden", "Alex_Lacamoire", "Kit_Harington")} == {
        "Biden": 2, "Alex_Lacamoire": 2, "Kit_Harington": 2
    }  # fmt: skip
    assert "Jon_Snow" not in counts and second["bundle"]["version"] == first["bundle"]["version"]
    with MongoClient(sync_env["FACELOGIN_MONGODB_URI"]) as mongo:
        biden = mongo[sync_env["FACELOGIN_DATABASE"]]["users"].find_one({"username": "Biden"})
    assert biden is not None and biden["counts"] == {"photos": 3, "encoded": 2, "rejected": 1, "weak": 0}

    # Decided again at every run: once the Kit_Harington folder is gone, Jon_Snow is the only one.
    shutil.rmtree(images / "Kit_Harington")
    third = sync_faces(images=str(images))
    assert not any(k.startswith("Jon_Snow/") for k in reasons(third))
    assert bundle_counts(sync_env)["Jon_Snow"] == 2 and "Kit_Harington" not in bundle_counts(sync_env)
    assert third["encoded"] == 0  # their encodings were kept: nothing was encoded again
