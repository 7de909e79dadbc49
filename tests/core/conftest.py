"""Fixtures of the core tests: running a body with an ordinary user's rights."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

NOBODY = 65534


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="facelogin-core-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


@contextmanager
def _unprivileged() -> Iterator[None]:
    """The body runs with an ordinary user's rights, so that chmod 000 really denies reading.

    Root reads everything whatever the mode (and CI runs as root): as root, the effective user
    becomes nobody for the body only, which the kernel checks like any other user.
    """
    if os.geteuid() != 0:
        yield
        return
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        uid = NOBODY
    try:
        os.seteuid(uid)
    except PermissionError:
        pytest.skip("running as root without the right to change user: chmod 000 denies root nothing")
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def unprivileged() -> Callable[[], AbstractContextManager[None]]:
    """`with unprivileged():` runs its body with an ordinary user's rights (see _unprivileged)."""
    return _unprivileged
