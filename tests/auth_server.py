"""A stand-in for the HTTP auth server nsqd asks (``--auth-http-address``), shared by the tests.

nsqd calls ``GET /auth?remote_ip=&tls=&secret=&common_name=`` and expects
``{ttl, identity, identity_url, authorizations: [{topic, channels, permissions}]}``; any status
but 200 is E_AUTH_FAILED. ``AuthServer(secret="s")`` allows that one secret (everything else gets
403); with no secret every secret gets ``status``/``reply``, which a test may change at any time.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def allow_all(topic_pattern: str = ".*", identity: str = "tester") -> dict[str, Any]:
    return {"ttl": 3600, "identity": identity, "identity_url": "",
            "authorizations": [{"topic": topic_pattern, "channels": [".*"],
                                "permissions": ["publish", "subscribe"]}]}


class AuthServer:
    #: each query: its path, its parameters and the request's Accept header (``accept_header``)

    def __init__(self, secret: str | None = None, topic_pattern: str = ".*",
                 reply: dict[str, Any] | None = None) -> None:
        self.secret = secret
        self.status = 200
        self.reply = reply if reply is not None else allow_all(topic_pattern)
        self.queries: list[dict[str, str]] = []  # every request's path and query, in order
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                server.queries.append({"path": url.path, **query,
                                       "accept_header": self.headers.get("Accept", "")})
                status, reply = server.answer(query.get("secret", ""))
                body = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, secret: str) -> tuple[int, dict[str, Any]]:
        if self.secret is not None and secret != self.secret:
            return 403, {"message": "NOT_AUTHORIZED"}
        return self.status, self.reply

    @property
    def secrets(self) -> list[str]:
        return [query.get("secret", "") for query in self.queries]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
