"""Progress of a sync's stages, told through logging so that whoever runs the flow may show it.

The stages call `advance`; `facelogin sync` on a terminal shows a progress bar per stage by
listening on the `facelogin.progress` logger. In a worker or serve process nobody listens, and
the records cost next to nothing (they are DEBUG records of a logger with no handler).
"""

from __future__ import annotations

import logging

log = logging.getLogger("facelogin.progress")
# Signals for whoever listens here, not log lines: a handler further up (Prefect's console handler at
# DEBUG, a caller's basicConfig) must not print them.
log.propagate = False

HASHED = "photos hashed"
ENCODED = "photos encoded"
UPLOADED = "objects uploaded"


def advance(stage: str, done: int, total: int | None = None) -> None:
    """`done` more items of `stage` finished, out of `total` (None: not known in advance)."""
    log.debug("%s +%d", stage, done, extra={"stage": stage, "done": done, "total": total})
