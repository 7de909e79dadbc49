"""Serve `nightly-sync` and `sync-now` from one long-running process: no work pool, no worker.

    python -m deployments.serve                    # from the checkout; what the systemd unit runs
    python -m deployments.serve --timezone UTC

The deployments' schedule, concurrency limit, tags and descriptions are read from prefect.yaml,
so the file stays the one place they are declared. Runs execute as subprocesses of this one,
with its environment (FACELOGIN_*, AWS_*), one at a time. The images root this process's runs
read (FACELOGIN_IMAGES, resolved here) is recorded as the deployments' `images` parameter, so
`facelogin enroll` run from anywhere writes where the sync reads.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from tasks.lock import ensure_sync_limit

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"


def read_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The deployment entries of prefect.yaml (anchors resolved)."""
    import yaml

    with path.open() as fh:
        config = yaml.safe_load(fh)
    return list(config.get("deployments") or [])


def build_deployments(
    timezone: str | None = None, path: Path = PREFECT_YAML, images: Path | None = None
) -> list[Any]:
    """RunnerDeployments of the sync flow, configured as prefect.yaml declares them.

    `images`, when given, becomes every deployment's `images` parameter.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron

    specs = read_deployments(path)
    built = []
    # As a worker loads it: from the entrypoint prefect.yaml names, relative to the checkout.
    with contextlib.chdir(path.parent):
        flows = {
            e: load_flow_from_entrypoint(e, use_placeholder_flow=False)
            for e in {s["entrypoint"] for s in specs}
        }
        for spec in specs:
            schedules = [
                Cron(s["cron"], timezone=timezone or s.get("timezone") or "UTC", active=s.get("active", True))
                for s in spec.get("schedules") or []
            ]
            limit = spec.get("concurrency_limit")
            built.append(
                flows[spec["entrypoint"]].to_deployment(
                    name=spec["name"],
                    description=spec.get("description"),
                    tags=spec.get("tags"),
                    parameters={
                        **(spec.get("parameters") or {}),
                        **({"images": str(images)} if images else {}),
                    },
                    schedules=schedules,
                    concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
                    enforce_parameter_schema=spec.get("enforce_parameter_schema", True),
                )
            )
    return built


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timezone", help="IANA zone for the nightly cron [default: as in prefect.yaml].")
    parser.add_argument("--limit", type=int, default=1, help="Flow runs at once in this process.")
    args = parser.parse_args(argv)

    from prefect import serve

    from facelogin.settings import Settings

    ensure_sync_limit()
    images = Settings().images.resolve()
    # A stopped server (reboot, `systemctl stop`) must not switch the nightly schedule off: runs
    # missed while it is down wait as Late and start when it is back.
    serve(*build_deployments(args.timezone, images=images), pause_on_shutdown=False, limit=args.limit)


if __name__ == "__main__":
    main()
