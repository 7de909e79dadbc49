"""bench.recognition on a set it has never seen: the sample photos laid out as an evaluation set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import recognition


@pytest.fixture(scope="module")
def sample_set(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """../shared/faces as enrol/ (images), probes/ and strangers/ (the group photos: never one person)."""
    root = tmp_path_factory.mktemp("set")
    shutil.copytree(faces / "images", root / "enrol")
    shutil.copytree(faces / "probes", root / "probes")
    shutil.copytree(faces / "groups", root / "strangers")
    return root


def test_json_report_on_the_sample_set(sample_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert recognition.main(["--set", str(sample_set), "--json", "--passes", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identities"] == 6
    assert report["probes"] == 3 and report["probes_accepted_as_themselves"] == 3
    assert report["probes_accepted_as_someone_else"] == 0
    assert report["strangers"] == 3 and report["strangers_accepted"] == 0
    assert report["enrolled_encodings"] == report["enrol_photos"] == 12
    ms = report["ms"]
    assert 0 < ms["match_per_decision"] < ms["descriptor_plus_match_per_decision"]
    assert ms["encode_per_enrolled_photo"] > 0


def test_missing_folders_are_empty(tmp_path: Path) -> None:
    (tmp_path / "probes").mkdir()
    face_set = recognition.read_set(tmp_path)
    assert face_set.enrol == {} and face_set.probes == [] and face_set.strangers == []
