"""The operator's view matches reality: `users` predicts only what the sync's guard would do, and its
table reads at 80 columns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from facelogin.cli import app

ROOT = Path(__file__).resolve().parents[2]  # the checkout: where the README's commands run
ZONE = "America/New_York"  # not this machine's zone, so that local time is seen to be applied
runner = CliRunner()


def facelogin(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("facelogin")
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def column(lines: list[str], header: str, until: str | None = None) -> str:
    """The text of one column of the users table (from its header to the header `until`), its wrapped
    pieces joined. A header may wrap too: its first word is looked for on the header lines."""
    head = next(i for i, line in enumerate(lines) if line.startswith("user "))
    first = header.split()[0]
    start = next(lines[i].index(first) for i in (head, head - 1) if first in lines[i])
    end = lines[head].index(until) if until else None
    body = []
    for line in lines[head + 2 :]:
        if line.startswith("enc/rej:"):  # the caption
            break
        body.append(line[start:end].strip())
    return "".join(body)


@pytest.mark.parametrize(
    ("make", "problem"),
    [(lambda root: shutil.rmtree(root), "does not exist"), (lambda root: None, "holds no user folders")],
    ids=["missing", "empty"],
)
def test_users_on_a_root_the_sync_would_refuse_shows_mongodb_only_and_removes_nobody(
    enrolled: dict[str, Any], make: Any, problem: str
) -> None:
    root: Path = enrolled["images"]
    shutil.rmtree(root)
    root.mkdir()
    make(root)

    table = runner.invoke(app, ["users"], env={"COLUMNS": "80"})

    assert table.exit_code == 0, table.output
    note = f"images root {root} {problem}: showing MongoDB only; pass --images"
    assert table.stderr.count(note) == 1 and f"images root: {root} (set by FACELOGIN_IMAGES)" in table.stderr
    assert "folder gone" not in table.stdout and "removed" not in table.stdout
    out = json.loads(runner.invoke(app, ["users", "--json"]).stdout)
    assert {r["username"]: r["state"] for r in out["users"]} == {
        "Ann": "synced",
        "Bob": "synced",
        "Dee": "synced",
    }
    assert out["next_sync"]["stops"] == problem and out["images_root"]["problem"] == problem


def test_users_table_folds_a_long_name_and_never_cuts_it(enrolled: dict[str, Any]) -> None:
    long_name = "Maximilian_Alexander_Wolfeschlegelsteinhausen"  # 45 characters: wider than its column
    folder = enrolled["images"] / long_name
    folder.mkdir()
    (folder / "max_01.jpg").write_bytes((enrolled["images"] / "Cy" / "cy_01.jpg").read_bytes())

    table = runner.invoke(app, ["users"], env={"COLUMNS": "80"})

    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in table.stdout
    assert (
        column(lines, "user", until="photos") == f"AnnBobCyDee{long_name}"
    )  # folded over two lines, every character kept
    assert "thumbs/256/Ann/ann_01.jpg" in column(lines, "profile image")
