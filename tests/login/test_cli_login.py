"""`facelogin login` and `facelogin calibrate` through the CLI, in real processes where it matters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facelogin.cli import app
from tests.login.conftest import make_bundle
from tests.photos import encoding

HEAVY = ("prefect", "boto3", "botocore", "pymongo")
# The console script installed beside this interpreter, as a user would run it.
FACELOGIN = Path(sys.executable).with_name("facelogin")


def _run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FACELOGIN), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", ["login", "calibrate"])
def test_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--bundle" in result.output


def test_importing_login_pulls_in_no_pipeline_dependency() -> None:
    code = (
        "import sys, facelogin.login, facelogin.login.match, facelogin.cli.login, facelogin.cli\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.slow
def test_running_login_pulls_in_no_pipeline_dependency(bundle_dir: Path, faces: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from facelogin.cli import app\n"
        "try:\n"
        f"    app(['login', '--no-liveness', '--bundle', {str(bundle_dir)!r},\n"
        f"         '--cache-dir', {str(tmp_path)!r},\n"
        f"         '--image', {str(faces / 'probes' / 'Obama.jpg')!r}])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'dlib' in sys.modules and 'face_recognition' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"] == "Obama"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("photo", "code", "decision", "user"),
    [
        ("probes/Kit_Harington.jpg", 0, "accepted", "Kit_Harington"),
        ("groups/kit_with_rose.jpg", 1, "rejected", None),
    ],
)
def test_login_json_and_exit_code(
    bundle_dir: Path, faces: Path, tmp_path: Path, photo: str, code: int, decision: str, user: str | None
) -> None:
    done = _run(
        "login", "--no-liveness", "--bundle", bundle_dir, "--cache-dir", tmp_path, "--image", faces / photo
    )
    assert done.returncode == code, done.stderr
    result = json.loads(done.stdout)
    assert (result["decision"], result["user"]) == (decision, user)
    assert result["ms"]["model"] > 0 and result["ms"]["total"] > 0


@pytest.mark.slow
def test_login_errors_exit_2(tmp_path: Path, faces: Path) -> None:
    done = _run(
        "login",
        "--no-liveness",
        "--bundle",
        tmp_path / "none",
        "--cache-dir",
        tmp_path / "c",
        "--image",
        faces / "probes/Obama.jpg",
    )
    assert done.returncode == 2
    assert json.loads(done.stdout)["decision"] == "error"
    assert "none" in done.stderr
    usage = _run("login", "--bundle", tmp_path)
    assert usage.returncode == 2 and "--image" in usage.stderr


@pytest.mark.slow
def test_truncated_bundle_fallback_is_said_on_stderr(bundle_dir: Path, faces: Path, tmp_path: Path) -> None:
    import shutil

    published = Path(shutil.copytree(bundle_dir, tmp_path / "published"))
    args = (
        "login",
        "--no-liveness",
        "--bundle",
        published,
        "--cache-dir",
        tmp_path / "cache",
        "--image",
        faces / "probes/Obama.jpg",
    )
    assert _run(*args).returncode == 0
    npz = published / json.loads((published / "latest.json").read_text())["npz"]
    npz.write_bytes(npz.read_bytes()[:1000])
    done = _run(*args)
    assert done.returncode == 0
    assert "checksum mismatch" in done.stderr and "last good bundle" in done.stderr
    assert json.loads(done.stdout)["bundle"]["from_cache"] is True


@pytest.mark.slow
def test_serve_answers_several_requests_in_one_process(bundle_dir: Path, faces: Path, tmp_path: Path) -> None:
    requests = [
        {"id": 1, "image": str(faces / "probes/Obama.jpg")},
        {"id": 2, "image": str(faces / "groups/obama_and_biden.jpg")},
        {"id": 3, "images": [str(p) for p in sorted(faces.glob("frames/*"))], "agree": 3},
        {"id": 4, "image": str(tmp_path / "missing.jpg")},
        {"id": 5, "image": str(faces / "probes/Alex_Lacamoire.jpg")},
    ]
    stdin = "".join(json.dumps(r) + "\n" for r in requests) + "this is not json\n"
    done = _run(
        "login",
        "--no-liveness",
        "--serve",
        "--bundle",
        bundle_dir,
        "--cache-dir",
        tmp_path / "cache",
        stdin=stdin,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a.get("id") for a in answers] == [1, 2, 3, 4, 5, None]
    assert [(a["decision"], a["user"]) for a in answers] == [
        ("accepted", "Obama"),
        ("rejected", None),
        ("accepted", "Obama"),
        ("error", None),
        ("accepted", "Alex_Lacamoire"),
        ("error", None),
    ]
    assert answers[1]["reason"] == "several faces"
    assert "missing.jpg" in answers[3]["reason"]
    # The model was loaded once, before the first request: no request pays for it.
    assert all("model" not in a.get("ms", {}) for a in answers)
    assert "ready" in done.stderr


@pytest.mark.slow
def test_calibrate_writes_threshold_and_plot_used_by_login(
    bundle_dir: Path, faces: Path, tmp_path: Path
) -> None:
    import shutil

    published = Path(shutil.copytree(bundle_dir, tmp_path / "published"))
    plot = tmp_path / "threshold.png"
    done = _run("calibrate", "--bundle", published, "--plot", plot, "--ceiling", "0.6", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    # Sample photos: the nearest impostor pair is 0.70 apart, so the 0.6 ceiling is the threshold.
    assert record["largest_safe"] > 0.6 and record["threshold"] == 0.6
    assert record["false_reject_rate"] == 0.0 and record["false_accept_rate"] == 0.0
    assert record["rule"] == "mean" and record["margin"] == 0.1
    assert record["genuine"]["count"] > 0 and record["impostor"]["count"] > 0
    assert (
        json.loads((published / "calibration.json").read_text())["bundle_sha256"] == record["bundle_sha256"]
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000

    login = _run(
        "login",
        "--no-liveness",
        "--bundle",
        published,
        "--cache-dir",
        tmp_path / "c",
        "--image",
        faces / "probes/Obama.jpg",
    )
    result = json.loads(login.stdout)
    assert (result["threshold"], result["threshold_source"]) == (0.6, "calibrated")

    text = _run("calibrate", "--bundle", published, "--no-write")
    assert text.returncode == 0 and "recommended threshold: 0.500" in text.stdout


@pytest.fixture(scope="module")
def probes(faces: Path) -> dict[str, list[float]]:
    return {photo.stem: encoding(photo) for photo in sorted(faces.glob("probes/*"))}


@pytest.mark.parametrize(
    ("case", "users"),
    [
        ("Kit under a second name", ["Jon_Snow", "Kit_Harington"]),
        ("Kit's very encodings under a second name", ["Jon_Snow", "Kit_Harington"]),
        ("Obama among Rose's encodings", ["Obama", "Rose_Leslie"]),
    ],
)
def test_calibrate_names_colliding_identities_and_writes_nothing(
    case: str,
    users: list[str],
    encodings: dict[str, list[list[float]]],
    probes: dict[str, list[float]],
    tmp_path: Path,
) -> None:
    enrolled = {
        "Kit under a second name": {**encodings, "Jon_Snow": [probes["Kit_Harington"]]},
        # Before: a "threshold" of 0.0, written with no note.
        "Kit's very encodings under a second name": {**encodings, "Jon_Snow": encodings["Kit_Harington"]},
        "Obama among Rose's encodings": {
            **encodings, "Rose_Leslie": [*encodings["Rose_Leslie"], probes["Obama"]]
        },
    }[case]  # fmt: skip
    published = make_bundle(tmp_path / "bundle", enrolled)
    plot = tmp_path / "plot.png"

    result = CliRunner().invoke(app, ["calibrate", "--bundle", str(published), "--plot", str(plot), "--json"])

    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["users"] == users and out["written_to"] is None
    assert all(name in result.stderr for name in users) and "Nothing written" in result.stderr
    assert not (published / "calibration.json").exists() and not plot.exists()


@pytest.mark.slow
def test_calibrate_plot_without_matplotlib_fails_before_writing(bundle_dir: Path, tmp_path: Path) -> None:
    import os
    import shutil

    published = Path(shutil.copytree(bundle_dir, tmp_path / "published"))
    blocker = tmp_path / "no-matplotlib"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('matplotlib is not installed here')\n")
    plot = tmp_path / "threshold.png"

    done = subprocess.run(
        [str(FACELOGIN), "calibrate", "--bundle", str(published), "--plot", str(plot)],
        env={**os.environ, "PYTHONPATH": str(blocker)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert "the plot needs matplotlib" in done.stderr
    assert not (published / "calibration.json").exists() and not plot.exists()


def test_a_still_image_is_a_test_mode_that_needs_no_liveness_said_out_loud(
    bundle_dir: Path, faces: Path, tmp_path: Path
) -> None:
    probe = str(faces / "probes" / "Obama.jpg")
    args = ["login", "--bundle", str(bundle_dir), "--cache-dir", str(tmp_path), "--image", probe]
    refused = CliRunner().invoke(app, args, env={"FACELOGIN_LIVENESS": ""})
    assert refused.exit_code == 2
    assert "cannot show a live person" in refused.output and "--no-liveness" in refused.output
    assert "FACELOGIN_LIVENESS=challenge" in refused.output

    for how in ({"args": ["--no-liveness"], "env": {}}, {"args": [], "env": {"FACELOGIN_LIVENESS": "off"}}):
        done = CliRunner().invoke(app, [*args, *how["args"]], env=how["env"])
        assert done.exit_code == 0, done.output
        result = json.loads(done.stdout)
        assert result["user"] == "Obama"
        assert result["liveness"] == {"mode": "off", "checked": False, "note": "liveness not checked"}
        assert "liveness not checked" in done.stderr

    typo = CliRunner().invoke(app, args, env={"FACELOGIN_LIVENESS": "yes"})
    assert typo.exit_code == 2
    assert "FACELOGIN_LIVENESS='yes': use challenge (the default) or off" in typo.output
