"""`facelogin web`'s app with every challenge forced to the actions given, for a browser test or a bench
that plays a recorded clip as the camera. Run as `python -m tests.web.forced_web PORT ACTION[,ACTION]`
with the settings in the environment; on embedded defaults it starts (or borrows) the embedded MongoDB
as `facelogin web` does.

Test code only: not in the wheel, and the product has no setting, header or route that forces a
challenge; the hook is a Python argument of `create_app`.
"""

from __future__ import annotations

import sys

import uvicorn

from facelogin.adapters.connect import catalog_server
from facelogin.settings import Settings
from facelogin.web import create_app


def main() -> None:
    port, actions = int(sys.argv[1]), tuple(sys.argv[2].split(","))
    with catalog_server(Settings(), share=True) as running:
        app = create_app(running, challenge_actions=lambda: actions)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            server_header=False,
            proxy_headers=bool(running.trusted_proxies),
            forwarded_allow_ips=",".join(running.trusted_proxies) or None,
        )


if __name__ == "__main__":
    main()
