"""The notification receiver of ``bench.fanout``: a bare ASGI app that answers 200 at once and
records when each request arrived (``time.time()`` on receipt, the path, and the gateway's
focus header or the baseline's send time). ``GET /receipts`` returns them, ``POST /reset``
forgets them. Run it with one uvicorn worker, so every receipt lands in one list.
"""

from __future__ import annotations

import json
import time
from typing import Any

Receipt = tuple[float, str, str, str]


def create_app() -> Any:
    """The app factory (``uvicorn --factory bench.fanout_receiver:create_app``)."""
    receipts: list[Receipt] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        arrived = time.time()
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        body = b"ok"
        if scope["path"] == "/receipts":
            body = json.dumps(receipts).encode()
        elif scope["path"] == "/reset":
            receipts.clear()
        else:
            headers = dict(scope["headers"])
            receipts.append((arrived, scope["path"],
                             headers.get(b"x-gateway-focus", b"").decode(),
                             headers.get(b"x-bench-sent", b"").decode()))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app
