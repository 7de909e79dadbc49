"""The README and docs/ keep up with the code: the commands they show exist and are all shown; the
JSON keys match; every link between them resolves."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from facelogin.cli import app
from facelogin.sync.discover import Discovery
from facelogin.sync.outcome import collect_outcome, summarize
from facelogin.sync.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = {path: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
ALL_TEXT = "\n\n".join([README, *DOCS.values()])
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


def test_every_command_in_the_docs_exists_and_every_command_is_in_the_docs() -> None:
    shown = set(re.findall(r"(?:^|\s|/)facelogin (\w[\w-]*)", code_blocks(ALL_TEXT), flags=re.MULTILINE))
    assert shown - COMMANDS == set(), "the README or docs/ show commands that do not exist"
    assert COMMANDS - shown == set(), "commands missing from the examples in the README and docs/"


def test_the_sync_json_keys_in_the_readme_are_the_summary_keys() -> None:
    paragraph = re.search(r"`--json` prints one JSON object:(.*?)\n\n", ALL_TEXT, flags=re.DOTALL)
    assert paragraph is not None, "docs/ no longer describe `facelogin sync --json`"
    listed = set(re.findall(r"`(\w+)`", paragraph.group(1)))
    counts = {"upserted": 0, "removed_users": 0, "deleted_objects": 0}
    outcome = collect_outcome(Plan(), {}, {})
    summary = summarize(Discovery(), Plan(), outcome, **counts, store="", bundle={}, seconds={})
    assert listed == set(summary)


def test_the_readme_orients_in_a_page_and_a_half() -> None:
    assert len(README.splitlines()) <= 150, "the reference belongs in docs/, the README orients"


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for path, text in [(ROOT / "README.md", README), *DOCS.items()]:
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, fragment = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.name}: {target}")
            elif fragment and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", dest.read_text(), flags=re.MULTILINE)
                if fragment not in {anchor(h) for h in headings}:
                    broken.append(f"{path.name}: {target}")
    assert broken == []
