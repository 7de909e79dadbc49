"""The flood's reference: a server that does nothing but answer, on the same Uvicorn as `facelogin web`.

    python -m bench.busy_server PORT

POST /login/challenge answers a challenge id and POST /login a 503 with Retry-After at once, without
reading the body. What `bench.web` measures against it is the client's and the kernel's share of a
503's latency on this machine: no server can answer faster through the same client.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

CHALLENGE = b'{"id": "reference"}'
BUSY = b'{"error": "The server is busy: try again in 3 s.", "retry_after": 3}'


def _head(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/login/challenge":
        await receive()
        await send(_head(200, CHALLENGE))
        await send({"type": "http.response.body", "body": CHALLENGE})
        return
    await send(_head(503, BUSY, (b"retry-after", b"3")))
    await send({"type": "http.response.body", "body": BUSY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", server_header=False)
