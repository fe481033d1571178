"""nsqd TCP addresses from nsqlookupd ``/nodes`` (for producers given only --lookupd-http-address)."""

from __future__ import annotations

import asyncio
import urllib.request

from .exit_codes import AddressError
from .lib.lookupd import ACCEPT_HEADER, LookupdError, lookup_url, parse_producers

TIMEOUT = 5.0


def _fetch(address: str) -> list[str]:
    url = lookup_url(address, "", path="/nodes").replace("?topic=", "")
    request = urllib.request.Request(url, headers={"Accept": ACCEPT_HEADER})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - user URL
            body, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    except OSError as exc:
        raise AddressError(address, getattr(exc, "reason", None) or exc, "querying /nodes") from None
    try:
        pairs = parse_producers(body, status)
    except LookupdError as exc:
        raise AddressError(address, exc, "querying /nodes") from None
    return [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in pairs]


async def nodes_from_lookupds(addresses: list[str]) -> list[str]:
    """The union of every lookupd's nodes; a lookupd that fails is an error only if all fail."""
    results = await asyncio.gather(*(asyncio.to_thread(_fetch, a) for a in addresses),
                                   return_exceptions=True)
    found: list[str] = []
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors and len(errors) == len(results):
        raise errors[0]
    for result in results:
        if not isinstance(result, BaseException):
            found.extend(a for a in result if a not in found)
    return found
