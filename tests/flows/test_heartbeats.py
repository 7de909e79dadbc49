"""`facelogin sync` does not wait for the flow run's heartbeat thread at the end: the run still sends
its heartbeats (Prefect's crashed-run detection), and Prefect is left as it was."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from facelogin.orchestration.runs import heartbeats_not_waited_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def test_a_run_the_cli_starts_still_sends_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import flow, flow_engine

    beats: list[Any] = []
    beat = threading.Event()

    def emit(engine: Any, *args: Any) -> None:
        beats.append(engine.flow_run.id)
        beat.set()

    monkeypatch.setattr(flow_engine.BaseFlowRunEngine, "_emit_flow_run_heartbeat", emit)

    @flow
    def beating() -> bool:
        return beat.wait(30)  # the first heartbeat goes as the run starts

    before = flow_engine._send_heartbeats
    with heartbeats_not_waited_for():
        state = beating(return_state=True)
    assert state.is_completed() and state.result() is True
    assert beats == [state.state_details.flow_run_id]
    assert flow_engine._send_heartbeats is before
