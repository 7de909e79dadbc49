"""The embedded MongoDB shared by a long-running holder (facelogin web): borrowed, never stopped under
a borrower."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import AutoReconnect, PyMongoError

from facelogin.adapters.embedded import SERVER_FILE, EmbeddedServerError, embedded_mongo


def ping(uri: str) -> bool:
    with MongoClient(uri, serverSelectionTimeoutMS=1000) as client:
        return bool(client.admin.command("ping")["ok"])


def test_a_shared_server_is_borrowed_and_outlives_its_borrowers(tmp_path: Path) -> None:
    data = tmp_path / "mongo"
    with embedded_mongo(data, share=True) as uri:
        assert (data / SERVER_FILE).is_file()
        with embedded_mongo(data) as borrowed:  # a sync or `facelogin users` meanwhile
            assert borrowed == uri
            with MongoClient(borrowed) as client:
                client.db.things.insert_one({"n": 1})
        assert ping(uri)  # the borrower left it running
        with MongoClient(uri) as client:
            assert client.db.things.count_documents({}) == 1
    assert not (data / SERVER_FILE).exists()


def test_the_holder_waits_for_a_borrower_before_stopping_the_server(tmp_path: Path) -> None:
    data = tmp_path / "mongo"
    inside, release, seen = threading.Event(), threading.Event(), []

    def borrower() -> None:
        with embedded_mongo(data) as uri:
            inside.set()
            release.wait(10)
            seen.append(ping(uri))  # still up although its holder is leaving

    with embedded_mongo(data, share=True):
        thread = threading.Thread(target=borrower)
        thread.start()
        assert inside.wait(10)
        threading.Timer(0.5, release.set).start()
        started = time.monotonic()
    assert time.monotonic() - started >= 0.4
    thread.join(10)
    assert seen == [True]


def test_a_server_that_is_not_shared_is_refused_naming_its_holder(tmp_path: Path) -> None:
    data = tmp_path / "mongo"
    errors: list[BaseException] = []

    def other() -> None:  # another thread asks as another process would
        try:
            with embedded_mongo(data):
                pass
        except EmbeddedServerError as exc:
            errors.append(exc)

    with embedded_mongo(data):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert re.search(r"another facelogin process \(pid \d+\) is using", str(errors[0]))


def test_a_waiting_holder_starts_once_the_other_is_done(tmp_path: Path) -> None:
    data = tmp_path / "mongo"
    told = []
    done = threading.Event()

    def web() -> None:
        with embedded_mongo(data, share=True, wait=lambda: told.append("waiting")) as uri:
            told.append(ping(uri))
        done.set()

    with embedded_mongo(data):  # a sync holding it, not sharing
        thread = threading.Thread(target=web)
        thread.start()
        time.sleep(0.5)
        assert told == ["waiting"] and not done.is_set()
    thread.join(30)
    assert told == ["waiting", True]


def test_a_nested_block_in_the_same_thread_uses_the_running_server(tmp_path: Path) -> None:
    """`facelogin sync` starts the server while Prefect starts; the flow it runs finds it there."""
    data = tmp_path / "mongo"
    with embedded_mongo(data) as outer:
        with embedded_mongo(data) as inner:  # not refused as "another process is using it"
            assert inner == outer
        assert ping(outer)  # the inner block did not stop it
    with pytest.raises(PyMongoError):  # the outer block stopped it
        ping(outer)


LENDER = """
import sys, time
from pathlib import Path
from facelogin.adapters.embedded import embedded_mongo
with embedded_mongo(Path(sys.argv[1]), share=True):
    print("ready", flush=True)
    time.sleep(600)
"""


def test_a_borrower_takes_the_server_over_at_once_when_its_lender_is_killed(tmp_path: Path) -> None:
    """`facelogin web` killed (SIGKILL, OOM) while a sync borrows its database: its server goes with it;
    the sync's clients carry on at the same address within a second or two, not a timeout later."""
    import signal
    import subprocess
    import sys

    data = tmp_path / "mongo"
    lender = subprocess.Popen([sys.executable, "-c", LENDER, str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert lender.stdout is not None and lender.stdout.readline().strip() == "ready"
        with embedded_mongo(data) as uri, MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            client.db.things.insert_one({"n": 1})
            lender.send_signal(signal.SIGKILL)
            lender.wait(10)
            killed = time.monotonic()
            time.sleep(0.5)
            try:  # a pooled connection to the dead server fails once, as a task's retry would see
                client.db.things.insert_one({"n": 2})
            except AutoReconnect:
                client.db.things.insert_one({"n": 2})  # the server taken over, at the same URI
            # Well inside pymongo's 30 s server selection, the timeout a sync used to fail after
            # (the client above gives up after 5 s): taken over, not waited out.
            assert time.monotonic() - killed < 15
            assert client.db.things.count_documents({}) == 2  # the same data
        with pytest.raises(PyMongoError):  # stopped with the block that took it over
            ping(uri)
        assert not (data / SERVER_FILE).exists()
        with embedded_mongo(data) as again:  # and free: not "another process is using it"
            assert ping(again)
    finally:
        lender.kill()
        lender.wait(10)
        lender.stdout.close()  # type: ignore[union-attr]


def test_a_thread_that_borrows_while_its_process_takes_over_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync's task thread opening the database while another thread of the sync is still taking it
    over from a killed `facelogin web` (a busy machine: the dead server's port released late) gets
    the server taken over, not "another facelogin process is using the embedded database"."""
    import signal
    import subprocess
    import sys

    from facelogin.adapters import embedded

    released = embedded.wait_port_released

    def slowly(port: int, timeout: float = 10.0) -> bool:
        time.sleep(embedded.BORROW_PATIENCE + 2)  # longer than a borrower waits for a stranger
        return released(port, timeout)

    monkeypatch.setattr(embedded, "wait_port_released", slowly)
    data = tmp_path / "mongo"
    lender = subprocess.Popen([sys.executable, "-c", LENDER, str(data)], stdout=subprocess.PIPE, text=True)
    try:
        assert lender.stdout is not None and lender.stdout.readline().strip() == "ready"
        with embedded_mongo(data) as uri:
            lender.send_signal(signal.SIGKILL)
            lender.wait(10)
            time.sleep(1)  # the watcher has seen it and holds the lock while it takes over
            seen: list[str | BaseException] = []

            def task_thread() -> None:
                try:
                    with embedded_mongo(data) as other:
                        seen.append(other)
                        assert ping(other)
                except BaseException as exc:  # noqa: BLE001 - the test reports what the thread met
                    seen.append(exc)

            thread = threading.Thread(target=task_thread)
            thread.start()
            thread.join(60)
            assert seen == [uri]
    finally:
        lender.kill()
        lender.wait(10)
        lender.stdout.close()  # type: ignore[union-attr]
        if lender.stdout is not None:
            lender.stdout.close()


BORROWER = """
import sys, time
from pathlib import Path
from facelogin.adapters.embedded import embedded_mongo
with embedded_mongo(Path(sys.argv[1])):
    print("borrowing", flush=True)
    time.sleep(600)
"""


def test_a_server_taken_over_dies_with_the_process_that_took_it(tmp_path: Path) -> None:
    """The sync that took the server over is killed in turn: the server does not outlive it."""
    import json
    import signal
    import subprocess
    import sys

    from facelogin.processes import pid_alive, stop_pid

    data = tmp_path / "mongo"
    started = []
    record: dict[str, int] = {}
    try:
        for code, says in ((LENDER, "ready"), (BORROWER, "borrowing")):
            process = subprocess.Popen(
                [sys.executable, "-c", code, str(data)], stdout=subprocess.PIPE, text=True
            )
            started.append(process)
            assert process.stdout is not None and process.stdout.readline().strip() == says
        lender, borrower = started
        lender.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 15
        while record.get("pid") != borrower.pid:
            assert time.monotonic() < deadline, record
            time.sleep(0.1)
            with contextlib.suppress(OSError, ValueError):
                record = json.loads((data / SERVER_FILE).read_text())
        assert pid_alive(record["server_pid"]) and ping(f"mongodb://127.0.0.1:{record['port']}/")
        borrower.send_signal(signal.SIGKILL)
        borrower.wait(10)
        deadline = time.monotonic() + 10
        while pid_alive(record["server_pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(record["server_pid"])
    finally:
        for process in started:
            process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
        if record.get("server_pid") and pid_alive(record["server_pid"]):
            stop_pid(record["server_pid"])  # an orphan, when the test fails
