"""A trailing slash on a known path redirects (307) to the path without it, as v3.3's framework did.

Litestar itself routes `/ctms/` to `/ctms`; this middleware sits behind the router, so it only sees paths
that matched a route, and answers before the handler runs.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send


def redirect_trailing_slash(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            # The raw path is the one the client sent: Litestar has already normalised scope["path"].
            raw_path = (scope.get("raw_path") or b"").split(b"?", 1)[0]
            if len(raw_path) > 1 and raw_path.endswith(b"/"):
                location = raw_path.rstrip(b"/") or b"/"
                if query_string := scope.get("query_string"):
                    location += b"?" + query_string
                await send(
                    {
                        "type": "http.response.start",
                        "status": 307,
                        "headers": [(b"location", location), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
        await app(scope, receive, send)

    return middleware
