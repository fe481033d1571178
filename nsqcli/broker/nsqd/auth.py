"""AUTH against ``auth_http_addresses`` with nsqd's contract (internal/auth).

nsqd asks ``GET http://<addr>/auth?common_name=&remote_ip=&secret=&tls=`` (an address with a
scheme, ``https://host/path``, is the endpoint itself), each address in random order until one
answers 200, and expects JSON ``{ttl, identity, identity_url, authorizations: [{topic, channels,
permissions}]}`` with a ttl > 0 and only the permissions "subscribe" and "publish"; topic and
channel patterns are unanchored regular expressions, as Go's ``regexp.MatchString``. An https
auth server is verified with ``--tls-root-ca-file`` when one is given.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

CONNECT_TIMEOUT = 2.0
REQUEST_TIMEOUT = 5.0
PERMISSIONS = ("subscribe", "publish")
NSQ_V1_ACCEPT = "application/vnd.nsq; version=1.0"


class AuthError(Exception):
    """The auth server could not be asked, or answered something unusable."""


@dataclass
class Authorization:
    topic: str
    channels: list[str]
    permissions: list[str]

    def allows(self, topic: str, channel: str) -> bool:
        needed = "subscribe" if channel else "publish"
        if needed not in self.permissions:
            return False
        if not re.search(self.topic, topic):
            return False
        return any(re.search(pattern, channel) for pattern in self.channels)


@dataclass
class AuthState:
    identity: str = ""
    identity_url: str = ""
    expires: float = 0.0
    authorizations: list[Authorization] = field(default_factory=list)

    def expired(self) -> bool:
        return self.expires < time.time()

    def allows(self, topic: str, channel: str) -> bool:
        return any(a.allows(topic, channel) for a in self.authorizations)


def parse_auth_response(body: bytes) -> AuthState:
    try:
        data = json.loads(body)
        ttl = data.get("ttl", 0)
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            raise AuthError(f"bad ttl {ttl!r}")
        if ttl <= 0:
            raise AuthError(f"invalid TTL {ttl} (must be >0)")
        authorizations = []
        for item in data.get("authorizations") or []:
            topic = item.get("topic", "")
            channels = list(item.get("channels") or [])
            permissions = list(item.get("permissions") or [])
            unknown = [p for p in permissions if p not in PERMISSIONS]
            if unknown:
                raise AuthError(f"unknown permission {unknown[0]}")
            for pattern in [topic, *channels]:
                re.compile(pattern)
            authorizations.append(Authorization(topic, channels, permissions))
        return AuthState(
            identity=str(data.get("identity", "") or ""),
            identity_url=str(data.get("identity_url", "") or ""),
            expires=time.time() + ttl,
            authorizations=authorizations,
        )
    except (ValueError, AttributeError, TypeError, re.error) as exc:
        raise AuthError(f"invalid auth response: {exc}") from None


async def query_any_authd(addresses: list[str], remote_ip: str, tls: bool, common_name: str,
                          secret: str, ca_file: str | None = None) -> AuthState:
    """Ask each auth server in random order; the first usable answer wins."""
    query = urlencode({"common_name": common_name, "remote_ip": remote_ip, "secret": secret,
                       "tls": "true" if tls else "false"})
    client = AsyncHTTPClient()
    errors = []
    for index in random.sample(range(len(addresses)), len(addresses)):
        address = addresses[index]
        url = f"{address}?{query}" if "://" in address else f"http://{address}/auth?{query}"
        request = HTTPRequest(url, method="GET", headers={"Accept": NSQ_V1_ACCEPT},
                              ca_certs=ca_file or None, connect_timeout=CONNECT_TIMEOUT,
                              request_timeout=REQUEST_TIMEOUT)
        try:
            response = await client.fetch(request, raise_error=True)
            return parse_auth_response(response.body)
        except (HTTPClientError, OSError, AuthError) as exc:
            errors.append(f"{address}: {exc}")
    raise AuthError("; ".join(errors) or "no auth server")
