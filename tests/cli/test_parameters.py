"""The sync flow's parameters are recorded on its run as Prefect records them, without FastAPI's encoder
for values that are already JSON."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from facelogin.orchestration.runs import load_sync_flow, with_plain_parameters

CASES: list[dict[str, Any]] = [
    {"images": "/srv/images", "full": False, "dry_run": True, "allow_removals": 3, "prune": False},
    {"images": None, "ratio": 0.5},
    {},
    {"images": Path("/srv/images"), "full": True},  # not plain: Prefect's own encoder
    {"when": date(2026, 12, 5), "tags": ["a", "b"]},
]


@pytest.mark.parametrize("parameters", CASES)
def test_the_recorded_parameters_are_prefects(parameters: dict[str, Any]) -> None:
    from prefect import flow

    @flow
    def probe(**kwargs: Any) -> None: ...

    expected = probe.serialize_parameters(parameters)
    assert with_plain_parameters(probe).serialize_parameters(parameters) == expected


def test_the_loaded_sync_flow_records_plain_parameters_as_they_are() -> None:
    parameters = {"images": "/srv/i", "full": False, "dry_run": False, "allow_removals": 0, "prune": True}
    recorded = load_sync_flow().serialize_parameters(parameters)
    assert recorded == parameters and recorded is not parameters
