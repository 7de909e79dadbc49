"""Benchmark: the original one-photo-at-a-time sync script vs `facelogin sync`, on the same S3 server.

The sample tree (../shared/faces/images, or $FACELOGIN_FACES/images) is replicated to about
200 photos, each replica re-saved so every photo has distinct content (no help from
content-hash de-duplication). Both sides upload to the same moto S3 server on loopback.

(a) peer, "original script": for each photo in turn, face_recognition on the full-size image,
    upload of the full-size photo, then a separate put_object_acl(public-read) call;
(b) `facelogin sync --json` as it runs in production: a Prefect server and a MongoDB server
    (nx-27017) already running, a fresh state directory and bucket each time (a full sync);
    the whole command is timed, process start to exit;
(c) the same on embedded defaults, as a new user's first run: the command also starts a
    temporary Prefect API and the embedded MongoDB (timed once, for the record).

Prints per-run times, medians and the ratios (goal for b: >= 5x), and, against their own peers:
the sync against its floor, measured in the same run and alternated with it (`sync wall vs floor`:
the plain process pool's encode-and-stage time + a plain boto3 upload of the objects that pool staged,
16 threads, to the same S3 server + starting Python and importing every module the command had
imported by its end; goal <= 1.15x); the re-sync with nothing changed against a one-task hello-world
flow run against the same Prefect server, each a new process (`no-op re-sync vs hello flow`, goal
<= +1.5 s);
the train stage against the same work in plain Python (a process pool running the stage's
per-photo function, encoding each photo and staging its thumbnails from the same decode; and the
pool encoding alone); the uploads against `rclone copy`; the local store's put path against
`cp -r` of the same 4,000 staged thumbnails.

    uv run python -m bench.sync [--photos 200] [--repeat 3] [--no-original] [--floor-only] [--json]

The machine is shared and noisy: every comparison is within one run, the two sides alternated, and
medians (of the per-repeat ratios or differences) are printed.
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
import uuid
from pathlib import Path
from typing import Any

import boto3
from PIL import Image

from facelogin.adapters.embedded import free_port, start_nx
from tests.servers import faces_root, start_moto

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "testsecret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def replicate(src: Path, dest: Path, target: int) -> int:
    """Copy the enrolment tree until it holds about `target` photos, each with distinct bytes.

    The copies stay with their own user (Obama/obama_01_07.jpg): a copy under another username
    would be the same person under two names, which the sync's identity checks leave out.
    """
    photos = sorted(p for p in src.glob("*/*") if p.is_file())
    copies = max(1, round(target / len(photos)))
    count = 0
    for r in range(copies):
        for photo in photos:
            out = dest / photo.parent.name / f"{photo.stem}_{r:02d}{photo.suffix}"
            out.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(photo) as im:
                im = im.copy()
            im.putpixel((0, 0), (r * 7 % 256, r * 13 % 256, r * 29 % 256, 255)[: len(im.getbands())])
            im.save(out, quality=95) if out.suffix.lower() in {".jpg", ".jpeg"} else im.save(out)
            count += 1
    return count


HELLO = """
from prefect import flow, task

@task
def hello() -> str:
    return "hello"

@flow
def hello_flow() -> str:
    return hello()

hello_flow()
"""

# `facelogin sync` as its console script runs it, keeping the names of the modules it had imported by its
# end (atexit runs this last): the import part of the floor imports the same ones.
TRACED = """
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sys.modules)))
from facelogin.cli import main
sys.argv[0] = "facelogin"
sys.exit(main())
"""

IMPORTS = """
import importlib, sys
for name in open(sys.argv[1]).read().split():
    if name != "__main__" and name not in sys.modules:
        try:
            importlib.import_module(name)
        except Exception:
            pass
"""


def python_and_imports(modules: Path) -> float:
    """Seconds to start Python, import the modules a `facelogin sync` imported, and exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS, str(modules)], check=True, cwd=Path.cwd())
    return time.perf_counter() - start


def hello_flow(env: dict[str, str]) -> float:
    """Seconds of a one-task hello-world flow run, a new process, against the same Prefect server."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", HELLO], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"hello flow failed:\n{done.stderr[-3000:]}")
    return elapsed


def boto3_upload(staged: Path, endpoint: str, bucket: str, threads: int = 16) -> tuple[int, float]:
    """A plain boto3 upload of every staged file under its key, `threads` at a time: (objects, seconds).

    Timed from the client's creation (the sync makes one too) to the last object stored.
    """
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    files = sorted(f for f in staged.rglob("*") if f.is_file())
    start = time.perf_counter()
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(max_pool_connections=threads))

    def put(f: Path) -> None:
        s3.upload_file(
            str(f), bucket, f.relative_to(staged).as_posix(), ExtraArgs={"ContentType": "image/jpeg"}
        )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, files))
    return len(files), time.perf_counter() - start


def original_script(images: Path, endpoint: str, bucket: str) -> float:
    """The way the original script did it: sequential, full size, a separate ACL call per object."""
    import face_recognition

    s3 = boto3.client("s3", endpoint_url=endpoint)
    start = time.perf_counter()
    encodings: dict[str, list[object]] = {}
    for folder in sorted(images.iterdir()):
        for photo in sorted(folder.iterdir()):
            image = face_recognition.load_image_file(str(photo))
            found = face_recognition.face_encodings(image)
            if len(found) == 1:
                encodings.setdefault(folder.name, []).append(found[0])
            key = f"{folder.name}/{photo.name}"
            s3.upload_file(str(photo), bucket, key)
            s3.put_object_acl(Bucket=bucket, Key=key, ACL="public-read")
    return time.perf_counter() - start


def plain_pool(images: Path, thumbnails: Path | None = None) -> float:
    """The same per-photo function as the train stage, in a plain process pool (one worker per core).

    With `thumbnails` (a staging folder), each accepted photo's thumbnails are staged from the same
    decode, the work the stage's encoders do; without, the encoding alone.
    """
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    from multiprocessing import get_context

    from facelogin import faces

    paths = [str(p) for p in sorted(images.glob("*/*"))]
    workers = os.cpu_count() or 1
    size = max(1, min(8, -(-len(paths) // (workers * 3))))
    keys = [[{s: f"thumbs/{s}/{Path(p).parent.name}/{Path(p).name}.jpg" for s in ("128", "256")}]
            if thumbnails else [] for p in paths]  # fmt: skip
    work = partial(_encode_and_stage, str(thumbnails or ""))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=faces.load_faces) as pool:
        start = time.perf_counter()
        results = list(pool.map(work, paths, keys, chunksize=size))
        elapsed = time.perf_counter() - start
    assert len(results) == len(paths) and all(problem is None for _, problem in results)
    return elapsed


def _encode_and_stage(staging: str, path: str, keys: list[dict[str, str]]) -> Any:
    from facelogin.sync.transfer import encode_and_stage

    return encode_and_stage(path, keys, staging, 800, 0)


def local_store_vs_cp(thumbs: Path, work: Path, copies: int = 10) -> tuple[int, float, float]:
    """The local store's put path (what the upload task runs) against `cp -r`, same staged files.

    `thumbs` (the thumbnails of one sync) is staged `copies` times under distinct names, about
    4,000 files for 200 photos; returns (files, seconds of the store, median seconds of cp -r).
    """
    from facelogin.adapters.stores import DirStore
    from facelogin.sync.transfer import upload_staged

    def stage(into: Path) -> list[str]:
        keys = []
        for i in range(copies):
            for f in sorted(thumbs.rglob("*.jpg")):
                key = f"thumbs/{i}/{f.relative_to(thumbs)}"
                (into / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, into / key)
                keys.append(key)
        return keys

    cps, stores = [], []
    for i in range(5):
        keys = stage(work / f"staged-cp-{i}")
        os.sync()  # the staging writes reach the disk before either side is timed, not during it
        start = time.perf_counter()
        subprocess.run(["cp", "-r", str(work / f"staged-cp-{i}"), str(work / f"cp-{i}")], check=True)
        cps.append(time.perf_counter() - start)
        staging = work / f"staged-{i}"
        keys = stage(staging)
        store = DirStore(work / f"store-{i}")
        os.sync()
        start = time.perf_counter()
        assert upload_staged(store, keys, staging) == len(keys)
        stores.append(time.perf_counter() - start)
    return len(keys), statistics.median(stores), statistics.median(cps)


def rclone_copy(source: Path, endpoint: str, bucket: str) -> float:
    """Debian's rclone copying the same files to the same S3 server, 16 transfers."""
    remote = (f":s3,provider=Other,endpoint='{endpoint}',access_key_id=test,secret_access_key=testsecret,"
              f"force_path_style=true:{bucket}/thumbs")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone 1.60 rejects it
    start = time.perf_counter()
    subprocess.run(["rclone", "copy", str(source), remote, "--transfers", "16"], env=env, check=True)
    return time.perf_counter() - start


def new_seaweed_bucket(s3: Any) -> str:
    """A new bucket that has taken its first object. SeaweedFS gives a bucket volumes of its own on the
    first write, and that write sometimes waits ~1 s for them (408 objects then take 1.02-1.07 s,
    whoever sends them): a nightly sync writes to a bucket that has them, so neither side pays it."""
    bucket = f"seaweed-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="bench-warm-up", Body=os.urandom(6000))
    s3.delete_object(Bucket=bucket, Key="bench-warm-up")
    return bucket


def seaweed_uploads(
    images: Path, thumbs: Path, work: Path, repeat: int, servers: dict[str, str]
) -> tuple[list[float], list[float]]:
    """facelogin's upload stage and `rclone copy --transfers 16` of the same thumbnails to SeaweedFS (a
    real S3 server that is not a Python process), alternated: objects per second of each."""
    from tests.servers import start_seaweed

    seaweed = start_seaweed(work / "seaweed")
    s3 = boto3.client("s3", endpoint_url=seaweed.url)
    ours, theirs = [], []
    files = sum(1 for f in thumbs.rglob("*") if f.is_file())
    try:
        for i in range(repeat):
            bucket = new_seaweed_bucket(s3)
            servers = servers | {"FACELOGIN_DATABASE": f"seaweed{i}"}
            _, summary = facelogin_sync(images, seaweed.url, bucket, work / f"state-seaweed-{i}", servers)
            ours.append(summary["uploaded"] / max(summary["seconds"]["upload"], 1e-9))  # type: ignore[index,operator]
            if shutil.which("rclone"):
                bucket = new_seaweed_bucket(s3)
                theirs.append(files / rclone_copy(thumbs, seaweed.url, bucket))
            print(f"run {i + 1}: uploads to SeaweedFS: facelogin {ours[-1]:.0f} objects/s"
                  + (f", rclone {theirs[-1]:.0f} objects/s" if theirs else ""))  # fmt: skip
    finally:
        seaweed.stop()
    return ours, theirs


def start_prefect(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on a free port with its own home, as a site runs it for the UI."""
    import urllib.request

    port = free_port()
    env = os.environ | {"PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    exe = Path(sys.executable).with_name("prefect")
    with open(work / "prefect.log", "ab") as log:
        proc = subprocess.Popen(
            [str(exe), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    for _ in range(1200):
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=1):
                return proc, api
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"prefect server did not start; see {work / 'prefect.log'}")


def sync_env(servers: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACELOGIN_", "PREFECT_API"))}
    return env | CREDENTIALS | servers | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"} | (extra or {})


def facelogin_sync(
    images: Path,
    endpoint: str,
    bucket: str,
    state: Path,
    servers: dict[str, str],
    modules: Path | None = None,
) -> tuple[float, dict[str, object]]:
    """`facelogin sync --json` timed from process start to exit; with `modules`, the names of the modules
    it imported are written there (the console script's own code, run through `python -c`)."""
    env = sync_env(
        servers, {"AWS_ENDPOINT_URL": endpoint, "FACELOGIN_BUCKET": bucket, "FACELOGIN_STATE_DIR": str(state)}
    )
    exe = Path(sys.executable).with_name("facelogin")
    command = [sys.executable, "-c", TRACED, str(modules)] if modules else [str(exe)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "sync", "--images", str(images), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"facelogin sync failed:\n{done.stderr[-3000:]}")
    return elapsed, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--uploads-only", action="store_true", help="only the upload comparison with rclone on SeaweedFS"
    )
    parser.add_argument(
        "--no-original", action="store_true", help="skip the original script (slow): no seed-way ratio"
    )
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="only the syncs, their floor and the hello flow (no embedded run, local store, rclone, Seaweed)",
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = parser.parse_args()

    faces = faces_root()
    if faces is None:
        raise SystemExit("sample photos not found: set FACELOGIN_FACES or put them in ../shared/faces")
    os.environ.update(CREDENTIALS)
    figures: dict[str, Any] = {"photos": args.photos, "repeat": args.repeat, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="facelogin-bench-") as tmp:
        work = Path(tmp)
        images = work / "images"
        n = replicate(faces / "images", images, args.photos)
        moto = start_moto(work)
        nx = start_nx(work / "nx")
        prefect, api = start_prefect(work)
        servers = {"PREFECT_API_URL": api, "FACELOGIN_MONGODB_URI": nx.uri}
        if args.uploads_only:
            try:
                local = work / "local"
                facelogin_sync(
                    images, moto.url, "", local, servers | {"FACELOGIN_BUCKET": "", "FACELOGIN_DATABASE": "l"}
                )
                weed_ours, weed_theirs = seaweed_uploads(
                    images, local / "objects" / "thumbs", work, args.repeat, servers
                )
            finally:
                prefect.terminate()
                prefect.wait(30)
                nx.stop()
                moto.stop()
            print_seaweed(weed_ours, weed_theirs)
            return
        try:
            s3 = boto3.client("s3", endpoint_url=moto.url)
            print(f"{n} photos in {len(list(images.iterdir()))} user folders; S3: moto server at {moto.url}")
            print(f"cores: {os.cpu_count()}; runs per side: {args.repeat}, alternated\n")

            def new_bucket() -> str:
                name = f"bench-{uuid.uuid4().hex[:8]}"
                s3.create_bucket(Bucket=name)
                return name

            naive, ours, incremental, trains, uploads = [], [], [], [], []
            hellos, floors, alongsides, direct, imports = [], [], [], [], []
            modules = work / "modules.txt"
            for i in range(args.repeat):
                if not args.no_original:
                    naive.append(original_script(images, moto.url, new_bucket()))
                    print(f"run {i + 1}: (a) original script     {naive[-1]:7.1f} s")

                bucket, state = new_bucket(), work / f"state-{i}"
                servers["FACELOGIN_DATABASE"] = f"bench{i}"
                elapsed, summary = facelogin_sync(images, moto.url, bucket, state, servers, modules)
                assert summary["encoded"] == n, summary["encoded"]
                ours.append(elapsed)
                trains.append(summary["seconds"]["train"])  # type: ignore[index]
                uploads.append(summary["uploaded"] / max(summary["seconds"]["upload"], 1e-9))  # type: ignore[index,operator]
                stages = ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items())  # type: ignore[union-attr]
                print(f"run {i + 1}: (b) facelogin sync      {elapsed:7.1f} s  (stages: {stages})")

                # Its floor, measured right after it: the same work in plain Python.
                alongsides.append(plain_pool(images, work / f"pool-thumbs-{i}"))
                objects, seconds = boto3_upload(work / f"pool-thumbs-{i}", moto.url, new_bucket())
                direct.append(objects / seconds)
                imports.append(python_and_imports(modules))
                floors.append(alongsides[-1] + seconds + imports[-1])
                print(f"run {i + 1}:     floor               {floors[-1]:7.1f} s  (plain pool encode+stage "
                      f"{alongsides[-1]:.1f}, boto3 upload of {objects} objects, 16 threads {seconds:.2f}, "
                      f"python + imports {imports[-1]:.2f}): sync/floor "
                      f"{elapsed / floors[-1]:.2f}x")  # fmt: skip

                again, summary = facelogin_sync(images, moto.url, bucket, state, servers)
                assert summary["encoded"] == 0 and summary["uploaded"] == 0
                incremental.append(again)
                hellos.append(hello_flow(sync_env(servers)))
                print(f"run {i + 1}:     facelogin re-sync   {again:7.1f} s  (nothing changed); hello flow "
                      f"{hellos[-1]:.1f} s: {again - hellos[-1]:+.2f} s")  # fmt: skip

            rclone = weed_ours = weed_theirs = None
            if not args.floor_only:
                cold, summary = facelogin_sync(images, moto.url, new_bucket(), work / "state-cold", {})
                assert summary["encoded"] == n
                print(f"once:   (c) embedded defaults   {cold:7.1f} s  (+ temporary Prefect API and MongoDB)")
                trains.append(summary["seconds"]["train"])  # type: ignore[index]
                local = work / "local"
                _, embedded = facelogin_sync(images, moto.url, "", local, {"FACELOGIN_BUCKET": ""})
                local_upload, objects = embedded["seconds"]["upload"], embedded["uploaded"]  # type: ignore[index]
                files, store_seconds, cp_seconds = local_store_vs_cp(local / "objects" / "thumbs", work)
                pools = [plain_pool(images) for _ in range(args.repeat)]
                rclone = (
                    rclone_copy(local / "objects" / "thumbs", moto.url, new_bucket())
                    if shutil.which("rclone")
                    else None
                )
                weed_ours, weed_theirs = seaweed_uploads(
                    images, local / "objects" / "thumbs", work, args.repeat, servers
                )
        finally:
            prefect.terminate()
            prefect.wait(30)
            nx.stop()
            moto.stop()

    b, c = statistics.median(ours), statistics.median(incremental)
    vs_floor = statistics.median(o / f for o, f in zip(ours, floors, strict=True))
    vs_hello = statistics.median(r - h for r, h in zip(incremental, hellos, strict=True))
    print()
    if naive:
        a = statistics.median(naive)
        print(f"median (a) original script : {a:7.1f} s")
        print(f"median (b) facelogin sync  : {b:7.1f} s   ratio a/b {a / b:.1f}x (goal >= 5x)")
        figures |= {"original_seconds": a, "seed_way_ratio": round(a / b, 2)}
    else:
        print(f"median (b) facelogin sync  : {b:7.1f} s   (original script skipped: --no-original)")
    print(f"median floor of (b)        : {statistics.median(floors):7.1f} s   (plain pool encode+stage "
          f"{statistics.median(alongsides):.1f} + boto3 upload, 16 threads + python and imports "
          f"{statistics.median(imports):.2f})")  # fmt: skip
    print(f"sync wall vs floor: {vs_floor:.2f}x (goal <= 1.15x; median of the {len(ours)} alternated pairs)"
          + (f"; seed-way ratio a/b {a / b:.1f}x" if naive else ""))  # fmt: skip
    print(f"median re-sync, no changes : {c:7.1f} s" + (f"   ratio a/re-sync {a / c:.1f}x" if naive else ""))
    print(f"no-op re-sync vs hello flow: {vs_hello:+.2f} s (goal <= +1.5 s; hello flow median "
          f"{statistics.median(hellos):.1f} s, same Prefect server; median of {len(hellos)} "
          "alternated pairs)")  # fmt: skip
    figures |= {
        "sync_seconds": b, "floor_seconds": statistics.median(floors),
        "sync_wall_vs_floor": round(vs_floor, 3),
        "floor_parts": {"pool_encode_and_stage": statistics.median(alongsides),
                        "boto3_upload_objects_per_second": statistics.median(direct),
                        "python_and_imports": statistics.median(imports)},
        "resync_seconds": c, "hello_flow_seconds": statistics.median(hellos),
        "noop_resync_vs_hello_seconds": round(vs_hello, 3),
        "syncs": ours, "floors": floors, "resyncs": incremental, "hellos": hellos,
    }  # fmt: skip
    train, alongside = statistics.median(trains), statistics.median(alongsides)
    up = statistics.median(uploads)
    print(f"\ntrain stage (encoding, thumbnails staged from the same decode) {train:.1f} s; the same work in "
          f"plain Python (the stage's per-photo function in a process pool) {alongside:.1f} s: throughput "
          f"{alongside / train:.2f}x (goal >= 0.95x)")  # fmt: skip
    boto = statistics.median(direct)
    print(f"uploads to moto: facelogin {up:.0f} objects/s; plain boto3, 16 threads {boto:.0f} objects/s: "
          f"{up / boto:.2f}x")  # fmt: skip
    figures |= {"train_seconds": train, "upload_objects_per_second_moto": up}
    if not args.floor_only:
        pool = statistics.median(pools)
        print(f"the pool encoding alone {pool:.1f} s ({pool / train:.2f}x)")
        if rclone is not None:
            theirs = objects / rclone
            print(f"uploads to moto: rclone copy of the same files {theirs:.0f} objects/s: facelogin "
                  f"{up / theirs:.2f}x (goal >= 1.0x)")  # fmt: skip
            figures["rclone_objects_per_second_moto"] = theirs
        else:
            print("rclone not installed: apt-get install rclone")
        print_seaweed(weed_ours or [], weed_theirs or [])
        if weed_ours:
            figures["upload_objects_per_second_seaweed"] = statistics.median(weed_ours)
        if weed_theirs:
            figures["rclone_objects_per_second_seaweed"] = statistics.median(weed_theirs)
        print(f"local store: {files} staged thumbnails taken in {store_seconds:.2f} s; cp -r of the same "
              "files "
              f"{cp_seconds:.2f} s: {cp_seconds / max(store_seconds, 1e-9):.2f}x (goal >= 1.0x); "
              f"in the sync above, {objects} thumbnails in {local_upload:.2f} s, one task run")  # fmt: skip
    if args.json:
        print(json.dumps(figures, default=float))


def print_seaweed(ours: list[float], theirs: list[float]) -> None:
    mine = statistics.median(ours)
    if theirs:
        other = statistics.median(theirs)
        print(f"uploads to SeaweedFS (a real S3 server, not a Python process): facelogin {mine:.0f} "
              f"objects/s; "
              f"rclone copy --transfers 16 of the same files {other:.0f} objects/s: {mine / other:.2f}x "
              f"(goal >= 1.0x; medians of {len(ours)})")  # fmt: skip
    else:
        print(f"uploads to SeaweedFS: facelogin {mine:.0f} objects/s (rclone not installed)")


if __name__ == "__main__":
    main()
