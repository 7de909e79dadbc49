"""The command line, as a user runs it: help for every command, and the sync on embedded defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from facelogin.bundle import read_bundle
from facelogin.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_listed() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    assert "sync" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def facelogin(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("facelogin")
    return subprocess.run(
        [str(exe), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_sync_on_embedded_defaults_from_the_cli(
    images: Path, first_run_env: dict[str, str], tmp_path: Path
) -> None:
    clean_env = first_run_env  # a new machine: the first sync also creates Prefect's database
    first = facelogin("sync", "--images", str(images), "--json", env=clean_env)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert (summary["users"], summary["photos"], summary["encoded"], summary["uploaded"]) == (6, 12, 12, 24)
    assert summary["rejected"] == []
    stages = {"discover", "train", "identity", "thumbnails", "upload", "upsert", "publish"}
    assert set(summary["seconds"]) == stages

    state = tmp_path / "home" / ".facelogin"  # the default state directory
    assert len(list((state / "objects" / "thumbs" / "256").glob("*/*.jpg"))) == 12
    bundle = read_bundle(state / "bundle")
    assert len(bundle.usernames) == 6 and bundle.version == summary["bundle"]["version"]
    for path in [state, *state.rglob("*")]:  # private, as documented: 0700 folders, 0600 files
        if not path.is_symlink():
            assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    assert oct((state / "bundle").stat().st_mode & 0o777) == "0o700"

    second = facelogin("sync", "--images", str(images), "--json", env=clean_env)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads(second.stdout)
    assert (again["encoded"], again["uploaded"], again["unchanged"]) == (0, 0, 12)


def test_sync_of_a_missing_folder_fails_with_its_name(clean_env: dict[str, str], tmp_path: Path) -> None:
    done = facelogin("sync", "--images", str(tmp_path / "no-such-images"), "--json", env=clean_env)
    assert done.returncode == 2  # nothing was changed: a path to fix
    assert "no-such-images" in json.loads(done.stdout)["error"]
    assert "no-such-images" in done.stderr


@pytest.mark.slow
def test_two_syncs_at_once_run_one_after_the_other_without_a_traceback(
    images: Path, clean_env: dict[str, str]
) -> None:
    exe = Path(sys.executable).with_name("facelogin")
    runs = [
        subprocess.Popen(
            [str(exe), "sync", "--images", str(images), "--json"],
            env=clean_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]

    for run, (_stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
    # One after the other: the second found everything done by the first.
    assert sorted(json.loads(out)["encoded"] for out, _ in outputs) == [0, 12]


def test_progress_bars_follow_the_stages(capsys: pytest.CaptureFixture[str]) -> None:
    from facelogin.cli.sync import progress_bars
    from facelogin.sync import progress

    with progress_bars(True):
        progress.advance(progress.HASHED, 2)
        progress.advance(progress.HASHED, 0, total=2)
        for _ in range(3):
            progress.advance(progress.ENCODED, 1, 3)
    with progress_bars(False):  # --json, or not a terminal: nothing shown
        progress.advance(progress.UPLOADED, 5, 5)

    shown = capsys.readouterr()
    assert "photos hashed" in shown.err and "2/2" in shown.err
    assert "photos encoded" in shown.err and "3/3" in shown.err
    assert "objects uploaded" not in shown.err and shown.out == ""
