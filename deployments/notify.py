"""A Prefect automation that notifies when a sync run fails or crashes (nightly or manual).

    # once: a notification block made in the UI (Blocks -> Slack Webhook, Email, Custom Webhook...)
    python -m deployments.notify --block slack-webhook/facelogin-alerts

The webhook URL or SMTP password lives in the block, encrypted by the server; nothing secret is
in this file or in prefect.yaml. Re-running replaces the automation.
"""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

AUTOMATION = "facelogin-sync-failed"
FLOW = "sync_faces"
SUBJECT = "facelogin sync {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = (
    "Flow run {{ flow_run.name }} of {{ flow.name }} ended {{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}\n{{ flow_run|ui_url }}"
)


def failure_automation(block_document_id: UUID, flow: str = FLOW) -> Any:
    """An automation firing on the first Failed or Crashed event of any run of `flow`."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    return Automation(
        name=AUTOMATION,
        description=f"Notify when a {flow} run fails or crashes.",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": flow},
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def install(block_slug: str) -> Any:
    """Create (or replace) the automation, notifying through the block `<type>/<name>`."""
    from prefect.blocks.core import Block

    block: Any = Block.load(block_slug)  # sync call: a block instance, not a coroutine
    block_id = block._block_document_id
    if block_id is None:
        raise SystemExit(f"block {block_slug!r} has no id on the server")
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(AUTOMATION):
            client.delete_automation(existing.id)
    return failure_automation(block_id).create()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--block", required=True, help="Notification block slug, e.g. slack-webhook/alerts.")
    args = parser.parse_args(argv)
    automation = install(args.block)
    print(f"automation {automation.name!r} ({automation.id}) notifies through {args.block}")


if __name__ == "__main__":
    main()
