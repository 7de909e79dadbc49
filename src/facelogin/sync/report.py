"""The run report shown in the Prefect UI: the per-user table and a markdown summary (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

COLUMNS = ("user", "photos", "encoded", "unchanged", "rejected", "uploaded", "reasons")


def report_rows(per_user: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Table rows from the flow's per-user rows, columns in COLUMNS order, reasons as one cell.

    The UI's table shows a list cell as raw JSON; `file: reason; file: reason` reads better.
    """
    return [
        {
            "user": row["user"],
            "photos": row["photos"],
            "encoded": row["encoded"],
            "unchanged": row["unchanged"],
            "rejected": row["rejected"],
            "uploaded": row["uploaded"],
            "reasons": "; ".join(row.get("reasons") or []),
        }
        for row in sorted(per_user, key=lambda r: r["user"])
    ]


def report_markdown(summary: Mapping[str, Any]) -> str:
    """A short markdown summary of a sync run for the Prefect UI."""
    rejected = summary.get("rejected") or []
    errors = summary.get("errors") or []
    bundle = summary.get("bundle") or {}
    status = "**failed**: some photos could not be synced" if errors else "completed"
    lines = [
        "# facelogin sync",
        "",
        f"Run {status}.",
        "",
        "| | |",
        "|---|---|",
        f"| users | {summary.get('users', 0)} |",
        f"| photos | {summary.get('photos', 0)} |",
        f"| encoded | {summary.get('encoded', 0)} |",
        f"| unchanged | {summary.get('unchanged', 0)} |",
        f"| rejected | {len(rejected)} |",
        f"| uploaded objects | {summary.get('uploaded', 0)} |",
        f"| upserted users | {summary.get('upserted', 0)} |",
        f"| removed users | {summary.get('removed_users', 0)} |",
    ]
    if bundle:
        lines.append(f"| bundle | `{bundle.get('version')}`, {bundle.get('users')} users |")
    seconds = summary.get("seconds") or {}
    if seconds:
        lines.append("| seconds | " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + " |")
    lines += where_lines(summary)
    warnings = summary.get("warnings") or []
    if warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- **{_escape(w)}**" for w in warnings]
    if rejected:
        lines += ["", "## Rejected photos", ""]
        lines += [f"- `{_short(r['file'])}`: {_escape(r['reason'])}" for r in rejected[:50]]
        if len(rejected) > 50:
            lines.append(f"- ... and {len(rejected) - 50} more")
    conflicts = summary.get("conflicts") or []
    if conflicts:
        lines += ["", "## Identity conflicts", ""]
        for c in conflicts:
            kept = f"; kept under {c['kept']}" if c.get("kept") else ""
            users = " and ".join(c["users"])
            lines.append(f"- {c['kind']}: {_escape(users)} (d={c['distance']}){_escape(kept)}")
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- `{_short(e['file'])}`: {_escape(e['error'])}" for e in errors[:50]]
    return "\n".join(lines) + "\n"


def where_lines(summary: Mapping[str, Any]) -> list[str]:
    """Where the run read and wrote (no credentials: MongoDB by host and database only)."""
    bundle = summary.get("bundle") or {}
    rows = [
        ("images root", summary.get("images")),
        ("object store", summary.get("store")),
        ("MongoDB", summary.get("catalog")),
        ("bundle", bundle.get("location")),
        ("bundle on this machine", bundle.get("path")),
    ]
    shown = [(k, v) for k, v in rows if v]
    if not shown:
        return []
    return ["", "## Where it wrote", "", "| | |", "|---|---|"] + [
        f"| {k} | `{_escape(str(v))}` |" for k, v in shown
    ]


def _short(path: str) -> str:
    """`<User>/<file>`: enough to find the photo, without the server's directory layout."""
    parts = PurePath(path).parts
    return "/".join(parts[-2:])


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
