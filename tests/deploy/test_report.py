"""The run report: per-user counts and rows (pure), and the artifacts publish_report creates in Prefect."""

from __future__ import annotations

import json
from typing import Any

import pytest

from facelogin.sync.report import COLUMNS, report_markdown, report_rows

# The shape of the flow's summary["per_user"] (facelogin.sync.outcome.user_rows).
PER_USER = [
    {"user": "Bob", "photos": 2, "encoded": 1, "unchanged": 1, "rejected": 0, "reasons": [], "uploaded": 2},
    {"user": "Ann", "photos": 3, "encoded": 1, "unchanged": 1, "rejected": 1,
     "reasons": ["ann_03.jpg: no face found"], "uploaded": 2},
    {"user": "Cy", "photos": 0, "encoded": 0, "unchanged": 0, "rejected": 0, "reasons": [], "uploaded": 0},
]  # fmt: skip
REJECTED = [
    {"file": "/srv/images/Ann/ann_03.jpg", "reason": "no face found"},
    {"file": "/srv/images/bad|name/x.jpg", "reason": "username 'bad|name' is odd"},
]


def test_report_rows_have_every_column_and_reasons_in_one_cell() -> None:
    rows = report_rows(PER_USER)

    assert [r["user"] for r in rows] == ["Ann", "Bob", "Cy"]
    assert all(tuple(r) == COLUMNS for r in rows)
    assert rows[0] == {
        "user": "Ann", "photos": 3, "encoded": 1, "unchanged": 1, "rejected": 1, "uploaded": 2,
        "reasons": "ann_03.jpg: no face found",
    }  # fmt: skip
    assert report_rows([{**PER_USER[1], "reasons": ["a: x", "b: y"]}])[0]["reasons"] == "a: x; b: y"


def test_rows_from_the_flow_planner_fit_the_table(tmp_path: Any) -> None:
    from facelogin.sync.discover import Photo
    from facelogin.sync.outcome import collect_outcome, user_rows
    from facelogin.sync.plan import plan_sync
    from facelogin.sync.stages import Trained, Uploaded

    ann = [Photo("Ann", f"ann_0{i}.jpg", str(tmp_path / f"ann_0{i}.jpg"), f"a{i}", 10) for i in (1, 2)]
    plan = plan_sync({"Ann": ann}, {}, [128], "thumbs")
    verdicts = {"a1": ("encoded", None), "a2": ("rejected", "no face found")}
    uploaded = Uploaded({"Ann/ann_01.jpg": {"128": "k"}})
    outcome = collect_outcome(plan, {"Ann": ann}, {}, Trained(verdicts), uploaded=uploaded)

    (row,) = report_rows(user_rows(outcome, plan, {"a1"}, {"Ann/ann_01.jpg": {"128": "k"}}))

    assert row == {"user": "Ann", "photos": 2, "encoded": 1, "unchanged": 0, "rejected": 1, "uploaded": 1,
                   "reasons": "ann_02.jpg: no face found"}  # fmt: skip


def test_report_markdown_lists_counts_rejections_and_errors() -> None:
    summary = {
        "users": 2, "photos": 5, "encoded": 2, "unchanged": 2, "uploaded": 4, "upserted": 2,
        "rejected": REJECTED,
        "errors": [{"file": "/srv/images/Bob/bob_02.jpg", "error": "upload failed: 503"}],
        "bundle": {"version": "20261127T000000Z-abc", "users": 2}, "seconds": {"train": 1.25},
    }  # fmt: skip
    text = report_markdown(summary)

    assert text.startswith("# facelogin sync\n")
    assert "**failed**" in text
    assert "| encoded | 2 |" in text and "| rejected | 2 |" in text and "| uploaded objects | 4 |" in text
    assert "- `Ann/ann_03.jpg`: no face found" in text
    assert "- `bad|name/x.jpg`: username 'bad\\|name' is odd" in text
    assert "- `Bob/bob_02.jpg`: upload failed: 503" in text
    assert "`20261127T000000Z-abc`" in text and "train 1.2" in text
    assert "failed" not in report_markdown({**summary, "errors": []})


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api")
def test_publish_report_creates_table_and_markdown_artifacts() -> None:
    from prefect import flow, get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.context import get_run_context

    from tasks.report import REPORT_KEY, SUMMARY_KEY, publish_report

    @flow
    def report_flow() -> str:
        publish_report({"users": 3, "photos": 5, "rejected": REJECTED[:1], "per_user": PER_USER})
        return str(get_run_context().flow_run.id)  # type: ignore[union-attr]

    run_id = report_flow()

    with get_client(sync_client=True) as client:
        from uuid import UUID

        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)]))
        )
    by_key: dict[str, Any] = {a.key: a for a in found}
    assert set(by_key) == {REPORT_KEY, SUMMARY_KEY}
    assert by_key[REPORT_KEY].type == "table" and by_key[SUMMARY_KEY].type == "markdown"
    data = by_key[REPORT_KEY].data
    rows = json.loads(data) if isinstance(data, str) else data
    assert [(r["user"], r["photos"], r["rejected"], r["uploaded"]) for r in rows] == [
        ("Ann", 3, 1, 2), ("Bob", 2, 0, 2), ("Cy", 0, 0, 0),
    ]  # fmt: skip
    assert "| rejected | 1 |" in by_key[SUMMARY_KEY].data
