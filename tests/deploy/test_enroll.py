"""Enrolment core and CLI: photos checked with the real face detector, copied under the naming convention."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from facelogin.cli import app
from facelogin.enroll import EnrollError, enroll, next_names, photo_stem


@pytest.mark.parametrize(
    ("existing", "username", "count", "expected"),
    [
        ([], "Matthew", 2, ["matthew_01.jpg", "matthew_02.jpg"]),
        (["matthew_01.jpg", "matthew_03.png"], "Matthew", 1, ["matthew_04.jpg"]),
        (["MATTHEW_07.JPG", "notes.txt", "other_09.jpg"], "Matthew", 1, ["matthew_08.jpg"]),
        (["lin_manuel_99.jpg"], "Lin Manuel", 2, ["lin_manuel_100.jpg", "lin_manuel_101.jpg"]),
        ([], "Obama", 0, []),
    ],
)
def test_next_names_continue_after_the_highest_number(
    existing: list[str], username: str, count: int, expected: list[str]
) -> None:
    assert next_names(existing, username, count) == expected


def test_photo_stem() -> None:
    assert [photo_stem(n) for n in ("Matthew", "Lin Manuel  Miranda", "Ana-Maria")] == [
        "matthew", "lin_manuel_miranda", "ana-maria",
    ]  # fmt: skip


@pytest.fixture
def mixed(faces: Path, tmp_path: Path) -> Path:
    """Two good JPEGs, a good PNG, a group photo, a photo with no face and a file that is no image."""
    src = tmp_path / "from"
    src.mkdir()
    for prefix, name in (("a", "obama_01.jpg"), ("b", "obama_02.jpg")):
        shutil.copy(faces / "images" / "Obama" / name, src / f"{prefix}_{name}")
    shutil.copy(faces / "images" / "Alex_Lacamoire" / "alex_lacamoire_02.png", src / "c_alex.png")
    shutil.copy(faces / "groups" / "kit_with_rose.jpg", src / "d_group.jpg")
    Image.new("RGB", (300, 200), (90, 140, 200)).save(src / "e_sky.jpg")
    (src / "f_notes.jpg").write_bytes(b"not a photo")
    return src


def test_enroll_accepts_one_face_photos_and_says_why_others_are_rejected(mixed: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    sources = sorted(mixed.iterdir())

    result = enroll("Matthew", sources, images)

    folder = images / "Matthew"
    assert sorted(p.name for p in folder.iterdir()) == ["matthew_01.jpg", "matthew_02.jpg", "matthew_03.jpg"]
    assert (folder / "matthew_01.jpg").read_bytes() == (mixed / "a_obama_01.jpg").read_bytes()  # as-is
    with Image.open(folder / "matthew_03.jpg") as converted:
        assert (converted.format, converted.mode) == ("JPEG", "RGB")
    reasons = {Path(v.source).name: v.reason for v in result.rejected}
    assert set(reasons) == {"d_group.jpg", "e_sky.jpg", "f_notes.jpg"}
    assert reasons["d_group.jpg"] is not None and reasons["d_group.jpg"].startswith("2 faces found")
    assert reasons["e_sky.jpg"] == "no face found"
    assert reasons["f_notes.jpg"] == "not a readable image (unknown or corrupt format)"
    assert not list(folder.glob(".*"))  # no temporary files left behind


def test_enrolling_the_same_photos_again_adds_nothing(faces: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    sources = sorted((faces / "images" / "Biden").iterdir())
    enroll("Biden", sources, images)

    again = enroll("Biden", sources, images)

    assert again.accepted == []
    assert {v.reason for v in again.rejected} == {"already enrolled (same content)"}
    assert sorted(p.name for p in (images / "Biden").iterdir()) == ["biden_01.jpg", "biden_02.jpg"]


@pytest.mark.parametrize("username", ["", "..", "a/b", ".hidden", " padded", "x" * 200])
def test_unsafe_usernames_are_refused(username: str, faces: Path, tmp_path: Path) -> None:
    with pytest.raises(EnrollError, match="cannot enrol"):
        enroll(username, [faces / "images" / "Obama" / "obama_01.jpg"], tmp_path)
    assert list(tmp_path.iterdir()) == []


runner = CliRunner()


def test_enroll_help() -> None:
    result = runner.invoke(app, ["enroll", "--help"])
    assert result.exit_code == 0
    for option in ("--from", "--camera", "--images", "--wait", "--no-trigger", "--json"):
        assert option in result.output


def test_enroll_no_trigger_json(faces: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    result = runner.invoke(
        app, ["enroll", "Kit", "--from", str(faces / "images" / "Kit_Harington"), "--images", str(images),
              "--no-trigger", "--json"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ok"] is True and out["run"] is None
    assert [Path(v["target"]).name for v in out["enrolment"]["accepted"]] == ["kit_01.jpg", "kit_02.jpg"]
    assert (images / "Kit" / "kit_02.jpg").is_file()


def test_enroll_without_a_prefect_server_keeps_the_photos_and_says_what_to_do(
    faces: Path, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    images = tmp_path / "images"
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(
            app, ["enroll", "Biden", "--from", str(faces / "images" / "Biden"), "--images", str(images)]
        )

    assert result.exit_code == 2
    assert "no Prefect server configured: set PREFECT_API_URL" in result.stderr
    assert "the photos are in place" in result.stderr
    assert len(list((images / "Biden").iterdir())) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --from DIR and --camera N"),
        (["--from", "x", "--camera", "0"], "give exactly one of --from DIR and --camera N"),
        (["--from", "/no/such/dir"], "is not a folder or a photo"),
    ],
)
def test_enroll_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["enroll", "Someone", "--images", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_enroll_camera_without_a_camera_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["enroll", "Someone", "--camera", "7", "--images", str(tmp_path)])
    assert result.exit_code == 2
    assert "camera 7:" in result.stderr
    assert not (tmp_path / "Someone").exists()
