"""A local HTTP server publishing a JSON Web Key Set, as Google publishes the keys of its OIDC tokens."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc.jwk import RSAKey


@contextlib.contextmanager
def serving_jwks(*keys: RSAKey, max_age: int = 3600) -> Iterator[str]:
    """Serve the public halves of `keys` with `Cache-Control: max-age`; yields the key set's URL."""
    document = json.dumps({"keys": [key.as_dict(private=False) for key in keys]}).encode()

    class KeySetHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", f"public, max-age={max_age}")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeySetHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    finally:
        server.shutdown()
        server.server_close()
