"""One exit-code contract for every command, the Pi's login included (docs/operating.md says the same).

- 0 ok: done, accepted, healthy.
- 1 rejected: the command ran and the answer is no: a face not accepted, photos rejected or not
  synced, an enrolment refused, a doctor check that failed, a run that did not complete, no such user.
- 2 error: the command could not do its job: a usage mistake, a setting, a path, a server that does
  not answer, a module that is not installed. The message says what to fix.

A crash is an error too: `facelogin.cli.main` turns an uncaught exception into exit 2, never
Python's 1, which would read as "rejected".
"""

from __future__ import annotations

OK = 0
REJECTED = 1
ERROR = 2
