"""`facelogin web`'s app with every challenge forced to the actions given, for a browser test that
plays a recorded clip as the camera. Run as `python -m tests.web.forced_web PORT ACTION[,ACTION]` with
the settings in the environment (FACELOGIN_MONGODB_URI set: this serves, it starts no database).

Test code only: not in the wheel, and the product has no setting, header or route that forces a
challenge; the hook is a Python argument of `create_app`.
"""

from __future__ import annotations

import sys

import uvicorn

from facelogin.settings import Settings
from facelogin.web import create_app


def main() -> None:
    port, actions = int(sys.argv[1]), tuple(sys.argv[2].split(","))
    app = create_app(Settings(), challenge_actions=lambda: actions)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", server_header=False)


if __name__ == "__main__":
    main()
