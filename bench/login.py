"""Login latency against the naive face_recognition loop, cold CLI vs warm --serve, and matching at scale.

Run on one core, as on a small board:

    taskset -c 0 .venv/bin/python -m bench.login [--faces ../shared/faces] [--reps 2]

Peer (a): the loop from face_recognition's examples and Pi tutorials: full-resolution
face_locations + face_encodings, then compare_faces over a list of known encodings.
(b): facelogin's login path (reduce to 320 px height, detect, encode, vectorised match, decide).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from facelogin import login as core
from facelogin.adapters.stores import DirStore
from facelogin.bundle import build_bundle, publish_bundle
from facelogin.faces import encode_face, load_face_recognition, load_faces
from facelogin.login.match import Gallery, best_match

SIZES = [(320, 240), (640, 480), (1280, 720)]
GOAL_FRAME_MS = 150.0
GOAL_MATCH_MS = 5.0
GOAL_WARM_RATIO = 5.0


def default_faces() -> Path:
    env = os.environ.get("FACELOGIN_FACES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "faces"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def build(faces: Path, out: Path) -> tuple[dict[str, list[list[float]]], Path]:
    encodings: dict[str, list[list[float]]] = {}
    for photo in sorted(faces.glob("images/*/*")):
        result = encode_face(photo)
        if result.encoding is not None:
            encodings.setdefault(photo.parent.name, []).append(result.encoding)
    data, manifest = build_bundle(encodings, {}, "bench", {"detector": "hog"})
    publish_bundle(DirStore(out), "", data, manifest)
    return encodings, out


def camera_frames(faces: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """The sample scene at a camera's size: centre-cropped to its aspect ratio, then resized."""
    frames = []
    for path in sorted(faces.glob("frames/*")):
        with Image.open(path) as im:
            frames.append(np.asarray(ImageOps.fit(im.convert("RGB"), size, Image.Resampling.BILINEAR)))
    return frames


def bench_frames(
    faces: Path, encodings: dict[str, list[list[float]]], auth: core.Authenticator, reps: int
) -> dict[tuple[int, int], dict[str, Any]]:
    fr = load_face_recognition()
    known = [np.asarray(e) for encs in encodings.values() for e in encs]
    names = [u for u, encs in encodings.items() for _ in encs]
    out = {}
    for size in SIZES:
        frames = camera_frames(faces, size)
        naive_t, ours_t, naive_ok, ours_ok = [], [], 0, 0
        for _ in range(reps):
            for pixels in frames:
                start = time.perf_counter()
                boxes = fr.face_locations(pixels)
                found = []
                for encoding in fr.face_encodings(pixels, known_face_locations=boxes):
                    hits = fr.compare_faces(known, encoding)
                    found.append(names[hits.index(True)] if True in hits else None)
                naive_t.append(time.perf_counter() - start)
                naive_ok += found == ["Obama"]

                start = time.perf_counter()
                result = auth.decide([core.frame_from_array("bench", pixels, auth.options.height)], 1, 1)
                ours_t.append(time.perf_counter() - start)
                ours_ok += result["user"] == "Obama"
        out[size] = {
            "naive_ms": median_ms(naive_t),
            "facelogin_ms": median_ms(ours_t),
            "naive_correct": f"{naive_ok}/{len(naive_t)}",
            "facelogin_correct": f"{ours_ok}/{len(ours_t)}",
        }
    return out


def bench_descriptor(faces: Path, auth: core.Authenticator, reps: int) -> tuple[float, float]:
    """640x480 frames: (the whole login decision, the descriptor alone on an already known face box), ms.

    The reference is the part no detector choice can save: dlib's 5-point landmarks and ResNet
    descriptor of the face, on the same reduced frame, its box given.
    """
    engine = load_faces()
    whole, alone = [], []
    for _ in range(reps):
        for pixels in camera_frames(faces, (640, 480)):
            frame = core.frame_from_array("bench", pixels, auth.options.height)
            start = time.perf_counter()
            auth.decide([frame], 1, 1)
            whole.append(time.perf_counter() - start)
            boxes = engine.face_locations(frame.pixels, 1)
            start = time.perf_counter()
            engine.face_encodings(frame.pixels, known_face_locations=boxes[:1])
            alone.append(time.perf_counter() - start)
    return median_ms(whole), median_ms(alone)


def bench_cold_cli(bundle: Path, frame: Path, cache: Path, runs: int) -> float:
    exe = Path(sys.executable).with_name("facelogin")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            [str(exe), "login", "--bundle", str(bundle), "--cache-dir", str(cache), "--image", str(frame)],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        if json.loads(done.stdout)["user"] != "Obama":
            raise SystemExit(f"cold CLI did not accept the frame: {done.stdout} {done.stderr}")
    return median_ms(times)


def bench_serve(bundle: Path, frame: Path, cache: Path, requests: int) -> tuple[float, float]:
    """(process start -> first answer, median per warm request) in ms."""
    exe = Path(sys.executable).with_name("facelogin")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "login", "--serve", "--bundle", str(bundle), "--cache-dir", str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    assert proc.stdin is not None and proc.stdout is not None
    line = json.dumps({"image": str(frame)}) + "\n"
    times = []
    first = 0.0
    try:
        for i in range(requests + 1):
            t = time.perf_counter()
            proc.stdin.write(line)
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            if answer["user"] != "Obama":
                raise SystemExit(f"--serve did not accept the frame: {answer}")
            if i == 0:
                first = (time.perf_counter() - start) * 1000.0
            else:
                times.append(time.perf_counter() - t)
    finally:
        proc.stdin.close()
        proc.wait(30)
    return first, median_ms(times)


def bench_match(users: int = 10_000, runs: int = 200) -> tuple[float, float]:
    """(facelogin match, face_recognition.compare_faces over a list) in ms, `users` synthetic encodings."""
    fr = load_face_recognition()
    rng = np.random.default_rng(0)
    encodings = rng.normal(scale=0.09, size=(users, 128))
    gallery = Gallery.build(encodings, np.arange(users), [f"user{i:05d}" for i in range(users)])
    probe = rng.normal(scale=0.09, size=128)
    known = list(encodings)
    ours, naive = [], []
    for _ in range(runs):
        start = time.perf_counter()
        best_match(gallery, probe)
        ours.append(time.perf_counter() - start)
    for _ in range(max(5, runs // 10)):
        start = time.perf_counter()
        fr.compare_faces(known, probe)
        naive.append(time.perf_counter() - start)
    return median_ms(ours), median_ms(naive)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    parser.add_argument("--reps", type=int, default=2, help="passes over the sample frames per size")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    faces = args.faces.resolve()
    if not (faces / "frames").is_dir():
        raise SystemExit(f"{faces}: no frames/ folder (set --faces or FACELOGIN_FACES)")

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"facelogin login bench: {cpus} CPU(s), sample photos {faces}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        encodings, bundle = build(faces, work / "bundle")
        cache = work / "cache"
        auth = core.Authenticator(core.load_login_bundle(str(bundle), cache))
        frame480 = work / "frame-640x480.jpg"
        Image.fromarray(camera_frames(faces, (640, 480))[1]).save(frame480, quality=90)

        print("\nper-frame decision, median ms (frames already decoded, as from a camera)")
        print(f"{'frame':>10} {'naive fr loop':>14} {'facelogin':>10} {'ratio':>7}   correct (naive / ours)")
        frames = bench_frames(faces, encodings, auth, args.reps)
        for (w, h), row in frames.items():
            ratio = row["naive_ms"] / row["facelogin_ms"]
            print(
                f"{w:>5}x{h:<4} {row['naive_ms']:>14.1f} {row['facelogin_ms']:>10.1f} {ratio:>6.1f}x"
                f"   {row['naive_correct']} / {row['facelogin_correct']}"
            )

        whole, alone = bench_descriptor(faces, auth, max(3, args.reps * 2))
        print("\n640x480 frame, median ms: the login decision against the descriptor alone (goal <= 1.25x)")
        print(f"  descriptor alone, face box known             {alone:8.1f}")
        print(f"  facelogin login decision (detect+encode+match) {whole:6.1f}   {whole / alone:.2f}x")

        cold = bench_cold_cli(bundle, frame480, cache, args.cold_runs)
        serve_first, warm = bench_serve(bundle, frame480, cache, args.requests)
        print("\nstart-up, one 640x480 JPEG, median ms")
        print(f"  cold CLI call (process start -> decision)    {cold:8.1f}")
        print(f"  --serve start -> first answer                {serve_first:8.1f}")
        print(f"  --serve warm request                         {warm:8.1f}   cold/warm {cold / warm:.1f}x")

        ours, naive = bench_match()
        print("\nmatching one encoding against 10,000 enrolled users (synthetic), median ms")
        print(f"  facelogin (matrix-vector + reduceat)         {ours:8.3f}")
        print(f"  face_recognition.compare_faces over a list   {naive:8.3f}   ratio {naive / ours:.1f}x")

    frame_640 = frames[(640, 480)]["facelogin_ms"]
    print("\ngoals")
    ratio = cold / warm
    print(
        f"  <= {GOAL_FRAME_MS:.0f} ms per 640x480 frame: {frame_640:.1f} ms {_ok(frame_640 <= GOAL_FRAME_MS)}"
    )
    print(f"  < {GOAL_MATCH_MS:.0f} ms to match 10,000 users: {ours:.3f} ms {_ok(ours < GOAL_MATCH_MS)}")
    print(
        f"  warm >= {GOAL_WARM_RATIO:.0f}x faster than cold CLI: {ratio:.1f}x {_ok(ratio >= GOAL_WARM_RATIO)}"
    )


def _ok(passed: bool) -> str:
    return "OK" if passed else "MISSED"


if __name__ == "__main__":
    main()
