"""Report stage: the run's per-user table and markdown summary, as Prefect artifacts in the UI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from facelogin.sync.report import report_markdown, report_rows
from tasks.policy import PLAIN

REPORT_KEY = "sync-report"
SUMMARY_KEY = "sync-summary"


@task(task_run_name="publish-report", **PLAIN)
def publish_report(summary: Mapping[str, Any]) -> list[str]:
    """Publish the per-user table (photos, encoded, unchanged, rejected, uploaded) and a summary.

    The rows come from the summary's `per_user` list, one dict per user as the flow builds them.
    """
    rows = report_rows(summary.get("per_user") or [])
    table = create_table_artifact(
        rows, key=REPORT_KEY, description=f"facelogin sync: {len(rows)} users, one row each"
    )
    markdown = create_markdown_artifact(
        report_markdown(summary), key=SUMMARY_KEY, description="facelogin sync summary"
    )
    return [str(table), str(markdown)]
