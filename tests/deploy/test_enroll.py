"""Enrolment core and CLI: photos checked with the real face detector, copied under the naming convention."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from facelogin.adapters.stores import DirStore
from facelogin.bundle import build_bundle, publish_bundle, read_bundle
from facelogin.cli import app
from facelogin.enroll import EnrollError, enroll, next_names, photo_stem
from facelogin.faces import encode_face
from tests.photos import per_user


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


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI reads the published bundle from the state directory: never the developer's own."""
    state = tmp_path / "state"
    monkeypatch.setenv("FACELOGIN_STATE_DIR", str(state))
    return state


@pytest.fixture
def mixed(faces: Path, tmp_path: Path) -> Path:
    """Two JPEGs and a PNG of one person, a group photo, a photo with no face and a file that is no image."""
    src = tmp_path / "from"
    src.mkdir()
    for prefix, name in (("a", "obama_01.jpg"), ("b", "obama_02.jpg")):
        shutil.copy(faces / "images" / "Obama" / name, src / f"{prefix}_{name}")
    shutil.copy(faces / "edge" / "obama_rgba_32bit.png", src / "c_obama.png")
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


def test_a_weak_photo_is_enrolled_and_says_how_to_take_a_better_one(faces: Path, tmp_path: Path) -> None:
    import dataclasses

    photo = faces / "images" / "Obama" / "obama_01.jpg"
    turned = "face turned 31°: look straight at the camera"
    result = enroll(
        "Obama", [photo], tmp_path / "images", lambda p: dataclasses.replace(encode_face(p), weak=turned)
    )
    assert [(v.accepted, v.weak) for v in result.accepted] == [(True, turned)]
    assert result.as_dict()["accepted"][0]["weak"] == turned  # type: ignore[index]


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
    for option in ("--from", "--camera", "--images", "--wait", "--no-trigger", "--force", "--json"):
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


# Identity checks at enrolment, against a bundle published from the sample photos.


@pytest.fixture(scope="module")
def sample_encodings(faces: Path) -> dict[str, list[list[float]]]:
    return per_user(faces / "images")


def publish(directory: Path, encodings: dict[str, list[list[float]]], *leave_out: str) -> Path:
    """A bundle of `encodings` less the users `leave_out`, published in `directory` as the sync does."""
    kept = {user: encs for user, encs in encodings.items() if user not in leave_out}
    data, manifest = build_bundle(kept, {}, "2026-01-01T00:00:00+00:00", {"detector": "hog"})
    publish_bundle(DirStore(directory), "", data, manifest)
    return directory


def folder_of(tmp_path: Path, *photos: Path) -> Path:
    src = tmp_path / "from"
    src.mkdir(exist_ok=True)
    for photo in photos:
        shutil.copy(photo, src / photo.name)
    return src


def pattern(template: str) -> str:
    return re.escape(template).replace("DIST", r"0\.\d\d")


def test_a_face_enrolled_under_another_name_is_refused(
    faces: Path, tmp_path: Path, sample_encodings: dict[str, list[list[float]]]
) -> None:
    enrolled = read_bundle(publish(tmp_path / "bundle", sample_encodings))
    kit = folder_of(
        tmp_path, faces / "probes" / "Kit_Harington.jpg", faces / "images/Kit_Harington/kit_harington_02.jpg"
    )
    images = tmp_path / "images"

    result = enroll("Jon_Snow", sorted(kit.iterdir()), images, enrolled=enrolled)

    assert result.refused == (
        "Jon_Snow's face is already enrolled as Kit_Harington: nothing copied (use --force to enrol anyway)"
    )
    assert result.accepted == [] and not (images / "Jon_Snow").exists()
    assert len(result.rejected) == 2
    for verdict in result.rejected:
        assert verdict.reason and re.fullmatch(
            pattern("same person as Kit_Harington (d=DIST)"), verdict.reason
        )
    (conflict,) = result.conflicts
    assert conflict["kind"] == "same person" and conflict["users"] == ["Jon_Snow", "Kit_Harington"]
    assert conflict["kept"] == "Kit_Harington" and len(conflict["rejected"]) == 2


def test_force_enrols_a_face_known_under_another_name_and_says_so(
    faces: Path, tmp_path: Path, sample_encodings: dict[str, list[list[float]]]
) -> None:
    enrolled = read_bundle(publish(tmp_path / "bundle", sample_encodings))
    images = tmp_path / "images"

    result = enroll(
        "Jon_Snow", [faces / "probes" / "Kit_Harington.jpg"], images, enrolled=enrolled, force=True
    )

    assert result.refused is None and result.rejected == []
    assert [Path(v.target or "").name for v in result.accepted] == ["jon_snow_01.jpg"]
    (conflict,) = result.conflicts
    assert conflict["users"] == ["Jon_Snow", "Kit_Harington"] and conflict["forced"] is True
    assert conflict["rejected"] == [] and 0 < conflict["distance"] < 0.5


@pytest.mark.parametrize(
    ("leave_out", "accepted", "reasons"),
    [
        # Obama is enrolled: the stranger is recognised.
        ((), ["rose_leslie_01.jpg"], {"Obama.jpg": "looks like Obama (d=DIST), not Rose_Leslie"}),
        # Obama is not, Rose is: her enrolled photos say which one is her.
        (
            ("Obama",),
            ["rose_leslie_01.jpg"],
            {"Obama.jpg": "a different person from Rose_Leslie's other photos (d=DIST)"},
        ),
        # Neither is enrolled: nothing tells which photo is Rose, so neither is taken.
        (
            ("Obama", "Rose_Leslie"),
            [],
            {
                "Obama.jpg": "a different person from Rose_Leslie/rose_leslie_01.jpg (d=DIST): "
                "cannot tell which photo shows Rose_Leslie",
                "rose_leslie_01.jpg": "a different person from Rose_Leslie/Obama.jpg (d=DIST): "
                "cannot tell which photo shows Rose_Leslie",
            },
        ),
    ],
)
def test_a_folder_with_rose_and_obama(
    faces: Path,
    tmp_path: Path,
    sample_encodings: dict[str, list[list[float]]],
    leave_out: tuple[str, ...],
    accepted: list[str],
    reasons: dict[str, str],
) -> None:
    enrolled = read_bundle(publish(tmp_path / "bundle", sample_encodings, *leave_out))
    src = folder_of(tmp_path, faces / "images/Rose_Leslie/rose_leslie_01.jpg", faces / "probes" / "Obama.jpg")

    result = enroll("Rose_Leslie", sorted(src.iterdir()), tmp_path / "images", enrolled=enrolled)

    assert result.refused is None
    assert [Path(v.source).name for v in result.accepted] == accepted
    got = {Path(v.source).name: v.reason or "" for v in result.rejected}
    assert set(got) == set(reasons)
    for name, template in reasons.items():
        assert re.fullmatch(pattern(template), got[name]), got[name]


def test_enroll_json_refuses_then_force_enrols(
    faces: Path, tmp_path: Path, state_dir: Path, sample_encodings: dict[str, list[list[float]]]
) -> None:
    publish(state_dir / "bundle", sample_encodings)
    images = tmp_path / "images"
    kit = str(faces / "probes" / "Kit_Harington.jpg")
    args = ["enroll", "Jon_Snow", "--from", kit, "--images", str(images), "--no-trigger", "--json"]

    refused = runner.invoke(app, args)

    assert refused.exit_code == 1, refused.output  # rejected: nothing copied
    out = json.loads(refused.stdout)
    assert out["ok"] is False and "already enrolled as Kit_Harington" in out["error"]
    assert out["enrolment"]["accepted"] == [] and out["enrolment"]["refused"] == out["error"]
    assert re.fullmatch(
        pattern("same person as Kit_Harington (d=DIST)"), out["enrolment"]["rejected"][0]["reason"]
    )
    assert [c["users"] for c in out["enrolment"]["conflicts"]] == [["Jon_Snow", "Kit_Harington"]]
    assert not images.exists()

    forced = runner.invoke(app, [*args, "--force"])

    assert forced.exit_code == 0, forced.output
    out = json.loads(forced.stdout)
    assert out["ok"] is True and out["enrolment"]["conflicts"][0]["forced"] is True
    assert (images / "Jon_Snow" / "jon_snow_01.jpg").is_file()


def test_enroll_says_why_a_photo_of_someone_else_is_rejected(
    faces: Path, tmp_path: Path, state_dir: Path, sample_encodings: dict[str, list[list[float]]]
) -> None:
    publish(state_dir / "bundle", sample_encodings)
    src = folder_of(tmp_path, faces / "images/Rose_Leslie/rose_leslie_02.jpg", faces / "probes" / "Obama.jpg")

    result = runner.invoke(
        app,
        ["enroll", "Rose_Leslie", "--from", str(src), "--images", str(tmp_path / "images"), "--no-trigger"],
    )

    assert result.exit_code == 0, result.output
    assert "accepted" in result.stdout and "rose_leslie_02.jpg -> " in result.stdout
    assert re.search(
        pattern("rejected ") + r".*Obama\.jpg: " + pattern("looks like Obama (d=DIST), not Rose_Leslie"),
        result.stderr,
    )


def test_enroll_with_an_unreadable_bundle_warns_and_checks_the_new_photos(
    faces: Path, tmp_path: Path, state_dir: Path
) -> None:
    (state_dir / "bundle").mkdir(parents=True)
    (state_dir / "bundle" / "latest.json").write_text("{not json")
    src = folder_of(tmp_path, faces / "images/Rose_Leslie/rose_leslie_01.jpg", faces / "probes" / "Obama.jpg")

    images = str(tmp_path / "images")
    result = runner.invoke(
        app, ["enroll", "Rose_Leslie", "--from", str(src), "--images", images, "--no-trigger", "--json"]
    )

    assert result.exit_code == 1  # rejected: no photo accepted
    out = json.loads(result.stdout)
    assert "the bundle is unreadable" in out["warnings"][0]
    assert len(out["enrolment"]["rejected"]) == 2 and out["error"] == "no photo of Rose_Leslie was accepted"
