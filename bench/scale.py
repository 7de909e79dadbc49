"""Benchmark: a nightly run with nothing new, at 1,000 and 10,000 photos, against a hello-world flow.

For each N the bench builds a tree of N photos with distinct bytes (the six sample users with their
real photos, and N/2 - 6 more users of two small photos each: a 64 px picture with no face, which
the sync rejects after a quick detection, so that the first sync stays affordable), runs the first
`facelogin sync` on embedded defaults (a fresh HOME: temporary Prefect API, nx-27017, local store),
then three runs with nothing changed. Per run it prints the wall time, the flow's own work (the sum
of its stage timings), the photo bytes read and the MongoDB writes (users upserted).

The reference, measured in the same way (a new process, the same temporary Prefect API): a flow
with one task that does nothing. Goal: a no-op run within 3 s of that floor, and at most 3 s of flow
work at 10,000 photos.

    uv run python -m bench.scale [--photos 10000 1000] [--repeat 3]      # from the checkout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tests.servers import faces_root

HELLO = """
from prefect import flow, task
from facelogin.orchestration.api import local_prefect_api

@task
def hello() -> str:
    return "hello"

@flow
def hello_flow() -> str:
    return hello()

with local_prefect_api():
    hello_flow()
"""


def build(faces: Path, root: Path, photos: int) -> None:
    shutil.copytree(faces / "images", root)
    rng = np.random.default_rng(photos)
    count = sum(1 for _ in root.glob("*/*"))
    user = 0
    while count < photos:
        folder = root / f"user_{user:05d}"
        folder.mkdir()
        for i in range(min(2, photos - count)):
            pixels = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"user_{user:05d}_{i}.jpg", quality=70)
            count += 1
        user += 1


def env_for(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)  # as a user's HOME is: Prefect makes only PREFECT_HOME in it
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "AWS_", "PREFECT_"))}
    return keep | {"HOME": str(home), "PREFECT_HOME": str(home / "prefect"),
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, nargs="+", default=[10_000, 1_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    faces = faces_root()
    if faces is None:
        raise SystemExit("sample photos not found: set FACELOGIN_FACES or put them in ../shared/faces")
    exe = Path(sys.executable).with_name("facelogin")
    print(f"cores: {os.cpu_count()}; no-op runs per size: {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="facelogin-scale-") as tmp:
        work = Path(tmp)
        floor_env = env_for(work / "hello")
        floors = [timed([sys.executable, "-c", HELLO], floor_env)[0] for _ in range(args.repeat + 1)][1:]
        floor = statistics.median(floors)
        print(f"reference: one-task hello-world flow, same temporary API: median {floor:.1f} s\n")
        for n in args.photos:
            images = work / f"images-{n}"
            build(faces, images, n)
            env = env_for(work / f"home-{n}")
            first, out = timed([str(exe), "sync", "--images", str(images), "--json"], env)
            summary = json.loads(out)
            print(f"N={n}: first sync {first:.1f} s ({summary['users']} users, {summary['photos']} photos, "
                  f"{summary['encoded']} encoded, {len(summary['rejected'])} rejected)")  # fmt: skip
            walls, works = [], []
            for i in range(args.repeat):
                wall, out = timed([str(exe), "sync", "--images", str(images), "--json"], env)
                s = json.loads(out)
                work_s = sum(s["seconds"].values())
                walls.append(wall)
                works.append(work_s)
                stages = ", ".join(f"{k} {v:.2f}" for k, v in s["seconds"].items())
                print(f"  no-op {i + 1}: wall {wall:5.1f} s, flow work {work_s:5.2f} s ({stages}); "
                      f"bytes read {s['bytes_read']}, MongoDB writes {s['upserted']}, "
                      f"uploaded {s['uploaded']}, published to {s['bundle']['published_to']}")  # fmt: skip
            wall, work_s = statistics.median(walls), statistics.median(works)
            print(f"  median: wall {wall:.1f} s = hello-world floor {floor:.1f} s + {wall - floor:.1f} s "
                  f"(goal <= 3 s); flow work {work_s:.2f} s (goal <= 3 s at 10,000)\n")  # fmt: skip


if __name__ == "__main__":
    main()
