"""Child processes that never outlive the sync that started them, and checks on other processes.

A sync killed with SIGKILL cannot clean up after itself: its children (the embedded database, the
temporary Prefect API, the encoder workers) must notice on their own. On Linux the kernel sends
them a signal when their parent dies (PR_SET_PDEATHSIG); workers also watch their parent's pid.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere a no-op).

    Meant for `subprocess.Popen(preexec_fn=...)`: it runs in the child, between fork and exec, and
    the setting survives the exec. The parent is the forking *thread*: fork from a long-lived one.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def child_guard() -> Callable[[], None] | None:
    """The `preexec_fn` for a child that must not outlive this process, or None off the main thread.

    The kernel ties PR_SET_PDEATHSIG to the forking thread: a child forked from a short-lived thread
    would be killed when that thread ends, so only the main thread (which lives as long as the
    process) uses it.
    """
    return die_with_parent if threading.current_thread() is threading.main_thread() else None


def exit_when_orphaned(parent: int | None = None, poll: float = 1.0) -> None:
    """In a worker process: exit at once when the process that started it (`parent`) is gone.

    Works whichever thread started the worker, and on every POSIX system.
    """
    parent = parent or os.getppid()
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="exit-when-orphaned", daemon=True).start()


def start_worker(parent: int, *setup: Callable[[], object]) -> None:
    """ProcessPoolExecutor initializer: watch `parent` (the pid that started the pool), then run `setup`.

    The parent's pid is passed in rather than read here: a parent killed while the worker was still
    starting would otherwise go unnoticed (the worker would watch its new parent, init).
    """
    exit_when_orphaned(parent)
    for step in setup:
        step()


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie we could reap)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def command_line(pid: int) -> list[str]:
    """The process's argv (Linux /proc), or [] when it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [part.decode(errors="replace") for part in fh.read().split(b"\0") if part]
    except OSError:
        return []


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM `pid`, then SIGKILL if it is still there after `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
