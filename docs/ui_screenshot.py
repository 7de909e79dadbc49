"""Screenshot a real sync run with retries in the Prefect UI (headless Chromium from Debian's packages).

    apt-get install -y chromium
    .venv/bin/python -m docs.ui_screenshot                          # demo: servers, a run, screenshots
    .venv/bin/python -m docs.ui_screenshot --ui http://127.0.0.1:4200 --flow-run <id>   # an existing run

The demo starts everything on loopback and stops it again: moto S3 behind a proxy that answers
503 SlowDown to the first thumbnail uploads, nx-27017, and `prefect server start`; it runs the sync
flow on the sample photos against that server and captures the flow run page and the retried task.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,1000", "--virtual-time-budget=15000", "--hide-scrollbars",
]  # fmt: skip


def screenshot(url: str, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    print(f"{out}: {url}")


def retried_task_run(flow_run_id: str) -> str | None:
    """The id of a task run of the flow run that went through AwaitingRetry, if any."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
        )
        for run in runs:
            if any(s.name == "AwaitingRetry" for s in client.read_task_run_states(run.id)):
                return str(run.id)
    return None


def capture(ui: str, flow_run_id: str, out_dir: Path) -> None:
    """The retried task run (its log says "Retry 1/4 will start ...", run count 2) and the flow run."""
    task_run = retried_task_run(flow_run_id)
    if task_run is None:
        raise SystemExit(f"flow run {flow_run_id} has no task run that went through AwaitingRetry")
    screenshot(f"{ui}/runs/task-run/{task_run}", out_dir / "ui-run-with-retry.png")
    screenshot(f"{ui}/runs/flow-run/{flow_run_id}", out_dir / "ui-flow-run.png")


def demo(out_dir: Path, faces: Path) -> None:
    from facelogin.adapters.embedded import free_port, start_nx
    from tests.servers import FaultyProxy, start_moto

    work = Path(tempfile.mkdtemp(prefix="facelogin-ui-"))
    moto = start_moto(work)
    nx = start_nx(work / "nx")
    proxy = FaultyProxy(moto.url, fail_first=3, fail_paths="/thumbs/").start()
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           # The UI asks the server where its API is; without this it says 127.0.0.1:4200.
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}  # fmt: skip
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=(work / "server.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        import boto3
        import httpx

        ui = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{ui}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="testsecret").create_bucket(Bucket="faces")  # fmt: skip
        os.environ.update({
            "PREFECT_API_URL": f"{ui}/api", "PREFECT_HOME": str(work / "prefect"),
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "testsecret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": proxy.url, "FACELOGIN_BUCKET": "faces", "FACELOGIN_MONGODB_URI": nx.uri,
            "FACELOGIN_STATE_DIR": str(work / "state"),
        })  # fmt: skip
        images = shutil.copytree(faces / "images", work / "images")
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.sync_faces import sync_faces

        with temporary_settings(updates={PREFECT_API_URL: f"{ui}/api"}):
            state = sync_faces(images=str(images), return_state=True)
            flow_run_id = str(state.state_details.flow_run_id)
            print(f"flow run {flow_run_id}: {state.name}, {proxy.failures()} uploads answered 503")
            time.sleep(3)  # let the last logs and states land
            capture(ui, flow_run_id, out_dir)
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
        proxy.stop()
        nx.stop()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ui", help="UI base URL of a running server, e.g. http://127.0.0.1:4200")
    parser.add_argument("--flow-run", help="Flow run id to capture (with --ui).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    args = parser.parse_args()
    if args.ui and args.flow_run:
        os.environ.setdefault("PREFECT_API_URL", f"{args.ui}/api")
        capture(args.ui, args.flow_run, args.out)
    else:
        demo(args.out, args.faces)


if __name__ == "__main__":
    main()
