"""Create the process work pool the prefect.yaml deployments run on, and the shared sync limit.

    python -m deployments.workpool            # from the checkout: facelogin-pool, one flow run at a time
    prefect worker start --pool facelogin-pool

Equivalent CLI: `prefect work-pool create facelogin-pool --type process` then
`prefect work-pool set-concurrency-limit facelogin-pool 1` and
`prefect gcl create facelogin-sync --limit 1`.
"""

from __future__ import annotations

import argparse

from tasks.lock import SYNC_LIMIT, ensure_sync_limit

POOL = "facelogin-pool"


def ensure_pool(name: str = POOL, concurrency: int = 1) -> bool:
    """Create the process pool (or set its limit); True when it was created now.

    A pool-wide limit of one run means a nightly and a manual run are never both started,
    whichever deployment they belong to.
    """
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=ProcessWorker.type,
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    concurrency_limit=concurrency,
                    description="facelogin sync runs, one at a time, on the box that holds the images.",
                )
            )
            return True
        client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=concurrency))
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pool", default=POOL)
    parser.add_argument("--concurrency", type=int, default=1, help="Flow runs at once in the pool.")
    args = parser.parse_args(argv)
    created = ensure_pool(args.pool, args.concurrency)
    print(f"work pool {args.pool!r} {'created' if created else 'exists'} (concurrency {args.concurrency})")
    made = ensure_sync_limit()
    print(f"global concurrency limit {SYNC_LIMIT!r} {'created' if made else 'exists'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
