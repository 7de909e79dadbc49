"""`facelogin web` under load: liveness logins on every core against a plain process pool, and a full
queue turned away at once; optionally a browser login from page load to the profile page.

    .venv/bin/python -m bench.web [--faces ../shared/faces] [--logins 40] [--flood 200] [--repeat 3]
                                  [--flood-repeat 3] [--browser-runs 3]

A state with the people of faces/liveness enrolled is written in a temporary directory (embedded
defaults). Every login is a real one: POST /login/challenge, then POST /login with a recorded blink
clip (lp_d13, 22 frames at 10 fps) answering it; the server is tests/web/forced_web.py, whose
challenges always ask for a blink, so the clip can answer them (production draws them at random).
Each login comes from its own address (X-Forwarded-For, the server trusting 127.0.0.1 as a proxy),
as different people's would.

- serial: `facelogin web` deciding in its own process, one login at a time (FACELOGIN_WEB_WORKERS=0,
  what it did before the worker pool);
- pool: `facelogin web` as shipped (one worker process per core);
- floor: a plain multiprocessing pool, one process per core, running the same decision function
  (`facelogin.web.pool.decide_burst`) on the same posts: no HTTP, no JSON, no MongoDB.
`--logins` are posted at once to each server; floor and pool alternate `--repeat` times (this
machine's speed drifts: the ratio is the median of the pairs). The CPU each login costs is read from
/proc for the web process, its workers, the embedded MongoDB and this benchmark's own client, which
share the cores. Then `--flood` at once to the pool server, whose queue turns the excess away with
503 + Retry-After, `--flood-repeat` times in each of two ways: "browser", each body sent with its
request as a browser's fetch does (one client thread then writes 200 x 1.3 MB through loopback, and
that client, not the server, bounds how soon it reads a 503), and "expect", `Expect: 100-continue`
as curl sends large bodies (a body goes only to a server that asks for it). Each flood is repeated on
bench/busy_server.py, a server that only answers 503, as the reference in the same run.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import http.client
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facelogin import login
from facelogin.adapters.embedded import free_port
from facelogin.settings import Settings
from facelogin.web.engine import Engine
from facelogin.web.pool import decide_burst
from tests.servers import faces_root
from tests.web.browser import WebServer, chromium_path, clean_env, launch, start_web, write_clip_y4m
from tests.web.synced import encode_tree, write_state

CLIP = "lp_d13__blink__1"
GOAL_FLOOR = 0.9
GOAL_P95 = 1.2
GOAL_BUSY_MS = 50.0
PROFILE_LOADED = """() => {
    const image = document.getElementById('profile-image');
    return image !== null && image.complete && image.naturalWidth > 0;
}"""


def burst_template(frames: list[Path]) -> str:
    """The login body for the clip, with CHALLENGE where the challenge id goes (as the page sends it)."""
    posted = [
        {
            "t": 1000.0 + i * 100.0,
            "image": "data:image/jpeg;base64," + base64.b64encode(f.read_bytes()).decode(),
        }
        for i, f in enumerate(frames)
    ]
    return json.dumps({"challenge": "CHALLENGE", "frames": posted})


def one_login(port: int, template: str, address: str, capture: float) -> tuple[int, float, dict[str, str]]:
    """A challenge, the capture (`capture` s, as the page takes), then the login answering it, from
    `address`: its status, the seconds from the login's request line to its answer, its headers.

    The body is sent from a thread while the answer is read, as a browser does: a server that answers
    before reading the body (a full queue) is timed as the person would see it."""
    import socket
    import threading

    headers = {"Content-Type": "application/json", "X-Forwarded-For": address}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/login/challenge", body="{}", headers=headers)
        response = conn.getresponse()
        issued = json.loads(response.read())
        if response.status != 200:
            return response.status, 0.0, dict(response.getheaders())
    finally:
        conn.close()
    time.sleep(capture)
    body = template.replace("CHALLENGE", issued["id"]).encode()
    head = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-Forwarded-For: {address}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=300)

    def send_body() -> None:
        # Answered and closed before the body was all sent: the answer is what counts.
        with contextlib.suppress(OSError):
            sock.sendall(body)

    try:
        start = time.perf_counter()
        sock.sendall(head)
        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        elapsed = time.perf_counter() - start
        said = answer.read()
        headers = {k.lower(): v for k, v in answer.getheaders()}
        if answer.status != 200:
            with contextlib.suppress(ValueError, AttributeError):
                headers["x-said"] = json.loads(said).get("reason") or json.loads(said).get("error")
        return answer.status, elapsed, headers
    finally:
        sock.close()


def at_once(
    port: int, template: str, count: int, tag: str, capture: float
) -> tuple[float, list[tuple[int, float, dict[str, str]]]]:
    """`count` logins started together; the wall time until the last answer, and each answer."""
    with concurrent.futures.ThreadPoolExecutor(max(1, count)) as pool:
        start = time.perf_counter()
        futures = [
            pool.submit(one_login, port, template, f"10.{tag}.{i // 250}.{i % 250 + 1}", capture)
            for i in range(count)
        ]
        answers = [f.result() for f in futures]
    return time.perf_counter() - start, answers


async def _read_answer(reader: Any) -> tuple[int, dict[str, str], bytes]:
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


FLOOD_MODES = {
    "browser": "the body sent with the request, as a browser's fetch does",
    "expect": "Expect: 100-continue, the body only once the server asks for it, as curl sends large bodies",
}


def _flood(
    port: int, template: str, count: int, capture: float, mode: str = "browser"
) -> list[tuple[int, float, dict[str, str]]]:
    """`count` people at once, in one thread (asyncio): each asks a challenge, all capture, then all
    post; each login timed from its request line to its answer. Bodies are made before any clock
    starts. `mode` "browser" sends the body at once in 64 KB writes while the answer is awaited;
    "expect" sends `Expect: 100-continue` and the body only after the server's 100 Continue (a full
    queue answers 503 instead, and that body is never sent)."""
    import asyncio

    async def person(i: int, ready: Any, issued: list[int]) -> tuple[int, float, dict[str, str]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        address = f"10.200.{i // 250}.{i % 250 + 1}"
        head = f"Host: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nX-Forwarded-For: {address}\r\n"
        writer.write(f"POST /login/challenge HTTP/1.1\r\n{head}Content-Length: 2\r\n\r\n{{}}".encode())
        status, headers, body = await _read_answer(reader)
        issued.append(1)
        if len(issued) == count:
            ready.set()
        await ready.wait()
        if status != 200:
            writer.close()
            return status, 0.0, headers
        login = template.replace("CHALLENGE", json.loads(body)["id"]).encode()
        expect = "Expect: 100-continue\r\n" if mode == "expect" else ""
        request = f"POST /login HTTP/1.1\r\n{head}{expect}Content-Length: {len(login)}\r\n\r\n".encode()
        await asyncio.sleep(capture)
        start = time.perf_counter()
        writer.write(request)
        if mode == "expect":
            status, headers, _ = await _read_answer(reader)
            if status == 100:
                writer.write(login)
                status, headers, _ = await _read_answer(reader)
        else:

            async def send_body() -> None:
                # Answered and closed before the body was all sent: the answer is what counts.
                with contextlib.suppress(OSError):
                    for at in range(0, len(login), 65536):
                        writer.write(login[at : at + 65536])
                        await writer.drain()

            sending = asyncio.ensure_future(send_body())
            status, headers, _ = await _read_answer(reader)
            sending.cancel()
        elapsed = time.perf_counter() - start
        writer.close()
        return status, elapsed, headers

    async def everyone() -> list[tuple[int, float, dict[str, str]]]:
        ready: asyncio.Event = asyncio.Event()
        issued: list[int] = []
        return list(await asyncio.gather(*(person(i, ready, issued) for i in range(count))))

    return asyncio.run(everyone())


def busy_ms(flood: list[tuple[int, float, dict[str, str]]]) -> float:
    """The median time to a 503 in one flood, in ms (nan if none was told 503)."""
    times = [a[1] * 1000 for a in flood if a[0] == 503]
    return statistics.median(times) if times else math.nan


@contextlib.contextmanager
def busy_reference() -> Iterator[int]:
    """bench/busy_server.py on a free loopback port: the flood's reference server."""
    import socket
    import subprocess

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.busy_server", str(port)],
                               cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("bench/busy_server.py did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


# The floor: the same decision function in a plain process pool.
_engine: Engine | None = None


def _start(bundle: str, cache: str) -> None:
    global _engine
    _engine = Engine(bundle, Path(cache), login.LoginOptions(), 3600.0)
    _engine.status()
    _engine.load_liveness()


def _decide(args: tuple[list[bytes], list[float]]) -> str:
    assert _engine is not None
    jpegs, times = args
    return str(decide_burst(_engine, ("blink",), jpegs, times, 10.0, 1920 * 1080)["decision"])


def floor(bundle: Path, cache: Path, frames: list[Path], count: int, workers: int) -> tuple[float, float]:
    """The wall time of `count` decisions, and the CPU milliseconds of one."""
    jpegs = [f.read_bytes() for f in frames]
    times = [1.0 + i * 0.1 for i in range(len(jpegs))]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start, initargs=(str(bundle), str(cache))) as pool:
        pool.map(_decide, [(jpegs, times)] * workers)  # every worker warm
        cpu = _tree_cpu(os.getpid())["workers"]
        start = time.perf_counter()
        decisions = pool.map(_decide, [(jpegs, times)] * count, chunksize=1)
        wall = time.perf_counter() - start
        cpu = _tree_cpu(os.getpid())["workers"] - cpu
    assert set(decisions) == {"accepted"}, decisions
    return wall, cpu * 1000 / count


def serve(root: Path, state: Path, **settings: str) -> WebServer:
    env = clean_env(
        root / "home", FACELOGIN_STATE_DIR=str(state), FACELOGIN_TRUSTED_PROXIES='["127.0.0.1"]', **settings
    )
    return start_web(env, root, forced_actions="blink")


def summary(name: str, wall: float, answers: list[tuple[int, float, dict[str, str]]]) -> dict[str, Any]:
    ok = [a for a in answers if a[0] == 200]
    times = sorted(a[1] for a in ok)
    p95 = times[max(0, round(0.95 * len(times)) - 1)] if times else float("nan")
    return {
        "name": name,
        "wall": wall,
        "per_second": len(ok) / wall,
        "p50": statistics.median(times) if times else float("nan"),
        "p95": p95,
        "errors": len(answers) - len(ok),
        "statuses": sorted({a[0] for a in answers}),
        "refused": sorted({str(a[2].get("x-said")) for a in answers if a[0] != 200}),
    }


def _tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds so far of a process and its descendants, by kind: the web process itself, its
    login workers (Python children running the decision) and anything else (the embedded MongoDB)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmdline)
    out = {"web": 0.0, "workers": 0.0, "other": 0.0}
    family = {root}
    grew = True  # parents are not always listed before their children: repeat until nothing joins
    while grew:
        grew = False
        for pid, (ppid, _, _) in stats.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
    for pid in family & stats.keys():
        _, cpu, cmdline = stats[pid]
        kind = "web" if pid == root else "workers" if "multiprocessing" in cmdline else "other"
        out[kind] += cpu
    return out


def browser_runs(url: str, video: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    assert executable is not None
    samples = []
    with sync_playwright() as driver:
        for _ in range(runs):
            browser = launch(driver, executable, video)
            try:
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(f"{url}/login")
                page.click("#start")
                page.wait_for_url("**/profile", timeout=60_000)
                page.wait_for_function(PROFILE_LOADED, timeout=15_000)
                samples.append(time.perf_counter() - start)
            finally:
                browser.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=faces_root())
    parser.add_argument("--logins", type=int, default=40)
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--flood-repeat", type=int, default=3, help="floods in each way (medians)")
    parser.add_argument("--repeat", type=int, default=3, help="floor/pool pairs, alternated (medians)")
    parser.add_argument("--browser-runs", type=int, default=0)
    args = parser.parse_args()
    if args.faces is None:
        sys.exit("sample photos not found: --faces ../shared/faces")
    people = args.faces / "liveness" / "people"
    frames = sorted((args.faces / "liveness" / "clips" / CLIP).glob("frame_*.jpg"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    capture = len(frames) / 10.0
    flood: list[tuple[int, float, dict[str, str]]] = []
    floods: dict[str, list[list[tuple[int, float, dict[str, str]]]]] = {m: [] for m in FLOOD_MODES}
    references: dict[str, list[float]] = {m: [] for m in FLOOD_MODES}
    flood_wall, seconds = 0.0, []

    def measure(server: WebServer, tag: str) -> tuple[dict[str, Any], dict[str, float]]:
        at_once(server.port, template, 2, f"9{tag}", capture)  # warm: each worker has decided
        before, client = _tree_cpu(server.process.pid), time.process_time()
        wall, answers = at_once(server.port, template, args.logins, tag, capture)
        after, client = _tree_cpu(server.process.pid), time.process_time() - client
        cpu = {k: (after[k] - before[k]) * 1000 / args.logins for k in after} | {
            "client": client * 1000 / args.logins
        }
        return summary(tag, wall - capture, answers), cpu  # from the posts, which follow the capture

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = root / "state"
        print("writing a synced state (embedded defaults, the liveness people) ...", flush=True)
        write_state(Settings(state_dir=state), people, encode_tree(people))
        template = burst_template(frames)
        print(f"each login: a challenge, then {len(frames)} frames of {CLIP} ({len(template) // 1024} KB)")

        server = serve(root, state, FACELOGIN_WEB_WORKERS="0")
        try:
            print(f"serial: facelogin web deciding in its own process, {args.logins} logins ...", flush=True)
            serial, _ = measure(server, "1")
        finally:
            server.stop()
        floors, pools, cpus, floor_cpu = [], [], [], []
        for repeat in range(args.repeat):
            print(f"pair {repeat + 1}/{args.repeat}: floor ({cores} plain processes), then facelogin web "
                  f"as shipped, {args.logins} logins each ...", flush=True)  # fmt: skip
            wall, cpu_ms = floor(state / "bundle", root / "cache", frames, args.logins, cores)
            floors.append(wall)
            floor_cpu.append(cpu_ms)
            server = serve(root, state)
            try:
                result, cpu = measure(server, str(repeat + 2))
                pools.append(result)
                cpus.append(cpu)
                if repeat == args.repeat - 1 and args.flood:
                    print(
                        f"flood: {args.flood} posted at once, {args.flood_repeat} times in each of "
                        f"{len(FLOOD_MODES)} ways, to facelogin web and to the reference ...",
                        flush=True,
                    )
                    with busy_reference() as reference:
                        for _ in range(args.flood_repeat):
                            for mode in FLOOD_MODES:
                                start = time.perf_counter()
                                flood = _flood(server.port, template, args.flood, capture, mode)
                                flood_wall = time.perf_counter() - start - capture
                                floods[mode].append(flood)
                                references[mode].append(
                                    busy_ms(_flood(reference, template, args.flood, 0.0, mode))
                                )
                    if args.browser_runs and chromium_path():
                        video = write_clip_y4m(frames, root / "blink.y4m")
                        seconds = browser_runs(server.url, video, args.browser_runs)
            finally:
                server.stop()

    ratios = [(p["per_second"] * f / args.logins) for p, f in zip(pools, floors, strict=True)]
    p95s = [p["p95"] / f for p, f in zip(pools, floors, strict=True)]  # ideal: the work at the floor's rate
    print(f"\n{args.logins} liveness logins posted at once, {cores} cores, {args.repeat} alternated pairs:")
    for f, r in zip(floors, pools, strict=True):
        print(
            f"  floor (plain process pool, same function): {f:6.1f} s  {args.logins / f:5.2f} logins/s | "
            f"facelogin web: {r['wall']:6.1f} s  {r['per_second']:5.2f} logins/s  p50 {r['p50']:.1f} s  "
            f"p95 {r['p95']:.1f} s  errors {r['errors']} {r['refused'] or ''}"
        )
    print(
        f"  serial facelogin web (one process, as before the pool): {serial['wall']:6.1f} s  "
        f"{serial['per_second']:5.2f} logins/s  errors {serial['errors']}"
    )
    print(f"  pool vs floor, median of {len(ratios)}: {statistics.median(ratios):.2f}x "
          f"({', '.join(f'{r:.2f}' for r in ratios)}; goal >= {GOAL_FLOOR})")  # fmt: skip
    pool_rate = statistics.median(p["per_second"] for p in pools)
    print(f"  pool vs serial: {pool_rate / serial['per_second']:.2f}x")
    print(f"  pool p95 vs ideal (the work at the floor's rate), median: {statistics.median(p95s):.2f}x "
          f"(goal <= {GOAL_P95})")  # fmt: skip
    cpu = {k: statistics.median(c[k] for c in cpus) for k in cpus[0]}
    print(
        f"  CPU per login, median: decision in a worker {cpu['workers']:.0f} ms (floor "
        f"{statistics.median(floor_cpu):.0f} ms), web process {cpu['web']:.0f} ms, embedded MongoDB and "
        f"others {cpu['other']:.0f} ms, this benchmark's client {cpu['client']:.0f} ms"
    )
    served = cpu["workers"] + cpu["web"] + cpu["other"]
    print(f"  floor's CPU per login vs facelogin web's: {statistics.median(floor_cpu) / served:.2f}x "
          "(the throughput ratio that CPU alone allows, whatever else runs on the machine)")  # fmt: skip
    if flood:
        every = [a for mode in FLOOD_MODES for one in floods[mode] for a in one]
        busy = [a for a in every if a[0] == 503]
        retry = all("retry-after" in a[2] for a in busy)
        others = sum(1 for a in every if a[0] not in (200, 503))
        print(f"\n{args.flood} posted at once to the pool, {len(every) // args.flood} times: "
              f"{sum(1 for a in every if a[0] == 200)} decided, {len(busy)} told 503 (Retry-After on all: "
              f"{retry}), others {others}; the last flood took {flood_wall:.1f} s in all")  # fmt: skip
        print("  time to the 503, median of each flood's median; the reference is bench/busy_server.py, "
              "which only answers 503, flooded the same way in the same run:")  # fmt: skip
        for mode, how in FLOOD_MODES.items():
            ours = [busy_ms(one) for one in floods[mode]]
            worst = max((a[1] * 1000 for one in floods[mode] for a in one if a[0] == 503), default=math.nan)
            ref = statistics.median(references[mode])
            print(f"  {mode} ({how}):\n    facelogin web {statistics.median(ours):.1f} ms "
                  f"({', '.join(f'{m:.0f}' for m in ours)}; slowest 503 {worst:.0f} ms), reference "
                  f"{ref:.1f} ms, ratio {statistics.median(ours) / ref:.2f}x")  # fmt: skip
        print(f"  goal: <= {GOAL_BUSY_MS:.0f} ms where the client is not the limit (expect); with a "
              "browser's body the reference shows what this one-thread client allows")  # fmt: skip
    if seconds:
        print(f"\nChromium, fake camera playing {CLIP}: page load to profile, median of {len(seconds)}: "
              f"{statistics.median(seconds):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
