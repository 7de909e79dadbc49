"""The README keeps up with the code: the commands it shows exist and are all shown; the JSON keys match."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from facelogin.cli import app
from facelogin.sync.discover import Discovery
from facelogin.sync.outcome import RunResults, summarize
from facelogin.sync.plan import Plan

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
COMMANDS = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def code_blocks(text: str) -> str:
    """The lines of every fenced code block."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return "\n".join(lines)


def test_the_first_two_commands_set_up_and_run_the_sync_then_the_tests() -> None:
    first = re.search(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    assert first is not None
    commands = [line for line in first.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert "facelogin sync" in commands[0] and "pytest" in commands[1]


def test_every_command_in_the_readme_exists_and_every_command_is_in_the_readme() -> None:
    shown = set(re.findall(r"(?:^|\s|/)facelogin (\w[\w-]*)", code_blocks(README), flags=re.MULTILINE))
    assert shown - COMMANDS == set(), "the README shows commands that do not exist"
    assert COMMANDS - shown == set(), "commands missing from the README's examples"


def test_the_sync_json_keys_in_the_readme_are_the_summary_keys() -> None:
    paragraph = re.search(r"`--json` prints one JSON object:(.*?)\n\n", README, flags=re.DOTALL)
    assert paragraph is not None, "the README no longer describes `facelogin sync --json`"
    listed = set(re.findall(r"`(\w+)`", paragraph.group(1)))
    run = RunResults(Plan(), {})
    counts = {"upserted": 0, "removed_users": 0, "deleted_objects": 0}
    summary = summarize(Discovery(), run, run.outcome({}, {}), **counts, store="", bundle={}, seconds={})
    assert listed == set(summary)
